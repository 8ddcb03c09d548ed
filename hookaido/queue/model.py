"""Envelopes, delivery attempts and statistics: the values that cross the backend interface."""

import secrets
from dataclasses import dataclass, field
from datetime import datetime

STATES = ("queued", "leased", "delivered", "dead", "canceled")


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(8)


def new_lease_id() -> str:
    return "lease_" + secrets.token_hex(8)


def new_attempt_id() -> str:
    return "att_" + secrets.token_hex(8)


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
