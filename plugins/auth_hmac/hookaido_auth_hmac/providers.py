"""Inbound HMAC in provider mode: the signature formats of well-known webhook senders.

Each verifier checks one provider's headers with the route's keys valid now. None of them
keeps a nonce cache; those with a timestamp refuse it outside a fixed five minutes.
"""

import base64
import binascii
import re

from hookaido.auth import InboundRequest, Verdict, header_bytes
from hookaido_auth_hmac.inbound import HmacVerifier, decode_hex, matches_any, parse_timestamp
from hookaido_auth_hmac.keyring import epoch

PROVIDER_TOLERANCE = 300.0  # seconds
MAX_CANDIDATES = 16
STANDARD_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def decode_base64(text: str) -> bytes | None:
    if not STANDARD_BASE64.fullmatch(text):
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def standard_webhooks_key(secret: bytes) -> bytes:
    """``whsec_<base64>`` is a base64 key; any other secret is used as it is."""
    if not secret.startswith(b"whsec_"):
        return secret
    encoded = secret[len(b"whsec_") :].decode("ascii", "replace")
    key = decode_base64(encoded + "=" * (-len(encoded) % 4))  # senders may drop the padding
    if not key:
        raise ValueError("a whsec_ secret must carry a non-empty standard base64 key")
    return key


class BodyDigestVerifier(HmacVerifier):
    """HMAC of the raw body in one header, without timestamp (GitHub, Gitea, Shopify)."""

    header = ""
    prefix = ""

    def decode(self, text: str) -> bytes | None:
        return decode_hex(text)

    def check(self, request: InboundRequest) -> Verdict:
        value = (request.header(self.header) or "").strip()
        if not value:
            return self.refuse("header_missing", f"missing {self.header} header")
        if not value.startswith(self.prefix):
            return self.refuse("parse_incomplete", f"{self.header} must start with {self.prefix}")
        given = self.decode(value[len(self.prefix) :])
        if given is None:
            return self.refuse("sig_decode_error", f"{self.header} is not well-formed")

        keys = self.keys_at(epoch(request.received_at))
        if not matches_any(keys, request.body, [given]):
            return self.refuse("no_secret_matched", "signature does not match")
        return Verdict.allow()


class GitHubVerifier(BodyDigestVerifier):
    mode = "github"
    header = "X-Hub-Signature-256"
    prefix = "sha256="


class GiteaVerifier(BodyDigestVerifier):
    mode = "gitea"
    header = "X-Gitea-Signature"


class ShopifyVerifier(BodyDigestVerifier):
    mode = "shopify"
    header = "X-Shopify-Hmac-Sha256"

    def decode(self, text: str) -> bytes | None:
        return decode_base64(text)


class StripeLikeVerifier(HmacVerifier):
    """``t=<time>,<tag>=<hex>...`` over ``<t>.<body>`` (Stripe, Cituro)."""

    failure_event = "hmac_stripe_failed"
    header = ""
    tag = ""
    units_per_second = 1

    def check(self, request: InboundRequest) -> Verdict:
        value = request.header(self.header)
        if value is None or not value.strip():
            return self.refuse("header_missing", f"missing {self.header} header")
        sent_at, candidates = self.parse(value)
        if sent_at is None or not candidates:
            return self.refuse("parse_incomplete", f"{self.header} needs t= and {self.tag}=")
        sent_time = parse_timestamp(sent_at)
        if sent_time is None:
            return self.refuse("ts_parse_error", f"t in {self.header} is not an integer")
        now = epoch(request.received_at)
        if abs(now * self.units_per_second - sent_time) > (
            PROVIDER_TOLERANCE * self.units_per_second
        ):
            return self.refuse("ts_out_of_tolerance", f"t in {self.header} is too old or new")
        signatures = [sig for sig in map(decode_hex, candidates) if sig is not None]
        if not signatures:
            return self.refuse("sig_hex_decode_error", f"no hex {self.tag}= in {self.header}")

        keys = self.keys_at(now)
        if not matches_any(keys, sent_at.encode() + b"." + request.body, signatures):
            return self.refuse("no_secret_matched", "signature does not match")
        return Verdict.allow()

    def parse(self, value: str) -> tuple[str | None, list[str]]:
        sent_at: str | None = None
        candidates: list[str] = []
        for part in value.split(","):
            key, sep, item = part.partition("=")
            if not sep:
                continue
            key, item = key.strip(), item.strip()
            if key == "t" and sent_at is None:
                sent_at = item
            elif key == self.tag and len(candidates) < MAX_CANDIDATES:
                candidates.append(item)
        return sent_at, candidates

    def failure_fields(self) -> dict:
        return {"header": self.header}


