"""Contract: reading, filtering, lifecycle mutations, DLQ, delivery attempts and stats."""

from datetime import timedelta

import pytest

from hookaido.queue import Attempt, AttemptFilter, MessageFilter, QueueBackend

TTL = timedelta(seconds=30)


@pytest.fixture
def mixed(backend, envelope, clock):
    """Five items on two routes, one in each state (delivered needs retention, so absent)."""
    start = clock()
    backend.enqueue(
        [
            envelope(f"evt_{name}", route=route, received_at=start + timedelta(seconds=n))
            for n, (name, route) in enumerate(
                [("dead", "/a"), ("leased", "/a"), ("canceled", "/b"), ("queued", "/b")]
            )
        ]
    )
    clock.advance(minutes=1)
    [dead] = backend.dequeue("/a", "pull", 1, TTL)
    backend.nack([dead.lease_id], dead=True, reason="max_retries")
    backend.dequeue("/a", "pull", 1, TTL)
    backend.cancel(["evt_canceled"])
    return backend


def listed(backend, **selector):
    return [e.id for e in backend.list_messages(MessageFilter(**selector))]


def test_list_is_newest_first_then_id_descending(backend, envelope, clock):
    backend.enqueue([envelope("evt_a"), envelope("evt_b")])
    backend.enqueue([envelope("evt_old", received_at=clock() - timedelta(seconds=1))])

    assert listed(backend) == ["evt_b", "evt_a", "evt_old"]


def test_list_filters_by_route_target_state_before_ids_and_limit(mixed, clock, envelope):
    mixed.enqueue([envelope("evt_push", route="/b", target="https://example.test/")])

    assert listed(mixed, route="/a") == ["evt_leased", "evt_dead"]
    assert listed(mixed, target="https://example.test/") == ["evt_push"]
    assert listed(mixed, states=("dead", "canceled")) == ["evt_canceled", "evt_dead"]
    assert listed(mixed, before=clock() - timedelta(seconds=58)) == ["evt_leased", "evt_dead"]
    assert listed(mixed, ids=("evt_dead", "evt_queued", "evt_nope")) == ["evt_queued", "evt_dead"]
    assert listed(mixed, limit=2) == ["evt_push", "evt_queued"]


def test_cancel_moves_queued_leased_and_dead_items_only(mixed, clock):
    leased = mixed.get("evt_leased")

    changed = mixed.cancel(["evt_queued", "evt_leased", "evt_dead", "evt_canceled", "evt_no"])

    assert changed == 3
    for message_id in ("evt_queued", "evt_leased", "evt_dead"):
        stored = mixed.get(message_id)
        assert (stored.state, stored.dead_reason, stored.lease_id) == ("canceled", "", "")
        assert stored.next_run_at == clock()
    assert mixed.ack([leased.lease_id]).conflicts == [(leased.lease_id, "lease_not_found")]


def test_requeue_resets_attempts_of_dead_and_canceled_items(mixed, clock):
    changed = mixed.requeue(["evt_dead", "evt_canceled", "evt_queued", "evt_leased"])

    assert changed == 2
    dead = mixed.get("evt_dead")
    assert (dead.state, dead.attempt, dead.dead_reason, dead.next_run_at) == (
        "queued",
        0,
        "",
        clock(),
    )
    assert mixed.get("evt_canceled").state == "queued"
    assert mixed.get("evt_leased").state == "leased"


def test_resume_keeps_the_attempt_count(mixed, clock):
    mixed.cancel(["evt_leased"])

    changed = mixed.resume(["evt_leased", "evt_dead", "evt_queued"])

    stored = mixed.get("evt_leased")
    assert changed == 1
    assert (stored.state, stored.attempt, stored.next_run_at) == ("queued", 1, clock())
    assert [e.id for e in mixed.dequeue("/a", "pull", 5, TTL)] == ["evt_leased"]


def test_dlq_requeue_makes_the_item_leasable_with_a_full_retry_budget(mixed):
    assert mixed.requeue(["evt_dead"]) == 1

    [again] = mixed.dequeue("/a", "pull", 1, TTL)

    assert (again.id, again.attempt) == ("evt_dead", 1)


def test_dlq_delete_removes_dead_items_only(mixed):
    deleted = mixed.delete_dead(["evt_dead", "evt_queued", "evt_canceled", "evt_dead"])

    assert deleted == 1
    assert mixed.get("evt_dead") is None
    assert mixed.get("evt_queued").state == "queued"


def test_mutations_with_no_ids_change_nothing(mixed):
    assert (mixed.cancel([]), mixed.requeue([]), mixed.resume([]), mixed.delete_dead([])) == (
        0,
        0,
        0,
        0,
    )


