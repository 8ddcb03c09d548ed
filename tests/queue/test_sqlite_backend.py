"""SQLite backend specifics: durability across reopen, schema versions, WAL, online backups."""

import re
import shutil
import sqlite3
import subprocess
import threading
from datetime import UTC, datetime, timedelta

import hookaido_backend_sqlite.store as sqlite_store
import pytest
from hookaido_backend_sqlite import LATEST_VERSION, SQLiteBackend

from hookaido.queue import BackendSettings, Envelope, MessageFilter, SchemaTooNew, TrendRow

TTL = timedelta(seconds=30)
NOW = datetime(2026, 2, 9, 10, 0, tzinfo=UTC)


def open_backend(path, **overrides) -> SQLiteBackend:
    backend = SQLiteBackend(BackendSettings(db_path=str(path), clock=lambda: NOW, **overrides))
    backend.open()
    return backend


def envelope(message_id: str, **fields) -> Envelope:
    fields.setdefault("route", "/r")
    fields.setdefault("received_at", NOW)
    fields.setdefault("next_run_at", NOW)
    return Envelope(id=message_id, target="pull", payload=b"{}", **fields)


@pytest.fixture
def path(tmp_path):
    return tmp_path / "deep" / "er" / "hookaido.db"


def test_parent_folders_are_created_and_data_survives_a_reopen(path):
    backend = open_backend(path)
    backend.enqueue([envelope("evt_1", headers={"X-A": "1"}), envelope("evt_2")])
    [leased] = backend.dequeue("/r", "pull", 1, TTL)
    backend.close()

    reopened = open_backend(path)
    try:
        first = reopened.get("evt_1")
        assert (first.state, first.lease_id, first.headers) == (
            "leased",
            leased.lease_id,
            {"X-A": "1"},
        )
        assert reopened.get("evt_2").state == "queued"
        assert reopened.ack([leased.lease_id]).succeeded == 1
    finally:
        reopened.close()


def test_file_uses_wal_and_records_its_schema_version(path):
    open_backend(path).close()

    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version FROM schema_migrations").fetchall() == [
            (LATEST_VERSION,)
        ]
    finally:
        conn.close()


def test_connections_are_durable_and_patient(path):
    backend = open_backend(path)
    try:
        conn = backend._connect()
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
        conn.close()
    finally:
        backend.close()


def test_a_database_newer_than_the_program_is_refused(path):
    open_backend(path).close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE schema_migrations SET version = ?", [LATEST_VERSION + 7])
    conn.close()

    with pytest.raises(SchemaTooNew) as refused:
        open_backend(path)

    message = str(refused.value)
    assert str(path) in message
    assert f"version {LATEST_VERSION + 7}" in message
    assert f"version {LATEST_VERSION})" in message


def test_times_are_unix_nanoseconds_and_maps_are_json_text(path):
    backend = open_backend(path)
    backend.enqueue([envelope("evt_1", trace={"path": "/r"})])
    backend.close()

    conn = sqlite3.connect(path)
    row = conn.execute("SELECT received_at, trace, headers FROM queue_items").fetchone()
    conn.close()

    assert row == (1_770_631_200_000_000_000, '{"path":"/r"}', "{}")


def test_dequeue_uses_the_ready_index(path):
    open_backend(path).close()
    conn = sqlite3.connect(path)

    plan = conn.execute(
        "EXPLAIN QUERY PLAN " + SQLiteBackend.SELECT_READY, ["/r", "pull", 0, 10]
    ).fetchall()
    conn.close()

    assert "queue_items_ready" in " ".join(str(step[-1]) for step in plan)


def test_many_threads_share_one_store(path):
    backend = open_backend(path, max_depth=0)
    errors = []

    def write(prefix: str) -> None:
        try:
            for n in range(25):
                backend.enqueue([envelope(f"evt_{prefix}_{n}")])
                backend.stats()
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(str(t),)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert backend.stats().by_state["queued"] == 200
    backend.close()


