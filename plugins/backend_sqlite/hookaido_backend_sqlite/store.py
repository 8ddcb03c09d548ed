"""The durable queue on one SQLite file in WAL mode with ``synchronous=FULL``.

A caller hears success only after its transaction committed. Writes go through one
connection behind a lock (``BEGIN IMMEDIATE``); reads use one connection per thread.
"""

import functools
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from hookaido.observability.log import event
from hookaido.queue.backend import AttemptFilter, BackendSettings, MessageFilter
from hookaido.queue.base import BackendBase
from hookaido.queue.errors import (
    LeaseConflict,
    MessageExists,
    QueueFull,
    StoreUnavailable,
)
from hookaido.queue.model import (
    STATES,
    TREND_ROW_LIMIT,
    Attempt,
    BucketStats,
    Envelope,
    LeaseResult,
    Stats,
    TrendRow,
    new_lease_ids,
    new_lease_prefix,
)
from hookaido_backend_sqlite.rows import (
    ATTEMPT_COLUMNS,
    ITEM_COLUMNS,
    attempt_from_row,
    duration_ns,
    envelope_from_row,
    from_json,
    from_ns,
    to_json,
    to_json_list,
    to_ns,
)
from hookaido_backend_sqlite.schema import migrate

ID_CHUNK = 500  # ids per statement, well under SQLite's bound-parameter limit
ITEM_COLUMN_COUNT = 14
INSERT_ROWS = 256  # rows one INSERT statement may carry (14 parameters each)
CHECKPOINT_SECONDS = 30.0
# SQLite folds the WAL back into the database file once it holds this many pages (16 MiB),
# inside the COMMIT that crosses the mark. Four times SQLite's default: fewer, larger
# checkpoints, so pages changed again and again (index tails, a batch leased then acked)
# are copied once. A background checkpointer was measured too: it sped up concurrent
# draining but let the WAL grow without bound under steady writes, and every commit then
# extended the file, which made lone webhooks half as fast.
WAL_CHECKPOINT_PAGES = 4000
# The writer's page cache (SQLite's default is 2 MiB): the pages that writes touch stay in
# memory instead of being read back from the file by each transaction.
WRITER_CACHE_KIB = 32 * 1024
PRUNE_CHUNK = 2000  # rows deleted per transaction by a prune pass
WRITE_WAIT_SECONDS = 5.0  # the same patience as the busy timeout


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), ID_CHUNK):
        yield ids[start : start + ID_CHUNK]


def _marks(values: list) -> str:
    return ", ".join("?" * len(values))


def _store_errors(method):
    """Report SQLite failures (I/O, a lock held past the busy timeout) as StoreUnavailable."""

    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{self.path}: {exc}") from exc

    return guarded


@functools.lru_cache(maxsize=64)
def _insert_sql(count: int, depth: str | None) -> str:
    """A multi-row INSERT; with a ``depth`` query it inserts nothing when ``depth + ?``
    would pass the bound ``?``."""
    values = ", ".join([f"({_marks([0] * ITEM_COLUMN_COUNT)})"] * count)
    if depth is None:
        return f"INSERT INTO queue_items ({ITEM_COLUMNS}) VALUES {values}"
    return (
        f"INSERT INTO queue_items ({ITEM_COLUMNS}) SELECT * FROM (VALUES {values})"
        f" WHERE ({depth}) + ? <= ?"
    )


