"""The push dispatcher: worker threads lease envelopes of every deliver route, hand each to its
target's deliverer, record the attempt and settle the lease as acked, retried later or dead.

It never parses config or speaks HTTP itself: deliverers and signers come from the plugins.
"""

import heapq
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hookaido.config.model import Config, DeliverTarget, RetryPolicy, Route, SignConfig
from hookaido.config.values import render_duration
from hookaido.delivery import DeliveryContext, Outcome, error_text
from hookaido.errors import ConfigError
from hookaido.observability.log import event
from hookaido.observability.metrics import DEAD_REASONS
from hookaido.queue import Attempt, Envelope, new_attempt_id
from hookaido.runtime import Generation, Runtime

# An idle route has one worker per target waiting in the store's ``wait_for_ready`` (which
# wakes on every readiness transition); the rest of its workers sleep on the route's condition
# and touch no store. IDLE_WAIT_SECONDS only bounds how long a waiting worker goes without a
# dequeue when no wake-up comes (a safety net for backends that miss one).
IDLE_WAIT_SECONDS = 30.0
# A waiting worker re-checks the stop signal at least this often.
STOP_CHECK_SECONDS = 1.0
# Followers re-check for a free waiting place at least this often (no store call).
FOLLOWER_WAIT_SECONDS = 30.0
# A wait that reports "ready" at once and then leases nothing, several times in a row, means
# the store disagrees with itself; pause this long instead of spinning.
SPIN_PAUSE_SECONDS = 0.1
SPIN_LIMIT = 3
SPIN_INSTANT_SECONDS = 0.005
MISSING_TARGET_DELAY = timedelta(seconds=1)
PULL_TARGET = "pull"
RETRY_AFTER_CAP = timedelta(hours=1)
STORE_ERROR_PAUSE = 1.0


# --------------------------------------------------------------------------------------
# The arithmetic of the schedule
# --------------------------------------------------------------------------------------


def backoff(policy: RetryPolicy, attempt: int, uniform: Callable[[], float] = random.random):
    """The wait after failed attempt ``attempt`` (1-based): doubled from ``base`` up to ``cap``,
    then spread by ``jitter``. ``uniform`` returns a float in [0, 1)."""
    base = policy.base.total_seconds()
    cap = policy.cap.total_seconds()
    delay = min(base * 2.0 ** min(attempt - 1, 64), cap)
    if policy.jitter > 0:
        u = uniform() * 2.0 - 1.0
        delay = max(delay * (1.0 + policy.jitter * u), 0.0)
    return timedelta(seconds=delay)


def retry_delay(
    policy: RetryPolicy,
    attempt: int,
    retry_after: timedelta | None,
    uniform: Callable[[], float] = random.random,
) -> timedelta:
    """The backoff, lengthened (never shortened) by the target's capped ``Retry-After``."""
    delay = backoff(policy, attempt, uniform)
    if retry_after is not None and retry_after > timedelta(0):
        delay = max(delay, min(retry_after, RETRY_AFTER_CAP))
    return delay


def batch_size(route: Route) -> int:
    if route.deliver_concurrency <= 1:
        return 1
    if len(route.targets) > 1:
        return 2
    return min(route.deliver_concurrency, 4)


def lease_ttl(route: Route, batch: int) -> timedelta:
    longest = max(target.timeout for target in route.targets)
    return max(longest * batch + timedelta(seconds=30), timedelta(seconds=30))


def drain_budget(config: Config) -> timedelta:
    """How long a reload waits for in-flight deliveries before replacing the dispatcher."""
    timeouts = [t.timeout for route in config.deliver_routes for t in route.targets]
    wanted = max([timedelta(seconds=2), *timeouts]) + timedelta(seconds=5)
    return min(max(wanted, timedelta(seconds=15)), timedelta(seconds=60))


def delivery_fingerprint(generation: Generation) -> tuple:
    """Everything delivery depends on; a reload replaces the dispatcher only when it changes."""
    config = generation.config
    routes = tuple(
        (route.path, route.deliver_concurrency, route.targets) for route in config.deliver_routes
    )
    signs = _sign_configs(config)
    signing_ids = {secret_id for sign in signs for secret_id in sign.secret_refs}
    versions = tuple(version for version in config.secrets if version.id in signing_ids)
    refs = [ref for sign in signs for ref in sign.secrets]
    refs += [version.value for version in versions]
    loaded = tuple((ref, generation.secrets.get(ref)) for ref in refs)
    return (config.defaults.egress, routes, versions, loaded)


