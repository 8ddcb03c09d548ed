"""Contract: dequeue, ack, nack, extend, lease expiry, idempotent repeats, readiness waits."""

import threading
import time
from datetime import timedelta

import pytest

from hookaido.queue import LeaseConflict, MessageFilter, base

TTL = timedelta(seconds=30)


def lease_one(backend, route="/r", target="pull"):
    [leased] = backend.dequeue(route, target, 1, TTL)
    return leased


def test_dequeue_leases_the_oldest_ready_item(backend, envelope, clock):
    now = clock()
    backend.enqueue([envelope("evt_late", received_at=now - timedelta(seconds=9), next_run_at=now)])
    backend.enqueue([envelope("evt_tie_young", received_at=now - timedelta(seconds=2))])
    backend.enqueue([envelope("evt_tie_old", received_at=now - timedelta(seconds=3))])
    backend.enqueue(
        [envelope("evt_first", received_at=now, next_run_at=now - timedelta(seconds=60))]
    )

    leased = backend.dequeue("/r", "pull", 10, TTL)

    assert [e.id for e in leased] == ["evt_first", "evt_tie_old", "evt_tie_young", "evt_late"]


def test_leased_item_carries_lease_deadline_and_attempt(backend, envelope, clock):
    backend.enqueue([envelope("evt_1")])

    leased = lease_one(backend)

    assert leased.state == "leased"
    assert leased.lease_id.startswith("lease_") and len(leased.lease_id) == 22
    assert leased.lease_until == clock() + TTL
    assert leased.next_run_at == leased.lease_until
    assert leased.attempt == 1
    stored = backend.get("evt_1")
    assert (stored.state, stored.lease_id, stored.lease_until) == (
        "leased",
        leased.lease_id,
        leased.lease_until,
    )


def test_item_is_not_leased_before_its_next_run_at(backend, envelope, clock):
    backend.enqueue([envelope("evt_1", next_run_at=clock() + timedelta(seconds=10))])

    assert backend.dequeue("/r", "pull", 1, TTL) == []
    clock.advance(seconds=10)
    assert [e.id for e in backend.dequeue("/r", "pull", 1, TTL)] == ["evt_1"]


def test_dequeue_only_sees_its_route_and_target(backend, envelope):
    backend.enqueue([envelope("evt_other_route", route="/other")])
    backend.enqueue([envelope("evt_other_target", target="https://example.test/hook")])

    assert backend.dequeue("/r", "pull", 10, TTL) == []
    assert [e.id for e in backend.dequeue("/other", "pull", 10, TTL)] == ["evt_other_route"]


def test_dequeue_never_returns_more_than_100(backend, envelope):
    backend.enqueue([envelope() for _ in range(130)])

    assert len(backend.dequeue("/r", "pull", 500, TTL)) == 100
    assert len(backend.dequeue("/r", "pull", 500, TTL)) == 30


def test_ack_removes_the_item(backend, envelope):
    backend.enqueue([envelope("evt_1")])
    leased = lease_one(backend)

    result = backend.ack([leased.lease_id])

    assert (result.succeeded, result.conflicts) == (1, [])
    assert backend.get("evt_1") is None


def test_ack_keeps_a_delivered_tombstone_when_delivered_retention_is_on(
    make_backend, envelope, clock
):
    from hookaido.queue import Retention

    backend = make_backend(
        retention=Retention(prune_interval=None, delivered_max_age=timedelta(hours=1))
    )
    backend.enqueue([envelope("evt_1")])
    leased = lease_one(backend)
    clock.advance(seconds=3)

    backend.ack([leased.lease_id])

    stored = backend.get("evt_1")
    assert stored.state == "delivered"
    assert stored.next_run_at == clock()
    assert (stored.lease_id, stored.lease_until) == ("", None)


def test_repeated_ack_within_two_minutes_succeeds(backend, envelope, clock):
    backend.enqueue([envelope("evt_1")])
    leased = lease_one(backend)
    backend.ack([leased.lease_id])
    clock.advance(seconds=119)

    again = backend.ack([leased.lease_id])

    assert (again.succeeded, again.conflicts) == (1, [])


def test_repeated_ack_after_two_minutes_is_not_found(backend, envelope, clock):
    backend.enqueue([envelope("evt_1")])
    leased = lease_one(backend)
    backend.ack([leased.lease_id])
    clock.advance(seconds=121)

    again = backend.ack([leased.lease_id])

    assert again.succeeded == 0
    assert again.conflicts == [(leased.lease_id, "lease_not_found")]


def test_ack_after_a_successful_nack_is_a_conflict(backend, envelope):
    backend.enqueue([envelope("evt_1")])
    leased = lease_one(backend)
    backend.nack([leased.lease_id], delay=timedelta(seconds=30))

    assert backend.ack([leased.lease_id]).conflicts == [(leased.lease_id, "lease_not_found")]
    assert backend.nack([leased.lease_id]).succeeded == 1


def test_unknown_lease_is_not_found(backend):
    result = backend.ack(["lease_0000000000000000"])

    assert result.conflicts == [("lease_0000000000000000", "lease_not_found")]


