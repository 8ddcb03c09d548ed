"""Push delivery and observability as a user meets them: ``hookaido run`` in a subprocess, a
recording receiver on loopback, the metrics listener, the Admin API and the runtime log."""

import base64
import json
import socket

import pytest

from ..delivery.conftest import Receiver, Reply
from ..support.scrape import samples, wait_for

OPEN_EGRESS = """
defaults {
  egress {
    https_only off
    dns_rebind_protection off
    allow 127.0.0.1
  }
}
"""


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def push_config(ingress: int, admin: int, metrics: int, routes: str) -> str:
    return f"""
    ingress {{ listen 127.0.0.1:{ingress} }}
    admin_api {{ listen 127.0.0.1:{admin} }}
    observability {{ metrics {{ listen 127.0.0.1:{metrics}; prefix /metrics }} }}
    {OPEN_EGRESS}
    {routes}
    """


# --------------------------------------------------------------------------------------
# Delivery: what a target receives and how failures are recorded
# --------------------------------------------------------------------------------------


def test_a_refused_connection_is_retried_and_recorded_as_refused_not_as_a_timeout(
    hookaido_process, free_ports, http
):
    ingress, admin, metrics, closed = free_ports(4)
    run = hookaido_process(
        push_config(
            ingress,
            admin,
            metrics,
            f"""
            /hook {{
              deliver "http://127.0.0.1:{closed}/in" {{
                retry exponential max 1 base 50ms cap 50ms jitter 0
                timeout 5s
              }}
            }}
            """,
        )
    )
    run.start()

    accepted = http("POST", f"http://127.0.0.1:{ingress}/hook", body=b"{}")
    dead = run.wait_for_event("delivery_dead")
    attempts = http("GET", f"http://127.0.0.1:{admin}/attempts").json()["items"]
    retry = run.events("delivery_retry")

    assert accepted.status == 202
    assert [(a["attempt"], a["outcome"]) for a in attempts] == [(2, "dead"), (1, "retry")]
    assert attempts[0]["dead_reason"] == "max_retries"
    for attempt in attempts:
        assert attempt.get("status_code", 0) == 0
        assert "refused" in attempt["error"].lower()
        assert "timeout" not in attempt["error"].lower()
    assert "refused" in retry[0]["error"].lower()
    assert dead[0]["reason"] == "max_retries"


def test_credentials_in_the_target_url_are_sent_as_basic_auth_unless_a_header_says_otherwise(
    hookaido_process, free_ports, http, receiver
):
    ingress, admin, metrics = free_ports(3)
    with_user = receiver.url("/user").replace("http://", "http://bot:s%40fe@")
    with_header = receiver.url("/header").replace("http://", "http://bot:unused@")
    run = hookaido_process(
        push_config(
            ingress,
            admin,
            metrics,
            f"""
            /hook {{
              deliver "{with_user}" {{ }}
              deliver "{with_header}" {{ header Authorization "Bearer from-config" }}
            }}
            """,
        )
    )
    run.start()

    http("POST", f"http://127.0.0.1:{ingress}/hook", body=b"{}")
    received = {request.path: request for request in receiver.wait_for(2)}

    expected = "Basic " + base64.b64encode(b"bot:s@fe").decode()
    assert received["/user"].headers["Authorization"] == expected
    assert received["/header"].headers["Authorization"] == "Bearer from-config"


def test_non_ascii_header_values_reach_http_and_exec_targets_as_the_utf8_that_was_sent(
    hookaido_process, free_ports, http, receiver, tmp_path
):
    seen = tmp_path / "seen.txt"
    ingress, admin, metrics = free_ports(3)
    run = hookaido_process(
        push_config(
            ingress,
            admin,
            metrics,
            f"""
            /hook {{
              deliver exec "sh -c 'printf %s \\"$HOOKAIDO_HEADER_X_NOTE\\" > {seen}'" {{ }}
            }}
            outbound /notify {{ deliver "{receiver.url("/notify")}" {{ }} }}
            """,
        )
    )
    run.start()
    note = "5 € für Café"

    with socket.create_connection(("127.0.0.1", ingress), timeout=5) as client:
        client.sendall(
            b"POST /hook HTTP/1.1\r\nHost: edge\r\nContent-Length: 2\r\n"
            b"X-Note: " + note.encode() + b"\r\nConnection: close\r\n\r\n{}"
        )
        answer = client.recv(200)
    published = http(
        "POST",
        f"http://127.0.0.1:{admin}/messages/publish",
        json_body={"items": [{"id": "note-1", "route": "/notify", "headers": {"X-Note": note}}]},
        headers={"X-Hookaido-Audit-Reason": "test"},
    )
    [request] = receiver.wait_for(1)
    written = wait_for(lambda: seen.exists() and seen.read_bytes())

    assert answer.startswith(b"HTTP/1.1 202")
    assert published.status == 200
    # http.server reads header bytes as Latin-1; undo that to see the bytes on the wire.
    assert request.headers["X-Note"].encode("latin-1") == note.encode()
    assert written == note.encode()


