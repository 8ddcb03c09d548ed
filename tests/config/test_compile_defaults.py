"""What a compiled config holds: documented defaults, inheritance and every option's shape."""

from datetime import UTC, datetime, timedelta

from hookaido.config.model import (
    AdaptiveBackpressure,
    AdminAPIConfig,
    Defaults,
    EgressPolicy,
    IngressConfig,
    LogConfig,
    Matcher,
    MetricsConfig,
    PublishPolicy,
    PublishSettings,
    PullAPIConfig,
    QueueLimits,
    RateLimit,
    RetryPolicy,
    SecretRef,
    SecretVersion,
    SignConfig,
    TLSConfig,
    TrendSignals,
)
from hookaido.plugins import PluginInfo
from hookaido.queue import Retention

from .conftest import compile_text, make_registry


def test_a_minimal_config_compiles_to_the_documented_defaults():
    config = compile_text('/hooks { deliver "https://ci.example/build" {} }')

    assert config.ingress == IngressConfig(listen=":8080", tls=None, rate_limit=None)
    assert config.pull_api == PullAPIConfig()
    assert config.pull_api.listen == ":9443"
    assert config.pull_api.max_batch == 100
    assert config.pull_api.default_lease_ttl == timedelta(seconds=30)
    assert config.pull_api.sse_keepalive == timedelta(seconds=15)
    assert config.admin_api == AdminAPIConfig(listen="127.0.0.1:2019")
    assert config.observability.access_log == LogConfig(enabled=True, output="stderr")
    assert config.observability.metrics == MetricsConfig(enabled=False)
    assert not config.observability.runtime_log_configured
    assert config.retention == Retention(
        queue_max_age=timedelta(days=7),
        prune_interval=timedelta(minutes=5),
        delivered_max_age=None,
        dlq_max_age=timedelta(days=30),
        dlq_max_depth=10000,
        attempts_max_age=timedelta(days=7),
        attempts_max_rows=200000,
    )
    assert config.queue_limits == QueueLimits(max_depth=10000, drop_policy="reject")
    assert config.defaults == Defaults()
    assert config.backend == "sqlite"
    assert config.source == "Hookaidofile"
    assert config.warnings == (
        'ingress.listen not set; using default ":8080"',
        'admin_api.listen not set; using default "127.0.0.1:2019"',
    )


def test_a_minimal_route_gets_default_limits_publish_and_target_settings():
    config = compile_text('/hooks/ { deliver "https://ci.example/build" {} }')

    (route,) = config.routes
    assert route.path == "/hooks"
    assert route.channel == "inbound"
    assert route.matcher == Matcher()
    assert route.max_body == 2 * 1024 * 1024
    assert route.max_headers == 64 * 1024
    assert route.publish == PublishSettings(enabled=True, direct=True, managed=True)
    assert route.backend == "sqlite"
    assert route.deliver_concurrency == 20
    assert route.auth is None and route.pull is None and route.rate_limit is None
    (target,) = route.targets
    assert target.target == "https://ci.example/build"
    assert target.kind == "https"
    assert target.retry == RetryPolicy(
        max=8, base=timedelta(seconds=2), cap=timedelta(minutes=2), jitter=0.2
    )
    assert target.timeout == timedelta(seconds=10)
    assert target.sign is None and target.headers == () and target.env == ()
    assert target.location.line == 1


def test_routes_inherit_defaults_and_retry_options_inherit_one_by_one():
    config = compile_text(
        """
        defaults {
          max_body 1mb
          max_headers 16kb
          deliver {
            retry exponential max 3 cap 30s
            timeout 5s
            concurrency 4
          }
        }
        /a { deliver "http://a.example/x" { retry exponential base 1s } }
        /b { max_body 512kb; deliver "https://b.example/x" { timeout 2s } }
        """
    )

    a, b = config.routes
    assert (a.max_body, a.max_headers, a.deliver_concurrency) == (1024**2, 16 * 1024, 4)
    assert a.targets[0].kind == "http"
    assert a.targets[0].retry == RetryPolicy(
        max=3, base=timedelta(seconds=1), cap=timedelta(seconds=30), jitter=0.2
    )
    assert a.targets[0].timeout == timedelta(seconds=5)
    assert b.max_body == 512 * 1024
    assert b.targets[0].timeout == timedelta(seconds=2)
    assert b.targets[0].retry == config.defaults.retry