def test_batch_ack_applies_good_leases_and_reports_the_rest(backend, envelope, clock):
    backend.enqueue([envelope("evt_1")])
    expiring = lease_one(backend)
    clock.advance(seconds=10)
    backend.enqueue([envelope("evt_2")])
    live = lease_one(backend)
    clock.advance(seconds=25)

    result = backend.ack([live.lease_id, expiring.lease_id, "lease_ffffffffffffffff"])

    assert result.succeeded == 1
    assert result.conflicts == [
        (expiring.lease_id, "lease_expired"),
        ("lease_ffffffffffffffff", "lease_not_found"),
    ]
    assert backend.get("evt_2") is None
    assert backend.get("evt_1").state == "queued"


def test_expired_lease_is_requeued_with_attempt_kept(backend, envelope, clock):
    backend.enqueue([envelope("evt_1")])
    first = lease_one(backend)
    clock.advance(seconds=30)

    second = lease_one(backend)

    assert second.id == "evt_1"
    assert second.attempt == 2
    assert second.lease_id != first.lease_id
    assert backend.ack([first.lease_id]).conflicts == [(first.lease_id, "lease_not_found")]


def test_lease_operation_on_an_expired_lease_requeues_the_item(backend, envelope, clock):
    backend.enqueue([envelope("evt_1")])
    leased = lease_one(backend)
    clock.advance(seconds=31)

    result = backend.nack([leased.lease_id], dead=True, reason="late")

    assert result.conflicts == [(leased.lease_id, "lease_expired")]
    stored = backend.get("evt_1")
    assert (stored.state, stored.next_run_at, stored.attempt) == ("queued", clock(), 1)
    assert stored.lease_id == ""


def test_nack_requeues_after_the_delay(backend, envelope, clock):
    backend.enqueue([envelope("evt_1")])
    leased = lease_one(backend)

    result = backend.nack([leased.lease_id], delay=timedelta(seconds=5))

    assert result.succeeded == 1
    stored = backend.get("evt_1")
    assert (stored.state, stored.next_run_at, stored.lease_id) == (
        "queued",
        clock() + timedelta(seconds=5),
        "",
    )
    assert backend.dequeue("/r", "pull", 1, TTL) == []
    clock.advance(seconds=5)
    assert lease_one(backend).attempt == 2


def test_negative_nack_delay_means_now(backend, envelope, clock):
    backend.enqueue([envelope("evt_1")])
    leased = lease_one(backend)

    backend.nack([leased.lease_id], delay=timedelta(seconds=-5))

    assert backend.get("evt_1").next_run_at == clock()


def test_nack_dead_moves_the_item_to_the_dlq_with_its_reason(backend, envelope, clock):
    backend.enqueue([envelope("evt_1")])
    leased = lease_one(backend)
    clock.advance(seconds=1)

    backend.nack([leased.lease_id], dead=True, reason="poison", delay=timedelta(hours=1))

    stored = backend.get("evt_1")
    assert (stored.state, stored.dead_reason, stored.next_run_at) == ("dead", "poison", clock())


def test_extend_moves_the_deadline_from_the_current_deadline(backend, envelope, clock):
    backend.enqueue([envelope("evt_1")])
    leased = lease_one(backend)
    clock.advance(seconds=20)

    backend.extend(leased.lease_id, timedelta(seconds=15))

    stored = backend.get("evt_1")
    assert stored.lease_until == leased.lease_until + timedelta(seconds=15)
    assert stored.next_run_at == stored.lease_until
    clock.advance(seconds=20)
    assert backend.ack([leased.lease_id]).succeeded == 1


def test_extend_by_zero_or_less_changes_nothing(backend, envelope):
    backend.enqueue([envelope("evt_1")])
    leased = lease_one(backend)

    backend.extend(leased.lease_id, timedelta(0))
    backend.extend(leased.lease_id, timedelta(seconds=-10))

    assert backend.get("evt_1").lease_until == leased.lease_until


def test_extend_of_unknown_or_expired_lease_conflicts(backend, envelope, clock):
    backend.enqueue([envelope("evt_1")])
    leased = lease_one(backend)

    with pytest.raises(LeaseConflict) as unknown:
        backend.extend("lease_0000000000000000", timedelta(seconds=5))
    clock.advance(seconds=30)
    with pytest.raises(LeaseConflict) as expired:
        backend.extend(leased.lease_id, timedelta(seconds=5))

    assert unknown.value.reason == "lease_not_found"
    assert expired.value.reason == "lease_expired"
    assert backend.get("evt_1").state == "queued"


def test_lease_of_another_route_is_treated_as_unknown(backend, envelope):
    backend.enqueue([envelope("evt_1", route="/a")])
    leased = lease_one(backend, route="/a")

    assert backend.ack([leased.lease_id], route="/b").conflicts == [
        (leased.lease_id, "lease_not_found")
    ]
    assert backend.nack([leased.lease_id], route="/b").conflicts == [
        (leased.lease_id, "lease_not_found")
    ]
    with pytest.raises(LeaseConflict) as foreign:
        backend.extend(leased.lease_id, timedelta(seconds=5), route="/b")
    assert foreign.value.reason == "lease_not_found"

    assert backend.ack([leased.lease_id], route="/a").succeeded == 1
    assert backend.ack([leased.lease_id], route="/b").succeeded == 0
    assert backend.ack([leased.lease_id], route="/a").succeeded == 1


