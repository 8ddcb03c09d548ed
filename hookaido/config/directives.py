"""The table of every Hookaidofile block and directive: how many values each takes and which
blocks it may open. The parser reads values by this table; it holds no semantics."""

from dataclasses import dataclass, field

VARIADIC = -1  # every value up to "}", a comment, a block, or a keyword of the same block
PAIRS = -2  # like VARIADIC, but the values must come in name/value pairs

# Forms with their own value rules, handled by name in the parser.
AUTH = "auth"  # route auth: basic / hmac / forward / a plugin's name
TOKEN_AUTH = "token_auth"  # auth token <ref> in pull_api, admin_api and pull
SIGN = "sign"  # sign hmac ... / sign signature_header ... inside deliver
DELIVER = "deliver"  # deliver <url> { } / deliver exec <command> { }
MATCH = "match"  # match { } / match @a @b
VARS = "vars"  # vars { NAME value ... }


@dataclass(frozen=True)
class Spec:
    """How one directive is written.

    ``args`` is a count, ``VARIADIC`` or ``PAIRS``. ``block`` is the table of the block it
    opens (``None`` for none). ``block_required``: the block must follow; otherwise it is
    optional. ``either``: the directive takes ``args`` values *or* a block, never both.
    """

    args: int = 0
    block: dict | None = None
    block_required: bool = False
    either: bool = False
    repeatable: bool = False
    special: str | None = None


def one(repeatable: bool = False) -> Spec:
    return Spec(args=1, repeatable=repeatable)


def block(table: dict, repeatable: bool = False) -> Spec:
    return Spec(block=table, block_required=True, repeatable=repeatable)


def value_or_block(table: dict) -> Spec:
    return Spec(args=1, block=table, either=True)


def variadic(repeatable: bool = True) -> Spec:
    return Spec(args=VARIADIC, repeatable=repeatable)


TLS = {
    "cert_file": one(),
    "key_file": one(),
    "client_ca": one(),
    "client_auth": one(),
}

RATE_LIMIT = {"rps": one(), "burst": one()}

TOKEN = Spec(special=TOKEN_AUTH, repeatable=True)

INGRESS = {"listen": one(), "tls": block(TLS), "rate_limit": block(RATE_LIMIT)}

PULL_API = {
    "listen": one(),
    "prefix": one(),
    "auth": TOKEN,
    "max_batch": one(),
    "max_lease_batch": one(),
    "default_lease_ttl": one(),
    "max_lease_ttl": one(),
    "default_max_wait": one(),
    "max_wait": one(),
    "sse_keepalive": one(),
    "sse_max_connection": one(),
    "grpc_listen": one(),
    "tls": block(TLS),
}

ADMIN_API = {"listen": one(), "prefix": one(), "auth": TOKEN, "tls": block(TLS)}

QUEUE_LIMITS = {"max_depth": one(), "drop_policy": one()}
QUEUE_RETENTION = {"max_age": one(), "prune_interval": one()}
DELIVERED_RETENTION = {"max_age": one()}
DLQ_RETENTION = {"max_age": one(), "max_depth": one()}
ATTEMPTS_RETENTION = {"max_age": one(), "max_rows": one()}

DEFAULTS_DELIVER = {"retry": variadic(repeatable=False), "timeout": one(), "concurrency": one()}

EGRESS = {
    "allow": variadic(),
    "deny": variadic(),
    "https_only": one(),
    "redirects": one(),
    "dns_rebind_protection": one(),
}

PUBLISH_POLICY = {
    "direct": one(),
    "managed": one(),
    "allow_pull_routes": one(),
    "allow_deliver_routes": one(),
    "require_actor": one(),
    "require_request_id": one(),
    "fail_closed": one(),
    "actor_allow": variadic(),
    "actor_prefix": variadic(),
}

TREND_SIGNALS = {
    name: one()
    for name in (
        "window",
        "expected_capture_interval",
        "stale_grace_factor",
        "sustained_growth_consecutive",
        "sustained_growth_min_samples",
        "sustained_growth_min_delta",
        "recent_surge_min_total",
        "recent_surge_min_delta",
        "recent_surge_percent",
        "dead_share_high_min_total",
        "dead_share_high_percent",
        "queued_pressure_min_total",
        "queued_pressure_percent",
        "queued_pressure_leased_multiplier",
    )
}

