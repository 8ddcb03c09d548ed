"""``hookaido run`` end to end: known traffic, then the scrape, the health details and both
logs tell the same story."""

import json
import time

from prometheus_client.parser import text_string_to_metric_families

ROUTE = "/webhooks/github"


def samples(text: str) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def json_lines(path, at_least: int) -> list[dict]:
    """Every line of a log file parsed as JSON, once it has ``at_least`` lines (5 s at most)."""
    deadline = time.monotonic() + 5
    while True:
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        if len(lines) >= at_least or time.monotonic() > deadline:
            return [json.loads(line) for line in lines]
        time.sleep(0.02)


def test_scrape_health_and_logs_after_known_traffic(hookaido_run, free_ports, fetch, tmp_path):
    ingress, pull, admin, metrics = free_ports(4)
    run = hookaido_run(
        f"""
        ingress {{ listen 127.0.0.1:{ingress} }}
        pull_api {{
          listen 127.0.0.1:{pull}
          auth token raw:worker-token
        }}
        admin_api {{ listen 127.0.0.1:{admin} }}
        observability {{
          access_log {{ output file; path access.log }}
          runtime_log {{ level info; output file; path runtime.log }}
          metrics {{ listen 127.0.0.1:{metrics}; prefix /metrics }}
        }}
        {ROUTE} {{ pull {{ path /pull/github }} }}
        """
    ).start(ready_port=metrics)
    base_pull = f"http://127.0.0.1:{pull}/pull/github"
    worker = {"Authorization": "Bearer worker-token", "Content-Type": "application/json"}

    for number in range(3):
        fetch("POST", f"http://127.0.0.1:{ingress}{ROUTE}", body=b'{"n": %d}' % number)
    fetch("POST", f"http://127.0.0.1:{ingress}/nowhere", body=b"{}")
    dequeued = fetch_json(f"{base_pull}/dequeue", {"batch": 2}, worker)
    lease_ids = [item["lease_id"] for item in dequeued["items"]]
    fetch_json(f"{base_pull}/ack", {"lease_ids": lease_ids}, worker)
    health = json.loads(fetch("GET", f"http://127.0.0.1:{admin}/healthz?details=1")[2])
    status, _, body = fetch("GET", f"http://127.0.0.1:{metrics}/metrics")
    values = samples(body.decode())

    assert status == 200
    assert values[("hookaido_ingress_accepted_total", ())] == 3
    assert values[("hookaido_ingress_enqueued_total", ())] == 3
    assert values[("hookaido_ingress_rejected_total", ())] == 1
    not_found = (
        "hookaido_ingress_rejected_by_reason_total",
        (("reason", "not_found"), ("status", "404")),
    )
    assert values[not_found] == 1
    assert values[("hookaido_pull_dequeue_total", (("route", ROUTE), ("status", "200")))] == 1
    assert values[("hookaido_pull_acked_total", (("route", ROUTE),))] == 2
    assert values[("hookaido_pull_lease_active", (("route", ROUTE),))] == 0
    assert values[("hookaido_queue_depth", (("state", "queued"),))] == 1
    assert values[("hookaido_queue_depth", (("state", "leased"),))] == 0
    assert values[("hookaido_queue_depth", (("state", "dead"),))] == 0
    assert values[("hookaido_up", ())] == 1

    diagnostics = health["diagnostics"]
    assert diagnostics["ingress"]["accepted_total"] == 3
    assert diagnostics["ingress"]["rejected_by_reason"]["not_found"] == 1
    assert diagnostics["pull"]["total"]["acked_total"] == 2
    assert diagnostics["queue"]["by_state"]["queued"] == 1

    access = json_lines(tmp_path / "access.log", at_least=8)
    assert [(line["component"], line["status"]) for line in access] == [
        ("ingress", 202),
        ("ingress", 202),
        ("ingress", 202),
        ("ingress", 404),
        ("pull_api", 200),
        ("pull_api", 200),
        ("admin_api", 200),
        ("metrics", 200),
    ]
    assert access[4]["path"] == "/pull/github/dequeue"
    assert access[6]["path"] == "/healthz"
    assert all(line["msg"] == "http_request" for line in access)

    assert run.stop() == 0
    runtime = json_lines(tmp_path / "runtime.log", at_least=1)
    names = [line["msg"] for line in runtime]
    assert {"config_ok", "queue_backend_selected", "server_started", "server_stopped"} <= set(names)
    assert "http_request" not in names
    assert all(line["level"] in {"DEBUG", "INFO", "WARN", "ERROR"} for line in runtime)


def fetch_json(url: str, document: dict, headers: dict) -> dict:
    import urllib.request

    request = urllib.request.Request(
        url, data=json.dumps(document).encode(), headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
        return json.loads(response.read())
