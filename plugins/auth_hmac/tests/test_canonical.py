"""Canonical-mode ``auth hmac``: what a sender must sign, what is refused, replay and rotation."""

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from hookaido.config.model import SecretRef, SecretVersion
from hookaido.errors import ConfigError
from hookaido.nonces import NonceStore

NOW = 1767225600
SECRET = SecretRef("raw", "s3cr3t")


def canonical_signature(secret: bytes, ts: str, method: str, path: str, body: bytes) -> str:
    body_hash = hashlib.sha256(body).hexdigest()
    message = f"{ts}\n{method}\n{path}\n{body_hash}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def signed_headers(
    secret=b"s3cr3t", ts=NOW, nonce="n-1", body=b"{}", method="POST", path="/webhooks/github"
):
    return {
        "X-Timestamp": str(ts),
        "X-Nonce": nonce,
        "X-Signature": canonical_signature(secret, str(ts), method, path, body),
    }


def version(version_id, secret, valid_from, valid_until=None):
    return SecretVersion(
        version_id,
        SecretRef("raw", secret),
        datetime.fromisoformat(valid_from),
        datetime.fromisoformat(valid_until) if valid_until else None,
    )


def epoch(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


# --------------------------------------------------------------------------------------
# What is accepted
# --------------------------------------------------------------------------------------


def test_published_test_vector_is_accepted(make_verifier, request_at):
    verifier = make_verifier({"secrets": [SECRET]})
    headers = {
        "X-Timestamp": "1767225600",
        "X-Nonce": "abc",
        "X-Signature": "076d10212b228e0bd427e4586284231df2da7ecac9f05497624037a168f5cfb3",
    }

    verdict = verifier.verify(request_at(headers))

    assert verdict.allowed
    assert verdict.on_enqueued is not None and verdict.on_refused is not None


def test_upper_case_hex_and_padded_header_values_are_accepted(make_verifier, request_at):
    verifier = make_verifier({"secrets": [SECRET]})
    headers = signed_headers()
    headers = {name: f"  {value.upper()} " for name, value in headers.items()}

    assert verifier.verify(request_at(headers)).allowed


def test_signed_path_is_the_cleaned_request_path(make_verifier, request_at):
    verifier = make_verifier({"secrets": [SECRET]})
    headers = signed_headers(path="/webhooks/github")

    verdict = verifier.verify(request_at(headers, path="//webhooks/./x/../github/"))

    assert verdict.allowed


def test_method_as_received_is_signed(make_verifier, request_at):
    verifier = make_verifier({"secrets": [SECRET]})

    verdict = verifier.verify(request_at(signed_headers(method="PUT"), method="PUT"))

    assert verdict.allowed


def test_timestamp_exactly_at_the_tolerance_is_accepted(make_verifier, request_at):
    verifier = make_verifier({"secrets": [SECRET]})

    early = verifier.verify(request_at(signed_headers(ts=NOW - 300, nonce="a"), when=NOW))
    late = verifier.verify(request_at(signed_headers(ts=NOW + 300, nonce="b"), when=NOW))

    assert early.allowed and late.allowed


def test_renamed_headers_and_longer_tolerance(make_verifier, request_at):
    verifier = make_verifier(
        {
            "secrets": [SECRET],
            "signature_header": "X-Sig",
            "timestamp_header": "X-Sent-At",
            "nonce_header": "X-Request-Id",
            "tolerance": timedelta(minutes=30),
        }
    )
    default = signed_headers(ts=NOW - 1200)
    headers = {
        "x-sig": default["X-Signature"],
        "x-sent-at": default["X-Timestamp"],
        "x-request-id": default["X-Nonce"],
    }

    assert verifier.verify(request_at(headers)).allowed
    assert verifier.verify(request_at(default)).status == 401


def test_any_of_several_direct_secrets_is_accepted(make_verifier, request_at):
    verifier = make_verifier({"secrets": [SecretRef("raw", "old"), SecretRef("raw", "new")]})

    with_old = verifier.verify(request_at(signed_headers(secret=b"old", nonce="1")))
    with_new = verifier.verify(request_at(signed_headers(secret=b"new", nonce="2")))
    with_other = verifier.verify(request_at(signed_headers(secret=b"other", nonce="3")))

    assert with_old.allowed and with_new.allowed
    assert not with_other.allowed


# --------------------------------------------------------------------------------------
# What is refused
# --------------------------------------------------------------------------------------


def _without(name):
    headers = signed_headers()
    del headers[name]
    return headers


REFUSED = {
    "wrong secret": lambda: (signed_headers(secret=b"guess"), b"{}"),
    "stale timestamp": lambda: (signed_headers(ts=NOW - 301), b"{}"),
    "timestamp from the future": lambda: (signed_headers(ts=NOW + 301), b"{}"),
    "tampered body": lambda: (signed_headers(), b'{"amount":1000}'),
    "missing signature": lambda: (_without("X-Signature"), b"{}"),
    "missing timestamp": lambda: (_without("X-Timestamp"), b"{}"),
    "missing nonce": lambda: (_without("X-Nonce"), b"{}"),
    "empty signature": lambda: ({**signed_headers(), "X-Signature": "  "}, b"{}"),
    "timestamp in milliseconds": lambda: (signed_headers(ts=NOW * 1000), b"{}"),
    "timestamp not a number": lambda: ({**signed_headers(), "X-Timestamp": "soon"}, b"{}"),
    "timestamp beyond 64 bits": lambda: ({**signed_headers(), "X-Timestamp": "9" * 400}, b"{}"),
    "timestamp of 5001 digits": lambda: (
        {**signed_headers(), "X-Timestamp": "1" + "0" * 5000},
        b"{}",
    ),
    "signature not hex": lambda: ({**signed_headers(), "X-Signature": "zz" * 32}, b"{}"),
    "signature odd length": lambda: ({**signed_headers(), "X-Signature": "abc"}, b"{}"),
    "nonce over 256 bytes": lambda: (signed_headers(nonce="n" * 257), b"{}"),
    "signed for another path": lambda: (signed_headers(path="/webhooks/other"), b"{}"),
    "signed for another method": lambda: (signed_headers(method="PUT"), b"{}"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_with_401_unauthorized(case, make_verifier, request_at, store):
    verifier = make_verifier({"secrets": [SECRET]})
    headers, body = REFUSED[case]()

    verdict = verifier.verify(request_at(headers, body=body))

    assert (verdict.allowed, verdict.status, verdict.code) == (False, 401, "unauthorized")
    assert len(store) == 0


def test_refusal_detail_never_contains_the_secret_or_expected_signature(make_verifier, request_at):
    verifier = make_verifier({"secrets": [SECRET]})
    expected = signed_headers()["X-Signature"]

    verdict = verifier.verify(request_at(signed_headers(), body=b"tampered"))

    assert "s3cr3t" not in verdict.detail and expected not in verdict.detail


# --------------------------------------------------------------------------------------
# Replay protection
# --------------------------------------------------------------------------------------


def test_replayed_nonce_is_refused_after_the_webhook_was_stored(make_verifier, request_at):
    verifier = make_verifier({"secrets": [SECRET]})
    first = verifier.verify(request_at(signed_headers()))
    first.on_enqueued()

    replay = verifier.verify(request_at(signed_headers(), when=NOW + 10))

    assert replay.status == 401 and "X-Nonce" in replay.detail


def test_duplicate_still_in_flight_is_refused(make_verifier, request_at):
    verifier = make_verifier({"secrets": [SECRET]})
    verifier.verify(request_at(signed_headers()))

    duplicate = verifier.verify(request_at(signed_headers()))

    assert duplicate.status == 401


def test_retry_after_a_later_refusal_is_accepted(make_verifier, request_at):
    verifier = make_verifier({"secrets": [SECRET]})
    first = verifier.verify(request_at(signed_headers()))
    first.on_refused()  # e.g. the queue was full: 503

    retry = verifier.verify(request_at(signed_headers(), when=NOW + 5))

    assert retry.allowed


def test_release_after_commit_keeps_the_nonce(make_verifier, request_at):
    verifier = make_verifier({"secrets": [SECRET]})
    first = verifier.verify(request_at(signed_headers()))
    first.on_enqueued()
    first.on_refused()

    assert verifier.verify(request_at(signed_headers())).status == 401


def test_nonce_is_free_again_once_its_timestamp_left_the_tolerance(store):
    claim = store.claim("/r", "n", ttl=300, now=NOW)
    claim.commit()

    assert store.claim("/r", "n", ttl=300, now=NOW + 300) is None
    assert store.claim("/r", "n", ttl=300, now=NOW + 301) is not None


def test_same_nonce_on_another_route_is_accepted(make_verifier, request_at):
    github = make_verifier({"secrets": [SECRET]}, route="/webhooks/github")
    other = make_verifier({"secrets": [SECRET]}, route="/webhooks/other")
    github.verify(request_at(signed_headers())).on_enqueued()

    headers = signed_headers(path="/webhooks/other")
    verdict = other.verify(request_at(headers, path="/webhooks/other"))

    assert verdict.allowed


def test_nonce_claims_survive_a_reload(make_verifier, request_at):
    before = make_verifier({"secrets": [SECRET]})
    before.verify(request_at(signed_headers())).on_enqueued()

    after_reload = make_verifier({"secrets": [SECRET], "tolerance": timedelta(minutes=10)})

    assert after_reload.verify(request_at(signed_headers(), when=NOW + 1)).status == 401


def test_nonce_claim_lasts_until_timestamp_plus_tolerance(make_verifier, request_at, store):
    verifier = make_verifier({"secrets": [SECRET]})
    verdict = verifier.verify(request_at(signed_headers(ts=NOW - 100), when=NOW))

    verdict.on_enqueued()

    assert store.claim("/webhooks/github", "n-1", ttl=1, now=NOW + 200) is None
    assert store.claim("/webhooks/github", "n-1", ttl=1, now=NOW + 201) is not None


# --------------------------------------------------------------------------------------
# Rotation through the secrets block
# --------------------------------------------------------------------------------------

ROTATION = (
    version("in-v1", "first", "2026-01-01T00:00:00+00:00", "2026-07-01T00:00:00+00:00"),
    version("in-v2", "second", "2026-06-01T00:00:00+00:00"),
)


@pytest.mark.parametrize(
    ("moment", "first_ok", "second_ok"),
    [
        ("2026-05-31T23:59:59", True, False),
        ("2026-06-01T00:00:00", True, True),
        ("2026-06-30T23:59:59", True, True),
        ("2026-07-01T00:00:00", False, True),
    ],
)
def test_secret_versions_are_chosen_by_the_signed_timestamp(
    moment, first_ok, second_ok, make_verifier, request_at
):
    verifier = make_verifier({"secret_refs": ["in-v1", "in-v2"]}, versions=ROTATION)
    ts = epoch(moment)

    first = verifier.verify(request_at(signed_headers(b"first", ts=ts, nonce="1"), when=ts))
    second = verifier.verify(request_at(signed_headers(b"second", ts=ts, nonce="2"), when=ts))

    assert (first.allowed, second.allowed) == (first_ok, second_ok)


def test_version_is_judged_at_the_signed_time_not_the_arrival_time(make_verifier, request_at):
    verifier = make_verifier({"secret_refs": ["in-v1", "in-v2"]}, versions=ROTATION)
    signed = epoch("2026-06-30T23:58:00")
    arrived = epoch("2026-07-01T00:01:00")

    verdict = verifier.verify(request_at(signed_headers(b"first", ts=signed), when=arrived))

    assert verdict.allowed


def test_direct_secret_and_versions_together(make_verifier, request_at):
    verifier = make_verifier(
        {"secrets": [SecretRef("raw", "always")], "secret_refs": ["in-v2"]}, versions=ROTATION
    )
    ts = epoch("2026-03-01T00:00:00")

    always = verifier.verify(request_at(signed_headers(b"always", ts=ts, nonce="1"), when=ts))
    not_yet = verifier.verify(request_at(signed_headers(b"second", ts=ts, nonce="2"), when=ts))

    assert always.allowed and not not_yet.allowed


def test_reload_that_rotates_the_secret(make_verifier, request_at):
    store = NonceStore()
    ts = epoch("2026-06-15T12:00:00")
    old_only = (version("in-v1", "first", "2026-01-01T00:00:00+00:00"),)
    before = make_verifier({"secret_refs": ["in-v1"]}, versions=old_only, nonces=store)
    before.verify(request_at(signed_headers(b"first", ts=ts, nonce="x"), when=ts)).on_enqueued()

    after = make_verifier({"secret_refs": ["in-v2"]}, versions=ROTATION, nonces=store)

    new = after.verify(request_at(signed_headers(b"second", ts=ts, nonce="y"), when=ts))
    old = after.verify(request_at(signed_headers(b"first", ts=ts, nonce="z"), when=ts))
    replay = after.verify(request_at(signed_headers(b"second", ts=ts, nonce="x"), when=ts))
    assert new.allowed
    assert not old.allowed
    assert replay.status == 401


# --------------------------------------------------------------------------------------
# Building the verifier
# --------------------------------------------------------------------------------------


def test_unknown_secret_ref_is_a_config_error_naming_it(make_verifier):
    with pytest.raises(ConfigError, match="nope"):
        make_verifier({"secret_refs": ["nope"]}, versions=ROTATION)


def test_no_secret_at_all_is_a_config_error(make_verifier):
    with pytest.raises(ConfigError, match="at least one secret"):
        make_verifier({"secrets": []})


def test_secret_that_cannot_be_loaded_at_request_time_answers_503(make_verifier, request_at):
    verifier = make_verifier({"secrets": [SecretRef("env", "HOOKAIDO_TEST_UNSET_SECRET")]})

    verdict = verifier.verify(request_at(signed_headers()))

    assert (verdict.status, verdict.code) == (503, "auth_unavailable")
