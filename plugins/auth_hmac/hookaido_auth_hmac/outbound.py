"""Outbound ``sign hmac``: method, path, time and body hash, signed for the receiving target.

The string differs from the inbound one on purpose (method first). File and Vault secrets
are re-read once they are a minute old, so a rotated file takes effect without a reload.
"""

import hashlib
import hmac
import threading
import time
from datetime import datetime
from urllib.parse import quote, urlsplit

from hookaido import secrets
from hookaido.config.model import SecretRef, SignConfig
from hookaido.delivery import SigningError
from hookaido.errors import ConfigError
from hookaido.observability.log import event
from hookaido_auth_hmac.keyring import Keyring, as_ref, epoch

REREAD_AFTER = 60.0  # seconds, for file: and vault: secrets
PATH_SAFE = "/%:@!$&'()*+,;=-._~"


def canonical_string(method: str, url: str, unix_seconds: int, body: bytes) -> bytes:
    path = quote(urlsplit(url).path, safe=PATH_SAFE) or "/"
    digest = hashlib.sha256(body).hexdigest()
    return f"{method.upper()}\n{path}\n{unix_seconds}\n{digest}".encode()


class _SecretCache:
    """Loaded secret values; ``file:`` and ``vault:`` ones are re-read when stale."""

    def __init__(self, first_load, clock=time.monotonic):
        self._first_load = first_load
        self._clock = clock
        self._lock = threading.Lock()
        self._values: dict[SecretRef, tuple[bytes, float]] = {}

    def get(self, ref: SecretRef) -> bytes:
        now = self._clock()
        with self._lock:
            cached = self._values.get(ref)
            if cached is not None and (
                ref.scheme not in ("file", "vault") or now - cached[1] < REREAD_AFTER
            ):
                return cached[0]
            if cached is not None:
                # Other threads keep the old value while this one reads the new one.
                self._values[ref] = (cached[0], now)

        # Reading a file or asking Vault happens outside the lock: signing never waits on it.
        if cached is None:
            try:
                value = self._first_load(ref)
            except secrets.SecretError as exc:
                raise SigningError(f"signing secret {ref.scheme}: {exc.reason}") from None
        else:
            value = self._reread(ref, cached[0])
        with self._lock:
            self._values[ref] = (value, now)
        return value

    def _reread(self, ref: SecretRef, previous: bytes) -> bytes:
        try:
            return secrets.resolve(ref)
        except secrets.SecretError as exc:
            # Keep signing with the value that worked; a half-written file must not stop it.
            event(
                "signing_secret_reload_failed", level="warn", secret=ref.scheme, reason=exc.reason
            )
            return previous


class HmacSigner:
    """Adds the timestamp and signature headers to one target's requests."""

    def __init__(self, sign_config: SignConfig, context=None):
        resolve_secret = getattr(context, "resolve_secret", None)
        versions = getattr(context, "secret_versions", ()) or ()

        def first_load(ref: SecretRef) -> bytes:
            if resolve_secret is not None:
                try:
                    return resolve_secret(ref)
                except KeyError:
                    pass
            return secrets.resolve(ref)

        self.config = sign_config
        self.direct = tuple(as_ref(ref) for ref in sign_config.secrets)
        self.keyring = Keyring((), sign_config.secret_refs, versions, first_load)
        if not self.direct and not self.keyring:
            raise ConfigError("sign hmac needs a secret or at least one secret_ref")
        self.newest = sign_config.secret_selection != "oldest_valid"
        self.cache = _SecretCache(first_load)

    def select(self, unix_seconds: float) -> SecretRef:
        """The direct secret, else the chosen version valid at ``unix_seconds``."""
        if self.direct:
            return self.direct[0]
        valid = [window for window in self.keyring.windows if window.valid_at(unix_seconds)]
        if not valid:
            raise SigningError("no secret_ref version is valid at the signing time")
        if self.newest:
            chosen = min(valid, key=lambda window: (-window.valid_from, window.id))
        else:
            chosen = min(valid, key=lambda window: (window.valid_from, window.id))
        return chosen.ref

    def sign(self, method: str, url: str, body: bytes | str, now: datetime | float) -> dict:
        unix_seconds = int(epoch(now))
        if isinstance(body, str):
            body = body.encode()
        key = self.cache.get(self.select(unix_seconds))
        message = canonical_string(method, url, unix_seconds, body)
        return {
            self.config.timestamp_header: str(unix_seconds),
            self.config.signature_header: hmac.new(key, message, hashlib.sha256).hexdigest(),
        }
