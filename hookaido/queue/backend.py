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
from typing import Protocol

from hookaido.queue.model import Attempt, Envelope, LeaseResult, Stats, TrendRow


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


class StoreObserver(Protocol):
    """Where a backend reports its own operations; Hookaido turns the reports into the
    ``hookaido_store_*`` metrics, labelled with the backend's name.

    Calls must be cheap and never raise, so a backend may make them with its locks held.
    Operation and kind names are the backend's own vocabulary; the names Hookaido documents
    for ``sqlite`` and ``memory`` (operations ``write_tx``, ``dequeue_tx``, ``checkpoint``,
    ``tx_commit``, ``tx_rollback``, ``retry``, ``enqueue_reject``, ``evict``; errors
    ``begin_tx``/``busy``, ``checkpoint``/``error``, ``enqueue``/``memory_pressure``) also
    feed the backend-specific families. Other backends may report names of their own.
    """

    def observe(self, operation: str, seconds: float) -> None:
        """One timed operation took ``seconds`` (``hookaido_store_operation_seconds``)."""

    def count(self, operation: str) -> None:
        """One operation happened (``hookaido_store_operation_total``)."""

    def error(self, operation: str, kind: str) -> None:
        """``operation`` failed with ``kind`` (``hookaido_store_errors_total``)."""


class SilentObserver:
    """The observer of a backend built without one: every report is dropped."""

    def observe(self, operation: str, seconds: float) -> None:
        pass

    def count(self, operation: str) -> None:
        pass

    def error(self, operation: str, kind: str) -> None:
        pass


SILENT_OBSERVER = SilentObserver()


@dataclass(frozen=True)
class BackendSettings:
    """What a backend factory receives. ``db_path`` is ignored by non-file backends.

    ``observer`` (a ``StoreObserver``) receives the backend's operation reports; ``None``
    means nobody listens. Backends built on ``BackendBase`` use ``self.observer``, which is
    never ``None``.
    """

    db_path: str = "./hookaido.db"
    max_depth: int = 10000  # queued + leased across all routes; 0 = unlimited
    drop_policy: str = "reject"  # reject | drop_oldest
    retention: Retention = field(default_factory=Retention)
    clock: Callable[[], datetime] = utc_now
    observer: StoreObserver | None = None


