"""Contract: storing envelopes, duplicate ids, and ``queue_limits`` (reject, drop_oldest)."""

import threading
from datetime import timedelta, timezone

import pytest

from hookaido.queue import MessageExists, MessageFilter, QueueFull

TTL = timedelta(seconds=30)


def ids_in(backend, **selector):
    return sorted(e.id for e in backend.list_messages(MessageFilter(limit=0, **selector)))


def test_enqueued_envelope_is_stored_queued_with_every_field(backend, envelope, clock):
    stored = envelope(
        "evt_1",
        payload=b"\x00binary\xff",
        headers={"Content-Type": "application/json", "X-Event": "push"},
        trace={"remote_addr": "127.0.0.1:5000", "path": "/r"},
        next_run_at=clock() + timedelta(seconds=5),
    )

    backend.enqueue([stored])

    found = backend.get("evt_1")
    assert found.state == "queued"
    assert found.attempt == 0
    assert found.payload == b"\x00binary\xff"
    assert found.headers == {"Content-Type": "application/json", "X-Event": "push"}
    assert found.trace == {"remote_addr": "127.0.0.1:5000", "path": "/r"}
    assert found.received_at == clock()
    assert found.next_run_at == clock() + timedelta(seconds=5)
    assert found.lease_id == "" and found.lease_until is None
    assert found.schema_version == 1


def test_unknown_id_is_none(backend):
    assert backend.get("evt_missing") is None


def test_duplicate_id_is_refused_and_nothing_of_the_batch_is_written(backend, envelope):
    backend.enqueue([envelope("evt_1")])

    with pytest.raises(MessageExists) as refused:
        backend.enqueue([envelope("evt_2"), envelope("evt_1")])

    assert refused.value.message_id == "evt_1"
    assert ids_in(backend) == ["evt_1"]


def test_duplicate_id_inside_one_batch_is_refused(backend, envelope):
    with pytest.raises(MessageExists):
        backend.enqueue([envelope("evt_1"), envelope("evt_1")])

    assert ids_in(backend) == []


def test_reject_policy_refuses_enqueue_at_max_depth(make_backend, envelope):
    backend = make_backend(max_depth=2, drop_policy="reject")
    backend.enqueue([envelope("evt_1"), envelope("evt_2")])

    with pytest.raises(QueueFull):
        backend.enqueue([envelope("evt_3")])

    assert ids_in(backend) == ["evt_1", "evt_2"]


def test_batch_under_reject_is_all_or_nothing(make_backend, envelope):
    backend = make_backend(max_depth=3, drop_policy="reject")
    backend.enqueue([envelope("evt_1")])

    with pytest.raises(QueueFull):
        backend.enqueue([envelope("evt_2"), envelope("evt_3"), envelope("evt_4")])
    backend.enqueue([envelope("evt_5"), envelope("evt_6")])

    assert ids_in(backend) == ["evt_1", "evt_5", "evt_6"]


def test_leased_items_count_towards_depth(make_backend, envelope):
    backend = make_backend(max_depth=1)
    backend.enqueue([envelope("evt_1")])
    backend.dequeue("/r", "pull", 1, TTL)

    with pytest.raises(QueueFull):
        backend.enqueue([envelope("evt_2")])


def test_settled_items_do_not_count_towards_depth(make_backend, envelope, clock):
    backend = make_backend(max_depth=2)
    backend.enqueue([envelope("evt_dead", received_at=clock() - timedelta(seconds=1))])
    backend.enqueue([envelope("evt_canceled")])
    [lease] = backend.dequeue("/r", "pull", 1, TTL)
    backend.nack([lease.lease_id], dead=True, reason="boom")
    backend.cancel(["evt_canceled"])

    backend.enqueue([envelope("evt_3"), envelope("evt_4")])

    assert backend.stats().by_state["queued"] == 2


def test_drop_oldest_evicts_the_oldest_queued_items(make_backend, envelope, clock):
    backend = make_backend(max_depth=3, drop_policy="drop_oldest")
    start = clock()
    backend.enqueue([envelope("evt_b", received_at=start + timedelta(seconds=2))])
    backend.enqueue([envelope("evt_a", received_at=start + timedelta(seconds=1))])
    backend.enqueue([envelope("evt_c", received_at=start + timedelta(seconds=3))])

    backend.enqueue([envelope("evt_d"), envelope("evt_e")])

    assert ids_in(backend) == ["evt_c", "evt_d", "evt_e"]


def test_drop_oldest_never_evicts_leased_items(make_backend, envelope, clock):
    backend = make_backend(max_depth=2, drop_policy="drop_oldest")
    backend.enqueue([envelope("evt_old", received_at=clock() - timedelta(minutes=5))])
    backend.enqueue([envelope("evt_young")])
    [leased] = backend.dequeue("/r", "pull", 1, TTL)

    backend.enqueue([envelope("evt_new")])

    assert leased.id == "evt_old"
    assert ids_in(backend) == ["evt_new", "evt_old"]


def test_drop_oldest_is_queue_full_when_everything_is_leased(make_backend, envelope):
    backend = make_backend(max_depth=2, drop_policy="drop_oldest")
    backend.enqueue([envelope("evt_1"), envelope("evt_2")])
    backend.dequeue("/r", "pull", 1, TTL)

    with pytest.raises(QueueFull):
        backend.enqueue([envelope("evt_3"), envelope("evt_4")])

    assert ids_in(backend) == ["evt_1", "evt_2"]


def test_drop_oldest_evictions_are_undone_when_the_enqueue_fails(make_backend, envelope):
    backend = make_backend(max_depth=1, drop_policy="drop_oldest")
    backend.enqueue([envelope("evt_1")])

    with pytest.raises(MessageExists):
        backend.enqueue([envelope("evt_1")])

    assert ids_in(backend) == ["evt_1"]


def test_unlimited_depth_when_max_depth_is_zero(make_backend, envelope):
    backend = make_backend(max_depth=0)

    backend.enqueue([envelope() for _ in range(250)])

    assert backend.stats().by_state["queued"] == 250


def test_times_come_back_in_utc_whatever_offset_they_were_given_in(backend, envelope, clock):
    berlin = timezone(timedelta(hours=1))
    received = clock().astimezone(berlin)

    backend.enqueue([envelope("evt_1", received_at=received, next_run_at=received)])

    stored = backend.get("evt_1")
    assert stored.received_at == clock()
    assert stored.received_at.utcoffset() == timedelta(0)
    assert stored.next_run_at.utcoffset() == timedelta(0)


def test_concurrent_enqueues_each_get_their_own_answer(make_backend, envelope):
    backend = make_backend(max_depth=100, drop_policy="reject")
    answers: list[tuple[str, str]] = []
    lock = threading.Lock()

    def send(worker: int) -> None:
        for n in range(20):
            message_id = "evt_shared" if n == 10 else f"evt_{worker}_{n}"
            try:
                backend.enqueue([envelope(message_id)])
                answer = "stored"
            except MessageExists:
                answer = "exists"
            except QueueFull:
                answer = "full"
            with lock:
                answers.append((message_id, answer))

    threads = [threading.Thread(target=send, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    stored = {message_id for message_id, answer in answers if answer == "stored"}
    assert len(answers) == 160
    assert len(stored) == sum(1 for _, answer in answers if answer == "stored") == 100
    assert stored == set(ids_in(backend))
    assert {message_id for message_id, answer in answers if answer == "exists"} <= {"evt_shared"}
