"""Parsers for the Hookaidofile's value types (durations, sizes, listen addresses, refs, ...).

Each parser takes the value's text and returns a Python value or raises ``ValueError`` with a
message saying what was wrong and what is accepted. Placing the message is the caller's job.
"""

import ipaddress
import posixpath
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

from hookaido.config.model import SecretRef
from hookaido.errors import Location

# --------------------------------------------------------------------------------------
# Durations
# --------------------------------------------------------------------------------------

_UNIT_NANOS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # micro sign
    "μs": 1_000,  # greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_GROUP = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)", re.ASCII)
_DAYS = re.compile(r"\d+d", re.ASCII)
_MAX_NANOS = 2**63 - 1
DURATION_FORMS = "off, 0, <n>d or unit-suffixed groups such as 500ms, 1.5s, 1h30m"
API_DURATION_FORMS = "unit-suffixed groups such as 500ms, 30s, 1m30s, or 0"


def _unit_nanos(text: str) -> int:
    """Nanoseconds of an unsigned run of ``<decimal><unit>`` groups; ValueError if malformed."""
    position = 0
    total = Decimal(0)
    while position < len(text):
        match = _GROUP.match(text, position)
        if match is None:
            raise ValueError("malformed")
        try:
            amount = Decimal(match.group(1))
        except InvalidOperation as exc:
            raise ValueError("malformed") from exc
        total += amount * _UNIT_NANOS[match.group(2)]
        position = match.end()
    if position == 0:
        raise ValueError("malformed")
    if total > _MAX_NANOS:
        raise ValueError("overflow")
    return int(total)


def _nanos_to_timedelta(nanos: int) -> timedelta:
    # Limitation: timedelta keeps microseconds; sub-microsecond parts are dropped.
    return timedelta(microseconds=nanos // 1000)


def parse_duration_nanos(text: str) -> int:
    """A config duration in nanoseconds: ``off``/``0`` give 0, ``7d`` whole days, else groups."""
    value = text.strip()
    if value.lower() == "off" or value == "0":
        return 0
    if value.startswith("-"):
        raise ValueError(f'invalid duration "{text}": must not be negative')
    if _DAYS.fullmatch(value):
        nanos = int(value[:-1]) * 86_400 * 1_000_000_000
        if nanos > _MAX_NANOS:
            raise ValueError(f'invalid duration "{text}": too large')
        return nanos
    try:
        return _unit_nanos(value)
    except ValueError as exc:
        if str(exc) == "overflow":
            raise ValueError(f'invalid duration "{text}": too large') from None
        raise ValueError(f'invalid duration "{text}": expected {DURATION_FORMS}') from None


def parse_duration(text: str) -> timedelta:
    """A config duration; ``off`` and ``0`` both give a zero ``timedelta``."""
    return _nanos_to_timedelta(parse_duration_nanos(text))


def parse_optional_duration(text: str) -> timedelta | None:
    """A duration where ``off``/``0`` mean "disabled" (returned as ``None``)."""
    nanos = parse_duration_nanos(text)
    return _nanos_to_timedelta(nanos) if nanos else None


def parse_positive_duration(text: str) -> timedelta:
    """A duration that must be greater than zero (``off`` and ``0`` are rejected)."""
    nanos = parse_duration_nanos(text)
    if nanos <= 0:
        raise ValueError(f'invalid duration "{text}": must be a positive duration')
    return _nanos_to_timedelta(nanos) or timedelta(microseconds=1)


def parse_api_duration(text: str) -> timedelta:
    """An API duration: optional sign, then unit-suffixed groups of ASCII digits (no ``d``,
    no ``off``, no surrounding spaces)."""
    value = text
    sign = 1
    if value[:1] in ("+", "-"):
        sign = -1 if value[0] == "-" else 1
        value = value[1:]
    if value == "0":
        return timedelta(0)
    try:
        nanos = _unit_nanos(value)
    except ValueError:
        raise ValueError(f'invalid duration "{text}": expected {API_DURATION_FORMS}') from None
    return sign * _nanos_to_timedelta(nanos)


def _trim_fraction(whole: int, fraction: int, digits: int) -> str:
    if not fraction:
        return str(whole)
    return f"{whole}.{fraction:0{digits}d}".rstrip("0")


def render_duration(value: timedelta) -> str:
    """Render like ``1h0m0s``, ``5m0s``, ``30s``, ``1.5s``, ``500ms``, ``0s``."""
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    nanos = micros * 1000
    sign = "-" if nanos < 0 else ""
    nanos = abs(nanos)
    if nanos == 0:
        return "0s"
    if nanos < 1_000:
        return f"{sign}{nanos}ns"
    if nanos < 1_000_000:
        return f"{sign}{_trim_fraction(nanos // 1_000, nanos % 1_000, 3)}µs"
    if nanos < 1_000_000_000:
        return f"{sign}{_trim_fraction(nanos // 1_000_000, nanos % 1_000_000, 6)}ms"
    total_seconds, fraction = divmod(nanos, 1_000_000_000)
    hours, rest = divmod(total_seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{_trim_fraction(seconds, fraction, 9)}s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    if minutes:
        return f"{sign}{minutes}m{text}"
    return f"{sign}{text}"


# --------------------------------------------------------------------------------------
# Sizes, booleans, integers, floats
# --------------------------------------------------------------------------------------

_SIZE = re.compile(r"(\d+)(b|k|kb|m|mb|g|gb)?", re.IGNORECASE | re.ASCII)
_SIZE_FACTORS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2}
_SIZE_FACTORS.update({"g": 1024**3, "gb": 1024**3})
MAX_SIZE = 1024 * 1024**3
SIZE_FORMS = "a number of bytes optionally followed by b, kb, mb or gb (e.g. 2mb, 64kb)"


def parse_size(text: str, allow_off: bool = False) -> int | None:
    """A size in bytes, > 0 and <= 1024gb. With ``allow_off``, ``off``/``0`` give ``None``."""
    value = text.strip()
    if allow_off and (value.lower() == "off" or value == "0"):
        return None
    match = _SIZE.fullmatch(value)
    if match is None:
        raise ValueError(f'invalid size "{text}": expected {SIZE_FORMS}')
    size = int(match.group(1)) * _SIZE_FACTORS[(match.group(2) or "").lower()]
    if size <= 0:
        raise ValueError(f'invalid size "{text}": must be greater than 0')
    if size > MAX_SIZE:
        raise ValueError(f'invalid size "{text}": must be at most 1024gb')
    return size


_TRUE = {"on", "true", "1"}
_FALSE = {"off", "false", "0"}


def parse_bool(text: str) -> bool:
    """``on``/``off``, ``true``/``false``, ``1``/``0`` (case-insensitive)."""
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f'invalid boolean "{text}": expected on/off, true/false or 1/0')


