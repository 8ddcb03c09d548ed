"""``hookaido run`` end to end: backlog trend snapshots are recorded from start-up, and the
store reports its own operations as ``hookaido_store_*`` metrics."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

ROUTE = "/webhooks/github"


def hookaidofile(
    backend: str, ingress: int, pull: int, admin: int, metrics: int, extra: str = ""
) -> str:
    return f"""
ingress {{ listen 127.0.0.1:{ingress} }}
pull_api {{
  listen 127.0.0.1:{pull}
  auth token raw:worker-token
}}
admin_api {{ listen 127.0.0.1:{admin} }}
observability {{
  runtime_log {{ level info }}
  metrics {{ listen 127.0.0.1:{metrics}; prefix /metrics }}
}}
{extra}
{ROUTE} {{
  queue {backend}
  pull {{ path /pull/github }}
}}
"""


@pytest.fixture
def start(hookaido_process, free_port):
    """``start(backend, extra="")``: a started ``hookaido run`` and its ports by name."""

    def run(backend: str, extra: str = ""):
        ports = {name: free_port() for name in ("ingress", "pull", "admin", "metrics")}
        config = hookaidofile(backend, **ports, extra=extra)
        hookaido_process(config, name=backend).start()
        return ports

    return run


def scrape(http, port: int) -> dict[tuple[str, tuple], float]:
    reply = http("GET", f"http://127.0.0.1:{port}/metrics")
    assert reply.status == 200
    found = {}
    for family in text_string_to_metric_families(reply.body.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def names(values) -> set[str]:
    return {name for name, _ in values}


def test_backlog_trends_answer_from_start_up(start, http):
    ports = start("memory")
    admin = f"http://127.0.0.1:{ports['admin']}"
    http("POST", f"http://127.0.0.1:{ports['ingress']}{ROUTE}", body=b"{}")

    reply = http("GET", f"{admin}/backlog/trends?window=1h&step=5m")

    assert reply.status == 200
    body = reply.json()
    assert body["window"] == "1h0m0s"
    assert body["step"] == "5m0s"
    assert body["point_count"] == 12
    assert len(body["items"]) == 12
    assert body["sample_count"] >= 1  # the capture taken when the process started
    assert body["non_empty_point_count"] >= 1
    assert body["truncated"] is False
    assert body["selector"] == {}
    assert "latest_captured_at" in body and "max_total" in body
    assert body["signals"]["sampling_stale"] is False
    filled = [item for item in body["items"] if item["sample_count"]]
    assert set(filled[-1]) >= {"queued_last", "leased_last", "dead_last", "total_last"}
    assert {"bucket_start", "bucket_end", "sample_count"} <= set(body["items"][0])


def test_backlog_trends_filtered_by_route_answer_with_the_selector(start, http):
    ports = start("memory")

    reply = http(
        "GET", f"http://127.0.0.1:{ports['admin']}/backlog/trends?route={ROUTE}&target=pull"
    )

    assert reply.status == 200
    assert reply.json()["selector"] == {"route": ROUTE, "target": "pull"}


def test_sqlite_store_operations_are_scraped_with_backend_and_operation_labels(start, http):
    ports = start("sqlite")

    accepted = http("POST", f"http://127.0.0.1:{ports['ingress']}{ROUTE}", body=b"{}")
    dequeued = http(
        "POST",
        f"http://127.0.0.1:{ports['pull']}/pull/github/dequeue",
        json_body={"batch": 1},
        headers={"Authorization": "Bearer worker-token"},
    )
    values = scrape(http, ports["metrics"])

    assert (accepted.status, dequeued.status) == (202, 200)
    assert len(dequeued.json()["items"]) == 1
    dequeue = (("backend", "sqlite"), ("operation", "dequeue_tx"))
    assert values[("hookaido_store_operation_seconds_count", dequeue)] == 1
    assert values[("hookaido_store_sqlite_dequeue_seconds_count", ())] == 1
    write = (("backend", "sqlite"), ("operation", "write_tx"))
    assert values[("hookaido_store_operation_seconds_count", write)] >= 1
    commit = (("backend", "sqlite"), ("operation", "tx_commit"))
    assert values[("hookaido_store_operation_total", commit)] >= 1
    assert values[("hookaido_store_sqlite_write_seconds_count", ())] >= 1
    assert values[("hookaido_store_sqlite_tx_commit_total", ())] >= 1
    for family in ("busy", "retry", "tx_rollback", "checkpoint", "checkpoint_errors"):
        assert (f"hookaido_store_sqlite_{family}_total", ()) in values
    assert "hookaido_store_memory_items" not in names(values)


def test_memory_store_counts_a_rejected_enqueue_and_has_no_sqlite_families(start, http):
    ports = start("memory", extra="queue_limits { max_depth 1 }")
    ingress = f"http://127.0.0.1:{ports['ingress']}{ROUTE}"

    accepted = http("POST", ingress, body=b"{}")
    refused = http("POST", ingress, body=b"{}")
    values = scrape(http, ports["metrics"])

    assert (accepted.status, refused.status) == (202, 503)
    reject = (("backend", "memory"), ("operation", "enqueue_reject"))
    assert values[("hookaido_store_operation_total", reject)] == 1
    assert values[("hookaido_store_memory_items", (("state", "queued"),))] == 1
    assert not [name for name in names(values) if name.startswith("hookaido_store_sqlite_")]
