"""The queue model of spec/queue.md as a user sees it: a real ``hookaido run`` on each
backend, driven over loopback HTTP through ingress, the Pull API and the Admin API."""

import signal

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


def test_memory_pressure_refuses_webhooks_and_health_follows_the_retained_items(start, http):
    node = start("memory", "queue_limits {\n  max_depth 1000\n}")
    for first in range(0, 1000, 100):
        node.publish(*({"id": f"job-{n}"} for n in range(first, first + 100)))
    node.admin("POST", "/messages/cancel_by_filter", route="/jobs", limit=1000)
    built_up = node.health()["store"]["memory_pressure"]

    refused = http("POST", f"http://127.0.0.1:{node.ports.ingress}/jobs", body=b"{}")
    after_refusal = node.health()["store"]["memory_pressure"]
    node.admin("POST", "/messages/resume", ids=["job-7"])
    relieved = node.health()["store"]["memory_pressure"]
    accepted = http("POST", f"http://127.0.0.1:{node.ports.ingress}/jobs", body=b"{}")

    assert (built_up["active"], built_up["reason"], built_up["retained_items"]) == (
        True,
        "retained_items",
        1000,
    )
    assert built_up["retained_item_limit"] == 1000
    assert (refused.status, refused.json()["code"]) == (503, "memory_pressure")
    assert (after_refusal["active"], after_refusal["rejected_total"]) == (True, 1)
    assert (relieved["active"], relieved["reason"], relieved["retained_items"]) == (False, "", 999)
    assert accepted.status == 202


# -- §11 durability -----------------------------------------------------------------------


def test_sqlite_messages_and_leases_survive_kill_9(start, http):
    node = start("sqlite")
    node.publish({"id": "job-1", "headers": {"X-Kind": "a"}}, {"id": "job-2"}, {"id": "job-3"})
    webhook = http("POST", f"http://127.0.0.1:{node.ports.ingress}/jobs", body=b'{"n":4}')
    leased = node.pull("dequeue", batch=2, lease_ttl="1h").json()["items"]
    node.pull("nack", lease_id=leased[1]["lease_id"], dead=True, reason="broken")
    before = node.admin("GET", "/messages?route=/jobs&include_payload=1&include_headers=1").json()

    node.process.stop(signal.SIGKILL)
    node.process.start()
    after = node.admin("GET", "/messages?route=/jobs&include_payload=1&include_headers=1").json()
    acked = node.pull("ack", lease_id=leased[0]["lease_id"])

    assert webhook.status == 202
    assert [item["id"] for item in leased] == ["job-1", "job-2"]
    assert after == before
    states = {item["id"]: (item["state"], item["attempt"]) for item in after["items"]}
    assert states == {
        "job-1": ("leased", 1),
        "job-2": ("dead", 1),
        "job-3": ("queued", 0),
        after["items"][0]["id"]: ("queued", 0),
    }
    assert after["items"][0]["payload_b64"] == "eyJuIjo0fQ=="
    assert acked.status == 204