def test_listener_blocks_compile_with_tls_prefixes_and_tokens():
    config = compile_text(
        """
        ingress {
          listen 127.0.0.1:8443
          tls { cert_file /etc/h/cert.pem; key_file /etc/h/key.pem; client_ca /etc/h/ca.pem }
          rate_limit { rps 2.5 }
        }
        pull_api {
          listen 127.0.0.1:9443
          prefix /pull/
          auth token env:PULL_A
          auth token "file:/run/secrets/pull b"
          max_batch 50
          max_lease_batch 20
          default_lease_ttl 1m
          max_lease_ttl 10m
          default_max_wait 5s
          max_wait 30s
          sse_keepalive off
          sse_max_connection 1h
        }
        admin_api { listen 127.0.0.1:2020; prefix /; auth token raw:dev-admin }
        /hooks { pull { path /hooks } }
        """
    )

    assert config.ingress.listen == "127.0.0.1:8443"
    assert config.ingress.tls == TLSConfig(
        "/etc/h/cert.pem", "/etc/h/key.pem", "/etc/h/ca.pem", "require"
    )
    assert config.ingress.rate_limit == RateLimit(rps=2.5, burst=3)
    pull = config.pull_api
    assert pull.present and pull.prefix == "/pull"
    assert [str(token) for token in pull.tokens] == ["env:PULL_A", "file:/run/secrets/pull b"]
    assert (pull.max_batch, pull.max_lease_batch) == (50, 20)
    assert (pull.default_lease_ttl, pull.max_lease_ttl) == (
        timedelta(minutes=1),
        timedelta(minutes=10),
    )
    assert (pull.default_max_wait, pull.max_wait) == (timedelta(seconds=5), timedelta(seconds=30))
    assert pull.sse_keepalive == timedelta(seconds=15)
    assert pull.sse_max_connection == timedelta(hours=1)
    assert config.admin_api.prefix == ""
    assert config.admin_api.tokens == (
        SecretRef("raw", "dev-admin", config.admin_api.tokens[0].location),
    )
    assert config.routes[0].pull.path == "/hooks"
    assert config.routes[0].pull.tokens == ()


def test_auth_options_have_the_shapes_plugins_expect():
    config = compile_text(
        """
        secrets {
          secret "gh-2026" { value env:GH_2026; valid_from "2026-01-01T00:00:00Z" }
        }
        /canonical {
          auth hmac env:IN_SECRET { tolerance 2m; nonce_header X-Request-Nonce }
          deliver "https://a.example/x" {}
        }
        /github {
          auth hmac { provider GitHub; secret env:GH_OLD; secret_ref gh-2026 }
          deliver "https://a.example/x" {}
        }
        /basic {
          auth basic alice "pa ss"
          auth basic bob builder
          deliver "https://a.example/x" {}
        }
        /forward {
          auth forward "https://auth.example/check" { copy_headers X-User X-Team }
          deliver "https://a.example/x" {}
        }
        """
    )

    canonical, github, basic, forward = (route.auth for route in config.routes)
    assert canonical.name == "hmac"
    assert [str(ref) for ref in canonical.options["secrets"]] == ["env:IN_SECRET"]
    assert canonical.options == {
        "secrets": canonical.options["secrets"],
        "secret_refs": [],
        "provider": None,
        "signature_header": "X-Signature",
        "timestamp_header": "X-Timestamp",
        "nonce_header": "X-Request-Nonce",
        "tolerance": timedelta(minutes=2),
    }
    assert github.options["provider"] == "github"
    assert github.options["secret_refs"] == ["gh-2026"]
    assert [str(ref) for ref in github.options["secrets"]] == ["env:GH_OLD"]
    assert github.options["tolerance"] == timedelta(minutes=5)
    assert basic.options == {"users": [["alice", "pa ss"], ["bob", "builder"]]}
    assert forward.options == {
        "url": "https://auth.example/check",
        "timeout": timedelta(seconds=2),
        "copy_headers": ["X-User", "X-Team"],
        "body_limit": None,
    }
    assert config.secrets == (
        SecretVersion(
            "gh-2026",
            config.secrets[0].value,
            datetime(2026, 1, 1, tzinfo=UTC),
            None,
        ),
    )
    assert str(config.secrets[0].value) == "env:GH_2026"


