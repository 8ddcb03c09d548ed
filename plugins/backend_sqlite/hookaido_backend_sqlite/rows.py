"""How envelopes and attempts are laid out in SQLite rows: times as Unix nanoseconds, header
and trace maps as compact JSON text, columns in the order of the SELECT lists below."""

import json
from datetime import UTC, datetime, timedelta

import orjson

from hookaido.queue.model import Attempt, Envelope

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

ITEM_COLUMNS = (
    "id, route, target, state, received_at, attempt, next_run_at, payload, headers, trace,"
    " dead_reason, schema_version, lease_id, lease_until"
)
ATTEMPT_COLUMNS = (
    "id, event_id, route, target, attempt, status_code, error, outcome, dead_reason, created_at"
)


def to_ns(moment: datetime) -> int:
    """Unix nanoseconds of a datetime (naive values are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def from_ns(nanos: int) -> datetime:
    return EPOCH + timedelta(microseconds=nanos // 1000)


def duration_ns(duration: timedelta) -> int:
    return (duration.days * 86400 + duration.seconds) * 1_000_000_000 + duration.microseconds * 1000


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _encode(value) -> str:
    """Compact JSON text. orjson writes the same text as the standard encoder several times
    faster; a string it refuses (a lone surrogate) falls back to the standard encoder."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return _ENCODER.encode(value)


def from_json(text: str):
    """JSON text written by SQLite's JSON functions or by ``_encode``."""
    return orjson.loads(text)


def to_json(mapping: dict[str, str]) -> str:
    return _encode(mapping) if mapping else "{}"


def envelope_from_row(row) -> Envelope:
    return Envelope(
        id=row[0],
        route=row[1],
        target=row[2],
        state=row[3],
        received_at=from_ns(row[4]),
        attempt=row[5],
        next_run_at=from_ns(row[6]),
        payload=bytes(row[7] or b""),
        headers=from_json(row[8] or "{}"),
        trace=from_json(row[9] or "{}"),
        dead_reason=row[10] or "",
        schema_version=row[11],
        lease_id=row[12] or "",
        lease_until=from_ns(row[13]) if row[13] is not None else None,
    )


def attempt_from_row(row) -> Attempt:
    return Attempt(
        id=row[0],
        event_id=row[1],
        route=row[2],
        target=row[3],
        attempt=row[4],
        status_code=row[5] or 0,
        error=row[6] or "",
        outcome=row[7],
        dead_reason=row[8] or "",
        created_at=from_ns(row[9]),
    )


def to_json_list(values: list) -> str:
    """A list as compact JSON, bound as one parameter and read back with ``json_each``."""
    return _encode(values)