def copy_is_consistent(copy_path) -> int:
    conn = sqlite3.connect(copy_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return conn.execute("SELECT COUNT(*) FROM queue_items").fetchone()[0]
    finally:
        conn.close()


def test_online_backup_while_writing_yields_a_consistent_copy(path, tmp_path):
    backend = open_backend(path, max_depth=0)
    backend.enqueue([envelope(f"evt_seed_{n}") for n in range(100)])
    stop = threading.Event()

    def keep_writing() -> None:
        n = 0
        while not stop.is_set() and n < 5000:
            backend.enqueue([envelope(f"evt_live_{n}_{k}") for k in range(10)])
            n += 1

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        copy_path = tmp_path / "api-copy.db"
        source = sqlite3.connect(path)
        target = sqlite3.connect(copy_path)
        source.backup(target, pages=4)
        source.close()
        target.close()

        cli_copy = tmp_path / "cli-copy.db"
        if shutil.which("sqlite3"):
            subprocess.run(["sqlite3", str(path), f".backup '{cli_copy}'"], check=True, timeout=30)
    finally:
        stop.set()
        writer.join(timeout=30)

    count = copy_is_consistent(copy_path)
    assert count >= 100 and count % 10 == 0  # whole batches only
    if cli_copy.exists():
        cli_count = copy_is_consistent(cli_copy)
        assert cli_count >= 100 and cli_count % 10 == 0
    assert len(backend.list_messages(MessageFilter(limit=0))) >= count
    backend.close()


def test_closed_store_reports_unavailable(path):
    from hookaido.queue import StoreUnavailable

    backend = open_backend(path)
    backend.close()

    with pytest.raises(StoreUnavailable):
        backend.enqueue([envelope("evt_1")])


def test_a_writer_waits_a_bounded_time_for_the_store(path, monkeypatch):
    from hookaido_backend_sqlite import store

    from hookaido.queue import StoreUnavailable

    monkeypatch.setattr(store, "WRITE_WAIT_SECONDS", 0.1)
    backend = open_backend(path)
    backend._write_lock.acquire()  # another writer that does not finish
    try:
        with pytest.raises(StoreUnavailable) as refused:
            backend.enqueue([envelope("evt_1")])
    finally:
        backend._write_lock.release()

    assert "busy" in str(refused.value)
    backend.enqueue([envelope("evt_1")])
    backend.close()


def test_an_older_file_is_migrated_forward_keeping_its_data(path, monkeypatch):
    from hookaido_backend_sqlite import schema

    backend = open_backend(path)
    backend.enqueue([envelope("evt_1")])
    backend.close()

    def add_priority(db):
        db["queue_items"].add_column("priority", int)

    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, add_priority))
    monkeypatch.setattr(schema, "LATEST_VERSION", len(schema.MIGRATIONS))
    open_backend(path).close()

    conn = sqlite3.connect(path)
    try:
        version = conn.execute("SELECT version FROM schema_migrations").fetchall()
        columns = [row[1] for row in conn.execute("PRAGMA table_info(queue_items)")]
        stored = conn.execute("SELECT id FROM queue_items").fetchall()
    finally:
        conn.close()
    assert version == [(LATEST_VERSION + 1,)]
    assert "priority" in columns
    assert stored == [("evt_1",)]


def test_prune_deletes_in_small_transactions_and_still_removes_everything(path, monkeypatch):
    from hookaido_backend_sqlite import store

    from hookaido.queue import Retention

    monkeypatch.setattr(store, "PRUNE_CHUNK", 3)
    retention = Retention(prune_interval=None, queue_max_age=timedelta(hours=1), dlq_max_depth=2)
    backend = open_backend(path, max_depth=0, retention=retention)
    old = NOW - timedelta(hours=2)
    backend.enqueue([envelope(f"evt_old_{n}", route="/old", received_at=old) for n in range(10)])
    backend.enqueue([envelope(f"evt_dead_{n}") for n in range(10)])
    backend.nack([e.lease_id for e in backend.dequeue("/r", "pull", 100, TTL)], dead=True)

    removed = backend.prune()

    assert removed["queue_retention_age"] == 10
    assert removed["dead_retention_depth"] == 8
    assert backend.stats().by_state["dead"] == 2
    backend.close()


def test_a_finished_thread_leaves_no_open_connection_behind(path):
    import gc

    backend = open_backend(path)
    threads = [threading.Thread(target=backend.stats) for _ in range(20)]
    for thread in threads:
        thread.start()
        thread.join(timeout=10)
    gc.collect()

    assert len(backend._connections) == 0
    backend.close()


def test_a_file_that_is_not_a_database_is_reported_with_its_path(path):
    from hookaido.queue import StoreUnavailable

    path.parent.mkdir(parents=True)
    path.write_bytes(b"these are not the pages you are looking for" * 100)

    with pytest.raises(StoreUnavailable) as refused:
        open_backend(path)

    assert str(path) in str(refused.value)
    assert "not a database" in str(refused.value)


