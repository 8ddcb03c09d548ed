"""JSON shapes of envelopes and delivery attempts, and RFC 3339 time rendering and parsing.

Times leave as UTC with a ``Z`` suffix and a trimmed fraction; inputs accept any offset.
"""

import base64
from datetime import UTC, datetime

import orjson

from hookaido.config.values import parse_timestamp
from hookaido.queue.model import Attempt, Envelope


def render_time(moment: datetime) -> str:
    """``2026-02-09T10:00:00.123Z``: UTC, fraction without trailing zeros, none when zero."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    elif moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    # orjson writes ``"…:00.120000Z"`` (no fraction when it is zero) twice as fast as
    # isoformat; every item of a dequeue answer renders one of these.
    text = orjson.dumps(moment, option=orjson.OPT_UTC_Z)[1:-2].decode()
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text + "Z"


# Every backend can store these: signed 64-bit Unix nanoseconds end at 1677-09-21 and
# 2262-04-11; a margin leaves room for offsets such as a lease or a trend window.
EARLIEST_TIME = datetime(1678, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(2261, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
TIME_FORMAT = "an RFC 3339 timestamp between 1678-01-01 and 2261-12-31"


def parse_time(text: str) -> datetime:
    """An RFC 3339 timestamp (any offset, optional fraction) as an aware UTC datetime.

    Raises ``ValueError`` for anything else and for a time outside ``EARLIEST_TIME`` ..
    ``LATEST_TIME``. Digits beyond microseconds are truncated.
    """
    if not isinstance(text, str):
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    try:
        moment = parse_timestamp(text)
    except OverflowError:
        raise ValueError(f"timestamp out of range: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if not EARLIEST_TIME <= moment <= LATEST_TIME:
        raise ValueError(f"timestamp out of range: {text!r}")
    return moment


def payload_b64(payload: bytes) -> str:
    return base64.b64encode(payload).decode("ascii")


def dequeue_items(envelopes: list[Envelope]) -> list[dict]:
    """The items of a dequeue response. A batch shares one lease deadline, rendered once."""
    rendered: dict[datetime, str] = {}
    items = []
    for envelope in envelopes:
        deadline = envelope.lease_until or envelope.next_run_at
        text = rendered.get(deadline)
        if text is None:
            text = rendered[deadline] = render_time(deadline)
        items.append(dequeue_item(envelope, text))
    return items


def dequeue_item(envelope: Envelope, deadline: str | None = None) -> dict:
    """One item of a dequeue response or an SSE ``message`` event; ``deadline`` is the
    lease deadline already rendered, when the caller has it."""
    item = {
        "id": envelope.id,
        "lease_id": envelope.lease_id,
        "route": envelope.route,
        "target": "pull",
        "received_at": render_time(envelope.received_at),
        "next_run_at": deadline or render_time(envelope.lease_until or envelope.next_run_at),
        "attempt": envelope.attempt,
        "payload_b64": payload_b64(envelope.payload),
    }
    if envelope.headers:
        item["headers"] = dict(envelope.headers)
    if envelope.trace:
        item["trace"] = dict(envelope.trace)
    return item


def message_item(
    envelope: Envelope,
    include_payload: bool = False,
    include_headers: bool = False,
    include_trace: bool = False,
    with_state: bool = True,
) -> dict:
    """One item of ``GET /messages`` (``with_state``) or ``GET /dlq`` (without)."""
    item = {"id": envelope.id, "route": envelope.route, "target": envelope.target}
    if with_state:
        item["state"] = envelope.state
    item["received_at"] = render_time(envelope.received_at)
    item["attempt"] = envelope.attempt
    if with_state:
        item["next_run_at"] = render_time(envelope.next_run_at)
    if envelope.dead_reason:
        item["dead_reason"] = envelope.dead_reason
    if include_payload and envelope.payload:
        item["payload_b64"] = payload_b64(envelope.payload)
    if include_headers and envelope.headers:
        item["headers"] = dict(envelope.headers)
    if include_trace and envelope.trace:
        item["trace"] = dict(envelope.trace)
    return item


def attempt_item(attempt: Attempt) -> dict:
    """One item of ``GET /attempts``."""
    item = {
        "id": attempt.id,
        "event_id": attempt.event_id,
        "route": attempt.route,
        "target": attempt.target,
        "attempt": attempt.attempt,
    }
    if attempt.status_code:
        item["status_code"] = attempt.status_code
    if attempt.error:
        item["error"] = attempt.error
    item["outcome"] = attempt.outcome
    if attempt.dead_reason:
        item["dead_reason"] = attempt.dead_reason
    item["created_at"] = render_time(attempt.created_at)
    return item
