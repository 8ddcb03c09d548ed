"""Provider-mode ``auth hmac``: each sender's real signature format, and what is refused.

Signatures come from published test vectors, the providers' own libraries (``stripe``,
``standardwebhooks``) or the providers' documented recipes.
"""

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime

import pytest
import stripe
from hookaido_auth_hmac import inbound
from standardwebhooks import Webhook, WebhookVerificationError

from hookaido.config.model import SecretRef, SecretVersion
from hookaido.errors import ConfigError

NOW = 1767225600
BODY = b'{"event":"push","id":42}'


def raw(value: str) -> SecretRef:
    return SecretRef("raw", value)


def hex_hmac(secret: bytes, message: bytes) -> str:
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def assert_unauthorized(verdict):
    assert (verdict.allowed, verdict.status, verdict.code) == (False, 401, "unauthorized")


# --------------------------------------------------------------------------------------
# Published vectors
# --------------------------------------------------------------------------------------


def test_github_documentation_vector(make_verifier, request_at):
    verifier = make_verifier({"provider": "github", "secrets": [raw("It's a Secret to Everybody")]})
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

    verdict = verifier.verify(request_at({"X-Hub-Signature-256": expected}, body=b"Hello, World!"))

    assert verdict.allowed


SPEC_VECTORS = {
    "github": {
        "X-Hub-Signature-256": (
            "sha256=608b0c406f3dda19702d71a048483b8c331283106d80a208e3cf43dbde505286"
        )
    },
    "gitea": {
        "X-Gitea-Signature": "608b0c406f3dda19702d71a048483b8c331283106d80a208e3cf43dbde505286"
    },
    "stripe": {
        "Stripe-Signature": (
            "t=1767225600,v1=ac216ca918aa0c12f3c499d0f5a587f209d512f993f82c6fd922a4b1016bd260"
        )
    },
    "shopify": {"X-Shopify-Hmac-Sha256": "YIsMQG892hlwLXGgSEg7jDMSgxBtgKII489D295QUoY="},
    "slack": {
        "X-Slack-Request-Timestamp": "1767225600",
        "X-Slack-Signature": (
            "v0=0c70d2008efafef07c38074225ff2d16c51e6fc1183360a10c6e2f481fc098a7"
        ),
    },
}


@pytest.mark.parametrize("provider", sorted(SPEC_VECTORS))
def test_spec_vector_with_secret_s3cr3t(provider, make_verifier, request_at):
    verifier = make_verifier({"provider": provider, "secrets": [raw("s3cr3t")]})

    assert verifier.verify(request_at(SPEC_VECTORS[provider], body=b"{}")).allowed


def test_standard_webhooks_spec_vector(make_verifier, request_at):
    secret = "whsec_czNjcjN0LXN0YW5kYXJkLXdlYmhvb2tzLWtleSEh"
    verifier = make_verifier({"provider": "standard-webhooks", "secrets": [raw(secret)]})
    headers = {
        "webhook-id": "msg_2Lh9KRb0pzN4LePd3XiA4v1yJfH",
        "webhook-timestamp": "1767225600",
        "webhook-signature": "v1,PY+CY9cKKSulEXj9MlEhXNn9XIcjzOozyFhibp5Gc0M=",
    }

    assert verifier.verify(request_at(headers, body=b"{}")).allowed


# --------------------------------------------------------------------------------------
# Stripe, cross-checked with the stripe package
# --------------------------------------------------------------------------------------

STRIPE_SECRET = "whsec_test_0123456789abcdef"


def stripe_accepts(body: bytes, header: str) -> bool:
    try:
        return stripe.WebhookSignature.verify_header(body, header, STRIPE_SECRET, tolerance=300)
    except stripe.SignatureVerificationError:
        return False


def stripe_cases(now: int) -> dict[str, tuple[str, bytes]]:
    good = stripe.WebhookSignature.generate_signature_header(BODY.decode(), STRIPE_SECRET, now)
    other = stripe.WebhookSignature.generate_signature_header(BODY.decode(), "whsec_other", now)
    stale = stripe.WebhookSignature.generate_signature_header(
        BODY.decode(), STRIPE_SECRET, now - 301
    )
    rolled = other + "," + good.split(",")[1] + ",v0=" + "ab" * 32
    return {
        "valid": (good, BODY),
        "rolled secrets, several v1": (rolled, BODY),
        "wrong secret": (other, BODY),
        "stale timestamp": (stale, BODY),
        "tampered body": (good, BODY + b" "),
        "no v1": (good.split(",")[0], BODY),
    }


