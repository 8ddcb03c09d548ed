"""The interface every queue backend implements, and the settings it is built from.

A backend is the only shared state of a Hookaido process: ingress, the Pull API, the Admin
API and the push dispatcher all talk to it through these methods, from many threads at once.
Every method must be safe to call concurrently. Times are timezone-aware UTC datetimes taken
from ``settings.clock()`` so the contract suite can move time without sleeping.
"""

import abc
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hookaido.queue.model import Attempt, Envelope, LeaseResult, Stats


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Retention:
    """Retention rules; ``None`` means the rule is off."""

    queue_max_age: timedelta | None = timedelta(days=7)
    prune_interval: timedelta | None = timedelta(minutes=5)
    delivered_max_age: timedelta | None = None
    dlq_max_age: timedelta | None = timedelta(days=30)
    dlq_max_depth: int | None = 10000
    attempts_max_age: timedelta | None = timedelta(days=7)
    attempts_max_rows: int | None = 200000


@dataclass(frozen=True)
class BackendSettings:
    """What a backend factory receives. ``db_path`` is ignored by non-file backends."""

    db_path: str = "./hookaido.db"
    max_depth: int = 10000  # queued + leased across all routes; 0 = unlimited
    drop_policy: str = "reject"  # reject | drop_oldest
    retention: Retention = field(default_factory=Retention)
    clock: Callable[[], datetime] = utc_now


@dataclass(frozen=True)
class MessageFilter:
    """Selects envelopes for listing and lifecycle mutations. ``None`` fields match all."""

    route: str | None = None
    target: str | None = None
    states: tuple[str, ...] | None = None
    before: datetime | None = None  # received_at strictly before
    ids: tuple[str, ...] | None = None
    limit: int = 100


@dataclass(frozen=True)
class AttemptFilter:
    route: str | None = None
    target: str | None = None
    event_id: str | None = None
    outcome: str | None = None
    before: datetime | None = None  # created_at strictly before
    limit: int = 100


class QueueBackend(abc.ABC):
    """Durable (or not) storage of envelopes with leases. See the method docstrings.

    Lease operations take an optional ``route``: when given, a lease that belongs to another
    route is treated exactly like an unknown lease (``lease_not_found``).
    """

    def __init__(self, settings: BackendSettings):
        self.settings = settings

    # -- lifecycle ------------------------------------------------------------------------

    @abc.abstractmethod
    def open(self) -> None:
        """Prepare storage (create files, migrate). Called once before any other method."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release storage. No method is called afterwards."""

    # -- writing ----------------------------------------------------------------------------

    @abc.abstractmethod
    def enqueue(self, envelopes: Iterable[Envelope]) -> None:
        """Store envelopes as ``queued``, all or nothing, durably before returning.

        Enforces ``max_depth`` with the drop policy (``QueueFull``), duplicate ids
        (``MessageExists``) and, for in-memory backends, ``MemoryPressure``. Wakes waiters.
        """

    # -- leasing ----------------------------------------------------------------------------

    @abc.abstractmethod
    def dequeue(self, route: str, target: str, batch: int, lease_ttl: timedelta) -> list[Envelope]:
        """Lease up to ``min(batch, 100)`` ready envelopes of ``route``/``target``, oldest first.

        Expired leases are swept back to ``queued`` first. Returned envelopes are ``leased``
        with ``lease_id``, ``lease_until`` (= ``next_run_at``) set and ``attempt`` incremented.
        """

    @abc.abstractmethod
    def wait_for_ready(self, route: str, target: str, timeout: float) -> bool:
        """Block up to ``timeout`` seconds until an envelope of route/target may be ready.

        Returns True when woken by a readiness transition (enqueue, nack, requeue, resume,
        expiry), False on timeout. Spurious wake-ups are allowed.
        """

    @abc.abstractmethod
    def ack(self, lease_ids: list[str], route: str | None = None) -> LeaseResult:
        """Settle leases as done: remove, or keep as ``delivered`` when retention is on.

        A lease acked successfully within the last 2 minutes counts as success again.
        """

    @abc.abstractmethod
    def nack(
        self,
        lease_ids: list[str],
        delay: timedelta = timedelta(0),
        dead: bool = False,
        reason: str = "",
        route: str | None = None,
    ) -> LeaseResult:
        """Return leases to ``queued`` after ``delay``, or move them to ``dead`` with ``reason``.

        A lease nacked successfully within the last 2 minutes counts as success again.
        """

    @abc.abstractmethod
    def extend(self, lease_id: str, by: timedelta, route: str | None = None) -> None:
        """Push a live lease's deadline out by ``by``; raise ``LeaseConflict`` otherwise."""

    # -- reading ----------------------------------------------------------------------------

    @abc.abstractmethod
    def get(self, message_id: str) -> Envelope | None:
        """The envelope with this id, in any state."""

    @abc.abstractmethod
    def list_messages(self, selector: MessageFilter) -> list[Envelope]:
        """Envelopes matching the filter, newest ``received_at`` first, then id descending."""

    @abc.abstractmethod
    def stats(self) -> Stats:
        """Counts by state, oldest queued age indicators and the top queued buckets."""

    # -- lifecycle mutations ----------------------------------------------------------------

    @abc.abstractmethod
    def cancel(self, ids: Iterable[str]) -> int:
        """queued/leased/dead → canceled. Returns how many changed; others are skipped."""

    @abc.abstractmethod
    def requeue(self, ids: Iterable[str]) -> int:
        """dead/canceled → queued with ``attempt`` reset to 0. Returns how many changed."""

    @abc.abstractmethod
    def resume(self, ids: Iterable[str]) -> int:
        """canceled → queued keeping ``attempt``. Returns how many changed."""

    @abc.abstractmethod
    def delete_dead(self, ids: Iterable[str]) -> int:
        """Remove ``dead`` envelopes. Returns how many were removed."""

    # -- delivery attempts ------------------------------------------------------------------

    @abc.abstractmethod
    def record_attempt(self, attempt: Attempt) -> None:
        """Store one delivery attempt."""

    @abc.abstractmethod
    def list_attempts(self, selector: AttemptFilter) -> list[Attempt]:
        """Attempts matching the filter, newest ``created_at`` first, then id descending."""

    # -- retention --------------------------------------------------------------------------

    @abc.abstractmethod
    def prune(self) -> dict[str, int]:
        """Apply every retention rule now; returns removed counts by reason."""

    # -- diagnostics ------------------------------------------------------------------------

    def diagnostics(self) -> dict | None:
        """Backend-specific health details (the ``store`` section of ``/healthz?details=1``).

        ``None`` (the default) when the backend has nothing beyond ``stats`` to report.
        """
        return None