ADAPTIVE_BACKPRESSURE = {
    name: one()
    for name in (
        "enabled",
        "min_total",
        "queued_percent",
        "ready_lag",
        "oldest_queued_age",
        "sustained_growth",
    )
}

DEFAULTS = {
    "max_body": one(),
    "max_headers": one(),
    "deliver": block(DEFAULTS_DELIVER),
    "egress": block(EGRESS),
    "publish_policy": block(PUBLISH_POLICY),
    "trend_signals": block(TREND_SIGNALS),
    "adaptive_backpressure": block(ADAPTIVE_BACKPRESSURE),
}

LOG_OUTPUT = {"output": one(), "path": one(), "format": one()}
ACCESS_LOG = {"enabled": one(), **LOG_OUTPUT}
RUNTIME_LOG = {"level": one(), **LOG_OUTPUT}
METRICS = {"enabled": one(), "listen": one(), "prefix": one()}
TRACING_TLS = {
    "ca_file": one(),
    "cert_file": one(),
    "key_file": one(),
    "server_name": one(),
    "insecure_skip_verify": one(),
}
TRACING_RETRY = {
    "enabled": one(),
    "initial_interval": one(),
    "max_interval": one(),
    "max_elapsed_time": one(),
}
TRACING = {
    "enabled": one(),
    "collector": one(),
    "url_path": one(),
    "timeout": one(),
    "compression": one(),
    "insecure": one(),
    "proxy_url": one(),
    "tls": block(TRACING_TLS),
    "retry": block(TRACING_RETRY),
    "header": Spec(args=2, repeatable=True),
}

OBSERVABILITY = {
    "access_log": value_or_block(ACCESS_LOG),
    "runtime_log": value_or_block(RUNTIME_LOG),
    "metrics": value_or_block(METRICS),
    "tracing": value_or_block(TRACING),
}

SECRET = {
    "value": one(),
    "valid_from": one(),
    "valid_until": one(),
    "runtime": one(),
    "max_versions": one(),
}
SECRETS = {"secret": Spec(args=1, block=SECRET, block_required=True, repeatable=True)}

MATCHER = {
    "method": variadic(),
    "host": variadic(),
    "header": Spec(args=PAIRS, repeatable=True),
    "header_exists": variadic(),
    "query": Spec(args=PAIRS, repeatable=True),
    "query_exists": variadic(),
    "remote_ip": variadic(),
}

HMAC_AUTH = {
    "secret": variadic(),
    "secret_ref": variadic(),
    "signature_header": one(),
    "timestamp_header": one(),
    "nonce_header": one(),
    "tolerance": one(),
    "provider": one(),
}

FORWARD_AUTH = {"timeout": one(), "copy_headers": variadic(), "body_limit": one()}

PULL = {"path": one(), "auth": TOKEN}

DELIVER_BLOCK = {
    "retry": variadic(repeatable=False),
    "timeout": one(),
    "header": Spec(args=2, repeatable=True),
    "sign": Spec(special=SIGN, repeatable=True),
    "env": Spec(args=2, repeatable=True),
}
SIGN_ONE_VALUE = ("signature_header", "timestamp_header", "secret_selection")

PUBLISH = {"enabled": one(), "direct": one(), "managed": one()}
QUEUE = {"backend": one()}

ROUTE = {
    "application": one(),
    "endpoint_name": one(),
    "match": Spec(special=MATCH, block=MATCHER, repeatable=True),
    "rate_limit": block(RATE_LIMIT),
    "auth": Spec(special=AUTH, repeatable=True),
    "max_body": one(),
    "max_headers": one(),
    "publish": value_or_block(PUBLISH),
    "publish.direct": one(),
    "publish.managed": one(),
    "queue": value_or_block(QUEUE),
    "deliver_concurrency": one(),
    "pull": block(PULL),
    "deliver": Spec(special=DELIVER, block=DELIVER_BLOCK, repeatable=True),
}

