"""Outbound ``sign hmac``: the headers a target receives and which secret version signs."""

import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from hookaido_auth_hmac.outbound import REREAD_AFTER, HmacSigner

from hookaido.config.model import SecretRef, SecretVersion, SignConfig
from hookaido.delivery import DeliveryContext, SigningError
from hookaido.errors import ConfigError
from hookaido.plugins import load_registry

NOW = 1767225600


def raw(value: str) -> SecretRef:
    return SecretRef("raw", value)


def context(versions=()):
    return DeliveryContext(egress=None, resolve_secret=None, secret_versions=tuple(versions))


def expected_signature(secret: bytes, method, path, seconds, body) -> str:
    message = f"{method}\n{path}\n{seconds}\n{hashlib.sha256(body).hexdigest()}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def test_published_test_vector():
    signer = HmacSigner(SignConfig(secrets=(raw("s3cr3t"),)), context())

    headers = signer.sign("POST", "https://ci.internal/build?x=1", b"{}", NOW)

    assert headers == {
        "X-Hookaido-Timestamp": "1767225600",
        "X-Hookaido-Signature": "376f75cc3d336cc9ba8057f6bdfae8fcb9d15365af2d76eaab7731d2cfe8dee3",
    }


def test_signing_time_may_be_a_datetime():
    signer = HmacSigner(SignConfig(secrets=(raw("s3cr3t"),)), context())

    moment = datetime.fromtimestamp(NOW + 0.75, UTC)

    assert signer.sign("POST", "https://ci.internal/build", b"{}", moment)[
        "X-Hookaido-Timestamp"
    ] == str(NOW)


def test_renamed_headers():
    config = SignConfig(
        secrets=(raw("s3cr3t"),), signature_header="X-Sig", timestamp_header="X-Sent-At"
    )

    headers = HmacSigner(config, context()).sign("POST", "https://t.example/a", b"x", NOW)

    assert set(headers) == {"X-Sig", "X-Sent-At"}


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("https://t.example", "/"),
        ("https://t.example/?q=1", "/"),
        ("https://t.example/a%2Fb/c", "/a%2Fb/c"),
        ("https://t.example/caf\u00e9 menu", "/caf%C3%A9%20menu"),
    ],
)
def test_signed_path_is_the_escaped_url_path_without_query(url, path):
    signer = HmacSigner(SignConfig(secrets=(raw("k"),)), context())

    headers = signer.sign("put", url, b"body", NOW)

    assert headers["X-Hookaido-Signature"] == expected_signature(b"k", "PUT", path, NOW, b"body")


VERSIONS = (
    SecretVersion("out-a", raw("a"), datetime(2026, 1, 1, tzinfo=UTC)),
    SecretVersion("out-b", raw("b"), datetime(2025, 6, 1, tzinfo=UTC), datetime(2026, 2, 1)),
    SecretVersion("out-c", raw("c"), datetime(2026, 1, 1, tzinfo=UTC)),
    SecretVersion("out-future", raw("f"), datetime(2027, 1, 1, tzinfo=UTC)),
)


def signed_with(signer, seconds=NOW) -> bytes:
    signature = signer.sign("POST", "https://t.example/h", b"{}", seconds)["X-Hookaido-Signature"]
    for secret in (b"a", b"b", b"c", b"f"):
        if signature == expected_signature(secret, "POST", "/h", seconds, b"{}"):
            return secret
    raise AssertionError("signed with an unknown secret")


def test_newest_valid_picks_the_latest_valid_from_and_breaks_ties_by_smaller_id():
    config = SignConfig(secret_refs=("out-c", "out-b", "out-a", "out-future"))

    signer = HmacSigner(config, context(VERSIONS))

    assert signed_with(signer) == b"a"


def test_oldest_valid_picks_the_earliest_valid_from():
    config = SignConfig(
        secret_refs=("out-a", "out-b", "out-c", "out-future"), secret_selection="oldest_valid"
    )

    signer = HmacSigner(config, context(VERSIONS))

    assert signed_with(signer) == b"b"
    assert signed_with(signer, int(datetime(2026, 3, 1, tzinfo=UTC).timestamp())) == b"a"


