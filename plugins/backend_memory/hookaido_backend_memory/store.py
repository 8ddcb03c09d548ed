"""The in-memory queue: every envelope in a dict, heaps for the orders that leasing needs.

Nothing survives the process. One re-entrant lock guards all state; readiness waiters use the
separate condition of ``BackendBase``.
"""

import bisect
import heapq
import itertools
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta

from hookaido.queue.backend import AttemptFilter, BackendSettings, MessageFilter
from hookaido.queue.base import BackendBase, as_utc
from hookaido.queue.errors import LeaseConflict, MemoryPressure, MessageExists, QueueFull
from hookaido.queue.model import (
    STATES,
    Attempt,
    BucketStats,
    Envelope,
    LeaseResult,
    Stats,
    new_lease_id,
)

_STAMPS = itertools.count(1)
RETAINED_STATES = ("delivered", "dead", "canceled")
RETAINED_BYTES_LIMIT = 256 * 1024 * 1024
RETAINED_ITEMS_FLOOR = 1000
PRUNE_REASONS = (
    "queue_retention_age",
    "delivered_retention_age",
    "dead_retention_age",
    "dead_retention_depth",
    "attempts_retention_age",
    "attempts_retention_depth",
)
EVICTION_REASONS = (
    "drop_oldest",
    "queue_retention_age",
    "delivered_retention_age",
    "delivered_retention_depth",
    "dead_retention_age",
    "dead_retention_depth",
)


class _Item:
    """One stored envelope plus bookkeeping. ``version`` is a store-wide stamp renewed on
    every transition, so a heap entry carrying another stamp is known to be stale, even when
    the id was deleted and stored again. ``fixed_size`` counts the bytes that never change
    after the enqueue; ``size`` adds the dead reason and lease id of the current state."""

    __slots__ = ("envelope", "version", "fixed_size", "size")

    def __init__(self, envelope: Envelope):
        self.envelope = envelope
        self.version = next(_STAMPS)
        self.fixed_size = _fixed_size(envelope)
        self.size = _current_size(self)


