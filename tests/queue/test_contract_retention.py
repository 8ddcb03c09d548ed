"""Contract: every retention rule, and pruning paced by ``prune_interval`` on store activity."""

from datetime import timedelta

from hookaido.queue import Attempt, AttemptFilter, MessageFilter, Retention

TTL = timedelta(seconds=30)
OFF = Retention(
    queue_max_age=None,
    prune_interval=None,
    delivered_max_age=None,
    dlq_max_age=None,
    dlq_max_depth=None,
    attempts_max_age=None,
    attempts_max_rows=None,
)


def rules(**on) -> Retention:
    values = {name: getattr(OFF, name) for name in OFF.__dataclass_fields__}
    values.update(on)
    return Retention(**values)


def ids(backend):
    return sorted(e.id for e in backend.list_messages(MessageFilter(limit=0)))


def kill(backend, route="/r"):
    [leased] = backend.dequeue(route, "pull", 1, TTL)
    backend.nack([leased.lease_id], dead=True, reason="test")
    return leased.id


def test_queued_items_older_than_queue_retention_are_removed(make_backend, envelope, clock):
    backend = make_backend(retention=rules(queue_max_age=timedelta(hours=1)))
    backend.enqueue([envelope("evt_old", received_at=clock() - timedelta(hours=1))])
    backend.enqueue([envelope("evt_new", received_at=clock() - timedelta(minutes=59))])

    removed = backend.prune()

    assert removed["queue_retention_age"] == 1
    assert ids(backend) == ["evt_new"]


def test_leased_items_are_never_pruned(make_backend, envelope, clock):
    backend = make_backend(retention=rules(queue_max_age=timedelta(hours=1)))
    backend.enqueue([envelope("evt_1", received_at=clock() - timedelta(hours=2))])
    backend.dequeue("/r", "pull", 1, TTL)

    backend.prune()

    assert ids(backend) == ["evt_1"]


def test_delivered_items_are_pruned_by_ack_time(make_backend, envelope, clock):
    backend = make_backend(retention=rules(delivered_max_age=timedelta(minutes=10)))
    backend.enqueue([envelope("evt_early", received_at=clock() - timedelta(days=3))])
    backend.enqueue([envelope("evt_late", received_at=clock() - timedelta(days=2))])
    [first] = backend.dequeue("/r", "pull", 1, TTL)
    backend.ack([first.lease_id])
    clock.advance(minutes=5)
    [second] = backend.dequeue("/r", "pull", 1, TTL)
    backend.ack([second.lease_id])
    clock.advance(minutes=5)

    removed = backend.prune()

    assert removed["delivered_retention_age"] == 1
    assert ids(backend) == ["evt_late"]


def test_dead_items_are_pruned_by_age_since_receipt(make_backend, envelope, clock):
    backend = make_backend(retention=rules(dlq_max_age=timedelta(days=1)))
    backend.enqueue([envelope("evt_old", received_at=clock() - timedelta(days=1))])
    backend.enqueue([envelope("evt_new", received_at=clock() - timedelta(hours=1))])
    kill(backend)
    kill(backend)

    removed = backend.prune()

    assert removed["dead_retention_age"] == 1
    assert ids(backend) == ["evt_new"]


def test_dlq_keeps_only_the_newest_max_depth_items(make_backend, envelope, clock):
    backend = make_backend(retention=rules(dlq_max_depth=2))
    for n in range(4):
        backend.enqueue([envelope(f"evt_{n}", received_at=clock() - timedelta(minutes=10 - n))])
        kill(backend)
    backend.enqueue([envelope("evt_queued", received_at=clock() - timedelta(days=9))])

    removed = backend.prune()

    assert removed["dead_retention_depth"] == 2
    assert ids(backend) == ["evt_2", "evt_3", "evt_queued"]


def test_canceled_items_are_not_covered_by_any_rule(make_backend, envelope, clock):
    backend = make_backend(
        retention=rules(
            queue_max_age=timedelta(minutes=1),
            dlq_max_age=timedelta(minutes=1),
            dlq_max_depth=0,
            delivered_max_age=timedelta(minutes=1),
        )
    )
    backend.enqueue([envelope("evt_1", received_at=clock() - timedelta(days=30))])
    backend.cancel(["evt_1"])
    clock.advance(days=30)

    backend.prune()

    assert ids(backend) == ["evt_1"]


