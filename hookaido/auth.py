"""What inbound verifiers receive and return: the contract behind the ``register_auth`` hook.

A verifier may declare ``needs_body = False`` to be called before the body is read (with an
empty ``body``); see ``register_auth`` in ``hookaido.hookspecs`` for every convention.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class InboundRequest:
    """A webhook request as ingress saw it.

    Ingress hands ``headers`` over with canonical names: every ``-``-separated word
    capitalised, the rest lower case (``x-github-event`` -> ``X-Github-Event``), and values
    with one character per received byte (``header_bytes`` gives the bytes back).
    ``header()`` ignores case, so it also works on requests built by hand in tests. ``body``
    is ``b""`` for a verifier that declares ``needs_body = False``: it runs before the body
    is read.
    """

    method: str
    path: str  # the request path before cleaning; bytes that are not UTF-8 as surrogate escapes
    query: str  # the raw query string, without "?"
    headers: dict[str, str]
    body: bytes
    remote_addr: str  # "ip:port"
    received_at: datetime

    def header(self, name: str, default: str | None = None) -> str | None:
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return default


def path_bytes(path: str) -> bytes:
    """The bytes of a request path as sent (see ``InboundRequest.path``)."""
    return path.encode("utf-8", "surrogateescape")


def header_bytes(value: str) -> bytes:
    """The bytes the sender wrote for a header value, for signing or measuring it.

    Ingress hands each received byte over as one Latin-1 character, so a UTF-8 value arrives
    as several characters; this undoes that. Text outside Latin-1 (a request built by hand)
    is taken as UTF-8.
    """
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


@dataclass
class Verdict:
    """A verifier's answer. ``allowed`` False refuses with ``status`` and JSON ``code``."""

    allowed: bool
    status: int = 401
    code: str = "unauthorized"
    detail: str = ""
    on_enqueued: Callable[[], None] | None = None
    on_refused: Callable[[], None] | None = None
    # Headers merged into the stored headers of an allowed webhook (forward auth's
    # ``copy_headers``): after the inbound names were canonicalised and credentials left out,
    # each replaces the stored header of exactly the same name or is added. Use canonical
    # names (``X-Auth-User``).
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def allow(cls, on_enqueued=None, on_refused=None, headers=None) -> "Verdict":
        return cls(True, 200, "", "", on_enqueued, on_refused, dict(headers or {}))

    @classmethod
    def deny(cls, detail: str, status: int = 401, code: str = "unauthorized") -> "Verdict":
        return cls(False, status, code, detail)


@dataclass
class AuthContext:
    """What a verifier factory may use besides its options.

    ``resolve_secret(ref)`` loads a ``SecretRef`` to its bytes value; ``secret_versions`` are
    the compiled ``secrets`` block entries; ``nonces`` is the process-wide replay store
    (it survives reloads; key your claims by ``route``).
    """

    route: str
    resolve_secret: Callable[[Any], bytes]
    secret_versions: tuple = ()
    nonces: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