@pytest.mark.parametrize(
    "case",
    ["valid", "rolled secrets, several v1", "wrong secret", "stale timestamp", "tampered body"],
)
def test_stripe_verdict_matches_the_stripe_package(case, make_verifier, request_at):
    now = int(time.time())
    header, body = stripe_cases(now)[case]
    verifier = make_verifier({"provider": "stripe", "secrets": [raw(STRIPE_SECRET)]})

    verdict = verifier.verify(request_at({"Stripe-Signature": header}, body=body, when=now))

    assert verdict.allowed == stripe_accepts(body, header)
    assert verdict.allowed == case.startswith(("valid", "rolled"))


def test_stripe_refuses_a_header_without_signatures(make_verifier, request_at):
    now = int(time.time())
    header, body = stripe_cases(now)["no v1"]
    verifier = make_verifier({"provider": "stripe", "secrets": [raw(STRIPE_SECRET)]})

    assert_unauthorized(verifier.verify(request_at({"Stripe-Signature": header}, body, now)))
    assert not stripe_accepts(body, header)


def test_stripe_signature_from_the_future_is_refused(make_verifier, request_at):
    header = stripe.WebhookSignature.generate_signature_header(
        BODY.decode(), STRIPE_SECRET, NOW + 301
    )
    verifier = make_verifier({"provider": "stripe", "secrets": [raw(STRIPE_SECRET)]})

    assert_unauthorized(verifier.verify(request_at({"Stripe-Signature": header}, BODY)))


def test_stripe_failures_are_logged_with_a_reason_and_no_secret(
    make_verifier, request_at, monkeypatch
):
    logged = []
    monkeypatch.setattr(inbound, "event", lambda name, **fields: logged.append((name, fields)))
    verifier = make_verifier({"provider": "stripe", "secrets": [raw(STRIPE_SECRET)]})

    verifier.verify(request_at({"Stripe-Signature": "t=1767225600,v1=" + "00" * 32}, BODY))
    verifier.verify(request_at({"Stripe-Signature": "v1=abcd"}, BODY))
    verifier.verify(request_at({"Stripe-Signature": "t=soon,v1=abcd"}, BODY))

    assert [name for name, _ in logged] == ["hmac_stripe_failed"] * 3
    reasons = [fields["reason"] for _, fields in logged]
    assert reasons == ["no_secret_matched", "parse_incomplete", "ts_parse_error"]
    assert STRIPE_SECRET not in repr(logged)


# --------------------------------------------------------------------------------------
# Standard Webhooks, signed by the standardwebhooks package
# --------------------------------------------------------------------------------------

SW_SECRET = "whsec_" + base64.b64encode(b"standard-webhooks-test-key-32byt").decode()


def sw_headers(secret=SW_SECRET, when=NOW, body=BODY, msg_id="msg_01HZX", prefix="webhook"):
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(when, UTC), body)
    return {
        f"{prefix}-id": msg_id,
        f"{prefix}-timestamp": str(when),
        f"{prefix}-signature": signature,
    }


def test_standard_webhooks_signature_from_the_package_is_accepted(make_verifier, request_at):
    verifier = make_verifier({"provider": "standard-webhooks", "secrets": [raw(SW_SECRET)]})
    now = int(time.time())
    headers = sw_headers(when=now)

    assert verifier.verify(request_at(headers, body=BODY, when=now)).allowed
    Webhook(SW_SECRET).verify(BODY, headers)  # and the package agrees


def test_standard_webhooks_svix_prefixed_headers_are_accepted(make_verifier, request_at):
    verifier = make_verifier({"provider": "standard-webhooks", "secrets": [raw(SW_SECRET)]})

    assert verifier.verify(request_at(sw_headers(prefix="svix"), body=BODY)).allowed


def test_standard_webhooks_any_v1_entry_may_match_and_other_versions_are_ignored(
    make_verifier, request_at
):
    verifier = make_verifier({"provider": "standard-webhooks", "secrets": [raw(SW_SECRET)]})
    headers = sw_headers()
    good = headers["webhook-signature"]
    stale_key = sw_headers(secret="whsec_" + base64.b64encode(b"old").decode())
    headers["webhook-signature"] = f"v1a,{good[3:]} {stale_key['webhook-signature']} {good}"

    assert verifier.verify(request_at(headers, body=BODY)).allowed


