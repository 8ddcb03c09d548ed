"""The HMAC keys of one route or target: direct secrets plus ``secrets`` block versions.

Versions are chosen by time (``valid_from <= t < valid_until``). Keys are loaded once through
the resolver the runtime hands over and never logged.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from hookaido.config.model import SecretRef, SecretVersion
from hookaido.errors import ConfigError


def epoch(moment: datetime | float | int) -> float:
    """Seconds since the epoch; a naive datetime is taken as UTC."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    return float(moment)


def as_ref(value) -> SecretRef:
    """Accept a compiled ``SecretRef`` or its ``scheme:value`` text."""
    if isinstance(value, SecretRef):
        return value
    scheme, sep, rest = str(value).partition(":")
    if not sep:
        raise ConfigError(f"{value!r} is not a secret reference (env:, file:, raw:, vault:)")
    return SecretRef(scheme, rest)


@dataclass(frozen=True)
class VersionWindow:
    id: str
    ref: SecretRef
    valid_from: float
    valid_until: float | None

    def valid_at(self, t: float) -> bool:
        return self.valid_from <= t and (self.valid_until is None or t < self.valid_until)


class Keyring:
    """Direct secrets (always valid) and named versions (valid in a window)."""

    def __init__(
        self,
        direct: Iterable,
        version_ids: Iterable[str],
        versions: Iterable[SecretVersion],
        resolve: Callable[[SecretRef], bytes],
        transform: Callable[[bytes], bytes] = bytes,
    ):
        declared = {version.id: version for version in versions}
        self.direct = tuple(as_ref(ref) for ref in direct)
        self.windows: list[VersionWindow] = []
        for version_id in version_ids:
            version = declared.get(version_id)
            if version is None:
                known = ", ".join(sorted(declared)) or "none declared"
                raise ConfigError(
                    f"secret_ref {version_id!r} is not in the secrets block ({known})"
                )
            self.windows.append(
                VersionWindow(
                    version.id,
                    version.value,
                    epoch(version.valid_from),
                    None if version.valid_until is None else epoch(version.valid_until),
                )
            )
        self._resolve = resolve
        self._transform = transform
        self._keys: dict[SecretRef, bytes] = {}

    def preload(self) -> None:
        """Load every key now. A value the key format rejects is a ``ConfigError`` at the
        secret's place; resolver errors pass through unchanged."""
        for ref in self.direct + tuple(window.ref for window in self.windows):
            self.key(ref)

    def key(self, ref: SecretRef) -> bytes:
        key = self._keys.get(ref)
        if key is None:
            value = self._resolve(ref)
            try:
                key = self._transform(value)
            except ValueError as exc:
                raise ConfigError(str(exc), ref.location) from None
            self._keys[ref] = key
        return key

    def keys_at(self, t: float) -> list[bytes]:
        """Every direct key plus every version key valid at ``t`` (epoch seconds)."""
        refs = list(self.direct)
        refs.extend(window.ref for window in self.windows if window.valid_at(t))
        return [self.key(ref) for ref in refs]

    def __bool__(self) -> bool:
        return bool(self.direct or self.windows)