def test_deliver_targets_carry_signing_headers_and_exec_environment():
    config = compile_text(
        """
        secrets {
          secret "out-1" { value env:OUT_1; valid_from "2026-01-01T00:00:00Z" }
          secret "out-2" { value env:OUT_2; valid_from "2026-03-01T00:00:00Z" }
        }
        /a {
          deliver "https://a.example/x" {
            header X-Source edge
            sign hmac secret_ref out-1 out-2
            sign signature_header X-Sig
            sign secret_selection oldest_valid
          }
          deliver exec "/usr/local/bin/handle --fast" {
            env MODE fast
            env REGION eu
          }
          deliver_concurrency 3
        }
        """
    )

    http, command = config.routes[0].targets
    assert http.headers == (("X-Source", "edge"),)
    assert http.sign == SignConfig(
        name="hmac",
        secrets=(),
        secret_refs=("out-1", "out-2"),
        signature_header="X-Sig",
        timestamp_header="X-Hookaido-Timestamp",
        secret_selection="oldest_valid",
    )
    assert command.kind == "exec"
    assert command.target == "/usr/local/bin/handle --fast"
    assert command.env == (("MODE", "fast"), ("REGION", "eu"))
    assert config.routes[0].deliver_concurrency == 3


def test_named_and_inline_matchers_are_concatenated_per_kind():
    config = compile_text(
        """
        @github { header X-GitHub-Event push; remote_ip 192.30.252.7/22 }
        @json { header Content-Type application/json }
        /hooks {
          match @github @json
          match { method post put; host *.example.com; query_exists token }
          deliver "https://a.example/x" {}
        }
        """
    )

    assert config.routes[0].matcher == Matcher(
        methods=("POST", "PUT"),
        hosts=("*.example.com",),
        headers=(("X-GitHub-Event", "push"), ("Content-Type", "application/json")),
        query_exists=("token",),
        remote_ips=("192.30.252.0/22",),
    )


def test_channels_labels_publish_and_queue_backend():
    config = compile_text(
        """
        pull_api { auth token env:PULL }
        outbound {
          /notify/slack {
            application chat
            endpoint_name slack
            publish.direct off
            queue MEMORY
            deliver "https://hooks.example/slack" {}
          }
        }
        internal /jobs/report {
          publish { managed off }
          pull { path /jobs/report }
        }
        /in { publish off; deliver "https://a.example/x" {} }
        """
    )

    slack, report, inbound = config.routes
    assert (slack.channel, report.channel, inbound.channel) == ("outbound", "internal", "inbound")
    assert (slack.application, slack.endpoint_name) == ("chat", "slack")
    assert slack.publish == PublishSettings(enabled=True, direct=False, managed=True)
    assert report.publish == PublishSettings(enabled=True, direct=True, managed=False)
    assert inbound.publish.enabled is False
    assert config.backend == "memory"
    assert {route.backend for route in config.routes} == {"memory"}


def test_global_settings_blocks_compile():
    config = compile_text(
        """
        observability {
          access_log { enabled on; output file; path /var/log/hookaido/access.log; format json }
          runtime_log warning
          metrics { listen 127.0.0.1:9901; prefix /prom/ }
        }
        queue_retention { max_age 3d; prune_interval 1m }
        delivered_retention { max_age 1h }
        dlq_retention { max_age off; max_depth off }
        attempts_retention { max_rows 500 }
        queue_limits { max_depth 0; drop_policy DROP_OLDEST }
        defaults {
          egress { allow api.example.com 10.1.2.3/16; deny "*.internal"; https_only off }
          publish_policy { require_actor on; actor_allow ops ops; actor_prefix svc- }
          trend_signals { window 30m; recent_surge_percent 80 }
          adaptive_backpressure { enabled on; min_total 50; ready_lag 10s }
        }
        /a { deliver "https://a.example/x" {} }
        """
    )

    observability = config.observability
    assert observability.access_log == LogConfig(
        enabled=True, output="file", path="/var/log/hookaido/access.log"
    )
    assert observability.runtime_log == LogConfig(enabled=True, level="warn")
    assert observability.runtime_log_configured
    assert observability.metrics == MetricsConfig(True, "127.0.0.1:9901", "/prom")
    assert config.retention == Retention(
        queue_max_age=timedelta(days=3),
        prune_interval=timedelta(minutes=1),
        delivered_max_age=timedelta(hours=1),
        dlq_max_age=None,
        dlq_max_depth=None,
        attempts_max_age=timedelta(days=7),
        attempts_max_rows=500,
    )
    assert config.queue_limits == QueueLimits(0, "drop_oldest")
    assert config.defaults.egress == EgressPolicy(
        allow=("api.example.com", "10.1.0.0/16"), deny=("*.internal",), https_only=False
    )
    assert config.defaults.publish_policy == PublishPolicy(
        require_actor=True, actor_allow=("ops",), actor_prefix=("svc-",)
    )
    assert config.defaults.trend_signals == TrendSignals(
        window=timedelta(minutes=30), recent_surge_percent=80
    )
    assert config.defaults.adaptive_backpressure == AdaptiveBackpressure(
        enabled=True, min_total=50, ready_lag=timedelta(seconds=10)
    )


