"""Loading a Hookaidofile end to end (read, parse, placeholders, lint, compile), the config
examples of the documentation, and which changes a hot reload must refuse."""

from datetime import timedelta
from textwrap import dedent

import pytest

from hookaido.config.compile import compile_document
from hookaido.config.loader import load_config, restart_required_changes
from hookaido.config.parser import parse_file, parse_text
from hookaido.config.placeholders import resolve_document
from hookaido.errors import ConfigError
from hookaido.plugins import PluginInfo

from .conftest import make_registry


@pytest.fixture
def write(tmp_path):
    def write_config(text: str, name: str = "Hookaidofile"):
        path = tmp_path / name
        path.write_text(dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write_config


def load(path, environ=None, registry=None):
    return load_config(path, environ=environ or {}, registry=registry or make_registry())


# -- the load pipeline -------------------------------------------------------------------


def test_a_missing_file_is_an_error_naming_the_file(tmp_path):
    missing = tmp_path / "nowhere" / "Hookaidofile"

    with pytest.raises(ConfigError) as caught:
        load(missing)

    assert str(missing) in caught.value.problems[0]


def test_a_syntax_error_stops_before_compiling(write):
    path = write('/a { deliver "https://a.example/x" {}\n')

    with pytest.raises(ConfigError) as caught:
        load(path)

    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(f"{path}:")


def test_placeholders_are_resolved_from_the_given_environment(write):
    path = write(
        """
        vars { CI https://ci.example }
        ingress { listen {env.EDGE_LISTEN} }
        /hooks {
          deliver "{vars.CI}/build" {
            header X-Team "{$TEAM:platform}"
            header X-Region {env.REGION}
          }
        }
        """
    )

    config = load(path, environ={"EDGE_LISTEN": "127.0.0.1:18080"})

    assert config.ingress.listen == "127.0.0.1:18080"
    target = config.routes[0].targets[0]
    assert target.target == "https://ci.example/build"
    assert target.headers == (("X-Team", "platform"), ("X-Region", ""))
    assert any(f"{path}:6:" in warning and "REGION" in warning for warning in config.warnings)
    assert 'admin_api.listen not set; using default "127.0.0.1:2019"' in config.warnings


def test_a_route_with_an_inline_match_block_loads(write):
    path = write(SPEC_EXAMPLES["config-route-example"])

    config = load(path)

    assert config.routes[0].matcher.methods == ("POST",)
    assert config.routes[0].matcher.header_exists == ("X-Order-Id",)


def test_the_process_environment_is_used_by_default(write, monkeypatch):
    monkeypatch.setenv("HOOKAIDO_TEST_TARGET", "https://env.example/hook")
    path = write('/a { deliver "{env.HOOKAIDO_TEST_TARGET}" {} }')

    config = load_config(path, registry=make_registry())

    assert config.routes[0].targets[0].target == "https://env.example/hook"


def test_compile_errors_come_with_file_line_and_column_in_file_order(write):
    path = write(
        """
        /b { deliver "https://b.example/x" { timeout 0 } }
        /a { pull { path /a } }
        """
    )

    with pytest.raises(ConfigError) as caught:
        load(path)

    assert caught.value.problems == [
        f'{path}:1:46: route "/b": deliver "https://b.example/x".timeout: invalid duration'
        ' "0": must be a positive duration',
        f'{path}:2:1: route "/a" uses pull but there is no pull_api block',
        f'{path}:2:1: route "/a": pull needs auth token (pull_api has no auth token)',
    ]


def test_schema_and_compile_problems_are_reported_together(write):
    registry = make_registry()
    schema = {
        "type": "object",
        "properties": {"header": {"type": "string"}, "ttl": {"type": "string"}},
        "required": ["header"],
    }
    registry.add(PluginInfo("apikey", "1.0", "hookaido-apikey"), "auth", "apikey", object, schema)
    path = write(
        """
        /a {
          auth apikey { ttl 5m }
          deliver "https://a.example/x" {}
        }
        /a { deliver "https://b.example/x" {} }
        """
    )

    with pytest.raises(ConfigError) as caught:
        load(path, registry=registry)

    problems = caught.value.problems
    assert any(problem.startswith(f"{path}:2:") and "header" in problem for problem in problems)
    assert f'{path}:5:1: duplicate route path "/a"' in problems


# -- every config example of the documentation compiles ----------------------------------

SPEC_EXAMPLES = {
    "config-route-example": """
        /webhooks/orders {
          match { method POST; header_exists X-Order-Id }
          auth hmac env:ORDERS_IN_SECRET
          deliver "https://orders.internal/hook" {
            retry exponential max 5 base 1s cap 1m jitter 0.1
            timeout 5s
            header "X-Source" "edge"
            sign hmac env:ORDERS_OUT_SECRET
          }
        }
        """,
    "config-secrets-example": """
        secrets {
          secret "hmac-v1" {
            value env:HMAC_V1
            valid_from "2026-01-01T00:00:00Z"
            valid_until "2026-07-01T00:00:00Z"   # optional, exclusive
          }
        }
        /webhooks/a { auth hmac secret_ref hmac-v1; deliver "https://a.internal/x" {} }
        """,
    "config-semicolons": """
        /webhooks/github {
          auth hmac { provider github; secret env:X }
          deliver "https://ci.internal/build" {}
        }
        """,
    "pull-mode": """
        pull_api {
          auth token env:HOOKAIDO_PULL_TOKEN
        }

        /webhooks/github {
          auth hmac env:HOOKAIDO_INGRESS_SECRET
          pull { path /pull/github }
        }
        """,
    "push-mode": """
        /webhooks/github {
          deliver "https://ci.internal/build" {
            retry exponential max 8 base 2s cap 2m jitter 0.2
            timeout 10s
          }
        }
        """,
    "hybrid": """
        pull_api {
          auth token env:HOOKAIDO_PULL_TOKEN
        }

        # Pull mode: workers consume at their own pace
        /webhooks/github {
          pull { path /pull/github }
        }

        # Push mode: deliver immediately with retry
        /webhooks/stripe {
          deliver "https://billing.internal/stripe" {
            timeout 10s
          }
        }
        """,
    "outbound-channel": """
        outbound /notifications/slack {
          deliver "https://hooks.slack.com/services/..." {
            timeout 5s
            sign hmac env:SLACK_SIGNING_SECRET
          }
        }
        """,
    # The rules need a pull_api block with a token once pull routes exist.
    "internal-job-queues": """
        pull_api { auth token env:HOOKAIDO_PULL_TOKEN }
        internal {
          /jobs/nightly-report {
            pull { path /pull/nightly }
          }
          /jobs/cleanup {
            pull { path /pull/cleanup }
          }
        }
        """,
    # A config needs at least one route; a pull route makes pull_api co-listen.
    "shared-listener": """
        pull_api {
          listen :9443
          prefix /pull
          auth token env:HOOKAIDO_PULL_TOKEN
        }

        admin_api {
          listen :9443
          prefix /admin
          auth token env:HOOKAIDO_ADMIN_TOKEN
        }
        /webhooks/github { pull { path /github } }
        """,
    "queue-backend": """
        pull_api { auth token env:HOOKAIDO_PULL_TOKEN }
        # Per-route (runtime uses one backend process-wide)
        /webhooks/github {
          queue { backend sqlite }
          pull { path /pull/github }
        }
        """,
    "config-validate-warning": """
        ingress { rate_limit { rps 10 } }
        /webhooks/a { deliver "https://a.internal/x" {} }
        """,
}


def compile_file(path, environ=None):
    """Parse, resolve placeholders and compile (the schema lint is tested on its own)."""
    registry = make_registry()
    document, _ = resolve_document(parse_file(path, registry), environ or {})
    return compile_document(document, registry)


@pytest.mark.parametrize("name", list(SPEC_EXAMPLES))
def test_documented_config_example_compiles(write, name):
    path = write(SPEC_EXAMPLES[name])

    config = compile_file(path, environ={"HOOKAIDO_PULL_TOKEN": "t0ken"})

    assert config.routes


def completed(text: str) -> str:
    """An example plus what the rules need around it: a route, a pull_api block."""
    items = parse_text(text, "example").items
    routes = [item for item in items if item.name == "route"]
    pulls = any(any(entry.name == "pull" for entry in route.block or []) for route in routes)
    prelude = ""
    if not routes:
        prelude += '/example-route { deliver "https://example.com/hook" {} }\n'
    if pulls and not any(item.name == "pull_api" for item in items):
        prelude += "pull_api { auth token env:HOOKAIDO_PULL_TOKEN }\n"
    return prelude + text


def test_every_example_of_the_documentation_compiles(spec_example, write):
    path = write(completed(spec_example))

    config = compile_file(path)

    assert config.routes


def test_the_shared_listener_example_shares_one_socket_between_pull_and_admin(write):
    path = write(SPEC_EXAMPLES["shared-listener"])

    config = load(path)

    assert config.pull_api.listen == config.admin_api.listen == ":9443"
    assert (config.pull_api.prefix, config.admin_api.prefix) == ("/pull", "/admin")


def test_the_validate_example_warns_about_the_defaulted_ingress_listen(write):
    path = write(SPEC_EXAMPLES["config-validate-warning"])

    config = load(path)

    assert f'{path}:1:1: ingress.listen not set; using default ":8080"' in config.warnings
    assert config.ingress.rate_limit.burst == 10


# -- hot reload ----------------------------------------------------------------------------

BASE = """
    ingress { listen 127.0.0.1:18080 }
    pull_api { listen 127.0.0.1:19443; auth token env:PULL }
    /a { pull { path /a } }
    /b { deliver "https://b.example/x" { timeout 5s } }
"""


def test_route_auth_and_delivery_changes_reload_live(write):
    old = load(write(BASE, "old"))
    new = load(
        write(
            """
            ingress { listen 127.0.0.1:18080; rate_limit { rps 5 } }
            pull_api { listen 127.0.0.1:19443; auth token env:PULL; auth token env:PULL2 }
            /c { auth basic ops secret; deliver "https://c.example/x" {} }
            /a { pull { path /a-renamed } }
            /b { deliver "https://b.example/x" { timeout 9s; header X-A b } }
            """,
            "new",
        )
    )

    assert restart_required_changes(old, new) == []


def test_listener_pull_limit_and_backend_changes_need_a_restart(write):
    old = load(write(BASE, "old"))
    new = load(
        write(
            """
            ingress { listen 127.0.0.1:18081 }
            pull_api { listen 127.0.0.1:19443; auth token env:PULL; max_batch 10 }
            queue_limits { max_depth 5 }
            /a { queue memory; pull { path /a } }
            /b { deliver "https://b.example/x" { timeout 5s } }
            """,
            "new",
        )
    )

    assert restart_required_changes(old, new) == [
        "ingress.listen",
        "pull_api.max_batch",
        "queue backend",
        "queue_limits",
    ]


def test_going_from_some_to_no_pull_routes_needs_a_restart(write):
    old = load(write(BASE, "old"))
    new = load(
        write(
            """
            ingress { listen 127.0.0.1:18080 }
            /b { deliver "https://b.example/x" { timeout 5s } }
            """,
            "new",
        )
    )

    changes = restart_required_changes(old, new)

    assert "pull routes (none vs some)" in changes
    assert "deliver routes (none vs some)" not in changes


def test_retention_observability_and_defaults_changes_need_a_restart(write):
    old = load(write(BASE, "old"))
    new = load(
        write(
            BASE
            + """
            dlq_retention { max_age 1d }
            observability { access_log off }
            defaults { max_body 1mb; publish_policy { direct off } }
            """,
            "new",
        )
    )

    assert restart_required_changes(old, new) == [
        "defaults.max_body",
        "defaults.publish_policy",
        "retention",
        "observability",
    ]
    assert new.retention.dlq_max_age == timedelta(days=1)