def _sign_configs(config: Config) -> list[SignConfig]:
    return [
        target.sign
        for route in config.deliver_routes
        for target in route.targets
        if target.sign is not None
    ]


# --------------------------------------------------------------------------------------
# One route's workers
# --------------------------------------------------------------------------------------


@dataclass
class _RouteWork:
    """The deliverers, lease shape and retry timers shared by one route's workers."""

    route: Route
    deliverers: dict[str, object]
    targets: dict[str, DeliverTarget]
    batch: int
    ttl: timedelta
    # Monotonic times at which scheduled retries ripen. A store wakes waiters when a retry is
    # scheduled, not when it ripens, so idle workers shorten their wait to the next one.
    due: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Targets that have a worker waiting in ``wait_for_ready``; guarded by ``idle``, on which
    # the other idle workers (followers) sleep until a waiting worker hands its place over.
    waiting: set[str] = field(default_factory=set)
    idle: threading.Condition = field(default_factory=threading.Condition)

    def note_retry(self, delay: timedelta) -> None:
        with self.lock:
            heapq.heappush(self.due, time.monotonic() + delay.total_seconds())

    def idle_wait(self, longest: float) -> float:
        """How long an idle worker may sleep before one of this route's retries ripens."""
        now = time.monotonic()
        with self.lock:
            if not self.due:
                return longest
            if self.due[0] > now:
                return min(longest, self.due[0] - now)
            while self.due and self.due[0] <= now:
                heapq.heappop(self.due)
            return 0.0