def attempt(clock, n, age):
    return Attempt(
        id=f"att_{n:016x}",
        event_id="evt_1",
        route="/r",
        target="https://example.test/",
        attempt=n,
        outcome="retry",
        created_at=clock() - age,
    )


def test_attempts_older_than_attempts_retention_are_removed(make_backend, clock):
    backend = make_backend(retention=rules(attempts_max_age=timedelta(days=1)))
    backend.record_attempt(attempt(clock, 1, timedelta(days=1)))
    backend.record_attempt(attempt(clock, 2, timedelta(hours=23)))

    removed = backend.prune()

    assert removed["attempts_retention_age"] == 1
    assert [a.attempt for a in backend.list_attempts(AttemptFilter())] == [2]


def test_attempts_beyond_max_rows_are_removed_oldest_first(make_backend, clock):
    backend = make_backend(retention=rules(attempts_max_rows=3))
    for n in range(1, 6):
        backend.record_attempt(attempt(clock, n, timedelta(minutes=10 - n)))

    backend.prune()

    assert [a.attempt for a in backend.list_attempts(AttemptFilter(limit=0))] == [5, 4, 3]


def test_prune_reports_zero_for_rules_that_are_off(make_backend):
    backend = make_backend(retention=OFF)

    removed = backend.prune()

    assert set(removed) >= {
        "queue_retention_age",
        "delivered_retention_age",
        "dead_retention_age",
        "dead_retention_depth",
        "attempts_retention_age",
        "attempts_retention_depth",
    }
    assert set(removed.values()) == {0}


def test_store_activity_prunes_at_most_once_per_interval(make_backend, envelope, clock):
    backend = make_backend(
        retention=rules(queue_max_age=timedelta(hours=1), prune_interval=timedelta(minutes=5))
    )
    backend.enqueue([envelope("evt_first")])  # first activity: prunes an empty store
    finish_pruning(backend)
    backend.enqueue([envelope("evt_a", received_at=clock() - timedelta(hours=2))])
    assert "evt_a" in ids(backend)

    clock.advance(minutes=4)
    backend.stats()
    finish_pruning(backend)
    assert "evt_a" in ids(backend)

    clock.advance(minutes=1)
    backend.dequeue("/other", "pull", 1, TTL)
    finish_pruning(backend)
    assert ids(backend) == ["evt_first"]


def test_retention_timer_and_store_activity_share_one_prune_pace(make_backend, envelope, clock):
    backend = make_backend(
        retention=rules(queue_max_age=timedelta(hours=1), prune_interval=timedelta(minutes=5))
    )
    backend.enqueue([envelope("evt_first")])  # activity starts a pass at minute 0
    finish_pruning(backend)
    backend.enqueue([envelope("evt_a", received_at=clock() - timedelta(hours=2))])

    clock.advance(minutes=4)
    early = backend.prune_when_due()
    wait_at_minute_4 = backend.seconds_until_prune_due()
    clock.advance(minutes=1)
    due = backend.prune_when_due()
    backend.stats()  # activity right after the timer's pass: not due again
    finish_pruning(backend)

    assert early is None
    assert wait_at_minute_4 == 60.0
    assert due["queue_retention_age"] == 1
    assert backend.seconds_until_prune_due() == 300.0
    assert ids(backend) == ["evt_first"]


def test_retention_timer_prunes_at_once_when_nothing_pruned_yet(make_backend, envelope, clock):
    backend = make_backend(
        retention=rules(queue_max_age=timedelta(hours=1), prune_interval=timedelta(minutes=5))
    )

    wait = backend.seconds_until_prune_due()
    removed = backend.prune_when_due()

    assert wait == 0.0
    assert removed["queue_retention_age"] == 0


def finish_pruning(backend) -> None:
    """Wait for an activity-triggered prune; backends that prune inline need no wait."""
    getattr(backend, "finish_pruning", lambda: None)()
