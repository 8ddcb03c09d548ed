"""The queue model of spec/queue.md as a user sees it: a real ``hookaido run`` on each
backend, driven over loopback HTTP through ingress, the Pull API and the Admin API."""

import pytest

TOKEN = {"Authorization": "Bearer pull-token"}
AUDIT = {"X-Hookaido-Audit-Reason": "conformance"}


def queue_config(ports, backend: str, globals_text: str = "") -> str:
    return f"""
ingress {{
  listen 127.0.0.1:{ports.ingress}
}}
pull_api {{
  listen 127.0.0.1:{ports.pull}
  auth token raw:pull-token
}}
admin_api {{
  listen 127.0.0.1:{ports.admin}
}}
{globals_text}
/jobs {{
  queue {backend}
  pull {{
    path /jobs
  }}
}}
"""


class Node:
    """One running Hookaido with short helpers for the calls these tests make."""

    def __init__(self, process, ports, http):
        self.process = process
        self.ports = ports
        self.http = http

    def publish(self, *items):
        return self.http(
            "POST",
            f"http://127.0.0.1:{self.ports.admin}/messages/publish",
            json_body={"items": [{"route": "/jobs", **item} for item in items]},
            headers=AUDIT,
        )

    def pull(self, operation: str, **body):
        return self.http(
            "POST",
            f"http://127.0.0.1:{self.ports.pull}/jobs/{operation}",
            json_body=body,
            headers=TOKEN,
        )

    def admin(self, method: str, path: str, **body):
        return self.http(
            method,
            f"http://127.0.0.1:{self.ports.admin}{path}",
            json_body=body if method == "POST" else None,
            headers=AUDIT,
        )

    def health(self) -> dict:
        reply = self.admin("GET", "/healthz?details=1")
        assert reply.status == 200, reply.body
        return reply.json()["diagnostics"]


@pytest.fixture
def start(hookaido_process, ports, http):
    """``start(backend, globals_text="")``: a running node whose one pull route is ``/jobs``."""

    def run(backend: str, globals_text: str = "") -> Node:
        config = queue_config(ports, backend, globals_text)
        process = hookaido_process(config, name=backend).start()
        return Node(process, ports, http)

    return run


# -- §5 memory-pressure guard -------------------------------------------------------------


def test_retained_bytes_are_counted_in_utf8(start):
    node = start("memory")
    node.publish({"id": "job-1", "headers": {"X-Price": "5 €"}, "trace": {"city": "München"}})
    [item] = node.pull("dequeue").json()["items"]

    nacked = node.pull("nack", lease_id=item["lease_id"], dead=True, reason="résumé")

    # id 5 + route 5 + target 4 + "X-Price" 7 + "5 €" 5 + "city" 4 + "München" 8 + "résumé" 8
    store = node.health()["store"]
    assert nacked.status == 204
    assert store["retained_bytes_by_state"]["dead"] == 46
    assert store["memory_pressure"]["retained_bytes"] == 46


# -- §6 retention and pruning ------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "memory"])
def test_stale_queued_message_is_pruned_without_further_store_activity(start, backend):
    node = start(backend, "queue_retention {\n  max_age 1s\n  prune_interval 1s\n}")
    published = node.publish({"id": "job-1"})

    [pruned] = node.process.wait_for_event("queue_pruned", timeout=6.0)
    listed = node.admin("GET", "/messages?route=/jobs")

    assert published.status == 200, published.body
    fields = {k: v for k, v in pruned.items() if k not in ("time", "level", "msg")}
    assert fields == {"queue_retention_age": 1}
    assert listed.json()["items"] == []


# -- §10 backlog trend snapshots ----------------------------------------------------------


def test_sqlite_keeps_backlog_trend_snapshots_across_a_restart(start):
    node = start("sqlite")
    node.publish({"id": "job-1"})
    node.process.stop()

    node.process.start()
    trends = node.admin("GET", "/backlog/trends")

    # one snapshot at each start-up; the one taken before the restart is still there
    assert trends.status == 200, trends.body
    assert trends.json()["sample_count"] == 2
    assert node.health()["queue"]["trend_signals"]["sample_count"] == 2


def test_memory_backlog_trends_start_again_with_the_process(start):
    node = start("memory")
    node.process.stop()

    node.process.start()
    trends = node.admin("GET", "/backlog/trends")

    assert trends.json()["sample_count"] == 1
