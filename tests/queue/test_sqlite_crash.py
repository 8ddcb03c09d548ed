"""SQLite durability: a writer process killed with SIGKILL loses no acknowledged envelope.

The child enqueues from several threads and prints each id only after ``enqueue`` returned;
the parent kills it at a random moment and then looks every printed id up in the file.
"""

import os
import random
import signal
import subprocess
import sys
import threading
import time

from hookaido_backend_sqlite import SQLiteBackend

from hookaido.queue import BackendSettings, MessageFilter

WRITER = r"""
import sys, threading
from datetime import UTC, datetime
from hookaido.queue import BackendSettings, Envelope
from hookaido_backend_sqlite import SQLiteBackend

path, prefix = sys.argv[1], sys.argv[2]
backend = SQLiteBackend(BackendSettings(db_path=path, max_depth=0))
backend.open()
printing = threading.Lock()

def write(worker):
    for n in range(100000):
        now = datetime.now(UTC)
        message_id = f"evt_{prefix}_{worker}_{n}"
        backend.enqueue([Envelope(message_id, "/crash", "pull", b"marker " + message_id.encode(),
                                  now, now)])
        with printing:
            sys.stdout.write(message_id + "\n")
            sys.stdout.flush()

threads = [threading.Thread(target=write, args=(w,), daemon=True) for w in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
"""


def run_and_kill(path: str, prefix: str, rng: random.Random) -> list[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, path, prefix],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acknowledged: list[str] = []
    reader = threading.Thread(
        target=lambda: acknowledged.extend(line.strip() for line in child.stdout), daemon=True
    )
    reader.start()
    deadline = time.monotonic() + 10
    wanted = rng.randint(20, 400)
    while len(acknowledged) < wanted and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.005)
    time.sleep(rng.random() * 0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    reader.join(timeout=10)
    child.stderr.close()
    return acknowledged


def test_every_acknowledged_envelope_survives_sigkill(tmp_path):
    path = str(tmp_path / "crash" / "hookaido.db")
    rng = random.Random()
    acknowledged: list[str] = []

    for round_number in range(3):
        acknowledged += run_and_kill(path, f"r{round_number}", rng)

        backend = SQLiteBackend(BackendSettings(db_path=path, max_depth=0))
        backend.open()
        stored = {e.id: e for e in backend.list_messages(MessageFilter(limit=0))}
        backend.close()
        missing = [message_id for message_id in acknowledged if message_id not in stored]
        assert missing == []
        assert all(stored[i].payload == b"marker " + i.encode() for i in acknowledged)

    assert len(acknowledged) >= 60