class StripeVerifier(StripeLikeVerifier):
    mode = "stripe"
    header = "Stripe-Signature"
    tag = "v1"


class CituroVerifier(StripeLikeVerifier):
    mode = "cituro"
    header = "X-CITURO-SIGNATURE"
    tag = "s"
    units_per_second = 1000


class SlackVerifier(HmacVerifier):
    """``v0=<hex>`` over ``v0:<timestamp>:<body>``."""

    mode = "slack"
    signature_header = "X-Slack-Signature"
    timestamp_header = "X-Slack-Request-Timestamp"

    def check(self, request: InboundRequest) -> Verdict:
        signature = (request.header(self.signature_header) or "").strip()
        timestamp = (request.header(self.timestamp_header) or "").strip()
        for name, value in ((self.signature_header, signature), (self.timestamp_header, timestamp)):
            if not value:
                return self.refuse("header_missing", f"missing {name} header")
        sent_at = parse_timestamp(timestamp)
        if sent_at is None:
            return self.refuse("ts_parse_error", f"{self.timestamp_header} is not Unix seconds")
        now = epoch(request.received_at)
        if abs(now - sent_at) > PROVIDER_TOLERANCE:
            return self.refuse("ts_out_of_tolerance", f"{self.timestamp_header} is too old or new")
        if not signature.startswith("v0="):
            return self.refuse("parse_incomplete", f"{self.signature_header} must start with v0=")
        given = decode_hex(signature[3:])
        if given is None:
            return self.refuse("sig_hex_decode_error", f"{self.signature_header} is not hex")

        keys = self.keys_at(now)
        message = b"v0:" + timestamp.encode() + b":" + request.body
        if not matches_any(keys, message, [given]):
            return self.refuse("no_secret_matched", "signature does not match")
        return Verdict.allow()


class StandardWebhooksVerifier(HmacVerifier):
    """Standard Webhooks (Svix): ``v1,<base64>`` entries over ``<id>.<timestamp>.<body>``."""

    mode = "standard-webhooks"
    names = ("id", "timestamp", "signature")

    def check(self, request: InboundRequest) -> Verdict:
        found = {}
        for name in self.names:
            value = request.header(f"webhook-{name}") or request.header(f"svix-{name}") or ""
            if not value.strip():
                return self.refuse("header_missing", f"missing webhook-{name} header")
            found[name] = value.strip()
        message_id, timestamp = found["id"], found["timestamp"]

        sent_at = parse_timestamp(timestamp)
        if sent_at is None:
            return self.refuse("ts_parse_error", "webhook-timestamp is not Unix seconds")
        now = epoch(request.received_at)
        if abs(now - sent_at) > PROVIDER_TOLERANCE:
            return self.refuse("ts_out_of_tolerance", "webhook-timestamp is too old or new")
        # Every v1 entry counts, however many there are: each costs one comparison with
        # the few expected digests, never another HMAC.
        signatures = []
        for entry in found["signature"].split():
            version, sep, encoded = entry.partition(",")
            decoded = decode_base64(encoded) if sep and version == "v1" else None
            if decoded is not None:
                signatures.append(decoded)
        if not signatures:
            return self.refuse("sig_decode_error", "webhook-signature has no v1,<base64> entry")

        keys = self.keys_at(now)
        message = header_bytes(f"{message_id}.{timestamp}.") + request.body
        if not matches_any(keys, message, signatures):
            return self.refuse("no_secret_matched", "signature does not match")
        return Verdict.allow()


PROVIDERS: dict[str, type[HmacVerifier]] = {
    "github": GitHubVerifier,
    "gitea": GiteaVerifier,
    "stripe": StripeVerifier,
    "cituro": CituroVerifier,
    "shopify": ShopifyVerifier,
    "slack": SlackVerifier,
    "standard-webhooks": StandardWebhooksVerifier,
}

KEY_TRANSFORMS = {"standard-webhooks": standard_webhooks_key}
