"""``hookaido run`` as a real process: the README's quick start on both backends, shared
listeners, pid file, dotenv, clean shutdown and start-up failures."""

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "Hookaidofile"
TOKEN = {"Authorization": "Bearer dev-pull-token"}


def example_config(ports, backend: str = "sqlite") -> str:
    """The shipped example with its loopback ports swapped for free ones."""
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace("127.0.0.1:8080", f"127.0.0.1:{ports.ingress}")
    text = text.replace("127.0.0.1:9443", f"127.0.0.1:{ports.pull}")
    text = text.replace("127.0.0.1:2019", f"127.0.0.1:{ports.admin}")
    if backend != "sqlite":
        text = text.replace("/webhooks/github {\n", f"/webhooks/github {{\n  queue {backend}\n")
        assert f"queue {backend}" in text, "the example's route block changed shape"
    return text


@pytest.mark.parametrize("backend", ["sqlite", "memory"])
def test_quick_start_webhook_in_dequeue_ack(hookaido_process, ports, backend, http):
    node = hookaido_process(example_config(ports, backend)).start()
    ingress = f"http://127.0.0.1:{ports.ingress}"
    pull = f"http://127.0.0.1:{ports.pull}/pull/github"

    accepted = http(
        "POST",
        f"{ingress}/webhooks/github",
        body=b'{"action":"opened"}',
        headers={"Content-Type": "application/json", "X-GitHub-Event": "issues"},
    )
    dequeued = http("POST", f"{pull}/dequeue", json_body={"batch": 10}, headers=TOKEN)
    [item] = dequeued.json()["items"]
    acked = http("POST", f"{pull}/ack", json_body={"lease_id": item["lease_id"]}, headers=TOKEN)
    after = http("POST", f"{pull}/dequeue", json_body={"batch": 10}, headers=TOKEN)

    assert (accepted.status, accepted.json()) == (202, {"status": "queued"})
    assert dequeued.status == 200
    assert base64.b64decode(item["payload_b64"]) == b'{"action":"opened"}'
    assert item["route"] == "/webhooks/github"
    assert item["headers"]["X-Github-Event"] == "issues"
    assert item["attempt"] == 1
    assert acked.status == 204
    assert after.json() == {"items": []}
    assert node.db_path.exists() == (backend == "sqlite")
    assert node.stop() == 0


def test_webhooks_survive_a_restart_on_sqlite(hookaido_process, ports, http):
    node = hookaido_process(example_config(ports)).start()
    url = f"http://127.0.0.1:{ports.ingress}/webhooks/github"
    for number in range(3):
        assert http("POST", url, body=f'{{"n":{number}}}'.encode()).status == 202
    assert node.stop() == 0

    node.start()
    dequeued = http(
        "POST",
        f"http://127.0.0.1:{ports.pull}/pull/github/dequeue",
        json_body={"batch": 10},
        headers=TOKEN,
    )

    payloads = sorted(base64.b64decode(i["payload_b64"]) for i in dequeued.json()["items"])
    assert payloads == [b'{"n":0}', b'{"n":1}', b'{"n":2}']


def test_one_shared_socket_routes_by_prefix(hookaido_process, http, free_port):
    port = free_port()
    node = hookaido_process(
        f"""
ingress {{ listen 127.0.0.1:{port} }}
pull_api {{
  listen 127.0.0.1:{port}
  prefix /pull
  auth token raw:worker
}}
admin_api {{
  listen 127.0.0.1:{port}
  prefix /admin
  auth token raw:operator
}}
/webhooks/a {{ pull {{ path /a }} }}
"""
    ).start()
    base = f"http://127.0.0.1:{port}"

    accepted = http("POST", f"{base}/webhooks/a", body=b"one")
    dequeued = http(
        "POST", f"{base}/pull/a/dequeue", json_body={}, headers={"Authorization": "Bearer worker"}
    )
    health = http("GET", f"{base}/admin/healthz")
    elsewhere = http("POST", f"{base}/pullx/a/dequeue")
    unknown = http("POST", f"{base}/nothing")

    assert accepted.status == 202
    assert dequeued.status == 200
    assert base64.b64decode(dequeued.json()["items"][0]["payload_b64"]) == b"one"
    assert (health.status, health.body) == (200, b"ok\n")
    assert (elsewhere.status, elsewhere.json()["code"]) == (404, "not_found")
    assert (unknown.status, unknown.json()["code"]) == (404, "not_found")
    [started] = node.events("server_started")
    assert started["listeners"][0]["components"] == ["ingress", "pull_api", "admin_api"]