# Global blocks in canonical (``config fmt``) order.
GLOBAL_BLOCKS = {
    "ingress": block(INGRESS),
    "pull_api": block(PULL_API),
    "admin_api": block(ADMIN_API),
    "observability": block(OBSERVABILITY),
    "queue_retention": block(QUEUE_RETENTION),
    "delivered_retention": block(DELIVERED_RETENTION),
    "dlq_retention": block(DLQ_RETENTION),
    "attempts_retention": block(ATTEMPTS_RETENTION),
    "queue_limits": block(QUEUE_LIMITS),
    "defaults": block(DEFAULTS),
    "vars": Spec(special=VARS),
    "secrets": block(SECRETS),
}

CHANNELS = ("inbound", "outbound", "internal")

BUILTIN_AUTH = ("basic", "hmac", "forward")

# Canonical order of route directives; ``auth`` and ``sign`` are ordered by their kind.
ROUTE_ORDER = (
    "application",
    "endpoint_name",
    "match @",
    "match {}",
    "rate_limit",
    "auth basic",
    "auth forward",
    "auth hmac",
    "auth *",
    "max_body",
    "max_headers",
    "publish",
    "publish.direct",
    "publish.managed",
    "queue",
    "deliver_concurrency",
    "pull",
    "deliver",
)

DELIVER_ORDER = (
    "retry",
    "timeout",
    "header",
    "sign hmac",
    "sign signature_header",
    "sign timestamp_header",
    "sign secret_selection",
    "sign *",
    "env",
)


@dataclass
class PluginTables:
    """Directive tables that installed plugins add, derived from their JSON Schema fragments."""

    auth: dict[str, "PluginSpec"] = field(default_factory=dict)
    deliverers: dict[str, "PluginSpec"] = field(default_factory=dict)
    signers: dict[str, "PluginSpec"] = field(default_factory=dict)
    backend_options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PluginSpec:
    """Values and block of a plugin's ``auth NAME ...`` (or ``sign``/``deliver``) directive."""

    args: int  # 0, a count, or VARIADIC
    block: dict | None  # None when the fragment describes no block options
    known: bool  # False when the plugin registered no schema: block directives take 1 value


def spec_from_schema(schema: dict | None) -> PluginSpec:
    """Derive the arity of a plugin's directive from its options schema.

    Positional values are the ``args`` property (an array: values up to the block; a string:
    one value). Every other property is a block directive: string/number/integer/boolean
    take one value, array every value up to the next directive, object a nested block.
    """
    if not isinstance(schema, dict):
        return PluginSpec(args=VARIADIC, block={}, known=False)
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        properties = {}
    args_schema = properties.get("args")
    args = 0
    if isinstance(args_schema, dict):
        args = (
            1
            if _schema_type(args_schema) in ("string", "number", "integer", "boolean")
            else (VARIADIC)
        )
    table = _table_from_properties({k: v for k, v in properties.items() if k != "args"})
    return PluginSpec(args=args, block=table or None, known=True)


def _schema_type(schema: dict) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind is None and isinstance(schema.get("properties"), dict):
        return "object"
    if kind is None and "items" in schema:
        return "array"
    return kind if isinstance(kind, str) else "string"


def _table_from_properties(properties: dict) -> dict:
    table = {}
    for name, sub in properties.items():
        if not isinstance(name, str) or not isinstance(sub, dict):
            continue
        kind = _schema_type(sub)
        if kind == "object":
            nested = sub.get("properties") if isinstance(sub.get("properties"), dict) else {}
            table[name] = block(_table_from_properties(nested))
        elif kind == "array":
            table[name] = variadic()
        else:
            table[name] = one()
    return table


def plugin_tables(registry) -> PluginTables:
    """Collect the directive tables of everything a plugin registry holds."""
    tables = PluginTables()
    if registry is None:
        return tables
    for registration in registry.registrations("auth"):
        tables.auth[registration.name] = spec_from_schema(registration.schema)
    for registration in registry.registrations("deliverer"):
        tables.deliverers[registration.name] = spec_from_schema(registration.schema)
    for registration in registry.registrations("signer"):
        tables.signers[registration.name] = spec_from_schema(registration.schema)
    for registration in registry.registrations("backend"):
        derived = spec_from_schema(registration.schema)
        if derived.block:
            tables.backend_options.update(derived.block)
    return tables