# --------------------------------------------------------------------------------------
# Metrics listener
# --------------------------------------------------------------------------------------


def test_metrics_are_the_prometheus_text_format_even_when_openmetrics_is_asked_for(
    hookaido_process, free_ports, http, receiver
):
    ingress, admin, metrics = free_ports(3)
    run = hookaido_process(
        push_config(ingress, admin, metrics, f'/hook {{ deliver "{receiver.url()}" {{ }} }}')
    )
    run.start()
    openmetrics = "application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5"

    reply = http("GET", f"http://127.0.0.1:{metrics}/metrics", headers={"Accept": openmetrics})
    text = reply.body.decode()

    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE hookaido_delivery_attempts_total counter" in text
    assert "# HELP hookaido_delivery_attempts_total " in text
    assert "# EOF" not in text


def test_sqlite_store_series_are_shown_at_zero_before_anything_happens(
    hookaido_process, free_ports, http, receiver
):
    ingress, admin, metrics = free_ports(3)
    run = hookaido_process(
        push_config(ingress, admin, metrics, f'/hook {{ deliver "{receiver.url()}" {{ }} }}')
    )
    run.start()

    values = samples(http("GET", f"http://127.0.0.1:{metrics}/metrics").body.decode())

    operation = "hookaido_store_operation_total"
    for name in ("tx_rollback", "checkpoint", "retry"):
        assert values[(operation, (("backend", "sqlite"), ("operation", name)))] == 0
    assert ((operation, (("backend", "sqlite"), ("operation", "tx_commit")))) in values
    errors = "hookaido_store_errors_total"
    busy = (("backend", "sqlite"), ("kind", "busy"), ("operation", "begin_tx"))
    failed = (("backend", "sqlite"), ("kind", "error"), ("operation", "checkpoint"))
    assert values[(errors, busy)] == 0
    assert values[(errors, failed)] == 0
    checkpoint = (("backend", "sqlite"), ("operation", "checkpoint"))
    assert values[("hookaido_store_operation_seconds_count", checkpoint)] == 0
    assert not any(name.startswith("hookaido_store_memory") for name, _ in values)


def test_memory_store_series_are_shown_at_zero_and_sqlite_ones_are_absent(
    hookaido_process, free_ports, http, receiver
):
    ingress, admin, metrics = free_ports(3)
    run = hookaido_process(
        push_config(
            ingress,
            admin,
            metrics,
            f'/hook {{ queue memory\n deliver "{receiver.url()}" {{ }} }}',
        )
    )
    run.start()

    values = samples(http("GET", f"http://127.0.0.1:{metrics}/metrics").body.decode())

    operation = "hookaido_store_operation_total"
    for name in ("enqueue_reject", "evict"):
        assert values[(operation, (("backend", "memory"), ("operation", name)))] == 0
    pressure = (("backend", "memory"), ("kind", "memory_pressure"), ("operation", "enqueue"))
    assert values[("hookaido_store_errors_total", pressure)] == 0
    assert not any(name.startswith("hookaido_store_sqlite") for name, _ in values)
    assert not any(dict(labels).get("backend") == "sqlite" for _, labels in values)