def test_shared_api_socket_without_ingress_answers_bare_404_elsewhere(
    hookaido_process, ports, http, free_port
):
    port = free_port()
    hookaido_process(
        f"""
ingress {{ listen 127.0.0.1:{ports.ingress} }}
pull_api {{
  listen 127.0.0.1:{port}
  prefix /pull
  auth token raw:worker
}}
admin_api {{
  listen 127.0.0.1:{port}
  prefix /admin
}}
/webhooks/a {{ pull {{ path /a }} }}
"""
    ).start()
    base = f"http://127.0.0.1:{port}"

    outside = http("POST", f"{base}/webhooks/a")
    health = http("GET", f"{base}/admin/healthz")

    assert (outside.status, outside.body) == (404, b"")
    assert health.status == 200


def test_sigterm_stops_cleanly_and_removes_the_pid_file(hookaido_process, ports, tmp_path):
    pid_file = tmp_path / "run" / "hookaido.pid"
    node = hookaido_process(example_config(ports), args=["--pid-file", str(pid_file)]).start()

    assert pid_file.read_text().strip() == str(node.process.pid)
    code = node.stop(signal.SIGTERM)

    assert code == 0
    assert not pid_file.exists()
    assert node.events("server_stopped")


def test_sigint_stops_cleanly(hookaido_process, ports):
    node = hookaido_process(example_config(ports)).start()

    assert node.stop(signal.SIGINT) == 0


def test_pid_file_naming_a_live_process_refuses_to_start(hookaido_process, ports, tmp_path):
    pid_file = tmp_path / "hookaido.pid"
    pid_file.write_text(f"{os.getpid()}\n")
    node = hookaido_process(example_config(ports), args=["--pid-file", str(pid_file)])

    node.start(wait=False)
    code = node.process.wait(timeout=15)

    assert code == 1
    assert f"names running process {os.getpid()}" in node.output()
    assert pid_file.read_text().strip() == str(os.getpid())


def test_dotenv_supplies_unset_variables(hookaido_process, ports, tmp_path, http):
    dotenv = tmp_path / "hookaido.env"
    dotenv.write_text('# worker token\nexport HOOKAIDO_PULL_TOKEN="from-dotenv"\n')
    hookaido_process(
        example_config(ports),
        args=["--dotenv", str(dotenv)],
        env={"HOOKAIDO_PULL_TOKEN": None},
    ).start()
    dequeue = f"http://127.0.0.1:{ports.pull}/pull/github/dequeue"

    with_dotenv = http(
        "POST", dequeue, json_body={}, headers={"Authorization": "Bearer from-dotenv"}
    )
    with_default = http("POST", dequeue, json_body={}, headers=TOKEN)

    assert with_dotenv.status == 200
    assert with_default.status == 401


def run_to_exit(args, cwd, timeout=20) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hookaido", "run", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_invalid_config_exits_1_listing_every_error_with_its_line(tmp_path):
    config = tmp_path / "Hookaidofile"
    config.write_text(
        "ingress { listen 127.0.0.1:1 }\n"
        "admin_api { listen 127.0.0.1:2 }\n"
        "/a { pull { path /a } }\n"
        "/a { pull { path /b } }\n"
    )

    result = run_to_exit(["--config", str(config), "--db", str(tmp_path / "db")], tmp_path)

    assert result.returncode == 1
    assert "config invalid:" in result.stderr
    assert f"{config}:4:1:" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_config_exits_1(tmp_path):
    result = run_to_exit(["--config", str(tmp_path / "nope")], tmp_path)

    assert result.returncode == 1
    assert "cannot read" in result.stderr
    assert "Traceback" not in result.stderr


def test_busy_port_exits_1_naming_the_listener(tmp_path, ports):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", ports.ingress))
        busy.listen()
        config = tmp_path / "Hookaidofile"
        config.write_text(example_config(ports))

        result = run_to_exit(["--config", str(config), "--db", str(tmp_path / "db")], tmp_path)

    assert result.returncode == 1
    assert f"127.0.0.1:{ports.ingress}" in result.stderr
    assert "Traceback" not in result.stderr
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert any(e["msg"] == "start_servers_failed" for e in events)


def test_bad_flags_exit_2(tmp_path):
    result = run_to_exit(["--log-level", "loud"], tmp_path)

    assert result.returncode == 2


def test_a_second_stop_signal_during_shutdown_exits_at_once(hookaido_process, ports, http):
    node = hookaido_process(example_config(ports)).start()
    stream_url = f"http://127.0.0.1:{ports.pull}/pull/github/stream"

    def hold_a_stream_open():
        try:
            http("GET", stream_url, headers=TOKEN, timeout=15)
        except Exception:
            pass  # the server goes away mid-stream; that is the point

    stream = threading.Thread(target=hold_a_stream_open, daemon=True)
    stream.start()
    time.sleep(0.5)  # the open stream holds shutdown in its 5 s grace period

    node.send_signal(signal.SIGTERM)
    node.wait_for_event("server_stopping")
    started = time.monotonic()
    code = node.stop(signal.SIGTERM)

    assert code == 1
    assert time.monotonic() - started < 3
    assert node.events("shutdown_forced")
