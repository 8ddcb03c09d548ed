"""The SQLite schema as forward-only migrations, applied with sqlite-utils before serving.

Each migration moves the file one version up; a file newer than the last one here is
refused, because an older program could damage data it does not understand.
"""

import sqlite3

import sqlite_utils

from hookaido.queue.errors import SchemaTooNew


def _create_base_tables(db: sqlite_utils.Database) -> None:
    db["queue_items"].create(
        {
            "id": str,
            "route": str,
            "target": str,
            "state": str,
            "received_at": int,  # Unix nanoseconds, like every time column
            "attempt": int,
            "next_run_at": int,
            "payload": bytes,
            "headers": str,  # JSON object
            "trace": str,  # JSON object
            "dead_reason": str,
            "schema_version": int,
            "lease_id": str,  # NULL unless leased
            "lease_until": int,
        },
        pk="id",
        not_null={"route", "target", "state", "received_at", "attempt", "next_run_at"},
        defaults={
            "attempt": 0,
            "headers": "{}",
            "trace": "{}",
            "dead_reason": "",
            "schema_version": 1,
        },
    )
    items = db["queue_items"]
    # Dequeue: ready items of one route/target, oldest next_run_at then received_at first
    # (id settles exact ties). For leased items next_run_at equals the lease deadline, so the
    # same index finds upcoming expiries.
    items.create_index(
        ["route", "target", "state", "next_run_at", "received_at", "id"],
        index_name="queue_items_ready",
    )
    # Depth counts, drop_oldest, retention, oldest-queued stats.
    items.create_index(["state", "received_at", "id"], index_name="queue_items_state_received")
    # The expiry sweep and the earliest-next-run stat.
    items.create_index(["state", "next_run_at"], index_name="queue_items_state_next_run")
    items.create_index(["lease_id"], index_name="queue_items_lease", unique=True)
    items.create_index(["received_at", "id"], index_name="queue_items_received")

    db["delivery_attempts"].create(
        {
            "id": str,
            "event_id": str,
            "route": str,
            "target": str,
            "attempt": int,
            "status_code": int,
            "error": str,
            "outcome": str,
            "dead_reason": str,
            "created_at": int,
        },
        pk="id",
        not_null={"event_id", "route", "target", "attempt", "outcome", "created_at"},
        defaults={"status_code": 0, "error": "", "dead_reason": ""},
    )
    attempts = db["delivery_attempts"]
    attempts.create_index(["created_at", "id"], index_name="delivery_attempts_created")
    attempts.create_index(["event_id"], index_name="delivery_attempts_event")


def _index_live_leases_only(db: sqlite_utils.Database) -> None:
    """Index lease ids of leased items only. A full index held one entry per stored item
    (NULL for all but the leased), so each insert and each delete wrote to it as well; the
    partial one stays as small as the set of open leases."""
    db.execute("DROP INDEX queue_items_lease")
    db.execute(
        "CREATE UNIQUE INDEX queue_items_lease ON queue_items (lease_id) WHERE lease_id IS NOT NULL"
    )


def _add_backlog_trends(db: sqlite_utils.Database) -> None:
    """Backlog trend snapshots, so that their history survives a restart like the messages.
    The global row of a snapshot has NULL route and target."""
    db["backlog_trends"].create(
        {
            "captured_at": int,  # Unix nanoseconds
            "route": str,
            "target": str,
            "queued": int,
            "leased": int,
            "dead": int,
        },
        not_null={"captured_at", "queued", "leased", "dead"},
    )
    db["backlog_trends"].create_index(["captured_at"], index_name="backlog_trends_captured")


# Index i holds the migration that produces version i + 1. Append only; never edit a
# migration that has shipped.
MIGRATIONS = (_create_base_tables, _index_live_leases_only, _add_backlog_trends)
LATEST_VERSION = len(MIGRATIONS)


def current_version(db: sqlite_utils.Database) -> int:
    if not db["schema_migrations"].exists():
        return 0
    row = db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)


def migrate(path: str) -> int:
    """Bring the file at ``path`` to ``LATEST_VERSION``; returns the version found before."""
    conn = sqlite3.connect(path, timeout=5.0, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA journal_mode = WAL")
        db = sqlite_utils.Database(conn, execute_plugins=False)
        conn.execute("BEGIN IMMEDIATE")
        try:
            found = current_version(db)
            if found > LATEST_VERSION:
                raise SchemaTooNew(path, found, LATEST_VERSION)
            if not db["schema_migrations"].exists():
                db["schema_migrations"].create({"version": int}, not_null={"version"})
            for version in range(found + 1, LATEST_VERSION + 1):
                MIGRATIONS[version - 1](db)
            if found != LATEST_VERSION:
                conn.execute("DELETE FROM schema_migrations")
                conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", [LATEST_VERSION])
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return found
    finally:
        conn.close()