class _Fleet:
    """The deliverers and worker threads built from one config generation."""

    def __init__(self, runtime: Runtime, generation: Generation, idle_wait: float):
        self.runtime = runtime
        self.backend = runtime.backend
        self.metrics = runtime.metrics
        self.generation = generation
        self.idle_wait_seconds = idle_wait
        self.fingerprint = delivery_fingerprint(generation)
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self._running = 0
        self._running_lock = threading.Lock()
        self._closed = False
        self.work: list[_RouteWork] = []
        try:
            for route in generation.config.deliver_routes:
                self.work.append(self._build_route(route))
        except Exception:
            self._close_deliverers()
            raise

    # -- building ---------------------------------------------------------------------------

    def _build_route(self, route: Route) -> _RouteWork:
        deliverers = {}
        try:
            for target in route.targets:
                deliverers[target.target] = self._build_deliverer(route, target)
        except Exception:
            for deliverer in deliverers.values():
                deliverer.close()
            raise
        batch = batch_size(route)
        return _RouteWork(
            route=route,
            deliverers=deliverers,
            targets={target.target: target for target in route.targets},
            batch=batch,
            ttl=lease_ttl(route, batch),
        )

    def _build_deliverer(self, route: Route, target: DeliverTarget):
        registration = self._installed(
            "deliverer",
            target.kind,
            f"route {route.path!r}: no installed plugin delivers {target.kind!r} targets",
            target,
        )
        context = DeliveryContext(
            egress=self.generation.config.defaults.egress,
            resolve_secret=self.generation.secret,
            secret_versions=self.generation.config.secrets,
            extra={"concurrency": route.deliver_concurrency},
        )
        context.make_signer = lambda sign: self._build_signer(sign, context, target)
        return registration.factory(target, context)

    def _build_signer(self, sign: SignConfig, context: DeliveryContext, target: DeliverTarget):
        registration = self._installed(
            "signer",
            sign.name,
            f"sign {sign.name}: no installed plugin provides this signer",
            target,
        )
        return registration.factory(sign, context)

    def _installed(self, kind: str, name: str, missing: str, target: DeliverTarget):
        """The registration of plugin ``kind``/``name``; a ``ConfigError`` at the target without."""
        registry = self.runtime.registry
        registration = registry.get(kind, name)
        if registration is None:
            installed = ", ".join(registry.names(kind)) or "none"
            raise ConfigError(f"{missing} (installed: {installed})", target.location)
        return registration

    # -- running ----------------------------------------------------------------------------

    def start(self) -> None:
        self._report_orphans()
        for work in self.work:
            for index in range(work.route.deliver_concurrency):
                thread = threading.Thread(
                    target=self._run_worker,
                    args=(work, index),
                    name=f"hookaido-deliver {work.route.path} #{index}",
                    daemon=True,
                )
                self.threads.append(thread)
        with self._running_lock:
            self._running = len(self.threads)
        for thread in self.threads:
            thread.start()

    def _report_orphans(self) -> None:
        """Warn about queued messages whose (route, target) nothing in the config serves.

        That covers targets removed from a route and routes removed altogether. Workers lease
        by target, so such messages are never picked up: they stay queued (and visible in the
        backlog) until the target returns or an operator cancels them.
        """
        served = set()
        for route in self.generation.config.routes:
            served.update((route.path, target.target) for target in route.targets)
            if route.pull is not None:
                served.add((route.path, PULL_TARGET))
        try:
            counts = self.backend.counts_by_route(("queued",))
        except Exception as exc:
            event("dispatcher_backlog_check_failed", "warn", error=error_text(str(exc)))
            return
        for (route, target), by_state in sorted(counts.items()):
            count = by_state.get("queued", 0)
            if count > 0 and (route, target) not in served:
                event(
                    "dispatcher_target_config_missing",
                    "warn",
                    route=route,
                    target=target,
                    count=count,
                )

    def stop(self, timeout: float) -> bool:
        """Stop leasing, wait up to ``timeout`` for workers; True when all finished."""
        self.stopping.set()
        for work in self.work:
            with work.idle:
                work.idle.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        drained = not any(thread.is_alive() for thread in self.threads)
        if not self.threads:
            self._close_deliverers()
        return drained

    def _run_worker(self, work: _RouteWork, index: int) -> None:
        try:
            self._lease_loop(work, index)
        finally:
            with self._running_lock:
                self._running -= 1
                last = self._running == 0
            if last and self.stopping.is_set():
                # The last worker out closes the pools, even when a drain ran over its budget.
                self._close_deliverers()

    def _lease_loop(self, work: _RouteWork, index: int) -> None:
        """Lease and deliver while the store has work; when it has none, wait to be woken."""
        targets = list(work.targets)
        offset = index % len(targets)
        spins = 0
        while not self.stopping.is_set():
            woken = self._wait_for_work(work, targets, offset)
            if woken is None:
                continue
            first, instant = woken
            offset = targets.index(first)
            leased_any = False
            while not self.stopping.is_set():
                leased = False
                for step in range(len(targets)):
                    target = targets[(offset + step) % len(targets)]
                    envelopes = self._dequeue(work, target)
                    if envelopes:
                        self._deliver_batch(work, envelopes)
                        leased = leased_any = True
                        break
                offset = (offset + 1) % len(targets)
                if not leased:
                    break
            spins = spins + 1 if instant and not leased_any else 0
            if spins >= SPIN_LIMIT:
                self.stopping.wait(SPIN_PAUSE_SECONDS)

    def _wait_for_work(self, work: _RouteWork, targets: list[str], offset: int):
        """Block until a target of the route may have ready messages.

        One worker per target waits in the store's ``wait_for_ready``; the others sleep on
        the route's condition until that worker gives its place up. Returns ``(target,
        instant)`` (``instant``: the store said "ready" without waiting), or ``None`` when
        stopping or when a follower's sleep ran out.
        """
        with work.idle:
            if self.stopping.is_set():  # checked under the lock ``stop`` notifies with
                return None
            free = [t for t in targets[offset:] + targets[:offset] if t not in work.waiting]
            if not free:
                work.idle.wait(FOLLOWER_WAIT_SECONDS)
                return None
            target = free[0]
            work.waiting.add(target)
        try:
            return target, self._wait_for_ready(work, target)
        finally:
            with work.idle:
                work.waiting.discard(target)
                work.idle.notify()

    def _dequeue(self, work: _RouteWork, target: str) -> list[Envelope]:
        try:
            return self.backend.dequeue(work.route.path, target, work.batch, work.ttl)
        except Exception as exc:
            self._pause_after_dequeue_failure(work, target, exc)
            return []

    def _wait_for_ready(self, work: _RouteWork, target: str) -> bool:
        """Wait in slices (to notice a stop) until the store wakes us, a scheduled retry
        ripens or the safety-net wait ends; True when it answered at once."""
        started = time.monotonic()
        deadline = started + work.idle_wait(self.idle_wait_seconds)
        while not self.stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                ready = self.backend.wait_for_ready(
                    work.route.path, target, min(remaining, STOP_CHECK_SECONDS)
                )
            except Exception as exc:
                self._pause_after_dequeue_failure(work, target, exc)
                return False
            if ready:
                return time.monotonic() - started < SPIN_INSTANT_SECONDS
            deadline = min(deadline, time.monotonic() + work.idle_wait(self.idle_wait_seconds))
        return False

    def _pause_after_dequeue_failure(self, work: _RouteWork, target: str, exc: Exception) -> None:
        """Log the store's failure and back off, so a broken store is not polled in a busy loop."""
        event(
            "dispatcher_dequeue_failed",
            "warn",
            route=work.route.path,
            target=target,
            error=error_text(str(exc)),
        )
        self.stopping.wait(STORE_ERROR_PAUSE)

    def _deliver_batch(self, work: _RouteWork, envelopes: list[Envelope]) -> None:
        for position, envelope in enumerate(envelopes):
            if position > 0 and self.stopping.is_set():
                untouched = envelopes[position:]
                self._settle("nack", work, untouched, "dispatcher_nack_failed", delay=timedelta(0))
                return
            self._deliver_one(work, envelope)

    # -- one attempt ------------------------------------------------------------------------

    def _deliver_one(self, work: _RouteWork, envelope: Envelope) -> None:
        deliverer = work.deliverers.get(envelope.target)
        if deliverer is None:  # the store handed out a target this route does not serve
            event(
                "dispatcher_target_config_missing",
                "warn",
                route=envelope.route,
                target=envelope.target,
                count=1,
            )
            self._settle(
                "nack", work, [envelope], "dispatcher_nack_failed", delay=MISSING_TARGET_DELAY
            )
            return
        try:
            outcome = deliverer.deliver(envelope)
        except Exception as exc:  # a deliverer bug must cost a retry, never the message
            outcome = Outcome("retry", error=error_text(f"deliverer failed: {exc!r}"))

        target = work.targets[envelope.target]
        attempt = envelope.attempt
        if outcome.result == "acked":
            self._acked(work, envelope, outcome)
        elif outcome.result == "retry" and attempt <= target.retry.max:
            delay = retry_delay(target.retry, attempt, outcome.retry_after)
            self._retry(work, envelope, outcome, delay)
        elif outcome.result == "retry":
            self._dead(work, envelope, outcome, "max_retries")
        else:
            self._dead(work, envelope, outcome, outcome.dead_reason or "unspecified")

    # Each outcome settles the lease last, so whoever sees the message leave its lease also
    # sees the attempt's record, counters and log line.
    def _acked(self, work: _RouteWork, envelope: Envelope, outcome: Outcome) -> None:
        self._record(envelope, outcome, "acked")
        self._count("acked")
        event(
            "delivery_ok",
            route=envelope.route,
            target=envelope.target,
            status=outcome.status_code,
            attempt=envelope.attempt,
            event_id=envelope.id,
        )
        self._settle("ack", work, [envelope], "dispatcher_ack_failed")

    def _retry(self, work: _RouteWork, envelope: Envelope, outcome: Outcome, delay) -> None:
        self._record(envelope, outcome, "retry")
        work.note_retry(delay)
        self._count("retry")
        fields = {
            "route": envelope.route,
            "target": envelope.target,
            "attempt": envelope.attempt,
            "event_id": envelope.id,
            "delay": render_duration(delay),
        }
        if outcome.retry_after is not None:
            fields["retry_after"] = render_duration(min(outcome.retry_after, RETRY_AFTER_CAP))
        fields.update(self._failure(outcome))
        event("delivery_retry", **fields)
        self._settle("nack", work, [envelope], "dispatcher_nack_failed", delay=delay)

    def _dead(self, work: _RouteWork, envelope: Envelope, outcome: Outcome, reason: str) -> None:
        self._record(envelope, outcome, "dead", reason)
        self._count("dead", reason)
        event(
            "delivery_dead",
            "warn",
            route=envelope.route,
            target=envelope.target,
            attempt=envelope.attempt,
            event_id=envelope.id,
            reason=reason,
            **self._failure(outcome),
        )
        self._settle("dead", work, [envelope], "dispatcher_mark_dead_failed", reason=reason)

    @staticmethod
    def _failure(outcome: Outcome) -> dict:
        if outcome.error:
            return {"error": outcome.error, "status": outcome.status_code}
        return {"status": outcome.status_code}

    # -- store and counters -----------------------------------------------------------------

    def _record(self, envelope: Envelope, outcome: Outcome, result: str, reason: str = ""):
        attempt = Attempt(
            id=new_attempt_id(),
            event_id=envelope.id,
            route=envelope.route,
            target=envelope.target,
            attempt=envelope.attempt,
            outcome=result,
            created_at=self._now(),
            status_code=outcome.status_code,
            error=outcome.error,
            dead_reason=reason,
        )
        try:
            self.backend.record_attempt(attempt)
        except Exception as exc:
            event(
                "dispatcher_record_attempt_failed",
                "warn",
                route=envelope.route,
                target=envelope.target,
                event_id=envelope.id,
                error=error_text(str(exc)),
            )

    def _settle(self, how, work, envelopes, failure_event, delay=None, reason="") -> None:
        lease_ids = [envelope.lease_id for envelope in envelopes]
        route = work.route.path
        try:
            if how == "ack":
                result = self.backend.ack(lease_ids, route=route)
            elif how == "nack":
                result = self.backend.nack(lease_ids, delay=delay, route=route)
            else:
                result = self.backend.nack(lease_ids, dead=True, reason=reason, route=route)
        except Exception as exc:
            error = error_text(str(exc))
        else:
            if not result.conflicts:
                return
            error = ", ".join(f"{lease}: {why}" for lease, why in result.conflicts)
        event(
            failure_event,
            "warn",
            route=route,
            event_ids=[envelope.id for envelope in envelopes],
            error=error,
        )

    def _count(self, result: str, reason: str = "") -> None:
        if self.metrics is None:
            return
        self.metrics.delivery_attempts.inc()
        if result == "acked":
            self.metrics.delivery_acked.inc()
        elif result == "retry":
            self.metrics.delivery_retry.inc()
        else:
            self.metrics.delivery_dead.inc()
            label = reason if reason in DEAD_REASONS else "other"
            self.metrics.delivery_dead_by_reason.labels(label).inc()

    def _now(self) -> datetime:
        settings = getattr(self.backend, "settings", None)
        return settings.clock() if settings is not None else datetime.now(UTC)

    def _close_deliverers(self) -> None:
        with self._running_lock:
            if self._closed:
                return
            self._closed = True
        for work in self.work:
            for deliverer in work.deliverers.values():
                deliverer.close()