def test_standard_webhooks_secret_without_prefix_is_used_as_raw_bytes(make_verifier, request_at):
    verifier = make_verifier({"provider": "standard-webhooks", "secrets": [raw("plain-key")]})
    headers = sw_headers(secret=b"plain-key")

    assert verifier.verify(request_at(headers, body=BODY)).allowed


def test_standard_webhooks_whsec_secret_without_padding_is_accepted(make_verifier, request_at):
    unpadded = "whsec_" + base64.b64encode(b"twenty-four-byte-secret!").decode().rstrip("=")
    key_of_25 = "whsec_" + base64.b64encode(b"twenty-five-bytes-secret!").decode().rstrip("=")
    verifier = make_verifier(
        {"provider": "standard-webhooks", "secrets": [raw(unpadded), raw(key_of_25)]}
    )

    assert verifier.verify(request_at(sw_headers(secret=key_of_25), body=BODY)).allowed


def test_standard_webhooks_whsec_secret_that_is_not_base64_is_a_config_error(make_verifier):
    with pytest.raises(ConfigError, match="base64"):
        make_verifier({"provider": "standard-webhooks", "secrets": [raw("whsec_not*base64")]})


def test_standard_webhooks_stale_message_is_refused_like_the_package_does(
    make_verifier, request_at
):
    verifier = make_verifier({"provider": "standard-webhooks", "secrets": [raw(SW_SECRET)]})
    now = int(time.time())
    headers = sw_headers(when=now - 301)

    assert_unauthorized(verifier.verify(request_at(headers, body=BODY, when=now)))
    with pytest.raises(WebhookVerificationError):
        Webhook(SW_SECRET).verify(BODY, headers)


# --------------------------------------------------------------------------------------
# Every provider refuses the same mistakes
# --------------------------------------------------------------------------------------


def github_headers(secret=b"s3cr3t", body=BODY, when=NOW):
    return {"X-Hub-Signature-256": "sha256=" + hex_hmac(secret, body)}


def gitea_headers(secret=b"s3cr3t", body=BODY, when=NOW):
    return {"X-Gitea-Signature": hex_hmac(secret, body)}


