"""The SQLite write path: writers that arrive together share one commit and fail alone; a lone
webhook is one statement that still honours ``max_depth``."""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from hookaido_backend_sqlite.store import SQLiteBackend

from hookaido.queue import (
    Attempt,
    AttemptFilter,
    BackendSettings,
    Envelope,
    Retention,
    new_event_id,
)
from hookaido.queue.errors import MessageExists, QueueFull

ROUTE, TARGET = "/hooks/write-path", "pull"


def envelope(message_id: str | None = None, route: str = ROUTE) -> Envelope:
    now = datetime.now(UTC)
    return Envelope(
        id=message_id or new_event_id(),
        route=route,
        target=TARGET,
        payload=b'{"n": 1}',
        received_at=now,
        next_run_at=now,
        headers={"Content-Type": "application/json"},
        trace={"path": ROUTE},
    )


@pytest.fixture
def store(tmp_path):
    backend = SQLiteBackend(
        BackendSettings(
            db_path=str(tmp_path / "hookaido.db"),
            max_depth=0,
            retention=Retention(prune_interval=None),
        )
    )
    backend.open()
    yield backend
    backend.close()


def wait_until(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_writers_waiting_together_share_one_commit_and_fail_alone(store):
    store.enqueue([envelope(f"evt_{n}") for n in range(3)])
    held = store.dequeue(ROUTE, TARGET, 1, timedelta(minutes=1))[0]
    outcomes: dict[str, object] = {}

    def attempt(name, call):
        try:
            outcomes[name] = call()
        except Exception as exc:  # the test inspects what each writer got
            outcomes[name] = exc

    writers = [
        ("dequeue", lambda: store.dequeue(ROUTE, TARGET, 10, timedelta(minutes=1))),
        ("ack", lambda: store.ack([held.lease_id])),
        ("ack unknown", lambda: store.ack(["lease_0000000000000000"])),
        ("duplicate", lambda: store.enqueue([envelope("evt_2")])),
        # another route, so the dequeue's result does not hang on which writer ran first
        ("new", lambda: store.enqueue([envelope("evt_new", "/hooks/elsewhere")])),
    ]
    statements: list[str] = []
    store._writer.set_trace_callback(statements.append)
    with store._write_lock:  # hold the writer so that all five queue up for one commit
        threads = [threading.Thread(target=attempt, args=writer) for writer in writers]
        for thread in threads:
            thread.start()
        assert wait_until(lambda: len(store._pending) == len(writers))
    for thread in threads:
        thread.join(timeout=10)

    store._writer.set_trace_callback(None)
    assert statements.count("COMMIT") == 1
    # The duplicate failed the side-by-side run; the group ran again, one savepoint each.
    assert statements.count("SAVEPOINT write") == len(writers)
    assert len(outcomes["dequeue"]) == 2
    assert outcomes["ack"].succeeded == 1 and outcomes["ack"].conflicts == []
    assert outcomes["ack unknown"].conflicts == [("lease_0000000000000000", "lease_not_found")]
    assert isinstance(outcomes["duplicate"], MessageExists)
    assert outcomes["new"] is None
    assert store.get("evt_new").state == "queued"
    assert store.get(held.id) is None


def test_writers_that_all_succeed_share_one_commit_without_savepoints(store):
    store.enqueue([envelope(f"evt_{n}") for n in range(4)])
    held = store.dequeue(ROUTE, TARGET, 2, timedelta(minutes=1))
    outcomes: dict[str, object] = {}
    writers = [
        ("dequeue", lambda: store.dequeue(ROUTE, TARGET, 10, timedelta(minutes=1))),
        ("ack", lambda: store.ack([held[0].lease_id])),
        ("nack", lambda: store.nack([held[1].lease_id], delay=timedelta(hours=1))),
        ("new", lambda: store.enqueue([envelope("evt_new", "/hooks/elsewhere")])),
        ("attempt", lambda: store.record_attempt(attempt_of(held[0]))),
    ]
    statements: list[str] = []
    store._writer.set_trace_callback(statements.append)
    with store._write_lock:
        threads = [
            threading.Thread(target=lambda n=name, c=call: outcomes.update({n: c()}))
            for name, call in writers
        ]
        for thread in threads:
            thread.start()
        assert wait_until(lambda: len(store._pending) == len(writers))
    for thread in threads:
        thread.join(timeout=10)

    store._writer.set_trace_callback(None)
    assert statements.count("COMMIT") == 1
    assert not [sql for sql in statements if "SAVEPOINT" in sql or "ROLLBACK" in sql]
    assert sorted(item.id for item in outcomes["dequeue"]) == ["evt_2", "evt_3"]
    assert outcomes["ack"].succeeded == 1 and outcomes["nack"].succeeded == 1
    assert store.get(held[0].id) is None
    assert store.get(held[1].id).state == "queued"
    assert store.get("evt_new").state == "queued"
    assert [a.id for a in store.list_attempts(AttemptFilter(event_id=held[0].id))] == ["att_1"]


def attempt_of(leased: Envelope) -> Attempt:
    return Attempt(
        id="att_1",
        event_id=leased.id,
        route=ROUTE,
        target=TARGET,
        attempt=1,
        status_code=204,
        outcome="acked",
        created_at=datetime.now(UTC),
    )


def test_a_lone_enqueue_over_max_depth_is_refused_and_writes_nothing(tmp_path):
    backend = SQLiteBackend(
        BackendSettings(db_path=str(tmp_path / "full.db"), max_depth=2, drop_policy="reject")
    )
    backend.open()
    try:
        backend.enqueue([envelope("evt_a"), envelope("evt_b")])
        with pytest.raises(QueueFull):
            backend.enqueue([envelope("evt_c")])
        assert backend.get("evt_c") is None
        assert backend.stats().by_state["queued"] == 2
    finally:
        backend.close()
