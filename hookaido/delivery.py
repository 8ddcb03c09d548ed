"""What deliverers and signers receive and return: the contract behind the delivery hooks."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any


@dataclass(frozen=True)
class Outcome:
    """One delivery attempt's result.

    ``result`` is ``acked``, ``retry`` or ``dead``. ``retry_after`` is a minimum wait asked
    for by the target (only ever lengthens the backoff). ``dead_reason`` is set for ``dead``
    (``no_retry``, ``policy_denied``, ...); the dispatcher itself turns an exhausted retry
    budget into ``max_retries``.
    """

    result: str
    status_code: int = 0
    error: str = ""
    dead_reason: str = ""
    retry_after: timedelta | None = None


@dataclass
class DeliveryContext:
    """What a deliverer factory may use: the egress policy and a signer for its target.

    The dispatcher puts ``concurrency`` (the route's ``deliver_concurrency``, for sizing
    connection pools) in ``extra``; tests may add ``resolver`` (``(host, port) -> [address]``)
    to replace DNS in the egress check.
    """

    egress: Any  # hookaido.config.model.EgressPolicy
    make_signer: Callable[[Any], Any] | None = None  # SignConfig -> signer or None
    resolve_secret: Callable[[Any], bytes] | None = None
    secret_versions: tuple = ()
    extra: dict[str, Any] = field(default_factory=dict)


class SigningError(Exception):
    """Raised by a signer's ``sign()`` when no secret can sign right now (for example no
    ``secret_ref`` version is valid at the signing time). The attempt counts as a retry."""


def error_text(text: str, limit: int = 500) -> str:
    """``text`` on one line and at most ``limit`` characters, for attempt records and logs."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def header_bytes(value: str) -> bytes:
    """The bytes to send for a stored header value.

    Values are stored as text: UTF-8 from the webhook or the published JSON. Older stores
    (and bytes that were not UTF-8) hold one Latin-1 character per byte, such as
    ``â\\x82¬`` for ``€``: a value whose Latin-1 bytes form UTF-8 goes out as those bytes, any
    other value as UTF-8.
    """
    try:
        raw = value.encode("latin-1")
        raw.decode("utf-8")
    except UnicodeError:
        return value.encode("utf-8")
    return raw
