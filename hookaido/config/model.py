"""The compiled, runtime config: immutable values with every default applied.

Produced by ``hookaido.config.compile``; read by the servers, the dispatcher and the plugins.
Secret references stay references here (``SecretRef``); they are loaded at start-up and at
reload by ``hookaido.secrets``. Durations are ``timedelta``; ``None`` means "off".
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hookaido.errors import Location


@dataclass(frozen=True)
class SecretRef:
    """``env:NAME``, ``file:/path``, ``vault:path#field`` or ``raw:value``."""

    scheme: str
    value: str
    location: Location | None = None

    def __str__(self) -> str:
        return f"{self.scheme}:{self.value}"


@dataclass(frozen=True)
class SecretVersion:
    id: str
    value: SecretRef
    valid_from: datetime
    valid_until: datetime | None = None


@dataclass(frozen=True)
class TLSConfig:
    cert_file: str
    key_file: str
    client_ca: str | None = None
    client_auth: str = "none"  # none | request | require_any | verify_if_given | require


@dataclass(frozen=True)
class RateLimit:
    rps: float
    burst: int


@dataclass(frozen=True)
class IngressConfig:
    listen: str = ":8080"
    tls: TLSConfig | None = None
    rate_limit: RateLimit | None = None


@dataclass(frozen=True)
class PullAPIConfig:
    listen: str = ":9443"
    prefix: str = ""
    tokens: tuple[SecretRef, ...] = ()
    max_batch: int = 100
    max_lease_batch: int = 100
    default_lease_ttl: timedelta = timedelta(seconds=30)
    max_lease_ttl: timedelta | None = None
    default_max_wait: timedelta = timedelta(0)
    max_wait: timedelta | None = None
    sse_keepalive: timedelta = timedelta(seconds=15)
    sse_max_connection: timedelta | None = None
    grpc_listen: str | None = None
    tls: TLSConfig | None = None
    present: bool = False  # whether the block was written


@dataclass(frozen=True)
class AdminAPIConfig:
    listen: str = "127.0.0.1:2019"
    prefix: str = ""
    tokens: tuple[SecretRef, ...] = ()
    tls: TLSConfig | None = None


@dataclass(frozen=True)
class LogConfig:
    enabled: bool = True
    level: str = "info"
    output: str = "stderr"  # stdout | stderr | file
    path: str | None = None


@dataclass(frozen=True)
class MetricsConfig:
    enabled: bool = False
    listen: str = "127.0.0.1:9900"
    prefix: str = "/metrics"