_INT = re.compile(r"[+-]?\d+", re.ASCII)


def parse_int(text: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """A decimal integer within ``[minimum, maximum]`` (either bound may be open)."""
    value = text.strip()
    if not _INT.fullmatch(value):
        raise ValueError(f'invalid integer "{text}"{_range_text(minimum, maximum)}')
    number = int(value)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ValueError(f"integer {number} out of range{_range_text(minimum, maximum)}")
    return number


def _range_text(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f": expected {minimum} to {maximum}"
    if minimum is not None:
        return f": expected an integer >= {minimum}"
    if maximum is not None:
        return f": expected an integer <= {maximum}"
    return ""


def parse_optional_int(text: str, minimum: int = 0) -> int | None:
    """An integer >= ``minimum`` or ``off`` (``None``); ``0`` also means off."""
    if text.strip().lower() == "off":
        return None
    number = parse_int(text, minimum, None)
    return number or None


_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)


def parse_float(text: str) -> float:
    """A finite decimal number."""
    value = text.strip()
    if not _FLOAT.fullmatch(value):
        raise ValueError(f'invalid number "{text}": expected a decimal number such as 0.5')
    return float(value)


# --------------------------------------------------------------------------------------
# Timestamps
# --------------------------------------------------------------------------------------

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
)


def parse_timestamp(text: str) -> datetime:
    """An RFC 3339 timestamp, returned in UTC. Fractions beyond microseconds are dropped."""
    match = _RFC3339.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            f'invalid timestamp "{text}": expected RFC 3339 such as 2026-01-01T00:00:00Z'
        )
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    fraction = match.group(7) or ""
    micros = int((fraction[1:] + "000000")[:6]) if fraction else 0
    zone = match.group(8)
    if zone in ("Z", "z"):
        offset = timedelta(0)
    else:
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 23 or minutes > 59:
            raise ValueError(f'invalid timestamp "{text}": bad UTC offset')
        offset = timedelta(hours=hours, minutes=minutes) * (-1 if zone[0] == "-" else 1)
    if second == 60:  # a leap second is read as the last second of its minute
        second = 59
    try:
        moment = datetime(year, month, day, hour, minute, second, micros, timezone(offset))
    except ValueError as exc:
        raise ValueError(f'invalid timestamp "{text}": {exc}') from None
    return moment.astimezone(UTC)


# --------------------------------------------------------------------------------------
# Listen addresses
# --------------------------------------------------------------------------------------

LISTEN_FORMS = "host:port, :port or [v6]:port"
_HOSTNAME = re.compile(
    r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?"
)


@dataclass(frozen=True)
class ListenAddress:
    """A parsed ``listen`` value. ``host`` is ``""`` for ``:port``; IPv6 hosts lack brackets."""

    host: str
    port: int

    @property
    def is_wildcard(self) -> bool:
        if self.host == "":
            return True
        ip = _ip_or_none(self.host)
        return ip is not None and ip.is_unspecified

    @property
    def is_loopback(self) -> bool:
        if self.host.lower() in ("localhost", "localhost."):
            return True
        ip = _ip_or_none(self.host)
        return ip is not None and ip.is_loopback

    @property
    def bind_target(self) -> tuple[str, int]:
        """What the socket binds: wildcards are one target; IPs compare canonically."""
        if self.is_wildcard:
            return ("*", self.port)
        ip = _ip_or_none(self.host)
        if ip is not None:
            return (str(ip), self.port)
        return (self.host.lower().rstrip("."), self.port)


