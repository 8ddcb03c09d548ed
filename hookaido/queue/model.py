"""Envelopes, delivery attempts and statistics: the values that cross the backend interface."""

import itertools
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime

STATES = ("queued", "leased", "delivered", "dead", "canceled")

# Event and attempt ids are 16 hex digits: the Unix time in milliseconds (11 digits, enough
# until the year 2527), then 5 digits of a per-process counter that starts at random. Ids
# made one after another sort one after another, so a store's id index grows at its end and
# a batch of neighbouring messages touches a few index pages instead of one page each. Two
# ids of one process can only meet if it makes more than a million ids in one millisecond.
_SEQUENCE = itertools.count(secrets.randbits(20))


def _ordered_hex() -> str:
    return f"{time.time_ns() // 1_000_000 & 0xFFFFFFFFFFF:011x}{next(_SEQUENCE) & 0xFFFFF:05x}"


def new_event_id() -> str:
    return "evt_" + _ordered_hex()


def new_lease_id() -> str:
    """Random: a lease id is what lets a worker settle a message, so it is not guessable."""
    return "lease_" + secrets.token_hex(8)


def new_lease_prefix() -> str:
    """``lease_`` and 10 random hex digits, for a store that completes each lease id of a
    batch with 6 hex digits that tell the batch's items apart."""
    return "lease_" + secrets.token_hex(5)


def new_lease_ids(count: int) -> list[str]:
    """``count`` random lease ids from one read of the system's random source."""
    digits = secrets.token_hex(8 * count)
    return ["lease_" + digits[start : start + 16] for start in range(0, 16 * count, 16)]


def new_attempt_id() -> str:
    return "att_" + _ordered_hex()


@dataclass
class Envelope:
    """One stored webhook or published message. Times are timezone-aware UTC datetimes."""

    id: str
    route: str
    target: str
    payload: bytes
    received_at: datetime
    next_run_at: datetime
    state: str = "queued"
    attempt: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    trace: dict[str, str] = field(default_factory=dict)
    dead_reason: str = ""
    schema_version: int = 1
    lease_id: str = ""
    lease_until: datetime | None = None


@dataclass
class Attempt:
    """One push-delivery try, recorded by the dispatcher."""

    id: str
    event_id: str
    route: str
    target: str
    attempt: int
    outcome: str  # acked | retry | dead
    created_at: datetime
    status_code: int = 0
    error: str = ""
    dead_reason: str = ""


@dataclass
class LeaseResult:
    """Outcome of a batch lease operation: how many succeeded and which leases conflicted."""

    succeeded: int = 0
    conflicts: list[tuple[str, str]] = field(default_factory=list)  # (lease_id, reason)


@dataclass
class BucketStats:
    """Queued items of one (route, target), with the age indicators of queue stats."""

    route: str
    target: str
    queued: int
    oldest_queued_received_at: datetime | None
    earliest_queued_next_run_at: datetime | None


@dataclass
class Stats:
    """Counts and ages that health, metrics, backlog and backpressure read."""

    total: int
    by_state: dict[str, int]
    oldest_queued_received_at: datetime | None
    earliest_queued_next_run_at: datetime | None
    top_queued: list[BucketStats] = field(default_factory=list)


# Backlog trend history keeps at most this many snapshot rows; the oldest go first.
TREND_ROW_LIMIT = 200_000


@dataclass(frozen=True)
class TrendRow:
    """Queued, leased and dead counts at one backlog snapshot; ``route``/``target`` are None
    on the snapshot's global row."""

    captured_at: datetime
    queued: int
    leased: int
    dead: int
    route: str | None = None
    target: str | None = None

    @property
    def total(self) -> int:
        return self.queued + self.leased + self.dead