def test_runtime_log_off_disables_the_runtime_log():
    config = compile_text(
        """
        observability { runtime_log off; access_log off }
        /a { deliver "https://a.example/x" {} }
        """
    )

    assert config.observability.runtime_log.enabled is False
    assert config.observability.access_log.enabled is False


def test_prune_interval_may_be_off_when_every_retention_rule_is_off():
    config = compile_text(
        """
        queue_retention { max_age off; prune_interval off }
        dlq_retention { max_age 0; max_depth 0 }
        attempts_retention { max_age off; max_rows off }
        /a { deliver "https://a.example/x" {} }
        """
    )

    assert config.retention.prune_interval is None
    assert config.retention.dlq_max_depth is None


def test_shared_listener_with_distinct_prefixes_compiles():
    config = compile_text(
        """
        ingress { listen 127.0.0.1:8080 }
        pull_api { listen 127.0.0.1:8080; prefix /pull; auth token env:P }
        admin_api { listen 127.0.0.1:8080; prefix /admin; auth token env:A }
        /webhooks/github { pull { path /github } }
        """
    )

    assert {config.ingress.listen, config.pull_api.listen, config.admin_api.listen} == {
        "127.0.0.1:8080"
    }
    assert (config.pull_api.prefix, config.admin_api.prefix) == ("/pull", "/admin")


def test_plugin_deliverers_and_signers_get_their_options_as_plain_data():
    registry = make_registry()
    info = PluginInfo("kafka", "1.0", "hookaido-kafka")
    deliverer_schema = {
        "type": "object",
        "properties": {
            "args": {"type": "string"},
            "brokers": {"type": "array"},
            "acks": {"type": "string"},
        },
    }
    signer_schema = {
        "type": "object",
        "properties": {"args": {"type": "string"}, "key_id": {"type": "string"}},
    }
    registry.add(info, "deliverer", "kafka", object, deliverer_schema)
    registry.add(info, "signer", "ed25519", object, signer_schema)
    text = """
    /a {
      deliver kafka orders {
        brokers k1:9092 k2:9092
        acks all
      }
      deliver "https://a.example/x" {
        sign ed25519 env:SIGNING_KEY { key_id main }
      }
    }
    """

    config = compile_text(text, registry)

    kafka, http = config.routes[0].targets
    assert (kafka.kind, kafka.target) == ("kafka", "orders")
    assert kafka.options == {"brokers": ["k1:9092", "k2:9092"], "acks": "all"}
    assert kafka.timeout == timedelta(seconds=10)
    assert http.sign.name == "ed25519"
    assert [str(ref) for ref in http.sign.secrets] == ["env:SIGNING_KEY"]
    assert http.sign.options == {"key_id": "main", "args": ["env:SIGNING_KEY"]}


def test_a_lease_ttl_cap_below_the_default_ttl_is_fine_until_the_default_is_written():
    config = compile_text(
        """
        pull_api { max_lease_ttl 10s; auth token env:T }
        /a { pull { path /a } }
        """
    )

    assert config.pull_api.max_lease_ttl == timedelta(seconds=10)
    assert config.pull_api.default_lease_ttl == timedelta(seconds=30)
