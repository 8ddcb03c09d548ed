"""Durability under a crash: a ``hookaido run`` on SQLite taking concurrent webhooks is killed
with SIGKILL at a random moment; after a restart every webhook that got a 202 is there."""

import base64
import json
import random
import threading
import time

SENDERS = 6
ROUNDS = 3

CONFIG = """
ingress {{ listen 127.0.0.1:{ingress} }}
admin_api {{ listen 127.0.0.1:{admin} }}
pull_api {{
  listen 127.0.0.1:{pull}
  auth token raw:worker
}}
queue_limits {{ max_depth 0 }}
/webhooks/crash {{ pull {{ path /crash }} }}
"""


def send_until_refused(http, url: str, round_number: int, accepted: set, stop) -> None:
    """Senders post unique markers until the server goes away; 202s are recorded."""
    lock = threading.Lock()

    def sender(worker: int) -> None:
        number = 0
        while not stop.is_set():
            marker = f"r{round_number}-w{worker}-{number}"
            number += 1
            try:
                reply = http("POST", url, body=json.dumps({"marker": marker}).encode(), timeout=5)
            except Exception:
                return  # the process is gone
            if reply.status == 202:
                with lock:
                    accepted.add(marker)

    threads = [threading.Thread(target=sender, args=(w,), daemon=True) for w in range(SENDERS)]
    for thread in threads:
        thread.start()
    return threads


def drain_markers(http, pull: str) -> set[str]:
    """Dequeue and ack everything stored; returns the markers found."""
    headers = {"Authorization": "Bearer worker"}
    found: set[str] = set()
    for _ in range(1000):
        items = http("POST", f"{pull}/dequeue", json_body={"batch": 100}, headers=headers).json()
        items = items["items"]
        if not items:
            return found
        for item in items:
            found.add(json.loads(base64.b64decode(item["payload_b64"]))["marker"])
        lease_ids = [item["lease_id"] for item in items]
        acked = http("POST", f"{pull}/ack", json_body={"lease_ids": lease_ids}, headers=headers)
        assert acked.status == 200
    raise AssertionError("queue did not drain")


def test_every_202_survives_sigkill_and_restart(hookaido_process, ports, http):
    node = hookaido_process(
        CONFIG.format(ingress=ports.ingress, admin=ports.admin, pull=ports.pull)
    ).start()
    url = f"http://127.0.0.1:{ports.ingress}/webhooks/crash"
    pull = f"http://127.0.0.1:{ports.pull}/crash"
    chance = random.Random()

    for round_number in range(ROUNDS):
        accepted: set[str] = set()
        stop = threading.Event()
        threads = send_until_refused(http, url, round_number, accepted, stop)
        time.sleep(chance.uniform(0.3, 1.2))

        node.kill()
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        node.start()
        stored = drain_markers(http, pull)

        assert accepted, "no webhook was accepted before the kill"
        assert accepted - stored == set(), f"round {round_number}: lost after a 202"