# --------------------------------------------------------------------------------------
# The component
# --------------------------------------------------------------------------------------


class Dispatcher:
    """Delivers every push route of the runtime's current config until stopped.

    ``start()`` builds deliverers and starts the workers; ``reload(generation)`` drains and
    replaces them when delivery config changed; ``stop(timeout)`` ends delivery.
    """

    def __init__(self, runtime: Runtime, idle_wait: float = IDLE_WAIT_SECONDS):
        self.runtime = runtime
        self.idle_wait = idle_wait
        self._fleet: _Fleet | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._fleet is not None

    def start(self) -> None:
        """Build the deliverers of the current config and start its workers."""
        with self._lock:
            if self._fleet is not None:
                return
            fleet = _Fleet(self.runtime, self.runtime.current, self.idle_wait)
            fleet.start()
            self._fleet = fleet

    def stop(self, timeout: float | None = None) -> bool:
        """Stop leasing and wait for in-flight deliveries; True when all finished in time.

        ``timeout`` defaults to the drain budget of the running config.
        """
        with self._lock:
            fleet, self._fleet = self._fleet, None
        if fleet is None:
            return True
        if timeout is None:
            timeout = drain_budget(fleet.generation.config).total_seconds()
        return fleet.stop(timeout)

    def reload(self, generation: Generation) -> bool:
        """Replace the workers when delivery config changed; True when they were replaced.

        The new deliverers are built first, so a config they reject leaves the old ones
        running (the ``ConfigError`` propagates).
        """
        with self._lock:
            old = self._fleet
            if old is not None and old.fingerprint == delivery_fingerprint(generation):
                old.generation = generation
                return False
            fleet = _Fleet(self.runtime, generation, self.idle_wait)
            if old is not None:
                budget = drain_budget(old.generation.config)
                if old.stop(budget.total_seconds()):
                    event("dispatcher_stopped_for_reload", budget=render_duration(budget))
                else:
                    event("dispatcher_drain_incomplete", "warn", budget=render_duration(budget))
            fleet.start()
            self._fleet = fleet
        event("dispatcher_reloaded", routes=len(fleet.work))
        return True
