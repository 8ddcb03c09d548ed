"""Outbound ``sign hmac``: a receiver verifies deliveries with nothing but the documented
canonical string ``METHOD\\nPATH\\nUNIX_SECONDS\\nsha256hex(body)``."""

import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta

from hookaido_deliver_http.deliverer import HTTPDeliverer

from hookaido import plugins, secrets
from hookaido.config.model import DeliverTarget, EgressPolicy, SecretRef, SecretVersion, SignConfig
from hookaido.delivery import DeliveryContext

from .conftest import make_envelope

LOOPBACK = EgressPolicy(allow=("127.0.0.1",), https_only=False, dns_rebind_protection=False)


def expected_signature(secret: bytes, request, timestamp_header, signature_header) -> bool:
    timestamp = request.headers[timestamp_header]
    path = request.path.split("?", 1)[0] or "/"
    digest = hashlib.sha256(request.body).hexdigest()
    canonical = f"{request.method}\n{path}\n{timestamp}\n{digest}".encode()
    wanted = hmac.new(secret, canonical, hashlib.sha256).hexdigest()
    return hmac.compare_digest(wanted, request.headers[signature_header])


def signed_deliverer(url, sign: SignConfig, versions=()) -> HTTPDeliverer:
    target = DeliverTarget(
        target=url, kind="http", sign=sign, headers=(("X-Hookaido-Signature", "spoof"),)
    )
    context = DeliveryContext(
        egress=LOOPBACK, resolve_secret=secrets.resolve, secret_versions=versions
    )
    factory = plugins.registry().get("signer", sign.name).factory
    context.make_signer = lambda config: factory(config, context)
    return HTTPDeliverer(target, context)


def test_receiver_verifies_the_signature_from_the_canonical_string(receiver):
    sign = SignConfig(secrets=(SecretRef("raw", "s3cr3t"),))

    outcome = signed_deliverer(receiver.url("/build?x=1"), sign).deliver(
        make_envelope(payload=b'{"ref":"main"}')
    )

    assert outcome.result == "acked"
    [request] = receiver.requests
    assert abs(int(request.headers["X-Hookaido-Timestamp"]) - time.time()) < 5
    assert expected_signature(b"s3cr3t", request, "X-Hookaido-Timestamp", "X-Hookaido-Signature")


def test_signature_and_timestamp_header_names_can_be_renamed(receiver):
    sign = SignConfig(
        secrets=(SecretRef("raw", "other"),),
        signature_header="X-Sig",
        timestamp_header="X-Sig-Time",
    )

    signed_deliverer(receiver.url("/"), sign).deliver(make_envelope(payload=b"{}"))

    [request] = receiver.requests
    assert "X-Hookaido-Timestamp" not in request.headers
    assert expected_signature(b"other", request, "X-Sig-Time", "X-Sig")


def versions_around_now():
    now = datetime.now(UTC)
    return (
        SecretVersion("old", SecretRef("raw", "old-key"), now - timedelta(days=2)),
        SecretVersion("new", SecretRef("raw", "new-key"), now - timedelta(hours=1)),
        SecretVersion("next", SecretRef("raw", "next-key"), now + timedelta(days=1)),
    )


def test_secret_ref_versions_sign_with_the_newest_valid_by_default(receiver):
    sign = SignConfig(secret_refs=("old", "new", "next"))

    signed_deliverer(receiver.url(), sign, versions_around_now()).deliver(make_envelope())

    [request] = receiver.requests
    assert expected_signature(b"new-key", request, "X-Hookaido-Timestamp", "X-Hookaido-Signature")


def test_secret_selection_oldest_valid_picks_the_oldest_version(receiver):
    sign = SignConfig(secret_refs=("old", "new", "next"), secret_selection="oldest_valid")

    signed_deliverer(receiver.url(), sign, versions_around_now()).deliver(make_envelope())

    [request] = receiver.requests
    assert expected_signature(b"old-key", request, "X-Hookaido-Timestamp", "X-Hookaido-Signature")


def test_no_valid_secret_version_is_a_retryable_failure_and_nothing_is_sent(receiver):
    sign = SignConfig(secret_refs=("next",))

    outcome = signed_deliverer(receiver.url(), sign, versions_around_now()).deliver(make_envelope())

    assert outcome.result == "retry"
    assert outcome.error.startswith("signing failed")
    assert receiver.requests == []