@dataclass(frozen=True)
class ObservabilityConfig:
    access_log: LogConfig = field(default_factory=LogConfig)
    runtime_log: LogConfig = field(default_factory=LogConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    tracing_enabled: bool = False
    runtime_log_configured: bool = False  # a level was written; else it comes from --log-level


@dataclass(frozen=True)
class RetryPolicy:
    max: int = 8
    base: timedelta = timedelta(seconds=2)
    cap: timedelta = timedelta(minutes=2)
    jitter: float = 0.2


@dataclass(frozen=True)
class EgressPolicy:
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    https_only: bool = True
    redirects: bool = False
    dns_rebind_protection: bool = True


@dataclass(frozen=True)
class PublishPolicy:
    direct: bool = True
    managed: bool = True
    allow_pull_routes: bool = True
    allow_deliver_routes: bool = True
    require_actor: bool = False
    require_request_id: bool = False
    fail_closed: bool = False
    actor_allow: tuple[str, ...] = ()
    actor_prefix: tuple[str, ...] = ()


@dataclass(frozen=True)
class AdaptiveBackpressure:
    enabled: bool = False
    min_total: int = 200
    queued_percent: int = 80
    ready_lag: timedelta = timedelta(seconds=30)
    oldest_queued_age: timedelta = timedelta(seconds=60)
    sustained_growth: bool = True


@dataclass(frozen=True)
class TrendSignals:
    window: timedelta = timedelta(minutes=15)
    expected_capture_interval: timedelta = timedelta(minutes=1)
    stale_grace_factor: int = 3
    sustained_growth_consecutive: int = 3
    sustained_growth_min_samples: int = 5
    sustained_growth_min_delta: int = 10
    recent_surge_min_total: int = 20
    recent_surge_min_delta: int = 10
    recent_surge_percent: int = 50
    dead_share_high_min_total: int = 10
    dead_share_high_percent: int = 20
    queued_pressure_min_total: int = 20
    queued_pressure_percent: int = 75
    queued_pressure_leased_multiplier: int = 2


@dataclass(frozen=True)
class Defaults:
    max_body: int = 2 * 1024 * 1024
    max_headers: int = 64 * 1024
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: timedelta = timedelta(seconds=10)
    concurrency: int = 20
    egress: EgressPolicy = field(default_factory=EgressPolicy)
    publish_policy: PublishPolicy = field(default_factory=PublishPolicy)
    trend_signals: TrendSignals = field(default_factory=TrendSignals)
    adaptive_backpressure: AdaptiveBackpressure = field(default_factory=AdaptiveBackpressure)


@dataclass(frozen=True)
class QueueLimits:
    max_depth: int = 10000
    drop_policy: str = "reject"


@dataclass(frozen=True)
class Matcher:
    """All match constraints of a route (inline block and named matchers concatenated)."""

    methods: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    header_exists: tuple[str, ...] = ()
    query: tuple[tuple[str, str], ...] = ()
    query_exists: tuple[str, ...] = ()
    remote_ips: tuple[str, ...] = ()  # normalised IP networks, e.g. "10.0.0.0/8"

    @property
    def empty(self) -> bool:
        return not (
            self.methods
            or self.hosts
            or self.headers
            or self.header_exists
            or self.query
            or self.query_exists
            or self.remote_ips
        )


@dataclass(frozen=True)
class AuthConfig:
    """``auth NAME ...`` on a route. ``options`` is the plain data the plugin's factory gets.

    For ``basic``: ``{"users": [[user, password], ...]}``. For ``hmac``: ``{"secrets":
    [SecretRef...], "secret_refs": [id...], "provider": ..., "signature_header": ...,
    "timestamp_header": ..., "nonce_header": ..., "tolerance": timedelta}``. For ``forward``:
    ``{"url": ..., "timeout": timedelta, "copy_headers": [...], "body_limit": int|None}``.
    """

    name: str
    options: dict[str, Any]
    location: Location | None = None


@dataclass(frozen=True)
class SignConfig:
    name: str = "hmac"
    secrets: tuple[SecretRef, ...] = ()
    secret_refs: tuple[str, ...] = ()
    signature_header: str = "X-Hookaido-Signature"
    timestamp_header: str = "X-Hookaido-Timestamp"
    secret_selection: str = "newest_valid"
    options: Any = None  # a plugin signer's plain-data options ({"args": [...], ...}) or None


@dataclass(frozen=True)
class DeliverTarget:
    """One ``deliver`` target. ``kind`` is the deliverer name (``http``, ``https``, ``exec``)."""

    target: str  # URL, or the exec command string
    kind: str
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: timedelta = timedelta(seconds=10)
    headers: tuple[tuple[str, str], ...] = ()
    sign: SignConfig | None = None
    env: tuple[tuple[str, str], ...] = ()
    location: Location | None = None
    options: Any = None  # a plugin deliverer's plain-data block options, or None


@dataclass(frozen=True)
class PullConfig:
    path: str
    tokens: tuple[SecretRef, ...] = ()


@dataclass(frozen=True)
class PublishSettings:
    enabled: bool = True
    direct: bool = True
    managed: bool = True


@dataclass(frozen=True)
class Route:
    path: str
    channel: str = "inbound"  # inbound | outbound | internal
    matcher: Matcher = field(default_factory=Matcher)
    rate_limit: RateLimit | None = None
    auth: AuthConfig | None = None
    max_body: int = 2 * 1024 * 1024
    max_headers: int = 64 * 1024
    publish: PublishSettings = field(default_factory=PublishSettings)
    backend: str = "sqlite"
    deliver_concurrency: int = 20
    pull: PullConfig | None = None
    targets: tuple[DeliverTarget, ...] = ()
    application: str | None = None
    endpoint_name: str | None = None
    location: Location | None = None


@dataclass(frozen=True)
class Config:
    """The whole compiled Hookaidofile."""

    routes: tuple[Route, ...]
    ingress: IngressConfig = field(default_factory=IngressConfig)
    pull_api: PullAPIConfig = field(default_factory=PullAPIConfig)
    admin_api: AdminAPIConfig = field(default_factory=AdminAPIConfig)
    observability: ObservabilityConfig = field(default_factory=ObservabilityConfig)
    retention: Any = None  # hookaido.queue.Retention
    queue_limits: QueueLimits = field(default_factory=QueueLimits)
    defaults: Defaults = field(default_factory=Defaults)
    secrets: tuple[SecretVersion, ...] = ()
    backend: str = "sqlite"
    source: str = "Hookaidofile"
    warnings: tuple[str, ...] = ()

    @property
    def pull_routes(self) -> tuple[Route, ...]:
        return tuple(route for route in self.routes if route.pull is not None)

    @property
    def deliver_routes(self) -> tuple[Route, ...]:
        return tuple(route for route in self.routes if route.targets)