def test_delivery_outcomes_show_in_metrics_health_and_the_runtime_log_alike(
    hookaido_process, free_ports, http, receiver
):
    receiver.replies_for["/gone"] = [Reply(404)]
    receiver.replies_for["/busy"] = [Reply(503, {"Retry-After": "1"})]
    ingress, admin, metrics = free_ports(3)
    run = hookaido_process(
        push_config(
            ingress,
            admin,
            metrics,
            f"""
            /gone {{ deliver "{receiver.url("/gone")}" {{ }} }}
            /busy {{
              deliver "{receiver.url("/busy")}" {{
                retry exponential max 3 base 50ms cap 50ms jitter 0
              }}
            }}
            """,
        )
    )
    run.start()

    http("POST", f"http://127.0.0.1:{ingress}/gone", body=b"{}")
    http("POST", f"http://127.0.0.1:{ingress}/busy", body=b"{}")
    run.wait_for_event("delivery_ok")
    run.wait_for_event("delivery_dead")
    values = samples(http("GET", f"http://127.0.0.1:{metrics}/metrics").body.decode())
    health = http("GET", f"http://127.0.0.1:{admin}/healthz?details=1").json()
    delivery = health["diagnostics"]["delivery"]
    retry = run.events("delivery_retry")[0]
    dead = run.events("delivery_dead")[0]

    assert values[("hookaido_delivery_attempts_total", ())] == 3 == delivery["attempt_total"]
    assert values[("hookaido_delivery_acked_total", ())] == 1 == delivery["acked_total"]
    assert values[("hookaido_delivery_retry_total", ())] == 1 == delivery["retry_total"]
    assert values[("hookaido_delivery_dead_total", ())] == 1 == delivery["dead_total"]
    by_reason = "hookaido_delivery_dead_by_reason_total"
    assert values[(by_reason, (("reason", "no_retry"),))] == 1
    assert delivery["dead_by_reason"]["no_retry"] == 1
    assert (retry["level"], retry["route"], retry["status"]) == ("INFO", "/busy", 503)
    assert (retry["delay"], retry["retry_after"]) == ("1s", "1s")
    assert (dead["level"], dead["reason"], dead["status"]) == ("WARN", "no_retry", 404)
    for line in (retry, dead):
        assert line["event_id"].startswith("evt_") and line["attempt"] == 1


# --------------------------------------------------------------------------------------
# Runtime log
# --------------------------------------------------------------------------------------

PULL_LISTENERS = """
ingress {{ listen 127.0.0.1:{0} }}
admin_api {{ listen 127.0.0.1:{1} }}
pull_api {{
  listen 127.0.0.1:{2}
  auth token raw:worker
}}
"""


@pytest.mark.parametrize(
    ("tail", "failure"),
    [
        ("/hook {\n  pull { path /pull/hook }\n", "parse_config_failed"),
        ("/hook {\n  pull { path /pull/hook }\n  max_body lots\n}\n", "compile_config_failed"),
        (
            "/hook {\n  auth hmac env:HOOKAIDO_TEST_UNSET_SECRET\n  pull { path /pull/hook }\n}\n",
            "load_auth_failed",
        ),
    ],
)
def test_a_start_up_abort_logs_the_failing_stage_and_exits_1(
    hookaido_process, free_ports, tail, failure
):
    config = PULL_LISTENERS.format(*free_ports(3)) + tail
    run = hookaido_process(config, env={"HOOKAIDO_TEST_UNSET_SECRET": None})

    run.start(wait=False)
    code = run.wait_exit()
    errors = [event for event in run.events() if event.get("level") == "ERROR"]

    assert code == 1
    assert [event["msg"] for event in errors] == [failure]


def test_an_unreadable_config_file_is_a_read_failure(hookaido_process):
    run = hookaido_process("")
    run.config_path.unlink()

    run.start(wait=False)
    code = run.wait_exit()

    assert code == 1
    assert [event["msg"] for event in run.events()] == ["read_config_failed"]


def test_runtime_log_lines_are_json_with_time_level_and_msg_first(
    hookaido_process, free_ports, http, receiver
):
    ingress, admin, metrics = free_ports(3)
    run = hookaido_process(
        push_config(ingress, admin, metrics, f'/hook {{ deliver "{receiver.url()}" {{ }} }}')
    )
    run.start()

    http("POST", f"http://127.0.0.1:{ingress}/hook", body=b"{}")
    run.wait_for_event("delivery_ok")
    lines = [json.loads(line) for line in run.output().splitlines() if line.startswith("{")]

    assert lines
    for line in lines:
        assert list(line)[:3] == ["time", "level", "msg"]
        assert line["level"] in ("DEBUG", "INFO", "WARN", "ERROR")
        assert line["time"].endswith("Z") and "." in line["time"]
    access = [line for line in lines if line["msg"] == "http_request"]
    assert access[0]["component"] == "ingress"
    assert (access[0]["method"], access[0]["path"], access[0]["status"]) == ("POST", "/hook", 202)
    assert isinstance(access[0]["duration"], int)
    assert access[0]["remote_addr"].startswith("127.0.0.1:")
