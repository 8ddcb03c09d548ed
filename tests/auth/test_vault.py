"""``vault:`` references, resolved against a small Vault-like HTTP server on 127.0.0.1."""

import json
import ssl
import time

import pytest
import trustme

from hookaido.config.model import Config, PullAPIConfig, SecretRef
from hookaido.errors import ConfigError
from hookaido.secrets import SecretError, load_all, resolve

KV2 = {"data": {"data": {"value": "kv2-secret", "other": "x"}, "metadata": {"version": 3}}}
KV1 = {"data": {"hmac": "kv1-secret", "lease": 60}}


def vault_answers(documents: dict[str, dict]):
    def respond(request):
        document = documents.get(request.path)
        if document is None:
            return 404, {"Content-Type": "application/json"}, b'{"errors":[]}'
        return 200, {"Content-Type": "application/json"}, json.dumps(document).encode()

    return respond


@pytest.fixture
def vault(loopback_server):
    server = loopback_server(
        vault_answers(
            {
                "/v1/secret/data/hookaido": KV2,
                "/v1/kv/hookaido": KV1,
                "/v1/kv/single": {"data": {"data": {"token": "only-one"}, "metadata": {}}},
                "/v1/kv/nested": {"data": {"value": {"a": 1}}},
                "/v1/kv/number": {"data": {"value": 12345}},
            }
        )
    )
    environ = {"HOOKAIDO_VAULT_ADDR": server.url, "HOOKAIDO_VAULT_TOKEN": "hvs.test-token"}
    return server, environ


def test_kv2_secret_field_value_by_default(vault):
    server, environ = vault

    value = resolve(SecretRef("vault", "secret/data/hookaido"), environ)

    assert value == b"kv2-secret"
    assert server.seen[0].method == "GET"
    assert server.seen[0].headers["X-Vault-Token"] == "hvs.test-token"
    assert "X-Vault-Namespace" not in server.seen[0].headers


def test_named_field_from_kv2_and_from_kv1(vault):
    _, environ = vault

    assert resolve(SecretRef("vault", "secret/data/hookaido#other"), environ) == b"x"
    assert resolve(SecretRef("vault", "kv/hookaido#hmac"), environ) == b"kv1-secret"


def test_single_non_metadata_key_stands_in_for_value(vault):
    _, environ = vault

    assert resolve(SecretRef("vault", "kv/single"), environ) == b"only-one"


def test_scalar_numbers_are_accepted_and_objects_refused(vault):
    _, environ = vault

    assert resolve(SecretRef("vault", "kv/number"), environ) == b"12345"
    with pytest.raises(SecretError, match="not a scalar"):
        resolve(SecretRef("vault", "kv/nested"), environ)


def test_leading_v1_in_the_path_is_not_doubled(vault):
    server, environ = vault

    resolve(SecretRef("vault", "v1/secret/data/hookaido"), environ)

    assert server.seen[0].path == "/v1/secret/data/hookaido"


def test_namespace_is_sent_when_configured(vault):
    server, environ = vault

    resolve(SecretRef("vault", "kv/hookaido#hmac"), {**environ, "HOOKAIDO_VAULT_NAMESPACE": "ops"})

    assert server.seen[0].headers["X-Vault-Namespace"] == "ops"


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("secret/data/missing", "HTTP 404"),
        ("secret/data/hookaido#absent", "no field 'absent'"),
        ("kv/hookaido", "no field 'value'"),
        ("secret/../sys/seal", "dot segments"),
        ("http://elsewhere/v1/x", "not a URL"),
    ],
)
def test_unusable_vault_reference_fails_with_the_reason(ref, message, vault):
    _, environ = vault

    with pytest.raises(SecretError, match=message):
        resolve(SecretRef("vault", ref), environ)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"HOOKAIDO_VAULT_TOKEN": "t"}, "HOOKAIDO_VAULT_ADDR is not set"),
        ({"HOOKAIDO_VAULT_ADDR": "http://127.0.0.1:1"}, "HOOKAIDO_VAULT_TOKEN is not set"),
        (
            {"HOOKAIDO_VAULT_ADDR": "127.0.0.1:8200", "HOOKAIDO_VAULT_TOKEN": "t"},
            "http:// or https://",
        ),
        (
            {
                "HOOKAIDO_VAULT_ADDR": "http://127.0.0.1:1",
                "HOOKAIDO_VAULT_TOKEN": "t",
                "HOOKAIDO_VAULT_CLIENT_CERT": "/tmp/c.pem",
            },
            "must be set together",
        ),
    ],
)
def test_missing_or_bad_vault_settings_are_clear_errors(environ, message):
    with pytest.raises(SecretError, match=message):
        resolve(SecretRef("vault", "secret/data/x"), environ)


def test_vault_that_does_not_answer_is_an_error_at_startup(closed_port):
    environ = {"HOOKAIDO_VAULT_ADDR": f"http://127.0.0.1:{closed_port}", "VAULT_TOKEN": "t"}
    config = Config(routes=(), pull_api=PullAPIConfig(tokens=(SecretRef("vault", "kv/x"),)))

    with pytest.raises(ConfigError, match="vault request failed"):
        load_all(config, environ)


def test_slow_vault_times_out(loopback_server):
    def slow(request):
        time.sleep(1.0)
        return 200, {}, json.dumps(KV1).encode()

    server = loopback_server(slow)
    environ = {
        "HOOKAIDO_VAULT_ADDR": server.url,
        "HOOKAIDO_VAULT_TOKEN": "t",
        "HOOKAIDO_VAULT_TIMEOUT": "200ms",
    }
    started = time.monotonic()

    with pytest.raises(SecretError, match="vault request failed"):
        resolve(SecretRef("vault", "kv/hookaido#hmac"), environ)

    assert time.monotonic() - started < 0.9


def test_plain_vault_addr_and_token_variables_are_a_fallback(vault):
    server, _ = vault
    environ = {"VAULT_ADDR": server.url, "VAULT_TOKEN": "hvs.plain"}

    assert resolve(SecretRef("vault", "kv/hookaido#hmac"), environ) == b"kv1-secret"
    assert server.seen[0].headers["X-Vault-Token"] == "hvs.plain"


@pytest.fixture
def tls_vault(loopback_server, tmp_path):
    authority = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "vault-ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    server = loopback_server(vault_answers({"/v1/kv/hookaido": KV1}), ssl_context=context)
    return server, {"HOOKAIDO_VAULT_ADDR": server.url, "HOOKAIDO_VAULT_TOKEN": "t"}, ca_file


def test_https_vault_is_verified_against_the_configured_ca(tls_vault):
    server, environ, ca_file = tls_vault
    ref = SecretRef("vault", "kv/hookaido#hmac")

    with pytest.raises(SecretError, match="vault request failed"):
        resolve(ref, environ)
    assert resolve(ref, {**environ, "HOOKAIDO_VAULT_CACERT": str(ca_file)}) == b"kv1-secret"


def test_https_vault_verification_can_be_switched_off_for_testing(tls_vault):
    _, environ, _ = tls_vault
    environ = {**environ, "HOOKAIDO_VAULT_INSECURE_SKIP_VERIFY": "true"}

    assert resolve(SecretRef("vault", "kv/hookaido#hmac"), environ) == b"kv1-secret"