def _text_bytes(text: str) -> int:
    """Length of ``text`` in UTF-8: the guard limits bytes, and a header such as ``5 €``
    takes more bytes than characters."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def _fixed_size(envelope: Envelope) -> int:
    size = len(envelope.payload)
    size += sum(_text_bytes(value) for value in (envelope.id, envelope.route, envelope.target))
    for mapping in (envelope.headers, envelope.trace):
        size += sum(_text_bytes(key) + _text_bytes(value) for key, value in mapping.items())
    return size


def _current_size(item: "_Item") -> int:
    envelope = item.envelope
    return item.fixed_size + _text_bytes(envelope.dead_reason) + len(envelope.lease_id)


def _copy(envelope: Envelope) -> Envelope:
    return replace(envelope, headers=dict(envelope.headers), trace=dict(envelope.trace))


class MemoryBackend(BackendBase):
    """Same semantics as the durable backends, held in process memory only."""

    name = "memory"

    def __init__(self, settings: BackendSettings):
        super().__init__(settings)
        self._lock = threading.RLock()
        self._items: dict[str, _Item] = {}
        self._leases: dict[str, str] = {}  # lease_id -> message id
        # Heaps of (order keys..., id, version); stale entries are skipped when met.
        self._ready: dict[tuple[str, str], list] = {}
        self._queued_by_age: list = []
        self._lease_deadlines: list = []
        self._deadlines_by_key: dict[tuple[str, str], list] = {}  # for readiness waiters
        self._delivered_by_age: list = []
        self._pushes = 0
        self._count = Counter()
        self._bytes = Counter()
        self._attempts: list[Attempt] = []
        self._evictions = Counter()
        self._pressure_rejected = 0

    # -- lifecycle --------------------------------------------------------------------------

    def open(self) -> None:
        """Nothing to prepare: the store starts empty."""

    def close(self) -> None:
        self.finish_pruning()
        with self._lock:
            self._items.clear()
            self._leases.clear()
            self._rebuild_indexes()

    # -- writing ----------------------------------------------------------------------------

    def enqueue(self, envelopes: Iterable[Envelope]) -> None:
        batch = [_copy(envelope) for envelope in envelopes]
        if not batch:
            return
        self._maybe_prune()

        with self._lock:
            self._check_new_ids(batch)
            victims = self._make_room(len(batch))
            self._trim_delivered_tombstones()
            self._check_pressure()
            for victim in victims:
                self._evict(victim, "drop_oldest")
            for envelope in batch:
                self._insert(envelope)

        self._notify_ready((envelope.route, envelope.target) for envelope in batch)

    def _check_new_ids(self, batch: list[Envelope]) -> None:
        seen = set()
        for envelope in batch:
            if envelope.id in self._items or envelope.id in seen:
                raise MessageExists(envelope.id)
            seen.add(envelope.id)

    def _make_room(self, incoming: int) -> list[_Item]:
        """The queued items ``drop_oldest`` must evict; raises ``QueueFull`` instead."""
        max_depth = self.settings.max_depth
        if max_depth <= 0:
            return []
        excess = self._count["queued"] + self._count["leased"] + incoming - max_depth
        if excess <= 0:
            return []
        if self.settings.drop_policy != "drop_oldest" or excess > self._count["queued"]:
            self.observer.count("enqueue_reject")
            raise QueueFull("queue is full")

        victims: list[_Item] = []
        popped = []
        while len(victims) < excess:
            entry = heapq.heappop(self._queued_by_age)
            popped.append(entry)
            item = self._valid(entry)
            if item is not None and item.envelope.state == "queued":
                victims.append(item)
        for entry in popped:  # eviction happens later; keep the index whole until then
            heapq.heappush(self._queued_by_age, entry)
        return victims

    def _trim_delivered_tombstones(self) -> None:
        """Keep at most ``max_depth`` delivered tombstones, and fewer when they alone would
        trip the retained-items guard: a tombstone is worth less than a new webhook."""
        if not self._delivered_retention_on() or self.settings.max_depth <= 0:
            return
        others = self._count["dead"] + self._count["canceled"]
        keep = min(self.settings.max_depth, max(0, self._retained_item_limit() - 1 - others))
        while self._count["delivered"] > keep and self._delivered_by_age:
            item = self._valid(heapq.heappop(self._delivered_by_age))
            if item is not None and item.envelope.state == "delivered":
                self._evict(item, "delivered_retention_depth")

    def _check_pressure(self) -> None:
        reason = self._pressure_reason()
        if reason:
            self._pressure_rejected += 1
            self.observer.count("enqueue_reject")
            self.observer.error("enqueue", "memory_pressure")
            raise MemoryPressure(reason)

    def _pressure_reason(self) -> str:
        """Which retained limit is reached now (``retained_items`` first), or ``""``."""
        limit = self._retained_item_limit()
        if limit is not None and self._retained_items() >= limit:
            return "retained_items"
        if self._retained_bytes() >= RETAINED_BYTES_LIMIT:
            return "retained_bytes"
        return ""

    def _retained_items(self) -> int:
        return sum(self._count[state] for state in RETAINED_STATES)

    def _retained_bytes(self) -> int:
        return sum(self._bytes[state] for state in RETAINED_STATES)

    def _retained_item_limit(self) -> int | None:
        if self.settings.max_depth <= 0:
            return None
        return max(self.settings.max_depth, RETAINED_ITEMS_FLOOR)

    def _insert(self, envelope: Envelope) -> None:
        envelope.received_at = as_utc(envelope.received_at)
        envelope.next_run_at = as_utc(envelope.next_run_at)
        envelope.state = "queued"
        envelope.lease_id = ""
        envelope.lease_until = None
        envelope.dead_reason = ""
        item = _Item(envelope)
        self._items[envelope.id] = item
        self._count["queued"] += 1
        self._bytes["queued"] += item.size
        self._index(item)

    # -- leasing ----------------------------------------------------------------------------

    def dequeue(self, route: str, target: str, batch: int, lease_ttl: timedelta) -> list[Envelope]:
        self._maybe_prune()
        wanted = self._batch_size(batch)
        leased: list[Envelope] = []

        with self._lock:
            now = self.settings.clock()
            expired_keys = self._sweep_expired(now)
            heap = self._ready.get((route, target), [])
            while heap and len(leased) < wanted:
                item = self._valid(heap[0])
                if item is None or item.envelope.state != "queued":
                    heapq.heappop(heap)
                    continue
                if item.envelope.next_run_at > now:
                    break
                heapq.heappop(heap)
                lease_until = now + lease_ttl
                lease_id = new_lease_id()
                self._transition(
                    item,
                    "leased",
                    lease_id=lease_id,
                    lease_until=lease_until,
                    next_run_at=lease_until,
                    attempt=item.envelope.attempt + 1,
                )
                self._leases[lease_id] = item.envelope.id
                leased.append(_copy(item.envelope))

        self._notify_ready(expired_keys)
        return leased

    def _sweep_expired(self, now: datetime) -> set[tuple[str, str]]:
        keys = set()
        while self._lease_deadlines and self._lease_deadlines[0][0] <= now:
            item = self._valid(heapq.heappop(self._lease_deadlines))
            if item is not None and item.envelope.state == "leased":
                keys.add(self._expire(item, now))
        return keys

    def _expire(self, item: _Item, now: datetime) -> tuple[str, str]:
        self._leases.pop(item.envelope.lease_id, None)
        self._transition(item, "queued", lease_id="", lease_until=None, next_run_at=now)
        return (item.envelope.route, item.envelope.target)

    def _live_lease(self, lease_id: str, route: str | None, now: datetime, notify: set):
        """The item holding a live lease, or the conflict reason. Expired leases requeue."""
        message_id = self._leases.get(lease_id)
        item = self._items.get(message_id) if message_id is not None else None
        if item is None or item.envelope.state != "leased":
            return None, "lease_not_found"
        if route is not None and item.envelope.route != route:
            return None, "lease_not_found"
        if item.envelope.lease_until is None or item.envelope.lease_until <= now:
            notify.add(self._expire(item, now))
            return None, "lease_expired"
        return item, ""

    def ack(self, lease_ids: list[str], route: str | None = None) -> LeaseResult:
        result = LeaseResult()
        settled: list[tuple[str, str]] = []
        notify: set = set()

        with self._lock:
            now = self.settings.clock()
            for lease_id in lease_ids:
                item, reason = self._live_lease(lease_id, route, now, notify)
                if item is None:
                    self._answer_unsettled(result, "ack", lease_id, route, reason)
                    continue
                self._leases.pop(lease_id, None)
                if self._delivered_retention_on():
                    self._transition(
                        item, "delivered", lease_id="", lease_until=None, next_run_at=now
                    )
                else:
                    self._remove(item)
                settled.append((lease_id, item.envelope.route))
                result.succeeded += 1

        for lease_id, lease_route in settled:
            self.settled.remember("ack", lease_id, lease_route)
        self._notify_ready(notify)
        return result

    def _answer_unsettled(self, result, kind, lease_id, route, reason) -> None:
        if reason == "lease_not_found" and self.settled.recall(kind, lease_id, route):
            result.succeeded += 1
        else:
            result.conflicts.append((lease_id, reason))

    def nack(
        self,
        lease_ids: list[str],
        delay: timedelta = timedelta(0),
        dead: bool = False,
        reason: str = "",
        route: str | None = None,
    ) -> LeaseResult:
        result = LeaseResult()
        settled: list[tuple[str, str]] = []
        notify: set = set()
        delay = max(delay, timedelta(0))

        with self._lock:
            now = self.settings.clock()
            for lease_id in lease_ids:
                item, conflict = self._live_lease(lease_id, route, now, notify)
                if item is None:
                    self._answer_unsettled(result, "nack", lease_id, route, conflict)
                    continue
                self._leases.pop(lease_id, None)
                cleared = {"lease_id": "", "lease_until": None, "next_run_at": now}
                if dead:
                    self._transition(item, "dead", dead_reason=reason, **cleared)
                else:
                    cleared["next_run_at"] = now + delay
                    self._transition(item, "queued", dead_reason="", **cleared)
                    notify.add((item.envelope.route, item.envelope.target))
                settled.append((lease_id, item.envelope.route))
                result.succeeded += 1

        for lease_id, lease_route in settled:
            self.settled.remember("nack", lease_id, lease_route)
        self._notify_ready(notify)
        return result

    def extend(self, lease_id: str, by: timedelta, route: str | None = None) -> None:
        if by <= timedelta(0):
            return
        notify: set = set()
        with self._lock:
            now = self.settings.clock()
            item, reason = self._live_lease(lease_id, route, now, notify)
            if item is not None:
                lease_until = item.envelope.lease_until + by
                self._transition(item, "leased", lease_until=lease_until, next_run_at=lease_until)
        self._notify_ready(notify)
        if item is None:
            raise LeaseConflict(lease_id, reason)

    def _next_ready_at(self, route: str, target: str) -> datetime | None:
        key = (route, target)
        with self._lock:
            found = [
                self._first_live(self._ready.get(key, []), "queued"),
                self._first_live(self._deadlines_by_key.get(key, []), "leased"),
            ]
        found = [moment for moment in found if moment is not None]
        return min(found) if found else None

    def _first_live(self, heap: list, state: str) -> datetime | None:
        """The order key of the first valid entry, dropping stale entries on the way."""
        while heap:
            item = self._valid(heap[0])
            if item is not None and item.envelope.state == state:
                return heap[0][0]
            heapq.heappop(heap)
        return None

    # -- reading ----------------------------------------------------------------------------

    def get(self, message_id: str) -> Envelope | None:
        with self._lock:
            item = self._items.get(message_id)
            return _copy(item.envelope) if item is not None else None

    def list_messages(self, selector: MessageFilter) -> list[Envelope]:
        self._maybe_prune()
        with self._lock:
            if selector.ids is not None:
                candidates = [self._items[i] for i in set(selector.ids) if i in self._items]
            else:
                candidates = list(self._items.values())
            found = [item.envelope for item in candidates if _matches(item.envelope, selector)]
            found.sort(key=lambda envelope: (envelope.received_at, envelope.id), reverse=True)
            if selector.limit > 0:
                found = found[: selector.limit]
            return [_copy(envelope) for envelope in found]

    def stats(self) -> Stats:
        self._maybe_prune()
        with self._lock:
            buckets: dict[tuple[str, str], list] = {}
            for item in self._items.values():
                envelope = item.envelope
                if envelope.state != "queued":
                    continue
                bucket = buckets.setdefault((envelope.route, envelope.target), [0, None, None])
                bucket[0] += 1
                if bucket[1] is None or envelope.received_at < bucket[1]:
                    bucket[1] = envelope.received_at
                if bucket[2] is None or envelope.next_run_at < bucket[2]:
                    bucket[2] = envelope.next_run_at
            by_state = {state: self._count[state] for state in STATES}

        top = sorted(buckets.items(), key=lambda kv: (-kv[1][0], kv[0][0], kv[0][1]))
        oldest = min((b[1] for b in buckets.values()), default=None)
        earliest = min((b[2] for b in buckets.values()), default=None)
        return Stats(
            total=sum(by_state.values()),
            by_state=by_state,
            oldest_queued_received_at=oldest,
            earliest_queued_next_run_at=earliest,
            top_queued=[
                BucketStats(route, target, count, first, soonest)
                for (route, target), (count, first, soonest) in top[:10]
            ],
        )

    def counts_by_route(
        self, states: tuple[str, ...] = ("queued", "leased", "dead")
    ) -> dict[tuple[str, str], dict[str, int]]:
        states = tuple(states)
        counts: dict[tuple[str, str], dict[str, int]] = {}
        with self._lock:
            for item in self._items.values():
                envelope = item.envelope
                if envelope.state in states:
                    key = (envelope.route, envelope.target)
                    counts.setdefault(key, dict.fromkeys(states, 0))[envelope.state] += 1
        return counts

    # -- lifecycle mutations ----------------------------------------------------------------

    def cancel(self, ids: Iterable[str]) -> int:
        def to_canceled(item: _Item, now: datetime) -> None:
            self._leases.pop(item.envelope.lease_id, None)
            self._transition(
                item, "canceled", lease_id="", lease_until=None, dead_reason="", next_run_at=now
            )

        return self._mutate(ids, ("queued", "leased", "dead"), to_canceled, wakes=False)

    def requeue(self, ids: Iterable[str]) -> int:
        def to_queued(item: _Item, now: datetime) -> None:
            self._transition(item, "queued", attempt=0, next_run_at=now, dead_reason="")

        return self._mutate(ids, ("dead", "canceled"), to_queued, wakes=True)

    def resume(self, ids: Iterable[str]) -> int:
        def to_queued(item: _Item, now: datetime) -> None:
            self._transition(item, "queued", next_run_at=now, dead_reason="")

        return self._mutate(ids, ("canceled",), to_queued, wakes=True)

    def delete_dead(self, ids: Iterable[str]) -> int:
        def delete(item: _Item, now: datetime) -> None:
            self._remove(item)

        return self._mutate(ids, ("dead",), delete, wakes=False)

    def _mutate(self, ids, eligible: tuple[str, ...], change, wakes: bool) -> int:
        changed = 0
        keys = set()
        with self._lock:
            now = self.settings.clock()
            for message_id in dict.fromkeys(ids):
                item = self._items.get(message_id)
                if item is None or item.envelope.state not in eligible:
                    continue
                change(item, now)
                keys.add((item.envelope.route, item.envelope.target))
                changed += 1
        if wakes:
            self._notify_ready(keys)
        return changed

    # -- delivery attempts ------------------------------------------------------------------

    def record_attempt(self, attempt: Attempt) -> None:
        with self._lock:
            stored = replace(attempt, created_at=as_utc(attempt.created_at))
            bisect.insort(self._attempts, stored, key=_attempt_order)
            max_rows = self.settings.retention.attempts_max_rows
            if max_rows is not None and len(self._attempts) > max_rows:
                del self._attempts[: len(self._attempts) - max_rows]

    def list_attempts(self, selector: AttemptFilter) -> list[Attempt]:
        found = []
        with self._lock:
            for attempt in reversed(self._attempts):
                if _attempt_matches(attempt, selector):
                    found.append(replace(attempt))
                    if 0 < selector.limit <= len(found):
                        break
        return found

    # -- retention --------------------------------------------------------------------------

    def prune(self) -> dict[str, int]:
        rules = self.settings.retention
        removed = dict.fromkeys(PRUNE_REASONS, 0)

        with self._lock:
            now = self.settings.clock()
            age_rules = (
                ("queued", rules.queue_max_age, "queue_retention_age", "received_at"),
                ("delivered", rules.delivered_max_age, "delivered_retention_age", "next_run_at"),
                ("dead", rules.dlq_max_age, "dead_retention_age", "received_at"),
            )
            for state, max_age, reason, field_name in age_rules:
                if max_age is None:
                    continue
                cutoff = now - max_age
                for item in list(self._items.values()):
                    envelope = item.envelope
                    if envelope.state == state and getattr(envelope, field_name) <= cutoff:
                        self._evict(item, reason)
                        removed[reason] += 1

            if rules.dlq_max_depth is not None:
                dead = [i for i in self._items.values() if i.envelope.state == "dead"]
                dead.sort(key=lambda i: (i.envelope.received_at, i.envelope.id), reverse=True)
                for item in dead[rules.dlq_max_depth :]:
                    self._evict(item, "dead_retention_depth")
                    removed["dead_retention_depth"] += 1

            self._prune_attempts(now, removed)
        return removed

    def _prune_attempts(self, now: datetime, removed: dict[str, int]) -> None:
        rules = self.settings.retention
        if rules.attempts_max_age is not None:
            cutoff = now - rules.attempts_max_age
            kept = [attempt for attempt in self._attempts if attempt.created_at > cutoff]
            removed["attempts_retention_age"] = len(self._attempts) - len(kept)
            self._attempts = kept
        if rules.attempts_max_rows is not None and len(self._attempts) > rules.attempts_max_rows:
            excess = len(self._attempts) - rules.attempts_max_rows
            del self._attempts[:excess]
            removed["attempts_retention_depth"] = excess

    # -- diagnostics ------------------------------------------------------------------------

    def diagnostics(self) -> dict:
        with self._lock:
            states = ("queued", "leased", "delivered", "dead")
            # The guard as the next enqueue would find it: relieving the pressure (a DLQ
            # delete, a resume) or building it up (a cancel) shows at once, not only after
            # the next webhook.
            reason = self._pressure_reason()
            return {
                "backend": self.name,
                "items_by_state": {state: self._count[state] for state in states},
                "retained_bytes_by_state": {state: self._bytes[state] for state in states},
                "retained_bytes_total": sum(self._bytes.values()),
                "evictions_total": {reason: self._evictions[reason] for reason in EVICTION_REASONS},
                "memory_pressure": {
                    "active": bool(reason),
                    "reason": reason,
                    "retained_items": self._retained_items(),
                    "retained_bytes": self._retained_bytes(),
                    "retained_item_limit": self._retained_item_limit() or 0,
                    "retained_bytes_limit": RETAINED_BYTES_LIMIT,
                    "rejected_total": self._pressure_rejected,
                },
            }

    # -- bookkeeping ------------------------------------------------------------------------

    def _transition(self, item: _Item, state: str, **changes) -> None:
        """Move an item to ``state`` (possibly the same) and re-index it."""
        envelope = item.envelope
        self._count[envelope.state] -= 1
        self._bytes[envelope.state] -= item.size
        envelope.state = state
        for name, value in changes.items():
            setattr(envelope, name, value)
        item.size = _current_size(item)
        self._count[state] += 1
        self._bytes[state] += item.size
        item.version = next(_STAMPS)
        self._index(item)

    def _remove(self, item: _Item) -> None:
        envelope = item.envelope
        self._count[envelope.state] -= 1
        self._bytes[envelope.state] -= item.size
        if envelope.lease_id:
            self._leases.pop(envelope.lease_id, None)
        del self._items[envelope.id]
        item.version = -1

    def _evict(self, item: _Item, reason: str) -> None:
        self._remove(item)
        self._evictions[reason] += 1
        self.observer.count("evict")

    def _valid(self, entry) -> _Item | None:
        item = self._items.get(entry[-2])
        if item is None or item.version != entry[-1]:
            return None
        return item

    def _index(self, item: _Item) -> None:
        envelope = item.envelope
        tail = (envelope.id, item.version)
        if envelope.state == "queued":
            heap = self._ready.setdefault((envelope.route, envelope.target), [])
            heapq.heappush(heap, (envelope.next_run_at, envelope.received_at, *tail))
            heapq.heappush(self._queued_by_age, (envelope.received_at, *tail))
        elif envelope.state == "leased":
            heapq.heappush(self._lease_deadlines, (envelope.lease_until, *tail))
            key = (envelope.route, envelope.target)
            heapq.heappush(
                self._deadlines_by_key.setdefault(key, []), (envelope.lease_until, *tail)
            )
        elif envelope.state == "delivered":
            heapq.heappush(self._delivered_by_age, (envelope.next_run_at, *tail))
        else:
            return
        self._pushes += 1
        if self._pushes > max(10000, 2 * len(self._items)):
            self._rebuild_indexes()

    def _rebuild_indexes(self) -> None:
        """Drop stale heap entries by rebuilding every index from the live items."""
        self._ready = {}
        self._queued_by_age = []
        self._lease_deadlines = []
        self._deadlines_by_key = {}
        self._delivered_by_age = []
        self._pushes = 0
        for item in self._items.values():
            envelope = item.envelope
            tail = (envelope.id, item.version)
            if envelope.state == "queued":
                heap = self._ready.setdefault((envelope.route, envelope.target), [])
                heap.append((envelope.next_run_at, envelope.received_at, *tail))
                self._queued_by_age.append((envelope.received_at, *tail))
            elif envelope.state == "leased":
                self._lease_deadlines.append((envelope.lease_until, *tail))
                key = (envelope.route, envelope.target)
                self._deadlines_by_key.setdefault(key, []).append((envelope.lease_until, *tail))
            elif envelope.state == "delivered":
                self._delivered_by_age.append((envelope.next_run_at, *tail))
        for heap in (
            *self._ready.values(),
            *self._deadlines_by_key.values(),
            self._queued_by_age,
            self._lease_deadlines,
            self._delivered_by_age,
        ):
            heapq.heapify(heap)


def _matches(envelope: Envelope, selector: MessageFilter) -> bool:
    if selector.route is not None and envelope.route != selector.route:
        return False
    if selector.target is not None and envelope.target != selector.target:
        return False
    if selector.states is not None and envelope.state not in selector.states:
        return False
    return selector.before is None or envelope.received_at < selector.before


def _attempt_order(attempt: Attempt):
    return (attempt.created_at, attempt.id)


def _attempt_matches(attempt: Attempt, selector: AttemptFilter) -> bool:
    checks = (
        (selector.route, attempt.route),
        (selector.target, attempt.target),
        (selector.event_id, attempt.event_id),
        (selector.outcome, attempt.outcome),
    )
    if any(wanted is not None and wanted != actual for wanted, actual in checks):
        return False
    return selector.before is None or attempt.created_at < selector.before
