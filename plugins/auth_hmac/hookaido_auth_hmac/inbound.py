"""Inbound HMAC in canonical mode: timestamp, method, path and body hash, signed with a nonce.

A nonce is claimed only after a signature matched; the claim becomes permanent when the
webhook is stored and is released when the request is refused later.
"""

import hashlib
import hmac
import re
from datetime import timedelta

from hookaido import nonces
from hookaido.auth import InboundRequest, Verdict, header_bytes, path_bytes
from hookaido.observability.log import event
from hookaido_auth_hmac.keyring import Keyring, epoch

DEFAULT_SIGNATURE_HEADER = "X-Signature"
DEFAULT_TIMESTAMP_HEADER = "X-Timestamp"
DEFAULT_NONCE_HEADER = "X-Nonce"
DEFAULT_TOLERANCE = timedelta(minutes=5)
MAX_NONCE_BYTES = 256

INTEGER = re.compile(r"[+-]?[0-9]+")
MAX_INT64_DIGITS = 19
HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")


def clean_path(raw: str) -> str:
    """Collapse ``//``, resolve ``.`` and ``..``, drop a trailing ``/``; empty becomes ``/``."""
    segments: list[str] = []
    for segment in raw.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    return "/" + "/".join(segments)


def parse_timestamp(text: str) -> int | None:
    """A base-10 integer that fits in a signed 64-bit value (leading zeros allowed), else None.

    Longer numbers are refused before conversion: they could never be fresh, and turning
    thousands of digits into an int (or comparing it with a float clock) would raise.
    """
    if not INTEGER.fullmatch(text):
        return None
    sign = "-" if text[0] == "-" else ""
    digits = text.lstrip("+-").lstrip("0") or "0"
    if len(digits) > MAX_INT64_DIGITS:
        return None
    value = int(sign + digits)
    return value if -(2**63) <= value < 2**63 else None


def decode_hex(text: str) -> bytes | None:
    return bytes.fromhex(text) if HEX.fullmatch(text) else None


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def matches_any(keys: list[bytes], message: bytes, candidates: list[bytes]) -> bool:
    """True when some candidate equals HMAC-SHA256(key, message) for some key."""
    found = False
    for key in keys:
        expected = hmac_sha256(key, message)
        for candidate in candidates:
            # Keep comparing after a match: the time taken says nothing about which matched.
            found |= hmac.compare_digest(expected, candidate)
    return found


class SecretsUnavailable(Exception):
    """A configured secret could not be loaded when a request needed it."""


class HmacVerifier:
    """Shared by every HMAC mode: the route, its keys and how refusals are reported.

    Subclasses implement ``check(request)``; a secret that cannot be loaded at request time
    is Hookaido's problem, not the sender's, and answers 503.
    """

    mode = "canonical"
    failure_event = "hmac_auth_failed"

    def __init__(self, route: str, keyring: Keyring):
        self.route = route
        self.keyring = keyring

    def verify(self, request: InboundRequest) -> Verdict:
        try:
            return self.check(request)
        except SecretsUnavailable as exc:
            event("hmac_secret_unavailable", level="error", route=self.route, error=str(exc))
            return Verdict.deny(
                "signature secrets are not available", status=503, code="auth_unavailable"
            )

    def check(self, request: InboundRequest) -> Verdict:
        raise NotImplementedError

    def refuse(self, reason: str, detail: str) -> Verdict:
        event(
            self.failure_event,
            level="warn",
            route=self.route,
            mode=self.mode,
            reason=reason,
            **self.failure_fields(),
        )
        return Verdict.deny(detail)

    def failure_fields(self) -> dict:
        """More keys for the refusal log line; never a secret or anything derived from one."""
        return {}

    def keys_at(self, t: float) -> list[bytes]:
        try:
            return self.keyring.keys_at(t)
        except Exception as exc:
            raise SecretsUnavailable(type(exc).__name__) from exc


class CanonicalVerifier(HmacVerifier):
    """``auth hmac`` without ``provider``."""

    def __init__(
        self,
        route: str,
        keyring: Keyring,
        store,
        signature_header: str = DEFAULT_SIGNATURE_HEADER,
        timestamp_header: str = DEFAULT_TIMESTAMP_HEADER,
        nonce_header: str = DEFAULT_NONCE_HEADER,
        tolerance: timedelta = DEFAULT_TOLERANCE,
    ):
        super().__init__(route, keyring)
        self.store = store if store is not None else nonces.process_store()
        self.signature_header = signature_header
        self.timestamp_header = timestamp_header
        self.nonce_header = nonce_header
        self.tolerance = tolerance.total_seconds()

    def check(self, request: InboundRequest) -> Verdict:
        signature = (request.header(self.signature_header) or "").strip()
        timestamp = (request.header(self.timestamp_header) or "").strip()
        nonce = (request.header(self.nonce_header) or "").strip()
        for name, value in (
            (self.signature_header, signature),
            (self.timestamp_header, timestamp),
            (self.nonce_header, nonce),
        ):
            if not value:
                return self.refuse("header_missing", f"missing {name} header")

        signed_at = parse_timestamp(timestamp)
        if signed_at is None:
            return self.refuse("ts_parse_error", f"{self.timestamp_header} is not Unix seconds")
        now = epoch(request.received_at)
        if abs(now - signed_at) > self.tolerance:
            return self.refuse("ts_out_of_tolerance", f"{self.timestamp_header} is too old or new")
        if len(header_bytes(nonce)) > MAX_NONCE_BYTES:
            return self.refuse("nonce_too_long", f"{self.nonce_header} is longer than 256 bytes")
        given = decode_hex(signature)
        if given is None:
            return self.refuse("sig_hex_decode_error", f"{self.signature_header} is not hex")

        message = b"\n".join(
            (
                timestamp.encode(),
                request.method.encode(),
                path_bytes(clean_path(request.path)),
                hashlib.sha256(request.body).hexdigest().encode(),
            )
        )
        if not matches_any(self.keys_at(signed_at), message, [given]):
            return self.refuse("no_secret_matched", "signature does not match")

        claim = self.store.claim(self.route, nonce, ttl=signed_at + self.tolerance - now, now=now)
        if claim is None:
            return self.refuse("nonce_replayed", f"{self.nonce_header} was already used")
        return Verdict.allow(on_enqueued=claim.commit, on_refused=claim.release)
