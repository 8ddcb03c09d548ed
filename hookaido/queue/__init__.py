"""The queue model shared by every backend: envelopes, attempts, settings and the interface."""

from hookaido.queue.backend import (
    AttemptFilter,
    BackendSettings,
    MessageFilter,
    QueueBackend,
    Retention,
)
from hookaido.queue.base import BackendBase
from hookaido.queue.errors import (
    LeaseConflict,
    MemoryPressure,
    MessageExists,
    QueueError,
    QueueFull,
    SchemaTooNew,
    StoreUnavailable,
)
from hookaido.queue.model import (
    STATES,
    TREND_ROW_LIMIT,
    Attempt,
    Envelope,
    LeaseResult,
    Stats,
    TrendRow,
    new_attempt_id,
    new_event_id,
    new_lease_id,
)

__all__ = [
    "STATES",
    "Attempt",
    "AttemptFilter",
    "BackendBase",
    "BackendSettings",
    "Envelope",
    "LeaseConflict",
    "LeaseResult",
    "MemoryPressure",
    "MessageExists",
    "MessageFilter",
    "QueueBackend",
    "QueueError",
    "QueueFull",
    "Retention",
    "SchemaTooNew",
    "Stats",
    "StoreUnavailable",
    "TREND_ROW_LIMIT",
    "TrendRow",
    "new_attempt_id",
    "new_event_id",
    "new_lease_id",
]