def _in_queue_order(rows: list) -> list:
    """Rows of ``SELECT_READY`` by next_run_at, received_at and id, as the queue orders them."""
    rows.sort(key=lambda row: (row[4], row[2], row[1]))
    return rows


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced: a reader dies with its thread."""


class _PendingWrite:
    """One write (an enqueue, a dequeue, a settlement) waiting for the next group commit.

    ``work(conn)`` runs inside the shared transaction; its result or its error is handed to
    the caller only after that transaction committed (or failed as a whole).
    """

    __slots__ = ("work", "alone", "result", "error", "finished")

    def __init__(self, work: Callable[[sqlite3.Connection], object], alone=None):
        self.work = work
        # When the write is the only one of its group: one autocommit statement that does
        # all of it and returns True, or returns False to have ``work`` run instead.
        self.alone: Callable[[sqlite3.Connection], bool] | None = alone
        self.result: object = None
        self.error: BaseException | None = None
        self.finished = threading.Event()


class SQLiteBackend(BackendBase):
    """Envelopes and delivery attempts in the tables of ``schema.py``."""

    # Limitation: readiness wake-ups and the write lock are per process. Another process
    # writing to the same file is kept safe by SQLite's own locking, but its new messages
    # reach this process's waiting workers only at their next once-a-second re-check.

    name = "sqlite"

    INSERT_ITEM = (
        f"INSERT INTO queue_items ({ITEM_COLUMNS}) VALUES ({_marks([0] * ITEM_COLUMN_COUNT)})"
    )
    # A dequeue reads its whole batch as one JSON row and leases it with one UPDATE: every
    # row stepped through Python's sqlite3 releases and re-takes the GIL, which costs up to a
    # switch interval per row when request threads are busy, with the write lock held.
    READY = (
        "SELECT rowid FROM queue_items"
        " WHERE route = ? AND target = ? AND state = 'queued' AND next_run_at <= ?"
        " ORDER BY next_run_at, received_at, id LIMIT ?"
    )
    SELECT_READY = (
        "SELECT json_group_array(json_array(rowid, id, received_at, attempt, next_run_at,"
        " hex(payload), json(coalesce(nullif(headers, ''), '{}')),"
        " json(coalesce(nullif(trace, ''), '{}')),"
        f" schema_version)) FROM queue_items WHERE rowid IN ({READY})"
    )
    # Whether something of route/target is ready, and whether some lease has expired.
    ANY_WORK = (
        "SELECT EXISTS (SELECT 1 FROM queue_items"
        " WHERE route = ? AND target = ? AND state = 'queued' AND next_run_at <= ?),"
        " EXISTS (SELECT 1 FROM queue_items WHERE state = 'leased' AND next_run_at <= ?)"
    )
    # A batch's lease ids are one random prefix (``lease_`` and 10 hex digits) followed by the
    # low 24 bits of each rowid in 6 hex digits: one statement leases the rowids of the JSON
    # array ``?``, and the ids of a batch sit side by side in the lease index instead of on
    # a hundred random pages of it.
    #
    # The UPDATE chooses its rows with the same query as the SELECT before it, in the same
    # transaction, so both see the same batch and the batch's JSON is read only after the
    # commit, outside the write lock. Two rowids of a batch that share their low 24 bits
    # break the unique lease index: the UPDATE then fails alone and the batch is leased
    # one by one.
    LEASE_READY = (
        "UPDATE queue_items SET state = 'leased', lease_id = ? || printf('%06x', rowid & 16777215),"
        " lease_until = ?, next_run_at = ?, attempt = attempt + 1"
        f" WHERE rowid IN ({READY})"
    )
    # For the rare batch whose rowids share their low 24 bits: ``?`` is a JSON array of
    # [rowid, lease_id] pairs with ids drawn one by one.
    LEASE_ITEMS_ONE_BY_ONE = (
        "UPDATE queue_items SET state = 'leased', lease_id = json_extract(lease.value, '$[1]'),"
        " lease_until = ?, next_run_at = ?, attempt = attempt + 1"
        " FROM json_each(?) AS lease WHERE queue_items.rowid = json_extract(lease.value, '$[0]')"
    )
    SWEEP_EXPIRED = (
        "UPDATE queue_items SET state = 'queued', lease_id = NULL, lease_until = NULL,"
        " next_run_at = ? WHERE state = 'leased' AND next_run_at <= ? RETURNING route, target"
    )
    FIND_LEASE = "SELECT id, route, target, lease_until FROM queue_items WHERE lease_id = ?"
    EXPIRE_ITEM = (
        "UPDATE queue_items SET state = 'queued', lease_id = NULL, lease_until = NULL,"
        " next_run_at = ? WHERE id = ?"
    )
    DELETE_ITEM = "DELETE FROM queue_items WHERE id = ?"
    # Settling finds the live leases of a batch (of the route, when one is given) as one JSON
    # row and their count, then changes the same envelopes with the same condition, in the
    # same transaction. The JSON is read inside the write lock only when some lease was not
    # live. Each list ``?`` is a JSON array.
    LIVE = (
        "lease_id IN (SELECT value FROM json_each(?)) AND lease_until > ?"
        " AND (? IS NULL OR route = ?)"
    )
    FIND_LIVE_LEASES = (
        "SELECT json_group_array(json_array(lease_id, route, target)), count(*)"
        f" FROM queue_items WHERE {LIVE}"
    )
    ACK_DELETE = f"DELETE FROM queue_items WHERE {LIVE}"
    ACK_DELIVERED = (
        "UPDATE queue_items SET state = 'delivered', lease_id = NULL, lease_until = NULL,"
        f" next_run_at = ? WHERE {LIVE}"
    )
    NACK_DEAD = (
        "UPDATE queue_items SET state = 'dead', dead_reason = ?, lease_id = NULL,"
        f" lease_until = NULL, next_run_at = ? WHERE {LIVE}"
    )
    NACK_RETRY = (
        "UPDATE queue_items SET state = 'queued', dead_reason = '', lease_id = NULL,"
        f" lease_until = NULL, next_run_at = ? WHERE {LIVE}"
    )
    EXTEND_LEASE = (
        "UPDATE queue_items SET lease_until = lease_until + ?, next_run_at = lease_until + ?"
        " WHERE id = ?"
    )
    DEPTH = (
        "SELECT (SELECT COUNT(*) FROM queue_items WHERE state = 'queued')"
        " + (SELECT COUNT(*) FROM queue_items WHERE state = 'leased')"
    )
    OLDEST_QUEUED = (
        "SELECT id FROM queue_items WHERE state = 'queued' ORDER BY received_at, id LIMIT ?"
    )
    NEXT_AT = (
        "SELECT MIN(next_run_at) FROM queue_items WHERE route = ? AND target = ? AND state = ?"
    )
    INSERT_TREND = (
        "INSERT INTO backlog_trends (captured_at, route, target, queued, leased, dead)"
        " VALUES (?, ?, ?, ?, ?, ?)"
    )
    # Rows are only ever appended and trimmed from the oldest end, so rowids follow capture
    # order and the newest ``?`` rows are the ones with the highest rowids.
    TRIM_TRENDS = (
        "DELETE FROM backlog_trends WHERE rowid <= (SELECT MAX(rowid) FROM backlog_trends) - ?"
    )
    SELECT_TRENDS = (
        "SELECT captured_at, queued, leased, dead, route, target FROM backlog_trends"
        " WHERE captured_at BETWEEN ? AND ? ORDER BY captured_at, rowid"
    )
    INSERT_ATTEMPT = (
        f"INSERT OR REPLACE INTO delivery_attempts ({ATTEMPT_COLUMNS}) VALUES ({_marks([0] * 10)})"
    )

    def __init__(self, settings: BackendSettings):
        super().__init__(settings)
        self.path = settings.db_path
        self._write_lock = threading.Lock()
        self._writer: sqlite3.Connection | None = None
        self._local = threading.local()
        self._connections: weakref.WeakSet[sqlite3.Connection] = weakref.WeakSet()
        self._connections_lock = threading.Lock()
        self._last_checkpoint = time.monotonic()
        self._closed = False
        self._pending: list[_PendingWrite] = []
        self._pending_lock = threading.Lock()

    # -- lifecycle --------------------------------------------------------------------------

    def open(self) -> None:
        """Create the file and its parent folders if needed and migrate it to this version."""
        parent = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(parent, exist_ok=True)
            migrate(self.path)
            self._writer = self._connect()
            self._writer.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
            self._writer.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"{self.path}: {exc}") from exc

    def close(self) -> None:
        self.finish_pruning()
        self._closed = True
        with self._write_lock:
            if self._writer is not None:
                self._checkpoint(self._writer)
                self._writer.close()
                self._writer = None
        with self._connections_lock:
            for conn in list(self._connections):
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=5.0,
            isolation_level=None,
            check_same_thread=False,
            factory=_Connection,
        )
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA synchronous = FULL")
        return conn

    def _reader(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreUnavailable(f"{self.path}: store is closed")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            with self._connections_lock:
                self._connections.add(conn)
            self._local.conn = conn
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction on the write connection; rolled back on error.

        Waiting for the connection is bounded like SQLite's own busy timeout.
        """
        if not self._write_lock.acquire(timeout=WRITE_WAIT_SECONDS):
            raise StoreUnavailable(f"{self.path}: store busy for {WRITE_WAIT_SECONDS:g}s")
        try:
            conn = self._writer
            if conn is None:
                raise StoreUnavailable(f"{self.path}: store is closed")
            started = time.perf_counter()
            self._begin(conn)
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self._report_tx(started, committed=False)
                raise
            self._report_tx(started, committed=True)
            if time.monotonic() - self._last_checkpoint >= CHECKPOINT_SECONDS:
                self._checkpoint(conn)
        finally:
            self._write_lock.release()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        """Copy committed WAL pages into the main file without waiting for readers."""
        self._last_checkpoint = time.monotonic()
        started = time.perf_counter()
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            self.observer.error("checkpoint", "error")
            event("queue_checkpoint_failed", level="warn", path=self.path, error=str(exc))
        self.observer.observe("checkpoint", time.perf_counter() - started)
        self.observer.count("checkpoint")

    def _begin(self, conn: sqlite3.Connection) -> None:
        """``BEGIN IMMEDIATE``; a busy database is reported to the store observer."""
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                self.observer.error("begin_tx", "busy")
            raise

    def _report_tx(self, started: float, committed: bool) -> None:
        self.observer.observe("write_tx", time.perf_counter() - started)
        self.observer.count("tx_commit" if committed else "tx_rollback")

    def _now(self) -> tuple[datetime, int]:
        now = self.settings.clock()
        return now, to_ns(now)

    # -- writing ----------------------------------------------------------------------------

    @_store_errors
    def enqueue(self, envelopes: Iterable[Envelope]) -> None:
        batch = list(envelopes)
        if not batch:
            return
        seen: set[str] = set()
        for envelope in batch:
            if envelope.id in seen:
                raise MessageExists(envelope.id)
            seen.add(envelope.id)
        rows = [self._item_row(envelope) for envelope in batch]
        self._maybe_prune()
        self._grouped(
            lambda conn: self._store_batch(conn, batch, rows),
            alone=lambda conn: self._insert_alone(conn, rows),
        )
        self._notify_ready((envelope.route, envelope.target) for envelope in batch)

    def _grouped(self, work: Callable[[sqlite3.Connection], object], alone=None):
        """Run ``work(conn)`` in the next group commit and return its result once durable.

        Concurrent writers share one transaction and one fsync: whoever holds the write
        lock commits every write waiting at that moment, each in its own savepoint, so one
        failing write (a duplicate id, a full queue) fails alone. Nobody hears success
        before the shared COMMIT has returned.
        """
        request = _PendingWrite(work, alone)
        with self._pending_lock:
            self._pending.append(request)
        if self._write_lock.acquire(timeout=WRITE_WAIT_SECONDS):
            try:
                if not request.finished.is_set():
                    self._commit_pending()
            finally:
                self._write_lock.release()
        else:
            self._give_up_or_wait(request)
        if request.error is not None:
            raise request.error
        return request.result

    def _give_up_or_wait(self, request: _PendingWrite) -> None:
        """After a timed-out wait for the lock: withdraw the request, or, when a committing
        writer has already taken it, wait for that commit to finish."""
        with self._pending_lock:
            if any(pending is request for pending in self._pending):
                self._pending.remove(request)
                raise StoreUnavailable(f"{self.path}: store busy for {WRITE_WAIT_SECONDS:g}s")
        if not request.finished.wait(timeout=6 * WRITE_WAIT_SECONDS):
            raise StoreUnavailable(f"{self.path}: commit did not finish")

    def _commit_pending(self) -> None:
        """Commit every waiting write in one transaction. Called with the write lock held."""
        with self._pending_lock:
            group, self._pending = self._pending, []
        conn = self._writer
        failure: BaseException = StoreUnavailable(f"{self.path}: store is closed")
        committed = False
        started = time.perf_counter()
        try:
            if conn is not None and len(group) == 1 and group[0].alone and group[0].alone(conn):
                committed = True
            elif conn is not None:
                self._commit_group(conn, group)
                committed = True
        except sqlite3.Error as exc:
            failure = StoreUnavailable(f"{self.path}: {exc}")
        except Exception as exc:
            failure = exc
        finally:
            if not committed:
                self._roll_back(conn)
                for request in group:
                    request.result = None
                    request.error = request.error or failure
            for request in group:
                request.finished.set()
        if conn is not None:
            self._report_tx(started, committed)
        if conn is not None and time.monotonic() - self._last_checkpoint >= CHECKPOINT_SECONDS:
            self._checkpoint(conn)

    def _commit_group(self, conn: sqlite3.Connection, group: list[_PendingWrite]) -> None:
        """Run the writes of ``group`` in one transaction and commit it.

        Writes rarely fail, so they first run side by side with nothing between them: each
        savepoint would cost two more SQLite calls with the write lock held. When one fails
        in a group of several, the transaction is rolled back and run again with a savepoint
        around each write, so that only the failing one fails. A write's ``work`` returns
        its whole result and changes nothing else, so running it twice is safe.
        """
        self._begin(conn)
        try:
            results = [request.work(conn) for request in group]
        except Exception:
            if len(group) == 1:
                raise
            self._roll_back(conn)
            self._begin(conn)
            for request in group:
                self._apply_in_savepoint(conn, request)
        else:
            for request, result in zip(group, results, strict=True):
                request.result = result
        conn.execute("COMMIT")

    @staticmethod
    def _roll_back(conn: sqlite3.Connection | None) -> None:
        try:
            if conn is not None and conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # the connection already abandoned the transaction

    @staticmethod
    def _apply_in_savepoint(conn: sqlite3.Connection, request: _PendingWrite) -> None:
        conn.execute("SAVEPOINT write")
        try:
            request.result = request.work(conn)
        except Exception as exc:
            conn.execute("ROLLBACK TO write")
            request.error = exc
        conn.execute("RELEASE write")

    def _insert_alone(self, conn: sqlite3.Connection, rows: list[tuple]) -> bool:
        """Store a lone enqueue with one autocommit statement: one SQLite call instead of
        four, each of which waits to win the GIL back from busy request threads.

        False (nothing written) when ``max_depth`` would be passed or an id is taken; the
        transaction path then decides what to do and which error to report.
        """
        if len(rows) > INSERT_ROWS:
            return False
        params = [value for row in rows for value in row]
        max_depth = self.settings.max_depth
        if max_depth <= 0:
            sql = _insert_sql(len(rows), None)
        else:
            sql = _insert_sql(len(rows), self.DEPTH)
            params += [len(rows), max_depth]
        try:
            return conn.execute(sql, params).rowcount == len(rows)
        except sqlite3.IntegrityError:
            return False

    def _store_batch(self, conn: sqlite3.Connection, batch: list[Envelope], rows: list[tuple]):
        """The write of one ``enqueue``: refuse duplicates, apply ``max_depth``, insert."""
        taken = self._first_existing(conn, batch)
        if taken is not None:
            raise MessageExists(taken)
        self._make_room(conn, len(batch))
        try:
            conn.executemany(self.INSERT_ITEM, rows)
        except sqlite3.IntegrityError:
            raise MessageExists(self._first_existing(conn, batch) or "") from None

    @staticmethod
    def _item_row(envelope: Envelope) -> tuple:
        return (
            envelope.id,
            envelope.route,
            envelope.target,
            "queued",
            to_ns(envelope.received_at),
            envelope.attempt,
            to_ns(envelope.next_run_at),
            bytes(envelope.payload),
            to_json(envelope.headers),
            to_json(envelope.trace),
            "",
            envelope.schema_version,
            None,
            None,
        )

    def _first_existing(self, conn: sqlite3.Connection, batch: list[Envelope]) -> str | None:
        """The first id of the batch that is already stored, checked before any eviction."""
        ids = [envelope.id for envelope in batch]
        stored: set[str] = set()
        for chunk in _chunks(ids):
            sql = f"SELECT id FROM queue_items WHERE id IN ({_marks(chunk)})"
            stored.update(row[0] for row in conn.execute(sql, chunk))
        return next((i for i in ids if i in stored), None)

    def _make_room(self, conn: sqlite3.Connection, incoming: int) -> None:
        """Apply ``max_depth``: evict the oldest queued items or raise ``QueueFull``.

        Runs inside the enqueue transaction, so evictions vanish if the enqueue fails.
        """
        max_depth = self.settings.max_depth
        if max_depth <= 0:
            return
        depth = conn.execute(self.DEPTH).fetchone()[0]
        excess = depth + incoming - max_depth
        if excess <= 0:
            return
        if self.settings.drop_policy != "drop_oldest":
            raise QueueFull("queue is full")
        victims = conn.execute(self.OLDEST_QUEUED, [excess]).fetchall()
        if len(victims) < excess:
            raise QueueFull("queue is full and every item is leased")
        conn.executemany(self.DELETE_ITEM, victims)

    # -- leasing ----------------------------------------------------------------------------

    @_store_errors
    def dequeue(self, route: str, target: str, batch: int, lease_ttl: timedelta) -> list[Envelope]:
        self._maybe_prune()
        wanted = self._batch_size(batch)
        leased: list[Envelope] = []
        ready, expiries = self._lease_work(route, target)
        if not (ready or expiries):
            return leased

        def lease(conn: sqlite3.Connection):
            now, now_ns = self._now()
            expired = self._sweep_expired(conn, now_ns) if expiries else set()
            ready = [route, target, now_ns, wanted]
            found = conn.execute(self.SELECT_READY, ready).fetchone()
            if not found or not found[0] or found[0] == "[]":
                return now, "[]", None, expired
            until_ns = to_ns(now + lease_ttl)
            prefix = new_lease_prefix()
            try:
                conn.execute(self.LEASE_READY, [prefix, until_ns, until_ns, *ready])
            except sqlite3.IntegrityError:
                return now, found[0], self._lease_one_by_one(conn, found[0], until_ns), expired
            return now, found[0], prefix, expired

        started = time.perf_counter()
        now, batch_json, lease_ids, expired = self._grouped(lease)
        self.observer.observe("dequeue_tx", time.perf_counter() - started)
        self._notify_ready(expired)
        # Built after the commit, outside the write lock: other writers need not wait.
        rows = _in_queue_order(from_json(batch_json))
        if isinstance(lease_ids, str):
            lease_ids = [f"{lease_ids}{row[0] & 0xFFFFFF:06x}" for row in rows]
        lease_until = now + lease_ttl
        for row, lease_id in zip(rows, lease_ids or (), strict=True):
            _, item_id, received_ns, attempt, _, payload, headers, trace, version = row
            leased.append(
                Envelope(
                    id=item_id,
                    route=route,
                    target=target,
                    payload=bytes.fromhex(payload),
                    received_at=from_ns(received_ns),
                    next_run_at=lease_until,
                    state="leased",
                    attempt=attempt + 1,
                    headers=headers,
                    trace=trace,
                    schema_version=version,
                    lease_id=lease_id,
                    lease_until=lease_until,
                )
            )
        return leased

    def _lease_one_by_one(self, conn: sqlite3.Connection, batch_json: str, until_ns: int):
        """Lease a batch whose rowids share their low 24 bits with random ids, one per row;
        returns the ids in queue order."""
        rows = _in_queue_order(from_json(batch_json))
        lease_ids = new_lease_ids(len(rows))
        pairs = to_json_list(
            [[row[0], lease_id] for row, lease_id in zip(rows, lease_ids, strict=True)]
        )
        conn.execute(self.LEASE_ITEMS_ONE_BY_ONE, [until_ns, until_ns, pairs])
        return lease_ids

    def _lease_work(self, route: str, target: str) -> tuple[bool, bool]:
        """Whether something of route/target is ready, and whether some lease has expired.

        Read without the write lock, so idle pollers never queue behind writers. The lease
        transaction sweeps expired leases only when this saw one: a lease expiring in the
        moment between the two is swept by the next dequeue, or by ``ack``/``nack``/``extend``
        of its holder, which requeue it themselves.
        """
        now_ns = to_ns(self.settings.clock())
        found = self._reader().execute(self.ANY_WORK, [route, target, now_ns, now_ns]).fetchone()
        return bool(found[0]), bool(found[1])

    def _sweep_expired(self, conn: sqlite3.Connection, now_ns: int) -> set[tuple[str, str]]:
        return {(row[0], row[1]) for row in conn.execute(self.SWEEP_EXPIRED, [now_ns, now_ns])}

    def _live_lease(self, conn, lease_id: str, route: str | None, now_ns: int, notify: set):
        """(id, route) of the item holding a live lease, or None and the conflict reason."""
        row = conn.execute(self.FIND_LEASE, [lease_id]).fetchone()
        if row is None or (route is not None and row[1] != route):
            return None, "lease_not_found"
        if row[3] is None or row[3] <= now_ns:
            conn.execute(self.EXPIRE_ITEM, [now_ns, row[0]])
            notify.add((row[1], row[2]))
            return None, "lease_expired"
        return (row[0], row[1], row[2]), ""

    @_store_errors
    def ack(self, lease_ids: list[str], route: str | None = None) -> LeaseResult:
        if self._delivered_retention_on():
            return self._settle("ack", lease_ids, route, self.ACK_DELIVERED, lambda now: [now])
        return self._settle("ack", lease_ids, route, self.ACK_DELETE, lambda now: [])

    @_store_errors
    def nack(
        self,
        lease_ids: list[str],
        delay: timedelta = timedelta(0),
        dead: bool = False,
        reason: str = "",
        route: str | None = None,
    ) -> LeaseResult:
        if dead:
            return self._settle("nack", lease_ids, route, self.NACK_DEAD, lambda now: [reason, now])
        delay_ns = duration_ns(max(delay, timedelta(0)))
        return self._settle(
            "nack", lease_ids, route, self.NACK_RETRY, lambda now: [now + delay_ns], wakes=True
        )

    def _settle(self, kind, lease_ids, route, statement, values, wakes=False) -> LeaseResult:
        """Run a settling ``statement`` on the live leases of a batch, then classify misses."""
        result = LeaseResult()

        unique = list(dict.fromkeys(lease_ids))
        wanted = to_json_list(unique)

        def settle(conn: sqlite3.Connection):
            _, now_ns = self._now()
            live_where = [wanted, now_ns, route, route]
            found_json, found = conn.execute(self.FIND_LIVE_LEASES, live_where).fetchone()
            if found:
                conn.execute(statement, [*values(now_ns), *live_where])
            notify: set = set()
            misses = {}
            if found < len(unique):
                live_ids = {row[0] for row in from_json(found_json)}
                misses = {
                    lease_id: self._miss(conn, lease_id, route, now_ns, notify)
                    for lease_id in unique
                    if lease_id not in live_ids
                }
            return found_json, misses, notify

        found_json, misses, notify = self._grouped(settle)
        live = {
            lease_id: (of_route, of_target)
            for lease_id, of_route, of_target in from_json(found_json)
        }
        settled = []
        for lease_id in lease_ids:
            if lease_id in live:
                lease_route, lease_target = live[lease_id]
                settled.append((lease_id, lease_route))
                if wakes:
                    notify.add((lease_route, lease_target))
                result.succeeded += 1
            elif misses[lease_id] == "lease_not_found" and self.settled.recall(
                kind, lease_id, route
            ):
                result.succeeded += 1
            else:
                result.conflicts.append((lease_id, misses[lease_id]))
        self.settled.remember_all(kind, settled)
        self._notify_ready(notify)
        return result

    def _miss(self, conn, lease_id: str, route: str | None, now_ns: int, notify: set) -> str:
        """Why a lease is not live; an expired one puts its envelope back to ``queued``."""
        item, reason = self._live_lease(conn, lease_id, route, now_ns, notify)
        return reason or "lease_not_found"

    @_store_errors
    def extend(self, lease_id: str, by: timedelta, route: str | None = None) -> None:
        if by <= timedelta(0):
            return
        notify: set = set()
        with self._transaction() as conn:
            _, now_ns = self._now()
            item, reason = self._live_lease(conn, lease_id, route, now_ns, notify)
            if item is not None:
                by_ns = duration_ns(by)
                conn.execute(self.EXTEND_LEASE, [by_ns, by_ns, item[0]])
        self._notify_ready(notify)
        if item is None:
            raise LeaseConflict(lease_id, reason)

    @_store_errors
    def _next_ready_at(self, route: str, target: str) -> datetime | None:
        conn = self._reader()
        found = [
            conn.execute(self.NEXT_AT, [route, target, state]).fetchone()[0]
            for state in ("queued", "leased")
        ]
        found = [value for value in found if value is not None]
        return from_ns(min(found)) if found else None

    # -- reading ----------------------------------------------------------------------------

    @_store_errors
    def get(self, message_id: str) -> Envelope | None:
        sql = f"SELECT {ITEM_COLUMNS} FROM queue_items WHERE id = ?"
        row = self._reader().execute(sql, [message_id]).fetchone()
        return envelope_from_row(row) if row is not None else None

    @_store_errors
    def list_messages(self, selector: MessageFilter) -> list[Envelope]:
        self._maybe_prune()
        clauses, params = [], []
        for column, value in (("route", selector.route), ("target", selector.target)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if selector.states is not None:
            states = list(selector.states) or [""]
            clauses.append(f"state IN ({_marks(states)})")
            params.extend(states)
        if selector.before is not None:
            clauses.append("received_at < ?")
            params.append(to_ns(selector.before))
        if selector.ids is not None:
            ids = list(dict.fromkeys(selector.ids)) or [""]
            clauses.append(f"id IN ({_marks(ids)})")
            params.extend(ids)

        rows = self._newest_first(
            ITEM_COLUMNS, "queue_items", "received_at", clauses, params, selector.limit
        )
        return [envelope_from_row(row) for row in rows]

    def _newest_first(self, columns, table, time_column, clauses, params, limit):
        """Rows of ``table`` matching every clause, newest ``time_column`` first, then id."""
        sql = f"SELECT {columns} FROM {table}"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += f" ORDER BY {time_column} DESC, id DESC"
        if limit > 0:
            sql += " LIMIT ?"
            params = [*params, limit]
        return self._reader().execute(sql, params)

    @_store_errors
    def stats(self) -> Stats:
        self._maybe_prune()
        conn = self._reader()
        conn.execute("BEGIN")  # one snapshot for every figure
        try:
            by_state = dict.fromkeys(STATES, 0)
            for state, count in conn.execute(
                "SELECT state, COUNT(*) FROM queue_items GROUP BY state"
            ):
                by_state[state] = count
            oldest = conn.execute(
                "SELECT MIN(received_at) FROM queue_items WHERE state = 'queued'"
            ).fetchone()[0]
            earliest = conn.execute(
                "SELECT MIN(next_run_at) FROM queue_items WHERE state = 'queued'"
            ).fetchone()[0]
            buckets = conn.execute(
                "SELECT route, target, COUNT(*), MIN(received_at), MIN(next_run_at)"
                " FROM queue_items WHERE state = 'queued' GROUP BY route, target"
                " ORDER BY COUNT(*) DESC, route, target LIMIT 10"
            ).fetchall()
        finally:
            conn.execute("COMMIT")

        return Stats(
            total=sum(by_state.values()),
            by_state=by_state,
            oldest_queued_received_at=from_ns(oldest) if oldest is not None else None,
            earliest_queued_next_run_at=from_ns(earliest) if earliest is not None else None,
            top_queued=[
                BucketStats(route, target, count, from_ns(first), from_ns(soonest))
                for route, target, count, first, soonest in buckets
            ],
        )

    @_store_errors
    def counts_by_route(
        self, states: tuple[str, ...] = ("queued", "leased", "dead")
    ) -> dict[tuple[str, str], dict[str, int]]:
        states = tuple(states)
        counts: dict[tuple[str, str], dict[str, int]] = {}
        if not states:
            return counts
        rows = self._reader().execute(
            "SELECT route, target, state, COUNT(*) FROM queue_items"
            f" WHERE state IN ({_marks(list(states))}) GROUP BY route, target, state",
            list(states),
        )
        for route, target, state, count in rows:
            counts.setdefault((route, target), dict.fromkeys(states, 0))[state] = count
        return counts

    # -- lifecycle mutations ----------------------------------------------------------------

    @_store_errors
    def cancel(self, ids: Iterable[str]) -> int:
        changed, _ = self._mutate(
            ids,
            "UPDATE queue_items SET state = 'canceled', lease_id = NULL, lease_until = NULL,"
            " dead_reason = '', next_run_at = ?",
            ("queued", "leased", "dead"),
        )
        return changed

    @_store_errors
    def requeue(self, ids: Iterable[str]) -> int:
        changed, keys = self._mutate(
            ids,
            "UPDATE queue_items SET state = 'queued', attempt = 0, dead_reason = '',"
            " next_run_at = ?",
            ("dead", "canceled"),
        )
        self._notify_ready(keys)
        return changed

    @_store_errors
    def resume(self, ids: Iterable[str]) -> int:
        changed, keys = self._mutate(
            ids,
            "UPDATE queue_items SET state = 'queued', dead_reason = '', next_run_at = ?",
            ("canceled",),
        )
        self._notify_ready(keys)
        return changed

    @_store_errors
    def delete_dead(self, ids: Iterable[str]) -> int:
        return self._mutate(ids, "DELETE FROM queue_items", ("dead",), with_now=False)[0]

    def _mutate(self, ids, statement: str, eligible: tuple[str, ...], with_now: bool = True):
        """Run ``statement`` on the eligible items among ``ids``; returns (count, keys)."""
        ids = list(dict.fromkeys(ids))
        changed = 0
        keys: set[tuple[str, str]] = set()
        if not ids:
            return changed, keys
        with self._transaction() as conn:
            _, now_ns = self._now()
            for chunk in _chunks(ids):
                sql = (
                    f"{statement} WHERE id IN ({_marks(chunk)})"
                    f" AND state IN ({_marks(list(eligible))}) RETURNING route, target"
                )
                params = ([now_ns] if with_now else []) + chunk + list(eligible)
                for route, target in conn.execute(sql, params).fetchall():
                    keys.add((route, target))
                    changed += 1
        return changed, keys

    # -- delivery attempts ------------------------------------------------------------------

    @_store_errors
    def record_attempt(self, attempt: Attempt) -> None:
        row = (
            attempt.id,
            attempt.event_id,
            attempt.route,
            attempt.target,
            attempt.attempt,
            attempt.status_code,
            attempt.error,
            attempt.outcome,
            attempt.dead_reason,
            to_ns(attempt.created_at),
        )

        def insert(conn: sqlite3.Connection) -> bool:
            conn.execute(self.INSERT_ATTEMPT, row)
            return True

        # Shares the next group commit with other workers' leases and settlements.
        self._grouped(insert, alone=insert)

    @_store_errors
    def list_attempts(self, selector: AttemptFilter) -> list[Attempt]:
        clauses, params = [], []
        wanted = (
            ("route", selector.route),
            ("target", selector.target),
            ("event_id", selector.event_id),
            ("outcome", selector.outcome),
        )
        for column, value in wanted:
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if selector.before is not None:
            clauses.append("created_at < ?")
            params.append(to_ns(selector.before))

        rows = self._newest_first(
            ATTEMPT_COLUMNS, "delivery_attempts", "created_at", clauses, params, selector.limit
        )
        return [attempt_from_row(row) for row in rows]

    # -- backlog trend history ----------------------------------------------------------------

    keeps_backlog_trends = True

    @_store_errors
    def record_backlog_trends(self, rows: list[TrendRow]) -> None:
        values = [
            (to_ns(row.captured_at), row.route, row.target, row.queued, row.leased, row.dead)
            for row in rows
        ]
        with self._transaction() as conn:
            conn.executemany(self.INSERT_TREND, values)
            conn.execute(self.TRIM_TRENDS, [TREND_ROW_LIMIT])

    @_store_errors
    def backlog_trends(self, since: datetime, until: datetime) -> list[TrendRow]:
        found = self._reader().execute(self.SELECT_TRENDS, [to_ns(since), to_ns(until)])
        return [
            TrendRow(from_ns(captured), queued, leased, dead, route, target)
            for captured, queued, leased, dead, route, target in found
        ]

    # -- retention --------------------------------------------------------------------------

    @_store_errors
    def prune(self) -> dict[str, int]:
        rules = self.settings.retention
        now = self.settings.clock()
        items, attempts = "queue_items", "delivery_attempts"
        plan = []  # (reason, table, id selection, parameters); None rules remove nothing
        for reason, max_age, state, column in (
            ("queue_retention_age", rules.queue_max_age, "queued", "received_at"),
            ("delivered_retention_age", rules.delivered_max_age, "delivered", "next_run_at"),
            ("dead_retention_age", rules.dlq_max_age, "dead", "received_at"),
        ):
            where = f"WHERE state = ? AND {column} <= ?"
            cutoff = [state, to_ns(now - max_age)] if max_age is not None else None
            plan.append((reason, items, where, cutoff))
        plan.append(
            (
                "dead_retention_depth",
                items,
                "WHERE state = 'dead' ORDER BY received_at DESC, id DESC LIMIT -1 OFFSET ?",
                [rules.dlq_max_depth] if rules.dlq_max_depth is not None else None,
            )
        )
        attempts_cutoff = rules.attempts_max_age
        plan.append(
            (
                "attempts_retention_age",
                attempts,
                "WHERE created_at <= ?",
                [to_ns(now - attempts_cutoff)] if attempts_cutoff is not None else None,
            )
        )
        plan.append(
            (
                "attempts_retention_depth",
                attempts,
                "ORDER BY created_at DESC, id DESC LIMIT -1 OFFSET ?",
                [rules.attempts_max_rows] if rules.attempts_max_rows is not None else None,
            )
        )
        return {
            reason: self._delete_in_chunks(table, selection, params) if params else 0
            for reason, table, selection, params in plan
        }

    def _delete_in_chunks(self, table: str, selection: str, params: list) -> int:
        """Delete the selected rows a chunk per transaction, so ingress never waits long."""
        removed = 0
        chunk_sql = (
            f"DELETE FROM {table} WHERE id IN"
            f" (SELECT id FROM (SELECT id FROM {table} {selection}) LIMIT {PRUNE_CHUNK})"
        )
        while True:
            with self._transaction() as conn:
                count = conn.execute(chunk_sql, params).rowcount
            removed += count
            if count < PRUNE_CHUNK:
                return removed
