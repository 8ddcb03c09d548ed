"""Queue backend throughput, measured against a plain sqlite3 insert loop on the same disk.

Run by hand: ``.venv/bin/python bench/queue_bench.py [--dir DIR] [--seconds S]``. Every case
stops after its operation count or its time budget, so a run ends within two minutes.
"""

import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from hookaido.plugins import registry
from hookaido.queue import BackendSettings, Envelope, Retention, new_event_id
from hookaido.queue.backend import utc_now

LEASE_TTL = timedelta(minutes=5)
THREADS = 8
PAYLOAD = b'{"action":"push","ref":"refs/heads/main","size":' + b"7" * 400 + b"}"
HEADERS = {"Content-Type": "application/json", "X-Github-Event": "push"}
TRACE = {"remote_addr": "127.0.0.1:40000", "path": "/bench"}


def envelope() -> Envelope:
    now = utc_now()
    return Envelope(
        id=new_event_id(),
        route="/bench",
        target="pull",
        payload=PAYLOAD,
        received_at=now,
        next_run_at=now,
        headers=dict(HEADERS),
        trace=dict(TRACE),
    )


def measure(step: Callable[[], int], operations: int, seconds: float) -> tuple[int, float]:
    """Call ``step`` (which reports how many operations it did) until done or out of time."""
    done = 0
    started = time.perf_counter()
    while done < operations and time.perf_counter() - started < seconds:
        done += step()
    return done, time.perf_counter() - started


def reference_inserts(folder: str, batch: int, operations: int, seconds: float) -> float:
    """Rows per second of a bare insert loop with the backend's durability settings."""
    path = tempfile.mktemp(prefix=f"reference-{batch}-", suffix=".db", dir=folder)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(
        "CREATE TABLE rows (id TEXT PRIMARY KEY, route TEXT, target TEXT, received_at INTEGER,"
        " payload BLOB, headers TEXT, trace TEXT)"
    )
    headers, trace = str(HEADERS), str(TRACE)

    def step() -> int:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO rows VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (new_event_id(), "/bench", "pull", time.time_ns(), PAYLOAD, headers, trace)
                for _ in range(batch)
            ],
        )
        conn.execute("COMMIT")
        return batch

    done, elapsed = measure(step, operations, seconds)
    conn.close()
    return done / elapsed


def concurrent_enqueues(backend, operations: int, seconds: float) -> float:
    """Single-envelope enqueues from several threads at once, as waitress issues them."""
    done = [0] * THREADS
    started = time.perf_counter()

    def send(slot: int) -> None:
        while done[slot] * THREADS < operations and time.perf_counter() - started < seconds:
            backend.enqueue([envelope()])
            done[slot] += 1

    threads = [threading.Thread(target=send, args=(slot,)) for slot in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 30)
    return sum(done) / (time.perf_counter() - started)


def concurrent_drain(backend, operations: int, seconds: float) -> float:
    """Dequeue+ack batches of 100 from several threads at once, as Pull API workers do."""
    done = [0] * THREADS
    started = time.perf_counter()

    def drain(slot: int) -> None:
        while sum(done) < operations and time.perf_counter() - started < seconds:
            leased = backend.dequeue("/bench", "pull", 100, LEASE_TTL)
            if not leased:
                return
            backend.ack([item.lease_id for item in leased])
            done[slot] += len(leased)

    threads = [threading.Thread(target=drain, args=(slot,)) for slot in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 30)
    return sum(done) / (time.perf_counter() - started)


def backend_cases(name, folder, operations, backlog, seconds) -> dict[str, float]:
    factory = registry().get("backend", name).factory
    results: dict[str, float] = {}

    def fresh(tag: str):
        settings = BackendSettings(
            db_path=os.path.join(folder, f"{name}-{tag}.db"),
            max_depth=0,
            retention=Retention(prune_interval=None),
        )
        backend = factory(settings)
        backend.open()
        return backend

    for batch in (1, 100):
        backend = fresh(f"enqueue-{batch}")
        done, elapsed = measure(
            lambda b=backend, n=batch: b.enqueue([envelope() for _ in range(n)]) or n,
            operations,
            seconds,
        )
        results[f"enqueue batch {batch}"] = done / elapsed
        backend.close()

    backend = fresh("enqueue-threads")
    results[f"enqueue 1 x {THREADS} threads"] = concurrent_enqueues(backend, operations, seconds)
    backend.close()

    for batch in (1, 100):
        backend = fresh(f"lease-{batch}")
        for _ in range(0, backlog + operations, 500):
            backend.enqueue([envelope() for _ in range(500)])

        def lease_and_ack(b=backend, n=batch) -> int:
            leased = b.dequeue("/bench", "pull", n, LEASE_TTL)
            b.ack([item.lease_id for item in leased])
            return len(leased)

        done, elapsed = measure(lease_and_ack, operations, seconds)
        results[f"dequeue+ack batch {batch}"] = done / elapsed
        backend.close()

    backend = fresh("lease-threads")
    for _ in range(0, backlog + 4 * operations, 500):
        backend.enqueue([envelope() for _ in range(500)])
    drained = concurrent_drain(backend, 4 * operations, seconds)
    results[f"drain 100 x {THREADS} threads"] = drained
    backend.close()
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=None, help="folder for the scratch databases")
    parser.add_argument("--operations", type=int, default=5000, help="envelopes per case")
    parser.add_argument("--backlog", type=int, default=10000, help="queued before dequeueing")
    parser.add_argument("--seconds", type=float, default=8.0, help="time budget per case")
    args = parser.parse_args(argv)

    if args.dir is not None:
        os.makedirs(args.dir, exist_ok=True)
    folder = tempfile.mkdtemp(prefix="hookaido-bench-", dir=args.dir)
    try:
        # fsync latency drifts on a shared disk: measure the reference before and after the
        # backends and compare against the mean of both.
        before = {b: reference_inserts(folder, b, args.operations, args.seconds) for b in (1, 100)}
        results = {
            name: backend_cases(name, folder, args.operations, args.backlog, args.seconds)
            for name in registry().names("backend")
        }
        after = {b: reference_inserts(folder, b, args.operations, args.seconds) for b in (1, 100)}
        reference = {b: (before[b] + after[b]) / 2 for b in (1, 100)}

        print(f"scratch folder: {folder}  (sqlite {sqlite3.sqlite_version})")
        print("reference: plain sqlite3 insert loop, WAL, synchronous=FULL, same folder")
        for batch in (1, 100):
            print(
                f"  batch {batch:<3}  {reference[batch]:>10.0f} rows/s"
                f"  (before {before[batch]:.0f}, after {after[batch]:.0f})"
            )
        print()
        print(f"{'backend':<8} {'case':<22} {'ops/s':>10} {'x reference':>12}")
        for name, cases in results.items():
            for case, rate in cases.items():
                ratio = rate / reference[100 if " 100" in case else 1]
                print(f"{name:<8} {case:<22} {rate:>10.0f} {ratio:>12.2f}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
