"""Plain data, the core schema, plugin fragments merged into it, and located lint messages."""

import jsonschema

from hookaido.config.parser import parse_text
from hookaido.config.schema import core_schema, document_to_data, lint, merged_schema
from hookaido.plugins import PluginInfo, Registry

APIKEY_SCHEMA = {
    "type": "object",
    "properties": {
        "header": {"type": "string", "minLength": 1},
        "keys": {"type": "array", "items": {"type": "string"}},
        "max_age": {"type": "integer", "minimum": 1},
        "strict": {"type": "boolean"},
        "cache": {"type": "object", "properties": {"size": {"type": "integer"}}},
    },
    "required": ["header"],
    "additionalProperties": False,
}


EVERY_DIRECTIVE = """\
ingress {
  listen 127.0.0.1:18080
  tls { cert_file /c.pem; key_file /k.pem; client_ca /ca.pem; client_auth require }
  rate_limit { rps 5; burst 10 }
}
pull_api {
  listen 127.0.0.1:19443
  prefix /pull
  auth token env:PULL_A
  auth token env:PULL_B
  max_batch 50
  max_lease_batch 50
  default_lease_ttl 30s
  max_lease_ttl 5m
  default_max_wait 0
  max_wait 30s
  sse_keepalive 15s
  sse_max_connection off
  grpc_listen 127.0.0.1:19090
}
admin_api { listen 127.0.0.1:12019; prefix /admin; auth token env:ADMIN }
observability {
  access_log { enabled on; output file; path /tmp/a.log; format json }
  runtime_log { level info; output stderr; format json }
  metrics { enabled on; listen 127.0.0.1:19900; prefix /metrics }
  tracing { enabled off; collector "http://127.0.0.1:4318"; url_path /v1/traces; timeout 5s
    compression gzip; insecure off; proxy_url "http://127.0.0.1:3128"
    tls { ca_file /ca.pem } retry { enabled on; initial_interval 1s } header X-A b }
}
queue_retention { max_age 7d; prune_interval 5m }
delivered_retention { max_age off }
dlq_retention { max_age 30d; max_depth 10000 }
attempts_retention { max_age 7d; max_rows 200000 }
queue_limits { max_depth 10000; drop_policy reject }
defaults {
  max_body 2mb
  max_headers 64kb
  deliver { retry exponential max 8 base 2s cap 2m jitter 0.2; timeout 10s; concurrency 20 }
  egress { allow "*.example.com" 10.0.0.0/8
    deny 10.1.0.0/16
    https_only on
    redirects off
    dns_rebind_protection on }
  publish_policy { direct on; managed on; allow_pull_routes on; allow_deliver_routes on
    require_actor off; require_request_id off; fail_closed off; actor_allow ops; actor_prefix svc- }
  trend_signals { window 15m; expected_capture_interval 1m; stale_grace_factor 3 }
  adaptive_backpressure { enabled off; min_total 200; queued_percent 80; ready_lag 30s
    oldest_queued_age 60s; sustained_growth on }
}
vars { BASE /webhooks }
secrets {
  secret "v1" { value env:V1
    valid_from "2026-01-01T00:00:00Z"
    valid_until "2027-01-01T00:00:00Z" }
}
@gh { method POST
  host "*.github.com"
  header X-A b
  header_exists X-GitHub-Event
  query a b
  query_exists c
  remote_ip 10.0.0.0/8 }
{vars.BASE}/github {
  application shop
  endpoint_name github
  match @gh
  match { method POST }
  rate_limit { rps 1 }
  auth hmac secret_ref v1 { signature_header X-Sig
    timestamp_header X-Ts
    nonce_header X-N
    tolerance 5m }
  max_body 1mb
  max_headers 32kb
  publish { enabled on; direct on; managed on }
  queue { backend sqlite }
  pull { path /github; auth token env:R }
}
/webhooks/basic { auth basic user "{env.PASS}"
  auth basic u2 p2
  publish.direct off
  publish.managed on
  pull { path /basic } }
/webhooks/fwd { auth forward "https://auth.example/check" { timeout 2s
  copy_headers X-User
  body_limit 1kb } queue sqlite
  pull { path /fwd } }
/webhooks/stripe {
  auth hmac { provider stripe; secret env:S1 env:S2; secret_ref v1 }
  deliver_concurrency 5
  deliver "https://billing.example/hook" {
    retry exponential max 3
    timeout 5s
    header X-Source edge
    sign hmac secret_ref v1
    sign signature_header X-Sig
    sign timestamp_header X-Ts
    sign secret_selection newest_valid
  }
  deliver exec "/usr/bin/handle --fast" { env MODE fast; timeout 3s }
}
outbound /out { deliver "https://o.example" { sign hmac env:O } }
internal { /jobs/a { pull { path /a } } /jobs/b { publish off; pull { path /b } } }
"""