def test_a_version_becomes_the_signer_when_its_window_opens():
    config = SignConfig(secret_refs=("out-b", "out-future"))
    signer = HmacSigner(config, context(VERSIONS))

    before = signed_with(signer, int(datetime(2025, 12, 31, tzinfo=UTC).timestamp()))
    after = signed_with(signer, int(datetime(2027, 1, 1, tzinfo=UTC).timestamp()))

    assert (before, after) == (b"b", b"f")


def test_no_valid_version_is_a_signing_error_the_dispatcher_retries():
    signer = HmacSigner(SignConfig(secret_refs=("out-future",)), context(VERSIONS))

    with pytest.raises(SigningError, match="no secret_ref version is valid"):
        signer.sign("POST", "https://t.example/h", b"{}", NOW)


def test_unknown_secret_ref_is_a_config_error():
    with pytest.raises(ConfigError, match="out-missing"):
        HmacSigner(SignConfig(secret_refs=("out-missing",)), context(VERSIONS))


def test_loaded_value_from_the_generation_is_used_first():
    ref = SecretRef("env", "HOOKAIDO_TEST_NEVER_SET")
    loaded = {ref: b"from-generation"}
    ctx = DeliveryContext(egress=None, resolve_secret=loaded.__getitem__)

    headers = HmacSigner(SignConfig(secrets=(ref,)), ctx).sign("POST", "https://t/h", b"", NOW)

    assert headers["X-Hookaido-Signature"] == expected_signature(
        b"from-generation", "POST", "/h", NOW, b""
    )


def test_file_secret_is_re_read_once_a_minute_old(tmp_path):
    secret_file = tmp_path / "signing.key"
    secret_file.write_text("first\n")
    signer = HmacSigner(SignConfig(secrets=(SecretRef("file", str(secret_file)),)), context())
    clock = [1000.0]
    signer.cache._clock = lambda: clock[0]

    def current():
        signature = signer.sign("POST", "https://t/h", b"", NOW)["X-Hookaido-Signature"]
        return signature == expected_signature(b"second", "POST", "/h", NOW, b"")

    assert not current()
    secret_file.write_text("second\n")
    clock[0] += REREAD_AFTER - 1
    assert not current()
    clock[0] += 1
    assert current()


def test_file_that_disappears_keeps_the_last_good_value(tmp_path):
    secret_file = tmp_path / "signing.key"
    secret_file.write_text("kept")
    signer = HmacSigner(SignConfig(secrets=(SecretRef("file", str(secret_file)),)), context())
    clock = [0.0]
    signer.cache._clock = lambda: clock[0]
    signer.sign("POST", "https://t/h", b"", NOW)

    secret_file.unlink()
    clock[0] += REREAD_AFTER
    signature = signer.sign("POST", "https://t/h", b"", NOW)["X-Hookaido-Signature"]

    assert signature == expected_signature(b"kept", "POST", "/h", NOW, b"")


def test_plugin_registers_auth_hmac_and_signer_hmac_with_schemas():
    registry = load_registry()

    auth = registry.get("auth", "hmac")
    signer = registry.get("signer", "hmac")

    assert auth.plugin == "auth_hmac" and signer.plugin == "auth_hmac"
    assert "provider" in auth.schema["properties"]
    assert set(auth.schema["properties"]["provider"]["enum"]) == {
        "github",
        "gitea",
        "stripe",
        "cituro",
        "shopify",
        "slack",
        "standard-webhooks",
    }
    assert registry.get("auth", "forward") is not None


def test_secret_that_cannot_be_loaded_is_a_signing_error():
    signer = HmacSigner(SignConfig(secrets=(SecretRef("env", "HOOKAIDO_TEST_UNSET"),)), context())

    with pytest.raises(SigningError, match="HOOKAIDO_TEST_UNSET is not set"):
        signer.sign("POST", "https://t/h", b"", NOW)
