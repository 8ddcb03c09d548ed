"""Behaviour every backend shares: readiness wake-ups, settled-lease memory, prune pacing.

Backends subclass ``BackendBase`` instead of ``QueueBackend`` to get these for free; nothing
here touches storage.
"""

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from hookaido.observability.log import event
from hookaido.queue.backend import SILENT_OBSERVER, BackendSettings, QueueBackend, StoreObserver

SETTLED_MEMORY = timedelta(minutes=2)
SETTLED_CAPACITY = 20000
MAX_DEQUEUE_BATCH = 100
# Waiters re-check at least this often, so a clock that jumps (or a lease that expires
# without any store activity) is noticed without a notification.
WAIT_RECHECK_SECONDS = 1.0


def as_utc(moment: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


class SettledLeases:
    """Leases settled successfully in the last two minutes, remembered per operation kind.

    A worker that retries an ``ack`` whose response it never saw must get success again,
    not a conflict. ``ack`` and ``nack`` are separate memories: an ``ack`` of a lease that
    was nacked is still a conflict.
    """

    # Limitation: the memory lives in the process; after a restart a repeated ack of a lease
    # settled before the restart answers lease_not_found instead of success.
    def __init__(self, clock, ttl: timedelta = SETTLED_MEMORY, capacity: int = SETTLED_CAPACITY):
        self._clock = clock
        self._ttl = ttl
        self._capacity = capacity
        self._lock = threading.Lock()
        self._kinds: dict[str, OrderedDict[str, tuple[str, datetime]]] = {}

    def remember(self, kind: str, lease_id: str, route: str) -> None:
        self.remember_all(kind, [(lease_id, route)])

    def remember_all(self, kind: str, settled: list[tuple[str, str]]) -> None:
        """Remember ``(lease_id, route)`` pairs settled together by ``kind``."""
        if not settled:
            return
        now = self._clock()
        with self._lock:
            memory = self._kinds.setdefault(kind, OrderedDict())
            for lease_id, route in settled:
                memory.pop(lease_id, None)
                memory[lease_id] = (route, now)
            self._forget_old(memory, now)
            while len(memory) > self._capacity:
                memory.popitem(last=False)

    def recall(self, kind: str, lease_id: str, route: str | None = None) -> bool:
        """True when ``lease_id`` was settled by ``kind`` recently (on ``route``, if given)."""
        now = self._clock()
        with self._lock:
            memory = self._kinds.get(kind)
            if not memory:
                return False
            self._forget_old(memory, now)
            remembered = memory.get(lease_id)
        if remembered is None:
            return False
        return route is None or remembered[0] == route

    def _forget_old(self, memory: OrderedDict, now: datetime) -> None:
        cutoff = now - self._ttl
        while memory:
            _, (_, settled_at) = next(iter(memory.items()))
            if settled_at > cutoff:
                break
            memory.popitem(last=False)


class BackendBase(QueueBackend):
    """A ``QueueBackend`` with the storage-independent parts already written.

    Subclasses implement the storage methods plus ``_next_ready_at`` and call
    ``_notify_ready`` after every transition that makes an envelope ready, ``_maybe_prune``
    on store activity, ``finish_pruning`` first thing in ``close``, and consult ``settled``
    when a lease is not found.
    """

    def __init__(self, settings: BackendSettings):
        super().__init__(settings)
        self.settled = SettledLeases(settings.clock)
        self._readiness = threading.Condition(threading.Lock())
        self._readiness_seq: dict[tuple[str, str], int] = {}
        self._prune_lock = threading.Lock()
        self._last_prune_at: datetime | None = None
        self._prune_thread: threading.Thread | None = None
        self._prune_running = False

    @property
    def observer(self) -> StoreObserver:
        """Where to report store operations: ``settings.observer``, or a silent stand-in."""
        return self.settings.observer or SILENT_OBSERVER

    # -- readiness ------------------------------------------------------------------------

    def _next_ready_at(self, route: str, target: str) -> datetime | None:
        """Earliest time an envelope of route/target becomes leasable (queued ``next_run_at``
        or a lease deadline), or None when there is nothing queued or leased."""
        raise NotImplementedError

    def _notify_ready(self, keys: Iterable[tuple[str, str]]) -> None:
        """Wake every waiter of the given (route, target) pairs."""
        keys = set(keys)
        if not keys:
            return
        with self._readiness:
            for key in keys:
                self._readiness_seq[key] = self._readiness_seq.get(key, 0) + 1
            self._readiness.notify_all()

    def wait_for_ready(self, route: str, target: str, timeout: float) -> bool:
        key = (route, target)
        clock = self.settings.clock
        remaining = max(0.0, float(timeout))
        deadline = time.monotonic() + remaining

        while True:
            with self._readiness:
                seen = self._readiness_seq.get(key, 0)
            next_at = self._next_ready_at(route, target)
            if next_at is not None and next_at <= clock():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False

            pause = min(remaining, WAIT_RECHECK_SECONDS)
            if next_at is not None:
                until_ready = (next_at - clock()).total_seconds()
                pause = max(0.0, min(pause, until_ready))
            with self._readiness:
                if self._readiness_seq.get(key, 0) == seen:
                    self._readiness.wait(pause)
                if self._readiness_seq.get(key, 0) != seen:
                    return True

    # -- retention pacing -----------------------------------------------------------------

    def _maybe_prune(self) -> None:
        """Start a ``prune`` pass on a background thread when ``prune_interval`` has passed
        since the last one, so the request that happens to trigger it does not wait."""
        if not self._claim_prune_pass():
            return
        self._prune_thread = threading.Thread(
            target=self._prune_quietly, name="hookaido-queue-prune", daemon=True
        )
        self._prune_thread.start()

    def prune_when_due(self) -> dict[str, int] | None:
        if not self._claim_prune_pass():
            return None
        try:
            return self.prune()
        finally:
            self._prune_running = False

    def seconds_until_prune_due(self) -> float:
        interval = self.settings.retention.prune_interval
        if interval is None or interval <= timedelta(0):
            return 0.0
        with self._prune_lock:
            last = self._last_prune_at
        if last is None:
            return 0.0
        remaining = interval - (self.settings.clock() - last)
        return max(0.0, remaining.total_seconds())

    def _claim_prune_pass(self) -> bool:
        """Whether the caller may run a prune pass now; if so, the pace starts again from now."""
        interval = self.settings.retention.prune_interval
        if interval is None or interval <= timedelta(0):
            return False
        now = self.settings.clock()
        with self._prune_lock:
            last = self._last_prune_at
            if last is not None and now - last < interval:
                return False
            if self._prune_running:
                return False
            self._last_prune_at = now
            self._prune_running = True
            return True

    def _prune_quietly(self) -> None:
        try:
            removed = self.prune()
        except Exception as exc:  # pruning is housekeeping: the store goes on without it
            event("queue_prune_failed", level="warn", error=str(exc))
            return
        finally:
            self._prune_running = False
        if any(removed.values()):
            event("queue_pruned", **{reason: n for reason, n in removed.items() if n})

    def finish_pruning(self, timeout: float = 30.0) -> None:
        """Wait for a prune pass started by store activity; call it before closing storage."""
        thread = self._prune_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # -- shared helpers ---------------------------------------------------------------------

    @staticmethod
    def _batch_size(batch: int) -> int:
        return max(0, min(int(batch), MAX_DEQUEUE_BATCH))

    def _delivered_retention_on(self) -> bool:
        return self.settings.retention.delivered_max_age is not None