def test_a_version_1_file_keeps_its_open_leases_under_the_partial_lease_index(path, monkeypatch):
    from hookaido_backend_sqlite import schema

    with monkeypatch.context() as patched:
        patched.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
        patched.setattr(schema, "LATEST_VERSION", 1)
        old = open_backend(path)
        old.enqueue([envelope("evt_1"), envelope("evt_2")])
        held = old.dequeue("/r", "pull", 1, TTL)[0]
        old.close()

    backend = open_backend(path)
    try:
        assert backend.ack([held.lease_id]).succeeded == 1
        assert backend.get(held.id) is None
        assert [item.id for item in backend.dequeue("/r", "pull", 10, TTL)] == ["evt_2"]
    finally:
        backend.close()
    conn = sqlite3.connect(path)
    try:
        version = conn.execute("SELECT version FROM schema_migrations").fetchall()
        index = conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'queue_items_lease'"
        ).fetchone()[0]
    finally:
        conn.close()
    assert version == [(LATEST_VERSION,)] and LATEST_VERSION >= 2
    assert "WHERE lease_id IS NOT NULL" in index


def test_a_batch_whose_rowids_share_their_low_bits_still_gets_distinct_leases(path):
    backend = open_backend(path)
    backend.enqueue([envelope("evt_1"), envelope("evt_2")])
    backend.close()
    conn = sqlite3.connect(path)
    with conn:  # the second item moves to a rowid 2**24 above the first
        first = conn.execute("SELECT rowid FROM queue_items WHERE id = 'evt_1'").fetchone()[0]
        conn.execute("UPDATE queue_items SET rowid = ? WHERE id = 'evt_2'", [first + 2**24])
    conn.close()

    backend = open_backend(path)
    statements: list[str] = []
    backend._writer.set_trace_callback(statements.append)
    try:
        leased = backend.dequeue("/r", "pull", 10, TTL)
        assert any("AS lease" in sql for sql in statements)  # ids drawn one by one
        assert sorted(item.id for item in leased) == ["evt_1", "evt_2"]
        assert len({item.lease_id for item in leased}) == 2
        assert all(re.fullmatch(r"lease_[0-9a-f]{16}", item.lease_id) for item in leased)
        assert backend.ack([item.lease_id for item in leased]).succeeded == 2
        assert backend.stats().total == 0
    finally:
        backend.close()


def test_lease_ids_of_a_batch_are_16_hex_digits_and_settle_their_own_items(path):
    backend = open_backend(path)
    try:
        backend.enqueue([envelope(f"evt_{n}") for n in range(5)])
        leased = backend.dequeue("/r", "pull", 5, TTL)
        assert len({item.lease_id for item in leased}) == 5
        assert all(re.fullmatch(r"lease_[0-9a-f]{16}", item.lease_id) for item in leased)
        assert backend.ack([leased[2].lease_id]).succeeded == 1
        assert backend.get(leased[2].id) is None
        assert {backend.get(item.id).lease_id for item in leased if item is not leased[2]} == {
            item.lease_id for item in leased if item is not leased[2]
        }
    finally:
        backend.close()


def test_backlog_trend_rows_survive_a_reopen(path):
    later = NOW + timedelta(minutes=1)
    backend = open_backend(path)
    backend.record_backlog_trends([TrendRow(NOW, 2, 1, 0), TrendRow(NOW, 2, 1, 0, "/r", "pull")])
    backend.close()

    reopened = open_backend(path)
    try:
        reopened.record_backlog_trends([TrendRow(later, 0, 0, 3)])
        rows = reopened.backlog_trends(NOW, later)
        assert reopened.backlog_trends(later, later) == [TrendRow(later, 0, 0, 3)]
    finally:
        reopened.close()

    assert reopened.keeps_backlog_trends is True
    assert rows == [
        TrendRow(NOW, 2, 1, 0),
        TrendRow(NOW, 2, 1, 0, "/r", "pull"),
        TrendRow(later, 0, 0, 3),
    ]


def test_backlog_trend_history_keeps_the_newest_rows(path, monkeypatch):
    monkeypatch.setattr(sqlite_store, "TREND_ROW_LIMIT", 3)
    backend = open_backend(path)
    try:
        for minute in range(5):
            backend.record_backlog_trends([TrendRow(NOW + timedelta(minutes=minute), minute, 0, 0)])

        kept = backend.backlog_trends(NOW, NOW + timedelta(hours=1))
    finally:
        backend.close()

    assert [row.queued for row in kept] == [2, 3, 4]
