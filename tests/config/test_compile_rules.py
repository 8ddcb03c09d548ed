"""Every compile-time rejection: the config that breaks a rule, the message and its line:col.

Each case is a small Hookaidofile; the expected problem is ``Hookaidofile:<line>:<col>: <msg>``.
"""

import pytest

from hookaido.config.compile import compile_document
from hookaido.config.parser import parse_text
from hookaido.errors import ConfigError
from hookaido.plugins import PluginInfo, Registry

from .conftest import compile_text, make_registry


def problems_of(text: str, registry: Registry | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        compile_text(text, registry)
    return caught.value.problems


OK = '/ok { deliver "https://ok.example/hook" {} }'
PULL_API = "pull_api { auth token env:PULL_TOKEN }"

CASES = [
    # -- routes and channels ------------------------------------------------------------
    pytest.param(
        """
        /webhooks/a { deliver "https://a.example/x" {} }
        /webhooks/a { deliver "https://b.example/x" {} }
        """,
        "2:1",
        'duplicate route path "/webhooks/a"',
        id="duplicate-route-path",
    ),
    pytest.param(
        """
        /webhooks/a/ { deliver "https://a.example/x" {} }
        "/webhooks//a" { deliver "https://b.example/x" {} }
        """,
        "2:1",
        'duplicate route path "/webhooks/a"',
        id="duplicate-route-path-after-cleaning",
    ),
    pytest.param(
        """
        "webhooks" { deliver "https://a.example/x" {} }
        """,
        "1:1",
        'route path "webhooks" must start with /',
        id="route-path-without-slash",
    ),
    pytest.param(
        """
        /hooks { deliver "https://a.example/x" {} }
        /hooks/github { deliver "https://b.example/x" {} }
        """,
        "2:1",
        'route "/hooks/github" is shadowed by route "/hooks" (line 1),'
        " which has no match constraints",
        id="shadowed-route",
    ),
    pytest.param(
        """
        / { deliver "https://a.example/x" {} }
        outbound /jobs { deliver "https://b.example/x" {} }
        """,
        "2:10",
        'route "/jobs" is shadowed by route "/" (line 1), which has no match constraints',
        id="slash-route-shadows-every-later-route",
    ),
    pytest.param(
        """
        outbound /notify { }
        """,
        "1:10",
        'outbound route "/notify": deliver is required',
        id="outbound-deliver-required",
    ),
    pytest.param(
        f"""
        {PULL_API}
        outbound /notify {{
          pull {{ path /notify }}
          deliver "https://a.example/x" {{}}
        }}
        """,
        "3:3",
        'outbound route "/notify": pull is forbidden',
        id="outbound-pull-forbidden",
    ),
    pytest.param(
        """
        outbound /notify {
          match { method PUT }
          deliver "https://a.example/x" {}
        }
        """,
        "2:3",
        'outbound route "/notify": match is forbidden',
        id="outbound-match-forbidden",
    ),
    pytest.param(
        """
        @gh { header_exists X-GitHub-Event }
        outbound /notify {
          match @gh
          deliver "https://a.example/x" {}
        }
        """,
        "3:3",
        'outbound route "/notify": match is forbidden',
        id="outbound-named-match-forbidden",
    ),
    pytest.param(
        """
        outbound /notify {
          auth basic alice wonderland
          deliver "https://a.example/x" {}
        }
        """,
        "2:3",
        'outbound route "/notify": auth is forbidden',
        id="outbound-auth-forbidden",
    ),
    pytest.param(
        """
        outbound /notify {
          rate_limit { rps 5 }
          deliver "https://a.example/x" {}
        }
        """,
        "2:3",
        'outbound route "/notify": rate_limit is forbidden',
        id="outbound-rate-limit-forbidden",
    ),
    pytest.param(
        f"""
        {PULL_API}
        internal {{
          /jobs/a {{ deliver "https://a.example/x" {{}} }}
        }}
        """,
        "3:3",
        'internal route "/jobs/a": pull is required',
        id="internal-pull-required",
    ),
    pytest.param(
        f"""
        {PULL_API}
        internal /jobs/a {{
          pull {{ path /jobs/a }}
          deliver "https://a.example/x" {{}}
        }}
        """,
        "4:3",
        'internal route "/jobs/a": deliver is forbidden',
        id="internal-deliver-forbidden",
    ),
    pytest.param(
        f"""
        {PULL_API}
        /p {{
          pull {{ path /p }}
          deliver "https://a.example/x" {{}}
        }}
        """,
        "2:1",
        'route "/p": pull and deliver are mutually exclusive',
        id="pull-and-deliver",
    ),
    pytest.param(
        """
        /p { max_body 1mb }
        """,
        "1:1",
        'route "/p": missing pull or deliver block',
        id="neither-pull-nor-deliver",
    ),
    # -- labels -------------------------------------------------------------------------
    pytest.param(
        """
        /p {
          application billing
          deliver "https://a.example/x" {}
        }
        """,
        "2:3",
        'route "/p": application and endpoint_name must be set together',
        id="label-without-its-pair",
    ),
    pytest.param(
        """
        /p {
          application "-billing"
          endpoint_name invoices
          deliver "https://a.example/x" {}
        }
        """,
        "2:15",
        'route "/p": invalid application "-billing" (expected ^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$)',
        id="invalid-label",
    ),
    pytest.param(
        """
        /a {
          application billing
          endpoint_name invoices
          deliver "https://a.example/x" {}
        }
        /b {
          application billing
          endpoint_name invoices
          deliver "https://a.example/x" {}
        }
        """,
        "7:3",
        'route "/b": application "billing" endpoint_name "invoices" is already used by route "/a"',
        id="duplicate-label-pair",
    ),
    # -- pull ---------------------------------------------------------------------------
    pytest.param(
        f"""
        {PULL_API}
        /a {{ pull {{ path /jobs }} }}
        /b {{ pull {{ path /jobs/ }} }}
        """,
        "3:18",
        'route "/b": duplicate pull path "/jobs" (also route "/a")',
        id="duplicate-pull-path",
    ),
    pytest.param(
        """
        pull_api {
          prefix /pull
          auth token env:PULL_TOKEN
        }
        /a { pull { path /pull/github } }
        """,
        "5:18",
        'route "/a": pull.path "/pull/github" starts with pull_api.prefix "/pull";'
        " give it relative to the prefix",
        id="pull-path-repeats-prefix",
    ),
    pytest.param(
        f"""
        {PULL_API}
        /a {{
          pull {{
            path /a
            auth token env:A
            auth token env:A
          }}
        }}
        """,
        "6:16",
        'route "/a".pull: duplicate auth token "env:A"',
        id="duplicate-pull-token",
    ),
    pytest.param(
        f"""
        {PULL_API}
        /a {{ pull {{ path /a; auth token secret123 }} }}
        """,
        "2:33",
        'route "/a".pull.auth token: invalid secret reference "secret123":'
        " expected env:NAME, file:/path, vault:path[#field] or raw:value",
        id="invalid-pull-token",
    ),
    # -- queue backends -----------------------------------------------------------------
    pytest.param(
        """
        /a { queue memory; deliver "https://a.example/x" {} }
        /b { queue { backend sqlite }; deliver "https://b.example/x" {} }
        """,
        "2:6",
        'mixed queue backends: route "/b" uses sqlite but route "/a" uses memory;'
        " all routes must use one backend",
        id="mixed-backends",
    ),
    pytest.param(
        """
        /a { queue postgres; deliver "https://a.example/x" {} }
        """,
        "1:12",
        'route "/a": queue backend "postgres" is not available',
        id="postgres-not-available",
    ),
    pytest.param(
        """
        /a { queue redis; deliver "https://a.example/x" {} }
        """,
        "1:12",
        'route "/a": queue redis: no installed plugin provides backend "redis"'
        " (installed: memory, sqlite)",
        id="unknown-backend",
    ),
    # -- deliver_concurrency ------------------------------------------------------------
    pytest.param(
        f"""
        {PULL_API}
        /a {{ deliver_concurrency 4; pull {{ path /a }} }}
        """,
        "2:6",
        'route "/a": deliver_concurrency requires a deliver target',
        id="concurrency-without-deliver",
    ),
    pytest.param(
        """
        /a { deliver_concurrency 0; deliver "https://a.example/x" {} }
        """,
        "1:26",
        'route "/a".deliver_concurrency: integer 0 out of range: expected 1 to 10000',
        id="concurrency-zero",
    ),
    pytest.param(
        """
        /a { deliver_concurrency 10001; deliver "https://a.example/x" {} }
        """,
        "1:26",
        'route "/a".deliver_concurrency: integer 10001 out of range: expected 1 to 10000',
        id="concurrency-too-high",
    ),
    # -- auth ---------------------------------------------------------------------------
    pytest.param(
        """
        /a {
          auth hmac { signature_header X-Sig }
          deliver "https://a.example/x" {}
        }
        """,
        "2:3",
        'route "/a": auth hmac needs at least one secret or secret_ref',
        id="hmac-without-secret",
    ),
    pytest.param(
        """
        /a {
          auth hmac { provider github }
          deliver "https://a.example/x" {}
        }
        """,
        "2:3",
        'route "/a": auth hmac needs at least one secret or secret_ref',
        id="hmac-provider-without-secret",
    ),
    pytest.param(
        """
        /a {
          auth hmac secret_ref hmac-v1
          deliver "https://a.example/x" {}
        }
        """,
        "2:24",
        'route "/a": auth hmac: secret_ref "hmac-v1" is not declared in secrets',
        id="hmac-undeclared-secret-ref",
    ),
    pytest.param(
        """
        secrets {
          secret "v1" { value env:V1; valid_from "2026-01-01T00:00:00Z" }
        }
        /a {
          auth hmac { secret_ref v1 v1 }
          deliver "https://a.example/x" {}
        }
        """,
        "5:29",
        'route "/a": auth hmac: duplicate secret_ref "v1"',
        id="hmac-duplicate-secret-ref",
    ),
    pytest.param(
        """
        /a {
          auth hmac plaintext
          deliver "https://a.example/x" {}
        }
        """,
        "2:13",
        'route "/a": auth hmac: invalid secret reference "plaintext":'
        " expected env:NAME, file:/path, vault:path[#field] or raw:value",
        id="hmac-invalid-direct-ref",
    ),
    pytest.param(
        """
        /a {
          auth hmac { secret env:S; provider bitbucket }
          deliver "https://a.example/x" {}
        }
        """,
        "2:38",
        'route "/a": auth hmac: unknown provider "bitbucket" (expected one of:'
        " github gitea stripe cituro shopify slack standard-webhooks)",
        id="hmac-unknown-provider",
    ),
    pytest.param(
        """
        /a {
          auth hmac env:S {
            provider github
            tolerance 1m
          }
          deliver "https://a.example/x" {}
        }
        """,
        "4:5",
        'route "/a": auth hmac: provider cannot be combined with tolerance',
        id="hmac-provider-with-tolerance",
    ),
    pytest.param(
        """
        /a {
          auth hmac env:S { signature_header x-timestamp }
          deliver "https://a.example/x" {}
        }
        """,
        "2:3",
        'route "/a": auth hmac: signature_header and timestamp_header must differ'
        ' (both "x-timestamp")',
        id="hmac-headers-not-distinct",
    ),
    pytest.param(
        """
        /a {
          auth hmac env:S { nonce_header "X Nonce" }
          deliver "https://a.example/x" {}
        }
        """,
        "2:34",
        'route "/a": auth hmac: nonce_header "X Nonce" is not a valid header',
        id="hmac-header-not-token",
    ),
    pytest.param(
        """
        /a {
          auth hmac env:S
          auth basic alice wonderland
          deliver "https://a.example/x" {}
        }
        """,
        "3:3",
        'route "/a": auth basic cannot be combined with auth hmac',
        id="basic-with-hmac",
    ),
    pytest.param(
        """
        /a {
          auth basic alice wonderland
          auth forward "https://auth.example/check"
          deliver "https://a.example/x" {}
        }
        """,
        "3:3",
        'route "/a": auth forward cannot be combined with auth basic',
        id="forward-with-basic",
    ),
    pytest.param(
        """
        /a {
          auth basic alice env:ALICE_PASSWORD
          deliver "https://a.example/x" {}
        }
        """,
        "2:20",
        'route "/a": auth basic password "env:ALICE_PASSWORD" is a secret reference;'
        " basic credentials are compared literally, use {env.NAME} instead",
        id="basic-secret-ref",
    ),
    pytest.param(
        """
        /a {
          auth basic "" wonderland
          deliver "https://a.example/x" {}
        }
        """,
        "2:14",
        'route "/a": auth basic user must not be empty',
        id="basic-empty-user",
    ),
    pytest.param(
        """
        /a {
          auth basic alice one
          auth basic alice two
          deliver "https://a.example/x" {}
        }
        """,
        "3:14",
        'route "/a": auth basic: duplicate user "alice"',
        id="basic-duplicate-user",
    ),
    pytest.param(
        """
        /a {
          auth forward "ftp://auth.example/check"
          deliver "https://a.example/x" {}
        }
        """,
        "2:16",
        'route "/a": auth forward: "ftp://auth.example/check" is not an http or https URL'
        " with a host",
        id="forward-url-not-http",
    ),
    pytest.param(
        """
        /a {
          auth forward "https://auth.example/check" { timeout 0 }
          deliver "https://a.example/x" {}
        }
        """,
        "2:55",
        'route "/a".auth forward.timeout: invalid duration "0": must be a positive duration',
        id="forward-bad-timeout",
    ),
    pytest.param(
        """
        /a {
          auth forward "https://auth.example/check" { body_limit lots }
          deliver "https://a.example/x" {}
        }
        """,
        "2:58",
        'route "/a".auth forward.body_limit: invalid size "lots": expected a number of bytes'
        " optionally followed by b, kb, mb or gb (e.g. 2mb, 64kb)",
        id="forward-bad-body-limit",
    ),
    pytest.param(
        """
        /a {
          auth forward "https://auth.example/check" { copy_headers X-User "X Team" }
          deliver "https://a.example/x" {}
        }
        """,
        "2:67",
        'route "/a": auth forward: copy_headers "X Team" is not a token',
        id="forward-copy-header-not-token",
    ),
    pytest.param(
        """
        /a {
          auth hmac env:S
          auth forward "https://auth.example/check"
          deliver "https://a.example/x" {}
        }
        """,
        "3:3",
        'route "/a": auth forward cannot be combined with auth hmac',
        id="forward-with-hmac",
    ),
    pytest.param(
        """
        /a {
          auth hmac env:S
          auth hmac env:T
          deliver "https://a.example/x" {}
        }
        """,
        "3:3",
        'route "/a": duplicate auth hmac',
        id="hmac-twice",
    ),
    pytest.param(
        """
        /a {
          auth hmac env:S { provider stripe; signature_header X-Sig }
          deliver "https://a.example/x" {}
        }
        """,
        "2:38",
        'route "/a": auth hmac: provider cannot be combined with signature_header',
        id="hmac-provider-with-signature-header",
    ),
    # -- deliver ------------------------------------------------------------------------
    pytest.param(
        """
        /a { deliver "https://" {} }
        """,
        "1:14",
        'route "/a": deliver target "https://" is not an http or https URL with a host',
        id="deliver-url-without-host",
    ),
    pytest.param(
        """
        /a { deliver "orders.internal/hook" {} }
        """,
        "1:14",
        'route "/a": deliver target "orders.internal/hook" is not an http or https URL',
        id="deliver-not-a-url",
    ),
    pytest.param(
        """
        /a { deliver "" {} }
        """,
        "1:14",
        'route "/a": deliver target must not be empty',
        id="deliver-empty-target",
    ),
    pytest.param(
        """
        /a {
          deliver "https://a.example/x" {}
          deliver "https://a.example/x" {}
        }
        """,
        "3:3",
        'route "/a": duplicate deliver target "https://a.example/x"',
        id="deliver-duplicate-target",
    ),
    pytest.param(
        """
        /a { deliver "https://a.example/x" { env MODE fast } }
        """,
        "1:38",
        'route "/a": deliver "https://a.example/x": env is only allowed on exec targets',
        id="env-on-http-target",
    ),
    pytest.param(
        """
        /a { deliver exec "/usr/local/bin/handle" { sign hmac env:S } }
        """,
        "1:45",
        'route "/a": deliver "/usr/local/bin/handle": sign is not allowed on exec targets',
        id="sign-on-exec-target",
    ),
    pytest.param(
        """
        /a { deliver exec "/usr/local/bin/handle" { env 1MODE fast } }
        """,
        "1:49",
        'route "/a": deliver "/usr/local/bin/handle": env key "1MODE" must match'
        " [A-Za-z_][A-Za-z0-9_]*",
        id="exec-env-key-invalid",
    ),
    pytest.param(
        """
        /a { deliver exec "/usr/local/bin/handle" { header X-A b } }
        """,
        "1:45",
        'route "/a": deliver "/usr/local/bin/handle": header is only allowed on HTTP targets',
        id="header-on-exec-target",
    ),
    pytest.param(
        """
        /a {
          deliver "https://a.example/x" {
            header X-Source edge
            header x-source core
          }
        }
        """,
        "4:12",
        'route "/a": deliver "https://a.example/x": duplicate header "x-source"',
        id="deliver-duplicate-header",
    ),
    pytest.param(
        """
        /a { deliver "https://a.example/x" { header "X Source" edge } }
        """,
        "1:45",
        'route "/a": deliver "https://a.example/x": header "X Source" is not a valid name',
        id="deliver-header-not-token",
    ),
    pytest.param(
        """
        secrets {
          secret "v1" { value env:V1; valid_from "2026-01-01T00:00:00Z" }
        }
        /a {
          deliver "https://a.example/x" {
            sign hmac env:S
            sign hmac secret_ref v1
          }
        }
        """,
        "7:5",
        'route "/a": deliver "https://a.example/x": sign hmac <ref> cannot be combined with'
        " sign hmac secret_ref",
        id="sign-ref-and-secret-ref",
    ),
    pytest.param(
        """
        /a { deliver "https://a.example/x" { sign signature_header X-Sig } }
        """,
        "1:60",
        'route "/a": deliver "https://a.example/x": sign signature_header requires sign hmac',
        id="sign-setting-without-sign-hmac",
    ),
    pytest.param(
        """
        /a {
          deliver "https://a.example/x" {
            sign hmac env:S
            sign secret_selection oldest_valid
          }
        }
        """,
        "4:27",
        'route "/a": deliver "https://a.example/x": sign secret_selection needs'
        " sign hmac secret_ref",
        id="secret-selection-with-direct-ref",
    ),
    pytest.param(
        """
        /a {
          deliver "https://a.example/x" {
            sign hmac env:S
            sign timestamp_header x-hookaido-signature
          }
        }
        """,
        "4:27",
        'route "/a": deliver "https://a.example/x": sign signature_header and'
        " timestamp_header must differ",
        id="sign-headers-equal",
    ),
    pytest.param(
        """
        secrets {
          secret "v1" { value env:V1; valid_from "2026-01-01T00:00:00Z" }
        }
        /a {
          deliver "https://a.example/x" {
            sign hmac secret_ref v1
            sign secret_selection random
          }
        }
        """,
        "7:27",
        'route "/a": deliver "https://a.example/x": unknown secret_selection "random"'
        " (expected newest_valid or oldest_valid)",
        id="sign-unknown-selection",
    ),
    pytest.param(
        """
        /a { deliver "https://a.example/x" { retry linear max 3 } }
        """,
        "1:44",
        'route "/a": deliver "https://a.example/x".retry: type must be exponential, got "linear"',
        id="retry-type",
    ),
    pytest.param(
        """
        /a { deliver "https://a.example/x" { retry exponential max 0 } }
        """,
        "1:60",
        'route "/a": deliver "https://a.example/x".retry max: integer 0 out of range:'
        " expected an integer >= 1",
        id="retry-max-zero",
    ),
    pytest.param(
        """
        /a { deliver "https://a.example/x" { retry exponential jitter 1.5 } }
        """,
        "1:63",
        'route "/a": deliver "https://a.example/x".retry jitter: jitter "1.5" must be'
        " between 0 and 1",
        id="retry-jitter-range",
    ),
    pytest.param(
        """
        /a { deliver "https://a.example/x" { retry exponential base 5m cap 1m } }
        """,
        "1:38",
        'route "/a": deliver "https://a.example/x".retry: base must not be greater than cap',
        id="retry-base-above-cap",
    ),
    pytest.param(
        """
        /a { deliver "https://a.example/x" { retry exponential max 3 max 4 } }
        """,
        "1:62",
        'route "/a": deliver "https://a.example/x".retry: option max given twice',
        id="retry-option-twice",
    ),
    pytest.param(
        """
        /a { deliver "https://a.example/x" { timeout off } }
        """,
        "1:46",
        'route "/a": deliver "https://a.example/x".timeout: invalid duration "off":'
        " must be a positive duration",
        id="deliver-timeout-off",
    ),
    # -- listeners and APIs -------------------------------------------------------------
    pytest.param(
        """
        /a { pull { path /a } }
        """,
        "1:1",
        'route "/a" uses pull but there is no pull_api block',
        id="pull-without-pull-api",
    ),
    pytest.param(
        f"""
        pull_api {{ listen 127.0.0.1:9443 }}
        {OK}
        """,
        "1:1",
        "pull_api: auth token is required when no route uses pull",
        id="pull-api-without-token-or-pull-routes",
    ),
    pytest.param(
        """
        pull_api { listen 127.0.0.1:9443 }
        /a { pull { path /a; auth token env:A } }
        /b { pull { path /b } }
        """,
        "3:1",
        'route "/b": pull needs auth token (pull_api has no auth token)',
        id="pull-route-without-any-token",
    ),
    pytest.param(
        f"""
        admin_api {{ listen :2019 }}
        {OK}
        """,
        "1:20",
        'admin_api: auth token is required when listen ":2019" is not a loopback address',
        id="admin-off-loopback-without-token",
    ),
    pytest.param(
        """
        ingress { listen 127.0.0.1:8080 }
        admin_api { listen 127.0.0.1:8080; prefix /admin }
        /hooks { deliver "https://a.example/x" {} }
        """,
        "2:20",
        'admin_api: auth token is required when it shares ingress.listen "127.0.0.1:8080"',
        id="admin-on-ingress-listener-without-token",
    ),
    pytest.param(
        f"""
        pull_api {{ grpc_listen 127.0.0.1:9555; auth token env:T }}
        {OK}
        """,
        "1:24",
        "pull_api.grpc_listen needs at least one pull route",
        id="grpc-without-pull-routes",
    ),
    pytest.param(
        """
        ingress { listen :8080 }
        pull_api { grpc_listen 0.0.0.0:8080; auth token env:T }
        /a { pull { path /a } }
        """,
        "2:24",
        'pull_api.grpc_listen "0.0.0.0:8080" uses the same address as ingress.listen ":8080"',
        id="grpc-on-ingress-address",
    ),
    pytest.param(
        f"""
        ingress {{ listen 127.0.0.1:8080 }}
        observability {{ metrics {{ listen 127.0.0.1:8080; prefix /metrics }} }}
        {OK}
        """,
        "2:34",
        'observability.metrics.listen "127.0.0.1:8080" uses the same address as'
        ' ingress.listen "127.0.0.1:8080"',
        id="metrics-on-ingress-address",
    ),
    pytest.param(
        f"""
        observability {{ metrics {{ listen "127.0.0.1:2019" }} }}
        {OK}
        """,
        "1:34",
        'observability.metrics.listen "127.0.0.1:2019" uses the same address as'
        ' admin_api.listen "127.0.0.1:2019"',
        id="metrics-on-admin-address",
    ),
    pytest.param(
        f"""
        ingress {{ listen :8080 }}
        admin_api {{ listen 0.0.0.0:8080; prefix /admin; auth token env:A }}
        {OK}
        """,
        "2:20",
        'admin_api.listen "0.0.0.0:8080" and ingress.listen ":8080" name the same address;'
        " write it identically to share the listener",
        id="wildcard-written-two-ways",
    ),
    pytest.param(
        """
        pull_api { listen :9443; prefix /pull; auth token env:P }
        admin_api { listen :9443; auth token env:A }
        /a { pull { path /a } }
        """,
        "2:20",
        'admin_api: a prefix is required when pull_api and admin_api share listen ":9443"',
        id="shared-listener-api-needs-prefix",
    ),
    pytest.param(
        """
        pull_api { listen :9443; prefix /ops; auth token env:P }
        admin_api { listen :9443; prefix /ops/admin; auth token env:A }
        /a { pull { path /a } }
        """,
        "2:20",
        'admin_api.prefix "/ops/admin" and pull_api.prefix "/ops" must differ and must'
        " not be nested",
        id="shared-listener-nested-prefixes",
    ),
    pytest.param(
        """
        ingress { listen :8080 }
        admin_api { listen :8080; prefix /admin; auth token env:A }
        /admin/hooks { deliver "https://a.example/x" {} }
        """,
        "3:1",
        'route "/admin/hooks" collides with admin_api.prefix "/admin" on the shared listener'
        ' ":8080"',
        id="shared-listener-route-under-prefix",
    ),
    pytest.param(
        """
        ingress { listen :8080 }
        admin_api { listen :8080; prefix /admin; auth token env:A }
        / { deliver "https://a.example/x" {} }
        """,
        "3:1",
        'route "/" collides with admin_api.prefix "/admin" on the shared listener ":8080"',
        id="shared-listener-slash-route",
    ),
    pytest.param(
        """
        pull_api {
          listen :9443
          prefix /pull
          auth token env:P
          tls { cert_file /c.pem; key_file /k.pem }
        }
        admin_api { listen :9443; prefix /admin; auth token env:A }
        /a { pull { path /a } }
        """,
        "7:20",
        'admin_api and pull_api share listen ":9443" but their tls settings differ',
        id="shared-listener-tls-differs",
    ),
    pytest.param(
        """
        pull_api { listen :9443; prefix /pull; auth token env:P }
        admin_api { listen "[::]:9443"; prefix /admin; auth token env:A }
        /a { pull { path /a } }
        """,
        "2:20",
        'admin_api.listen "[::]:9443" and pull_api.listen ":9443" name the same address;'
        " write it identically to share the listener",
        id="same-address-written-differently",
    ),
    pytest.param(
        f"""
        ingress {{ tls {{ key_file /k.pem }} }}
        {OK}
        """,
        "1:11",
        "ingress.tls: cert_file is required",
        id="tls-cert-required",
    ),
    pytest.param(
        f"""
        ingress {{ tls {{ cert_file /c.pem; key_file "" }} }}
        {OK}
        """,
        "1:44",
        "ingress.tls: key_file is required",
        id="tls-key-empty",
    ),
    pytest.param(
        f"""
        admin_api {{ tls {{ cert_file /c.pem; key_file /k.pem; client_auth require }} }}
        {OK}
        """,
        "1:66",
        "admin_api.tls.client_auth require needs client_ca to verify",
        id="tls-verify-without-client-ca",
    ),
    pytest.param(
        f"""
        ingress {{ tls {{ cert_file /c.pem; key_file /k.pem; client_auth sometimes }} }}
        {OK}
        """,
        "1:64",
        'ingress.tls.client_auth: unknown mode "sometimes" (expected none, request,'
        " require_any, verify_if_given, require or require_and_verify)",
        id="tls-unknown-client-auth",
    ),
    # -- values anywhere ----------------------------------------------------------------
    pytest.param(
        f"""
        defaults {{ max_body 0 }}
        {OK}
        """,
        "1:21",
        'defaults.max_body: invalid size "0": must be greater than 0',
        id="invalid-size",
    ),
    pytest.param(
        f"""
        defaults {{ max_headers 2048gb }}
        {OK}
        """,
        "1:24",
        'defaults.max_headers: invalid size "2048gb": must be at most 1024gb',
        id="size-overflow",
    ),
    pytest.param(
        f"""
        queue_retention {{ max_age -1h }}
        {OK}
        """,
        "1:27",
        'queue_retention.max_age: invalid duration "-1h": must not be negative',
        id="negative-duration",
    ),
    pytest.param(
        f"""
        defaults {{ egress {{ https_only sometimes }} }}
        {OK}
        """,
        "1:32",
        'defaults.egress.https_only: invalid boolean "sometimes": expected on/off,'
        " true/false or 1/0",
        id="invalid-bool",
    ),
    pytest.param(
        """
        pull_api { max_batch 0; auth token env:T }
        /a { pull { path /a } }
        """,
        "1:22",
        "pull_api.max_batch: integer 0 out of range: expected an integer >= 1",
        id="invalid-int",
    ),
    pytest.param(
        """
        secrets {
          secret "v1" { value env:V1; valid_from "yesterday" }
        }
        /a { auth hmac secret_ref v1; deliver "https://a.example/x" {} }
        """,
        "2:42",
        'secrets.secret "v1".valid_from: invalid timestamp "yesterday": expected RFC 3339'
        " such as 2026-01-01T00:00:00Z",
        id="invalid-timestamp",
    ),
    pytest.param(
        f"""
        ingress {{ listen 8080 }}
        {OK}
        """,
        "1:18",
        'ingress.listen: invalid listen address "8080": expected host:port, :port or [v6]:port',
        id="invalid-listen",
    ),
    pytest.param(
        f"""
        queue_retention {{ prune_interval off }}
        {OK}
        """,
        "1:19",
        "queue_retention.prune_interval must not be off while a retention rule is enabled",
        id="prune-interval-off-with-retention",
    ),
    pytest.param(
        """
        pull_api {
          default_lease_ttl 2m
          max_lease_ttl 1m
          auth token env:T
        }
        /a { pull { path /a } }
        """,
        "2:3",
        "pull_api: default_lease_ttl must not exceed max_lease_ttl",
        id="lease-ttl-above-cap",
    ),
    pytest.param(
        """
        pull_api {
          default_max_wait 30s
          max_wait 10s
          auth token env:T
        }
        /a { pull { path /a } }
        """,
        "2:3",
        "pull_api: default_max_wait must not exceed max_wait",
        id="max-wait-above-cap",
    ),
    pytest.param(
        f"""
        queue_limits {{ drop_policy newest }}
        {OK}
        """,
        "1:28",
        'queue_limits.drop_policy: unknown policy "newest" (expected reject or drop_oldest)',
        id="drop-policy",
    ),
    pytest.param(
        f"""
        ingress {{ rate_limit {{ burst 5 }} }}
        {OK}
        """,
        "1:11",
        "ingress.rate_limit: rps is required",
        id="rate-limit-rps-required",
    ),
    pytest.param(
        f"""
        ingress {{ rate_limit {{ rps 0 }} }}
        {OK}
        """,
        "1:28",
        "ingress.rate_limit.rps: must be greater than 0, got 0",
        id="rate-limit-rps-positive",
    ),
    # -- defaults -----------------------------------------------------------------------
    pytest.param(
        f"""
        defaults {{ egress {{ allow "https://api.example.com" }} }}
        {OK}
        """,
        "1:27",
        'defaults.egress.allow: invalid rule "https://api.example.com": write a host, IP or'
        " CIDR, not a URL",
        id="egress-rule-is-url",
    ),
    pytest.param(
        f"""
        defaults {{ publish_policy {{ actor_allow ops "" }} }}
        {OK}
        """,
        "1:45",
        "defaults.publish_policy.actor_allow: empty entry",
        id="publish-policy-empty-entry",
    ),
    pytest.param(
        f"""
        defaults {{ trend_signals {{ dead_share_high_percent 101 }} }}
        {OK}
        """,
        "1:52",
        "defaults.trend_signals.dead_share_high_percent: integer 101 out of range:"
        " expected 1 to 100",
        id="trend-signal-range",
    ),
    pytest.param(
        f"""
        defaults {{ deliver {{ concurrency 0 }} }}
        {OK}
        """,
        "1:34",
        "defaults.deliver.concurrency: integer 0 out of range: expected an integer >= 1",
        id="default-concurrency",
    ),
    # -- observability ------------------------------------------------------------------
    pytest.param(
        f"""
        observability {{ access_log {{ output file }} }}
        {OK}
        """,
        "1:17",
        "observability.access_log: path is required with output file",
        id="log-file-without-path",
    ),
    pytest.param(
        f"""
        observability {{ runtime_log {{ output stdout; path /var/log/h.log }} }}
        {OK}
        """,
        "1:51",
        "observability.runtime_log: path is only allowed with output file",
        id="log-path-without-file",
    ),
    pytest.param(
        f"""
        observability {{ access_log {{ format text }} }}
        {OK}
        """,
        "1:37",
        'observability.access_log.format: must be json, got "text"',
        id="log-format-json",
    ),
    pytest.param(
        f"""
        observability {{ runtime_log verbose }}
        {OK}
        """,
        "1:29",
        'observability.runtime_log: unknown level "verbose" (expected debug, info, warn,'
        " error, off)",
        id="log-level",
    ),
    # -- secrets ------------------------------------------------------------------------
    pytest.param(
        """
        secrets {
          secret "v1" { valid_from "2026-01-01T00:00:00Z" }
        }
        /a { auth hmac secret_ref v1; deliver "https://a.example/x" {} }
        """,
        "2:3",
        'secrets.secret "v1": value is required',
        id="secret-value-required",
    ),
    pytest.param(
        """
        secrets {
          secret "v1" {
            value env:V1
            valid_from "2026-07-01T00:00:00Z"
            valid_until "2026-01-01T00:00:00Z"
          }
        }
        /a { auth hmac secret_ref v1; deliver "https://a.example/x" {} }
        """,
        "5:5",
        'secrets.secret "v1": valid_until must be after valid_from',
        id="secret-valid-until-before-from",
    ),
    pytest.param(
        """
        secrets {
          secret "v1" { value env:V1; valid_from "2026-01-01T00:00:00Z" }
          secret "v1" { value env:V2; valid_from "2026-02-01T00:00:00Z" }
        }
        /a { auth hmac secret_ref v1; deliver "https://a.example/x" {} }
        """,
        "3:10",
        'secrets: duplicate secret ID "v1"',
        id="secret-duplicate-id",
    ),
    pytest.param(
        """
        secrets {
          secret "v1" { value env:V1; valid_from "2026-01-01T00:00:00Z"; max_versions 3 }
        }
        /a { auth hmac secret_ref v1; deliver "https://a.example/x" {} }
        """,
        "2:66",
        'secrets.secret "v1": max_versions needs runtime true',
        id="secret-max-versions-without-runtime",
    ),
    pytest.param(
        """
        secrets {
          secret "v1" { value env:V1; valid_from "2026-01-01T00:00:00Z"; runtime true }
        }
        /a { auth hmac secret_ref v1; deliver "https://a.example/x" {} }
        """,
        "2:66",
        'secrets.secret "v1": runtime secrets (runtime true) are not supported',
        id="secret-runtime-unsupported",
    ),
    # -- matchers -----------------------------------------------------------------------
    pytest.param(
        """
        /a { match @missing; deliver "https://a.example/x" {} }
        """,
        "1:12",
        'route "/a": unknown named matcher @missing',
        id="unknown-named-matcher",
    ),
    pytest.param(
        """
        /a { match { host "https://example.com" }; deliver "https://a.example/x" {} }
        """,
        "1:19",
        'route "/a".match.host: host "https://example.com" must be a host name, not a URL',
        id="matcher-host-is-url",
    ),
    pytest.param(
        """
        /a { match { host "a.*.example.com" }; deliver "https://a.example/x" {} }
        """,
        "1:19",
        'route "/a".match.host: host "a.*.example.com": wildcards are only * or *.suffix',
        id="matcher-host-wildcard",
    ),
    pytest.param(
        """
        @edge { remote_ip 10.0.0.0/33 }
        /a { match @edge; deliver "https://a.example/x" {} }
        """,
        "1:19",
        'matcher @edge.remote_ip: invalid IP or CIDR "10.0.0.0/33"',
        id="matcher-remote-ip",
    ),
    pytest.param(
        """
        /a { match { method "GET POST" }; deliver "https://a.example/x" {} }
        """,
        "1:21",
        'route "/a".match.method: "GET POST" is not a valid HTTP method',
        id="matcher-method-not-token",
    ),
    pytest.param(
        """
        /a { match { header X-Env "" }; deliver "https://a.example/x" {} }
        """,
        "1:27",
        'route "/a".match.header: value must not be empty',
        id="matcher-empty-header-value",
    ),
    # -- publish ------------------------------------------------------------------------
    pytest.param(
        """
        /a {
          publish { direct off }
          publish.managed off
          deliver "https://a.example/x" {}
        }
        """,
        "3:3",
        'route "/a": publish block cannot be mixed with publish.managed',
        id="publish-block-and-dotted",
    ),
    pytest.param(
        """
        /a {
          publish off
          publish.direct on
          deliver "https://a.example/x" {}
        }
        """,
        "3:3",
        'route "/a": publish shorthand cannot be mixed with publish.direct',
        id="publish-shorthand-and-dotted",
    ),
]


@pytest.mark.parametrize(("text", "where", "message"), CASES)
def test_rule_violation_is_reported_at_its_place(text, where, message):
    problems = problems_of(text)

    assert f"Hookaidofile:{where}: {message}" in problems


def test_no_routes_defined():
    problems = problems_of("ingress { listen 127.0.0.1:8080 }")

    assert problems == ["no routes defined"]


def test_every_problem_is_reported_not_just_the_first():
    text = """
    /a { pull { path /a } deliver "https://a.example/x" {} }
    /a { deliver "https://" {} }
    outbound /n { }
    """

    problems = problems_of(text)

    assert problems == [
        'Hookaidofile:1:1: route "/a": pull and deliver are mutually exclusive',
        'Hookaidofile:1:1: route "/a" uses pull but there is no pull_api block',
        'Hookaidofile:1:1: route "/a": pull needs auth token (pull_api has no auth token)',
        'Hookaidofile:2:1: duplicate route path "/a"',
        'Hookaidofile:2:14: route "/a": deliver target "https://" is not an http or https URL'
        " with a host",
        'Hookaidofile:3:10: outbound route "/n": deliver is required',
    ]


def test_a_route_under_an_earlier_route_with_match_constraints_is_reachable():
    text = """
    /hooks { match { header X-Env prod }; deliver "https://a.example/x" {} }
    /hooks/github { deliver "https://b.example/x" {} }
    """

    config = compile_text(text)

    assert [route.path for route in config.routes] == ["/hooks", "/hooks/github"]


# -- names no installed plugin provides --------------------------------------------------


def test_auth_kind_without_plugin_names_the_installed_ones():
    parsing = make_registry({"auth": ["jwt"]})
    document = parse_text(
        '/a {\n  auth jwt "issuer"\n  deliver "https://a.example/x" {}\n}\n',
        "Hookaidofile",
        parsing,
    )

    with pytest.raises(ConfigError) as caught:
        compile_document(document, make_registry())

    assert caught.value.problems == [
        'Hookaidofile:2:3: route "/a": auth jwt: no installed plugin provides auth "jwt"'
        " (installed: basic, forward, hmac)"
    ]


def test_deliver_scheme_without_deliverer_names_the_installed_ones():
    problems = problems_of('/a { deliver "sqs://queue/jobs" {} }')

    assert problems == [
        'Hookaidofile:1:14: route "/a": deliver "sqs://queue/jobs": no installed plugin'
        ' provides deliverer "sqs" (installed: exec, http, https)'
    ]


def test_signer_without_plugin_names_the_installed_ones():
    parsing = make_registry({"signer": ["ed25519"]})
    document = parse_text(
        '/a { deliver "https://a.example/x" { sign ed25519 env:KEY } }',
        "Hookaidofile",
        parsing,
    )

    with pytest.raises(ConfigError) as caught:
        compile_document(document, make_registry())

    assert caught.value.problems == [
        'Hookaidofile:1:38: route "/a": deliver "https://a.example/x": sign ed25519: no'
        ' installed plugin provides signer "ed25519" (installed: hmac)'
    ]


def test_plugin_auth_gets_its_options_as_plain_data():
    registry = make_registry()
    schema = {
        "type": "object",
        "properties": {"header": {"type": "string"}, "keys": {"type": "array"}},
    }
    registry.add(PluginInfo("apikey", "1.0", "hookaido-apikey"), "auth", "apikey", object, schema)
    text = """
    /a {
      auth apikey {
        header X-Api-Key
        keys k1 k2
      }
      deliver "https://a.example/x" {}
    }
    """

    config = compile_text(text, registry)

    auth = config.routes[0].auth
    assert auth.name == "apikey"
    assert auth.options["args"] == []
    assert auth.options["header"] == "X-Api-Key"
    assert auth.options["keys"] == ["k1", "k2"]


# -- warnings ----------------------------------------------------------------------------


def test_warnings_are_located_and_do_not_fail():
    text = f"""
    ingress {{
      tls {{ cert_file /c.pem; key_file /k.pem; client_ca /ca.pem; client_auth request }}
    }}
    observability {{ metrics on }}
    {OK}
    """

    config = compile_text(text)

    assert config.warnings == (
        'Hookaidofile:1:1: ingress.listen not set; using default ":8080"',
        "Hookaidofile:2:75: ingress.tls: client_ca is set but client_auth request does not verify",
        'Hookaidofile:4:17: observability.metrics.listen not set; using default "127.0.0.1:9900"',
        'Hookaidofile:4:17: observability.metrics.prefix not set; using default "/metrics"',
        'admin_api.listen not set; using default "127.0.0.1:2019"',
    )


def test_metrics_listen_is_ignored_with_a_warning_when_disabled():
    text = f"""
    observability {{ metrics {{ enabled off; listen 127.0.0.1:9901 }} }}
    {OK}
    """

    config = compile_text(text)

    assert not config.observability.metrics.enabled
    assert (
        "Hookaidofile:1:40: observability.metrics: listen/prefix ignored while disabled"
        in config.warnings
    )