def test_concurrent_dequeuers_never_receive_the_same_message(backend, envelope):
    backend.enqueue([envelope(f"evt_{n:04d}") for n in range(400)])
    received: list[list[str]] = [[] for _ in range(8)]

    def work(mine: list[str]) -> None:
        for _ in range(200):
            batch = backend.dequeue("/r", "pull", 7, TTL)
            if not batch:
                return
            mine.extend(e.id for e in batch)
            backend.ack([e.lease_id for e in batch])

    threads = [threading.Thread(target=work, args=(mine,)) for mine in received]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    every = [message_id for mine in received for message_id in mine]
    assert len(every) == 400
    assert len(set(every)) == 400
    assert backend.stats().total == 0


@pytest.fixture
def only_notifications_wake(monkeypatch):
    """Make periodic re-checks of ``BackendBase`` waiters too rare to pass for a wake-up."""
    monkeypatch.setattr(base, "WAIT_RECHECK_SECONDS", 30.0)


def test_wait_for_ready_is_woken_by_an_enqueue(backend, envelope, only_notifications_wake):
    woke = []
    waiter = threading.Thread(
        target=lambda: woke.append(backend.wait_for_ready("/r", "pull", 10.0))
    )
    started = time.monotonic()
    waiter.start()
    time.sleep(0.1)

    backend.enqueue([envelope("evt_1")])
    waiter.join(timeout=5)

    assert woke == [True]
    assert time.monotonic() - started < 5.0


def test_wait_for_ready_ignores_other_routes_and_times_out(backend, envelope):
    started = time.monotonic()
    backend.enqueue([envelope(route="/other")])

    assert backend.wait_for_ready("/r", "pull", 0.2) is False
    assert 0.15 <= time.monotonic() - started < 2.0


def test_wait_for_ready_returns_at_once_when_work_is_ready(backend, envelope):
    backend.enqueue([envelope("evt_1")])

    assert backend.wait_for_ready("/r", "pull", 5.0) is True


def test_wait_for_ready_sees_an_expired_lease(backend, envelope, clock):
    backend.enqueue([envelope("evt_1")])
    lease_one(backend)
    clock.advance(seconds=31)

    assert backend.wait_for_ready("/r", "pull", 5.0) is True


@pytest.mark.parametrize("transition", ["nack", "requeue", "resume"])
def test_wait_for_ready_is_woken_by_every_readiness_transition(
    backend, envelope, clock, transition, only_notifications_wake
):
    backend.enqueue([envelope("evt_1")])
    leased = lease_one(backend)
    if transition == "requeue":
        backend.nack([leased.lease_id], dead=True)
    if transition == "resume":
        backend.cancel(["evt_1"])
    woke = []
    waiter = threading.Thread(
        target=lambda: woke.append(backend.wait_for_ready("/r", "pull", 10.0))
    )
    waiter.start()
    time.sleep(0.1)
    started = time.monotonic()

    if transition == "nack":
        backend.nack([leased.lease_id], delay=timedelta(minutes=5))
    elif transition == "requeue":
        backend.requeue(["evt_1"])
    else:
        backend.resume(["evt_1"])
    waiter.join(timeout=5)

    assert woke == [True]
    assert time.monotonic() - started < 5.0


def test_mixed_concurrent_traffic_loses_and_duplicates_nothing(make_backend, envelope):
    backend = make_backend(max_depth=0)
    enqueued: set[str] = set()
    acked: set[str] = set()
    lock = threading.Lock()
    errors: list[Exception] = []

    def producer(worker: int) -> None:
        for n in range(60):
            message_id = f"evt_{worker}_{n:03d}"
            backend.enqueue([envelope(message_id, route=f"/r{n % 2}")])
            with lock:
                enqueued.add(message_id)

    def consumer(route: str) -> None:
        for round_number in range(120):
            batch = backend.dequeue(route, "pull", 5, TTL)
            keep, retry = batch[: len(batch) // 2 + 1], batch[len(batch) // 2 + 1 :]
            result = backend.ack([e.lease_id for e in keep])
            backend.nack([e.lease_id for e in retry])
            with lock:
                acked.update(e.id for e in keep)
            if result.conflicts:
                errors.append(AssertionError(result.conflicts))
            if round_number % 10 == 0:
                backend.stats()

    def guarded(target, *args):
        try:
            target(*args)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(producer, w)) for w in range(3)]
    threads += [threading.Thread(target=guarded, args=(consumer, f"/r{n % 2}")) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    remaining = {e.id: e.state for e in backend.list_messages(MessageFilter(limit=0))}
    assert errors == []
    assert len(enqueued) == 180
    assert acked.isdisjoint(remaining)
    assert acked | set(remaining) == enqueued
    assert set(remaining.values()) <= {"queued"}