def attempt(clock, n, **fields):
    fields.setdefault("route", "/a")
    fields.setdefault("target", "https://example.test/")
    fields.setdefault("outcome", "retry")
    return Attempt(
        id=fields.pop("id", f"att_{n:016x}"),
        event_id=fields.pop("event_id", "evt_1"),
        attempt=n,
        created_at=fields.pop("created_at", clock() + timedelta(seconds=n)),
        **fields,
    )


def test_attempts_are_listed_newest_first_with_their_fields(backend, clock):
    backend.record_attempt(attempt(clock, 1, status_code=503, error=""))
    backend.record_attempt(
        attempt(
            clock,
            2,
            status_code=0,
            error="connection refused",
            outcome="dead",
            dead_reason="max_retries",
        )
    )
    tie = clock() + timedelta(seconds=2)
    backend.record_attempt(attempt(clock, 3, id="att_00000000000000ff", created_at=tie))

    found = backend.list_attempts(AttemptFilter())

    assert [a.id for a in found] == [
        "att_00000000000000ff",
        "att_0000000000000002",
        "att_0000000000000001",
    ]
    second = found[1]
    assert (second.status_code, second.error, second.outcome, second.dead_reason) == (
        0,
        "connection refused",
        "dead",
        "max_retries",
    )
    assert second.created_at == clock() + timedelta(seconds=2)
    assert found[2].status_code == 503


def test_attempts_filter_by_route_target_event_outcome_before_and_limit(backend, clock):
    backend.record_attempt(attempt(clock, 1, route="/a", event_id="evt_1"))
    backend.record_attempt(attempt(clock, 2, route="/b", event_id="evt_2", outcome="acked"))
    backend.record_attempt(attempt(clock, 3, route="/b", event_id="evt_2", target="exec"))

    def ids(**selector):
        return [a.attempt for a in backend.list_attempts(AttemptFilter(**selector))]

    assert ids(route="/b") == [3, 2]
    assert ids(target="exec") == [3]
    assert ids(event_id="evt_1") == [1]
    assert ids(outcome="acked") == [2]
    assert ids(before=clock() + timedelta(seconds=2)) == [1]
    assert ids(limit=1) == [3]


def test_stats_count_every_state_and_age_the_queued_items(mixed, clock, envelope):
    start = clock() - timedelta(minutes=1)

    stats = mixed.stats()

    assert stats.by_state == {
        "queued": 1,
        "leased": 1,
        "delivered": 0,
        "dead": 1,
        "canceled": 1,
    }
    assert stats.total == 4
    assert stats.oldest_queued_received_at == start + timedelta(seconds=3)
    assert stats.earliest_queued_next_run_at == start + timedelta(seconds=3)


def test_stats_of_an_empty_store(backend):
    stats = backend.stats()

    assert stats.total == 0
    assert set(stats.by_state) == {"queued", "leased", "delivered", "dead", "canceled"}
    assert stats.oldest_queued_received_at is None
    assert stats.earliest_queued_next_run_at is None
    assert stats.top_queued == []


def test_top_queued_buckets_sorted_by_count_then_route_then_target(backend, envelope, clock):
    for n in range(12):
        backend.enqueue([envelope(route=f"/r{n:02d}") for _ in range(1 + (n % 3))])
    backend.enqueue([envelope(route="/r00", target="zz")])
    early = clock() - timedelta(hours=1)
    backend.enqueue([envelope(route="/r05", received_at=early, next_run_at=early)])

    buckets = backend.stats().top_queued

    assert len(buckets) == 10
    assert [(b.route, b.target, b.queued) for b in buckets[:5]] == [
        ("/r05", "pull", 4),
        ("/r02", "pull", 3),
        ("/r08", "pull", 3),
        ("/r11", "pull", 3),
        ("/r01", "pull", 2),
    ]
    assert buckets[0].oldest_queued_received_at == early
    assert buckets[0].earliest_queued_next_run_at == early
    assert [(b.route, b.target) for b in buckets[5:]] == [
        ("/r04", "pull"),
        ("/r07", "pull"),
        ("/r10", "pull"),
        ("/r00", "pull"),
        ("/r00", "zz"),
    ]


def test_counts_by_route_split_by_state(mixed, envelope):
    mixed.enqueue([envelope("evt_push", route="/b", target="https://example.test/")])

    counts = mixed.counts_by_route()

    assert counts == {
        ("/a", "pull"): {"queued": 0, "leased": 1, "dead": 1},
        ("/b", "pull"): {"queued": 1, "leased": 0, "dead": 0},
        ("/b", "https://example.test/"): {"queued": 1, "leased": 0, "dead": 0},
    }
    assert mixed.counts_by_route(("canceled",)) == {("/b", "pull"): {"canceled": 1}}
    assert QueueBackend.counts_by_route(mixed) == counts  # the interface's own fallback