def shopify_headers(secret=b"s3cr3t", body=BODY, when=NOW):
    digest = hmac.new(secret, body, hashlib.sha256).digest()
    return {"X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode()}


def stripe_headers(secret=b"s3cr3t", body=BODY, when=NOW):
    signature = hex_hmac(secret, f"{when}.".encode() + body)
    return {"Stripe-Signature": f"t={when},v1={signature}"}


def cituro_headers(secret=b"s3cr3t", body=BODY, when=NOW):
    millis = when * 1000 + 123
    return {"X-CITURO-SIGNATURE": f"t={millis},s={hex_hmac(secret, f'{millis}.'.encode() + body)}"}


def slack_headers(secret=b"s3cr3t", body=BODY, when=NOW):
    signature = hex_hmac(secret, f"v0:{when}:".encode() + body)
    return {"X-Slack-Request-Timestamp": str(when), "X-Slack-Signature": f"v0={signature}"}


def standard_headers(secret=b"s3cr3t", body=BODY, when=NOW):
    return sw_headers(secret=secret, when=when, body=body)


SENDERS = {
    "github": github_headers,
    "gitea": gitea_headers,
    "shopify": shopify_headers,
    "stripe": stripe_headers,
    "cituro": cituro_headers,
    "slack": slack_headers,
    "standard-webhooks": standard_headers,
}
TIMED = {"stripe", "cituro", "slack", "standard-webhooks"}


@pytest.mark.parametrize("provider", sorted(SENDERS))
def test_correctly_signed_webhook_is_accepted(provider, make_verifier, request_at):
    verifier = make_verifier({"provider": provider, "secrets": [raw("s3cr3t")]})

    verdict = verifier.verify(request_at(SENDERS[provider](), body=BODY))

    assert verdict.allowed
    assert verdict.on_enqueued is None  # providers keep no nonce cache


@pytest.mark.parametrize("provider", sorted(SENDERS))
def test_wrong_secret_is_refused(provider, make_verifier, request_at):
    verifier = make_verifier({"provider": provider, "secrets": [raw("s3cr3t")]})

    assert_unauthorized(verifier.verify(request_at(SENDERS[provider](b"guess"), body=BODY)))


@pytest.mark.parametrize("provider", sorted(SENDERS))
def test_tampered_body_is_refused(provider, make_verifier, request_at):
    verifier = make_verifier({"provider": provider, "secrets": [raw("s3cr3t")]})

    verdict = verifier.verify(request_at(SENDERS[provider](), body=BODY.replace(b"42", b"43")))

    assert_unauthorized(verdict)


@pytest.mark.parametrize("provider", sorted(SENDERS))
def test_each_missing_header_is_refused(provider, make_verifier, request_at):
    verifier = make_verifier({"provider": provider, "secrets": [raw("s3cr3t")]})
    headers = SENDERS[provider]()

    for name in headers:
        partial = {key: value for key, value in headers.items() if key != name}
        assert_unauthorized(verifier.verify(request_at(partial, body=BODY)))


@pytest.mark.parametrize("provider", sorted(TIMED))
@pytest.mark.parametrize("offset", [-301, 301])
def test_timestamp_more_than_five_minutes_away_is_refused(
    provider, offset, make_verifier, request_at
):
    verifier = make_verifier({"provider": provider, "secrets": [raw("s3cr3t")]})
    headers = SENDERS[provider](when=NOW + offset)

    assert_unauthorized(verifier.verify(request_at(headers, body=BODY, when=NOW)))


@pytest.mark.parametrize("provider", sorted(TIMED))
def test_timestamp_within_five_minutes_is_accepted(provider, make_verifier, request_at):
    verifier = make_verifier({"provider": provider, "secrets": [raw("s3cr3t")]})
    headers = SENDERS[provider](when=NOW - 299)

    assert verifier.verify(request_at(headers, body=BODY, when=NOW)).allowed


def test_cituro_timestamp_is_in_milliseconds(make_verifier, request_at):
    verifier = make_verifier({"provider": "cituro", "secrets": [raw("s3cr3t")]})
    seconds = NOW
    header = f"t={seconds},s={hex_hmac(b's3cr3t', f'{seconds}.'.encode() + BODY)}"

    assert_unauthorized(verifier.verify(request_at({"X-CITURO-SIGNATURE": header}, BODY)))


def test_shopify_signature_in_hex_is_refused(make_verifier, request_at):
    verifier = make_verifier({"provider": "shopify", "secrets": [raw("s3cr3t")]})

    headers = {"X-Shopify-Hmac-Sha256": hex_hmac(b"s3cr3t", BODY)}

    assert_unauthorized(verifier.verify(request_at(headers, body=BODY)))


def test_github_sha1_header_alone_is_refused(make_verifier, request_at):
    verifier = make_verifier({"provider": "github", "secrets": [raw("s3cr3t")]})
    sha1 = hmac.new(b"s3cr3t", BODY, hashlib.sha1).hexdigest()

    assert_unauthorized(verifier.verify(request_at({"X-Hub-Signature": f"sha1={sha1}"}, BODY)))


def test_unknown_provider_is_a_config_error(make_verifier):
    with pytest.raises(ConfigError, match="github"):
        make_verifier({"provider": "bitbucket", "secrets": [raw("s3cr3t")]})


# --------------------------------------------------------------------------------------
# Rotation: providers use the versions valid when the webhook arrives
# --------------------------------------------------------------------------------------


def test_provider_uses_versions_valid_at_arrival(make_verifier, request_at):
    versions = (
        SecretVersion(
            "gh-old", raw("old"), datetime(2025, 6, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
        ),
        SecretVersion("gh-new", raw("new"), datetime(2025, 12, 1, tzinfo=UTC)),
    )
    verifier = make_verifier(
        {"provider": "github", "secret_refs": ["gh-old", "gh-new"]}, versions=versions
    )
    during_overlap = int(datetime(2025, 12, 15, tzinfo=UTC).timestamp())

    old_in_overlap = verifier.verify(request_at(github_headers(b"old"), BODY, during_overlap))
    new_in_overlap = verifier.verify(request_at(github_headers(b"new"), BODY, during_overlap))
    old_after = verifier.verify(request_at(github_headers(b"old"), BODY, NOW))
    new_after = verifier.verify(request_at(github_headers(b"new"), BODY, NOW))

    assert old_in_overlap.allowed and new_in_overlap.allowed
    assert not old_after.allowed and new_after.allowed