def apikey_registry() -> Registry:
    registry = Registry()
    info = PluginInfo("apikey", "1.0", "hookaido-apikey")
    registry.plugins[info.name] = info
    registry.add(info, "auth", "apikey", object, APIKEY_SCHEMA)
    return registry


def parse(text, registry=None):
    return parse_text(text, "Hookaidofile", registry=registry)


def test_the_core_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(core_schema())
    jsonschema.Draft202012Validator.check_schema(merged_schema(apikey_registry()))


def test_a_document_becomes_plain_data_with_places():
    doc = parse(
        "pull_api { listen :9443\n auth token env:T }\n@gh { method POST header X-A 1 }\n"
        'outbound /o { deliver "https://x" { timeout 5s\n header A b sign hmac env:S } }\n'
        "/p { match @gh pull { path /p } }"
    )

    data, places = document_to_data(doc)

    assert data == {
        "pull_api": {
            "listen": ":9443",
            "auth": [{"type": "token", "options": {"args": ["env:T"]}}],
        },
        "matchers": [{"name": "gh", "method": ["POST"], "header": [["X-A", "1"]]}],
        "routes": [
            {
                "path": "/o",
                "channel": "outbound",
                "deliver": [
                    {
                        "target": "https://x",
                        "args": [],
                        "options": {
                            "timeout": "5s",
                            "header": [["A", "b"]],
                            "sign": [{"type": "hmac", "options": {"args": ["env:S"]}}],
                        },
                    }
                ],
            },
            {"path": "/p", "match_refs": ["@gh"], "pull": {"path": "/p"}},
        ],
    }
    assert str(places[("pull_api", "auth", 0)][0]) == "Hookaidofile:2:2"
    assert str(places[("routes", 0, "deliver", 0, "options", "timeout")][0]) == (
        "Hookaidofile:4:37"
    )


def test_the_data_of_every_parsable_config_fits_the_core_schema():
    doc = parse(
        "ingress { listen :1 tls { cert_file a key_file b } rate_limit { rps 1 } }\n"
        "observability { access_log { enabled on output file path /x } metrics on }\n"
        "defaults { egress { allow a b deny c } deliver { retry exponential max 2 } }\n"
        'secrets { secret "v1" { value env:A valid_from 2026-01-01T00:00:00Z } }\n'
        "vars { A 1 }\n"
        "/a { publish { direct off } queue memory auth basic u p auth basic v q\n"
        ' deliver exec "run" { env A b env C d } }'
    )

    assert lint(doc, Registry()) == []


def test_plugin_option_blocks_take_their_arity_from_the_fragment():
    doc = parse(
        "/a {\n auth apikey { header X-Key keys k1 k2 max_age 5 cache { size 10 } }\n"
        " pull { path /a } }",
        apikey_registry(),
    )

    data, _ = document_to_data(doc, apikey_registry())

    assert data["routes"][0]["auth"] == [
        {
            "type": "apikey",
            "options": {
                "header": "X-Key",
                "keys": ["k1", "k2"],
                "max_age": "5",
                "cache": {"size": "10"},
            },
        }
    ]
    assert lint(doc, apikey_registry()) == []


def test_a_missing_required_plugin_option_is_located_at_the_directive():
    doc = parse("/a {\n  auth apikey { strict on }\n  pull { path /a } }", apikey_registry())

    assert lint(doc, apikey_registry()) == [
        'Hookaidofile:2:3: auth apikey: missing required option "header"'
    ]


def test_plugin_option_values_are_checked_against_their_declared_types():
    doc = parse(
        "/a { auth apikey { header X\n  max_age soon strict maybe } pull { path /a } }",
        apikey_registry(),
    )

    assert lint(doc, apikey_registry()) == [
        'Hookaidofile:2:3: auth apikey max_age: expected an integer, found "soon"',
        'Hookaidofile:2:16: auth apikey strict: expected a boolean, found "maybe"',
    ]


def test_fragments_of_installed_plugins_are_enforced(monkeypatch):
    doc = parse("/a {\n auth hmac env:X { provider gitlab }\n pull { path /a } }\n")

    from hookaido.plugins import registry

    problems = lint(doc, registry())

    assert len(problems) == 1
    assert problems[0].startswith('Hookaidofile:2:20: auth hmac provider: "gitlab" is not allowed')


def test_merged_schema_contains_each_fragment():
    schema = merged_schema(apikey_registry())

    rules = schema["properties"]["routes"]["items"]["properties"]["auth"]["items"]["allOf"]
    assert {
        "if": {"properties": {"type": {"const": "apikey"}}, "required": ["type"]},
        "then": {"properties": {"options": APIKEY_SCHEMA}},
    } in rules


def test_every_directive_of_the_language_fits_the_schema_with_installed_plugins():
    from hookaido.config.fmt import format_document
    from hookaido.plugins import registry

    doc = parse(EVERY_DIRECTIVE)
    canonical = format_document(doc)

    assert lint(doc, registry()) == []
    assert lint(parse(canonical), registry()) == []
    assert format_document(parse(canonical)) == canonical
