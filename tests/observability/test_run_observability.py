"""``hookaido run`` end to end: known traffic, then the scrape, the health details and both
logs tell the same story."""

import json
import time

import pytest

from ..support.scrape import samples, wait_for

ROUTE = "/webhooks/github"


def json_lines(path, at_least: int) -> list[dict]:
    """Every line of a log file parsed as JSON, once it has ``at_least`` lines (5 s at most)."""
    deadline = time.monotonic() + 5
    while True:
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        if len(lines) >= at_least or time.monotonic() > deadline:
            return [json.loads(line) for line in lines]
        time.sleep(0.02)


def test_scrape_health_and_logs_after_known_traffic(hookaido_process, free_ports, fetch):
    ingress, pull, admin, metrics = free_ports(4)
    run = hookaido_process(
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
    )
    run.start(wait=False).wait_listening(metrics)
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

    access = json_lines(run.workdir / "access.log", at_least=8)
    # Each line is written once its response is sent, so neighbours may swap places.
    assert sorted((line["component"], line["path"], line["status"]) for line in access) == [
        ("admin_api", "/healthz", 200),
        ("ingress", "/nowhere", 404),
        ("ingress", ROUTE, 202),
        ("ingress", ROUTE, 202),
        ("ingress", ROUTE, 202),
        ("metrics", "/metrics", 200),
        ("pull_api", "/pull/github/ack", 200),
        ("pull_api", "/pull/github/dequeue", 200),
    ]
    assert all(line["msg"] == "http_request" for line in access)

    assert run.stop() == 0
    runtime = json_lines(run.workdir / "runtime.log", at_least=1)
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


def test_push_delivery_and_publish_counters_after_known_outcomes(
    hookaido_process, free_ports, fetch, serve
):
    received = []

    def receiver(environ, start_response):
        received.append(environ["PATH_INFO"])
        status = "200 OK" if environ["PATH_INFO"] == "/ok" else "500 Internal Server Error"
        start_response(status, [("Content-Length", "0")])
        return [b""]

    target = serve(receiver)
    ingress, admin, metrics = free_ports(3)
    run = hookaido_process(
        f"""
        ingress {{ listen 127.0.0.1:{ingress} }}
        admin_api {{ listen 127.0.0.1:{admin} }}
        defaults {{
          egress {{
            https_only off
            dns_rebind_protection off
            allow 127.0.0.1
          }}
        }}
        observability {{
          access_log off
          metrics {{ listen 127.0.0.1:{metrics} }}
        }}
        /webhooks/ok {{ deliver "{target}/ok" {{ timeout 5s }} }}
        outbound /notify {{
          deliver "{target}/fail" {{
            retry exponential max 1 base 50ms cap 50ms jitter 0
          }}
        }}
        """
    )
    run.start(wait=False).wait_listening(metrics)
    audit = {"X-Hookaido-Audit-Reason": "test", "Content-Type": "application/json"}

    fetch("POST", f"http://127.0.0.1:{ingress}/webhooks/ok", body=b"{}")
    published = fetch_json(
        f"http://127.0.0.1:{admin}/messages/publish",
        {"items": [{"id": "note-1", "route": "/notify"}]},
        audit,
    )
    refused = fetch(
        "POST",
        f"http://127.0.0.1:{admin}/messages/publish",
        body=b'{"items": [{"id": "note-2", "route": "/nope"}]}',
    )

    def scrape():
        text = fetch("GET", f"http://127.0.0.1:{metrics}/metrics")[2].decode()
        values = samples(text)
        # Queue gauges may lag the counters by up to a second (cached store stats).
        settled = values[("hookaido_delivery_dead_total", ())] == 1
        settled = settled and values[("hookaido_queue_depth", (("state", "dead"),))] == 1
        return values if settled else None

    values = wait_for(scrape)

    assert published["published"] == 1
    assert refused[0] == 400
    assert sorted(received) == ["/fail", "/fail", "/ok"]
    assert values[("hookaido_delivery_attempts_total", ())] == 3
    assert values[("hookaido_delivery_acked_total", ())] == 1
    assert values[("hookaido_delivery_retry_total", ())] == 1
    assert values[("hookaido_delivery_dead_total", ())] == 1
    dead = "hookaido_delivery_dead_by_reason_total"
    assert values[(dead, (("reason", "max_retries"),))] == 1
    assert values[("hookaido_publish_accepted_total", ())] == 1
    assert values[("hookaido_publish_rejected_total", ())] == 1
    assert values[("hookaido_queue_depth", (("state", "dead"),))] == 1
    assert values[("hookaido_queue_depth", (("state", "queued"),))] == 0


def test_sighup_moves_both_logs_to_fresh_files_after_rotation(hookaido_process, free_ports, fetch):
    import signal

    ingress, admin, pull = free_ports(3)
    run = hookaido_process(
        f"""
        ingress {{ listen 127.0.0.1:{ingress} }}
        admin_api {{ listen 127.0.0.1:{admin} }}
        observability {{
          access_log {{ output file; path logs/access.log }}
          runtime_log {{ level info; output file; path logs/runtime.log }}
        }}
        /webhooks/github {{ pull {{ path /pull/github }} }}
        pull_api {{ listen 127.0.0.1:{pull}; auth token raw:t }}
        """
    )
    run.start(wait=False).wait_listening(admin)
    logs = run.workdir / "logs"
    fetch("POST", f"http://127.0.0.1:{ingress}/webhooks/github", body=b"{}")
    json_lines(logs / "access.log", at_least=1)

    (logs / "access.log").rename(logs / "access.log.1")
    (logs / "runtime.log").rename(logs / "runtime.log.1")
    run.send_signal(signal.SIGHUP)
    wait_for(lambda: "config_reloaded_ok" in messages(logs / "runtime.log"))
    fetch("POST", f"http://127.0.0.1:{ingress}/webhooks/github", body=b"{}")

    rotated_access = json_lines(logs / "access.log.1", at_least=1)
    fresh_access = json_lines(logs / "access.log", at_least=1)
    assert [line["status"] for line in rotated_access] == [202]
    assert [line["status"] for line in fresh_access] == [202]
    assert "server_started" in messages(logs / "runtime.log.1")
    assert "server_started" not in messages(logs / "runtime.log")


def messages(path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(line)["msg"] for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize(
    ("runtime_log", "server_started_logged"),
    [
        ("{ output file; path PATH }", False),  # no level written: --log-level warn rules
        ("{ level info; output file; path PATH }", True),
    ],
)
def test_a_runtime_log_block_without_level_takes_the_command_line_level(
    hookaido_process, free_ports, tmp_path, runtime_log, server_started_logged
):
    ingress, pull, admin = free_ports(3)
    log_path = tmp_path / "runtime.log"
    run = hookaido_process(
        f"""
        ingress {{ listen 127.0.0.1:{ingress} }}
        pull_api {{
          listen 127.0.0.1:{pull}
          auth token raw:worker-token
        }}
        admin_api {{ listen 127.0.0.1:{admin} }}
        observability {{ runtime_log {runtime_log.replace("PATH", str(log_path))} }}
        /a {{ pull {{ path /a }} }}
        """,
        args=("--log-level", "warn"),
    )
    run.start(wait=False).wait_listening(admin)
    json_lines(log_path, at_least=1 if server_started_logged else 0)
    run.stop()

    messages = [line["msg"] for line in json_lines(log_path, at_least=0)]
    assert ("server_started" in messages) is server_started_logged