def _ip_or_none(host: str):
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def parse_listen(text: str) -> ListenAddress:
    """``host:port``, ``:port`` or ``[v6]:port``; the port is 0..65535."""
    value = text.strip()
    if value.startswith("["):
        close = value.find("]")
        if close < 0 or value[close + 1 : close + 2] != ":":
            raise ValueError(f'invalid listen address "{text}": expected {LISTEN_FORMS}')
        host, port = value[1:close], value[close + 2 :]
        if _ip_or_none(host) is None or ":" not in host:
            raise ValueError(f'invalid listen address "{text}": "{host}" is not an IPv6 address')
    else:
        host, sep, port = value.rpartition(":")
        if not sep:
            raise ValueError(f'invalid listen address "{text}": expected {LISTEN_FORMS}')
        if ":" in host:
            raise ValueError(
                f'invalid listen address "{text}": write IPv6 hosts in brackets, [::1]:8080'
            )
        if host and _ip_or_none(host) is None and not _HOSTNAME.fullmatch(host):
            raise ValueError(f'invalid listen address "{text}": bad host "{host}"')
    if not port.isdigit() or int(port) > 65535:
        raise ValueError(f'invalid listen address "{text}": port must be a number 0..65535')
    return ListenAddress(host, int(port))


# --------------------------------------------------------------------------------------
# Secret references
# --------------------------------------------------------------------------------------

SECRET_SCHEMES = ("env", "file", "vault", "raw")
SECRET_FORMS = "env:NAME, file:/path, vault:path[#field] or raw:value"


def parse_secret_ref(text: str, location: Location | None = None) -> SecretRef:
    """Check the syntax of a secret reference (values are loaded later, never here)."""
    scheme, sep, rest = text.partition(":")
    if not sep or scheme not in SECRET_SCHEMES:
        raise ValueError(f'invalid secret reference "{text}": expected {SECRET_FORMS}')
    if scheme == "env" and not rest.strip():
        raise ValueError(f'invalid secret reference "{text}": env: needs a variable name')
    if scheme == "file" and not rest.strip():
        raise ValueError(f'invalid secret reference "{text}": file: needs a path')
    if scheme == "raw" and not rest:
        raise ValueError(f'invalid secret reference "{text}": raw: value is empty')
    if scheme == "vault":
        _check_vault_ref(text, rest)
    return SecretRef(scheme, rest, location)


def _check_vault_ref(text: str, rest: str) -> None:
    path, hash_sign, field_name = rest.partition("#")
    if "://" in path:
        raise ValueError(f'invalid secret reference "{text}": vault path must not be a URL')
    segments = [segment for segment in path.strip("/").split("/")]
    if not path.strip("/"):
        raise ValueError(f'invalid secret reference "{text}": vault: needs a path')
    if any(segment in (".", "..") for segment in segments):
        raise ValueError(f'invalid secret reference "{text}": vault path has dot segments')
    if hash_sign and not field_name:
        raise ValueError(f"invalid secret reference \"{text}\": empty vault field after '#'")


def is_secret_ref(text: str) -> bool:
    """Whether ``text`` parses as a secret reference."""
    try:
        parse_secret_ref(text)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------------------
# Paths, names and labels
# --------------------------------------------------------------------------------------


def clean_path(text: str) -> str:
    """Clean a route path or prefix: collapse ``//``, resolve ``.``/``..``, drop trailing ``/``."""
    if not text.startswith("/"):
        raise ValueError(f"path \"{text}\" must start with '/'")
    cleaned = posixpath.normpath(text)
    if cleaned.startswith("//"):  # normpath keeps a leading double slash
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def clean_prefix(text: str) -> str:
    """A cleaned API prefix; ``/`` means "no prefix" and gives ``""``."""
    cleaned = clean_path(text)
    return "" if cleaned == "/" else cleaned


def path_within(path: str, base: str) -> bool:
    """Whether ``path`` equals ``base`` or lies below it on a segment boundary."""
    if base == "/":
        return True
    return path == base or path.startswith(base + "/")


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def is_http_token(text: str) -> bool:
    """An HTTP token (method or header field name)."""
    return bool(_TOKEN.fullmatch(text))


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def is_env_name(text: str) -> bool:
    """A variable name: ``[A-Za-z_][A-Za-z0-9_]*`` (vars, exec env keys)."""
    return bool(_ENV_NAME.fullmatch(text))


def is_label(text: str) -> bool:
    """A management label (``application``, ``endpoint_name``)."""
    return bool(_LABEL.fullmatch(text))


def parse_ip_network(text: str) -> str:
    """An IP or CIDR, host bits masked, IPv4-mapped IPv6 unmapped: ``10.0.0.0/8``."""
    value = text.strip()
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f'invalid IP or CIDR "{text}"') from None
    if isinstance(network, ipaddress.IPv6Network):
        mapped = network.network_address.ipv4_mapped
        if mapped is not None and network.prefixlen >= 96:
            network = ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}", strict=False)
    return str(network)