@dataclass(frozen=True)
class MessageFilter:
    """Selects envelopes for listing and lifecycle mutations. ``None`` fields match all.

    ``states``/``ids`` given as empty tuples match nothing; ``limit <= 0`` means no limit.
    """

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

    A lease is *live* while its envelope is ``leased`` and ``lease_until > now``. A lease
    operation (ack, nack, extend) on any other lease fails for that lease with reason
    ``lease_not_found`` (unknown, settled, canceled, foreign route) or ``lease_expired``
    (deadline reached; the envelope is put back to ``queued`` with ``next_run_at = now`` as a
    side effect). Batch operations apply every good lease and report the others in
    ``LeaseResult.conflicts``; nothing is rolled back.

    Authors: subclass ``hookaido.queue.base.BackendBase``, which already provides
    ``wait_for_ready``, the two-minute memory of settled leases and prune pacing, then run
    Hookaido's ``tests/queue`` contract suite with the plugin installed. Raise
    ``StoreUnavailable`` for storage failures; the APIs answer 503 ``store_unavailable``.
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

        ``id``, ``received_at``, ``next_run_at``, ``attempt``, payload, headers and trace are
        kept as given; lease fields and ``dead_reason`` are cleared.

        Depth is the number of ``queued`` + ``leased`` envelopes over all routes. With
        ``max_depth > 0`` and ``depth + n > max_depth``: policy ``reject`` raises
        ``QueueFull``; ``drop_oldest`` first deletes the oldest ``queued`` envelopes by
        ``received_at`` and raises ``QueueFull`` when there are not enough of them. An id
        that is stored already (or repeated in the batch) raises ``MessageExists``; nothing
        is written and no eviction survives a failed enqueue. In-memory backends may raise
        ``MemoryPressure``. Wakes ``wait_for_ready`` callers of each envelope's route/target.
        """

    # -- leasing ----------------------------------------------------------------------------

    @abc.abstractmethod
    def dequeue(self, route: str, target: str, batch: int, lease_ttl: timedelta) -> list[Envelope]:
        """Lease up to ``min(batch, 100)`` ready envelopes of ``route``/``target``, oldest first.

        Every expired lease (any route) is first swept back to ``queued`` with
        ``next_run_at = now`` and ``attempt`` unchanged. Ready means ``queued`` with
        ``next_run_at <= now``; oldest first means ``next_run_at``, then ``received_at``, then
        ``id`` ascending. Returned envelopes are ``leased`` with a new ``lease_id``, ``lease_until
        = next_run_at = now + lease_ttl`` and ``attempt`` incremented. Never blocks; an empty
        list means nothing is ready. Two concurrent calls never lease the same envelope.
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

        ``delivered`` (when ``retention.delivered_max_age`` is set) clears the lease and
        sets ``next_run_at = now``. A lease acked successfully within the last 2 minutes
        counts as success again (at most 20 000 remembered per operation kind; a lease that
        was nacked is not remembered as acked).
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

        Requeue: ``next_run_at = now + max(delay, 0)``, ``dead_reason`` cleared, waiters woken
        whatever the delay. Dead: ``next_run_at = now``, ``dead_reason = reason``, ``delay``
        ignored. A lease nacked successfully within the last 2 minutes counts as success
        again (the memory is shared by both variants and separate from ``ack``'s).
        """

    @abc.abstractmethod
    def extend(self, lease_id: str, by: timedelta, route: str | None = None) -> None:
        """Push a live lease's deadline out by ``by``; raise ``LeaseConflict`` otherwise.

        The new deadline is the old ``lease_until + by`` (``next_run_at`` follows it). A
        non-positive ``by`` returns at once without looking at the lease.
        """

    # -- reading ----------------------------------------------------------------------------

    @abc.abstractmethod
    def get(self, message_id: str) -> Envelope | None:
        """The envelope with this id, in any state."""

    @abc.abstractmethod
    def list_messages(self, selector: MessageFilter) -> list[Envelope]:
        """Envelopes matching the filter, newest ``received_at`` first, then id descending.

        May run a due prune pass first (see ``prune``).
        """

    @abc.abstractmethod
    def stats(self) -> Stats:
        """Counts by state, oldest queued age indicators and the top queued buckets.

        ``by_state`` has all five states; the oldest/earliest fields are ``None`` when nothing
        is queued; ``top_queued`` holds at most 10 (route, target) buckets of queued
        envelopes, sorted by count descending, then route, then target.
        """

    def counts_by_route(
        self, states: tuple[str, ...] = ("queued", "leased", "dead")
    ) -> dict[tuple[str, str], dict[str, int]]:
        """Envelope counts per (route, target) and state, for the given states.

        Only pairs with at least one envelope in ``states`` appear; each inner dict has every
        requested state (0 when none). Used by backlog trend snapshots. This default lists
        the envelopes; backends should override it with an aggregate query.
        """
        counts: dict[tuple[str, str], dict[str, int]] = {}
        for envelope in self.list_messages(MessageFilter(states=tuple(states), limit=0)):
            bucket = counts.setdefault((envelope.route, envelope.target), dict.fromkeys(states, 0))
            bucket[envelope.state] += 1
        return counts

    # -- lifecycle mutations ----------------------------------------------------------------

    @abc.abstractmethod
    def cancel(self, ids: Iterable[str]) -> int:
        """queued/leased/dead → canceled. Returns how many changed; others are skipped.

        The lease is dropped (a later ack is ``lease_not_found``), ``dead_reason`` cleared,
        ``next_run_at = now``. Unknown ids and repeated ids count once or not at all.
        """

    @abc.abstractmethod
    def requeue(self, ids: Iterable[str]) -> int:
        """dead/canceled → queued with ``attempt`` reset to 0. Returns how many changed.

        ``next_run_at = now``, ``dead_reason`` cleared; waiters are woken.
        """

    @abc.abstractmethod
    def resume(self, ids: Iterable[str]) -> int:
        """canceled → queued keeping ``attempt``, ``next_run_at = now``. Wakes waiters."""

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
        """Apply every retention rule now; returns removed counts by reason.

        Keys: ``queue_retention_age`` (queued, by ``received_at``), ``delivered_retention_age``
        (delivered, by ack time = ``next_run_at``), ``dead_retention_age`` (dead, by
        ``received_at``), ``dead_retention_depth`` (all but the newest ``dlq_max_depth`` dead
        by ``received_at``), ``attempts_retention_age`` and ``attempts_retention_depth`` (all
        but the newest ``attempts_max_rows``). A rule set to ``None`` removes nothing (0).
        Leased and canceled envelopes are never pruned. Backends also run this on store
        activity at most once per ``prune_interval``.
        """

    def prune_when_due(self) -> dict[str, int] | None:
        """Called by Hookaido's retention timer: run a ``prune`` pass on the calling thread
        unless one ran (or is running) within the last ``prune_interval``.

        Returns the removed counts, or None when no pass was due. The default prunes every
        time; ``BackendBase`` shares one pace between this timer and store activity, so that
        passes stay at most one ``prune_interval`` apart whoever starts them.
        """
        return self.prune()

    def seconds_until_prune_due(self) -> float:
        """How long the retention timer waits before its next ``prune_when_due`` call."""
        interval = self.settings.retention.prune_interval
        return interval.total_seconds() if interval else 0.0

    # -- backlog trend history ----------------------------------------------------------------

    # True when the backend keeps backlog trend snapshots in its own storage, so that the
    # history outlives the process like the messages do; Hookaido then calls the two methods
    # below. False: Hookaido keeps the snapshots in process memory and never calls them.
    keeps_backlog_trends = False

    def record_backlog_trends(self, rows: list[TrendRow]) -> None:
        """Store the rows of one snapshot (the global row and one per route/target), then
        drop the oldest rows beyond ``TREND_ROW_LIMIT``. Only called when
        ``keeps_backlog_trends`` is True."""
        raise NotImplementedError

    def backlog_trends(self, since: datetime, until: datetime) -> list[TrendRow]:
        """Every stored row with ``since <= captured_at <= until``, oldest capture first, each
        snapshot's rows in the order they were recorded. Only called when
        ``keeps_backlog_trends`` is True."""
        raise NotImplementedError

    # -- diagnostics ------------------------------------------------------------------------

    def diagnostics(self) -> dict | None:
        """Backend-specific health details (the ``store`` section of ``/healthz?details=1``).

        ``None`` (the default) when the backend has nothing beyond ``stats`` to report.
        """
        return None
