"""Conformance checks of hot reload, the command line and shutdown, driven through a real
``hookaido run`` on loopback ports."""

import signal
import socket
import subprocess
import sys
import time

import pytest

BASE = """
ingress {{ listen 127.0.0.1:{ingress} }}
admin_api {{ listen 127.0.0.1:{admin} }}
pull_api {{
  listen 127.0.0.1:{pull}
  auth token raw:worker
}}
/webhooks/a {{
  {route}
  pull {{ path /a }}
}}
"""


def render(ports, route: str = "", extra: str = "") -> str:
    text = BASE.format(ingress=ports.ingress, admin=ports.admin, pull=ports.pull, route=route)
    return text + extra


def reload_with(node, text: str, outcome: str, count: int) -> dict:
    """Write ``text``, send SIGHUP and return the ``count``-th reload event, named ``outcome``."""
    node.write_config(text)
    node.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        found = [e for e in node.events(since_start=True) if e["msg"].startswith("config_reload")]
        if len(found) >= count:
            assert found[count - 1]["msg"] == outcome, found[count - 1]
            return found[count - 1]
        time.sleep(0.05)
    raise AssertionError(f"no reload event within 10s:\n{node.output()}")


def config_diagnostics(http, ports) -> dict:
    reply = http("GET", f"http://127.0.0.1:{ports.admin}/healthz?details=1")
    return reply.json()["diagnostics"]["config"]


def exchange(port: int, head: bytes, rest: bytes = b"", pause: float = 0.0) -> bytes:
    """Send ``head``, wait ``pause`` seconds, send ``rest``; the first bytes of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        time.sleep(pause)
        if rest:
            sock.sendall(rest)
        return sock.recv(4096)


# --------------------------------------------------------------------------------------
# Hot reload
# --------------------------------------------------------------------------------------

RESTART_REQUIRED = {
    "pull_api.max_batch": lambda ports: render(ports).replace(
        "auth token raw:worker", "auth token raw:worker\n  max_batch 5"
    ),
    "pull_api.default_lease_ttl": lambda ports: render(ports).replace(
        "auth token raw:worker", "auth token raw:worker\n  default_lease_ttl 10s"
    ),
    "defaults.max_body": lambda ports: render(ports, extra="defaults { max_body 1mb }\n"),
    "queue_limits": lambda ports: render(ports, extra="queue_limits { max_depth 5 }\n"),
    "observability": lambda ports: render(ports, extra="observability { access_log off }\n"),
}


@pytest.mark.parametrize("area", sorted(RESTART_REQUIRED))
def test_a_restart_required_change_is_refused_naming_its_area(area, hookaido_process, ports, http):
    node = hookaido_process(render(ports)).start()
    changed = RESTART_REQUIRED[area](ports) + "/webhooks/b { pull { path /b } }\n"

    refused = reload_with(node, changed, "config_reloaded_restart_required", 1)

    assert refused["level"] == "INFO"
    assert refused["trigger"] == "signal_sighup"
    assert area in refused["areas"]
    assert http("POST", f"http://127.0.0.1:{ports.ingress}/webhooks/b").status == 404
    assert config_diagnostics(http, ports)["generation"] == 1


def test_unchanged_rate_limit_keeps_its_tokens_across_a_reload(hookaido_process, ports, http):
    limited = "rate_limit { rps 0.01; burst 1 }"
    node = hookaido_process(render(ports, route=limited)).start()
    url = f"http://127.0.0.1:{ports.ingress}/webhooks/a"
    first = http("POST", url)

    reload_with(
        node,
        render(ports, route=limited, extra="/webhooks/b { pull { path /b } }\n"),
        "config_reloaded_ok",
        1,
    )
    second = http("POST", url)

    assert first.status == 202
    assert second.status == 429


def test_raising_a_route_max_body_on_reload_lifts_the_listener_cap(hookaido_process, ports, http):
    node = hookaido_process(render(ports, route="max_body 1mb")).start()
    huge = 300 * 1024 * 1024
    head = (
        f"POST /webhooks/a HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {huge}\r\n\r\n"
    ).encode()
    before = exchange(ports.ingress, head)

    reload_with(node, render(ports, route="max_body 400mb"), "config_reloaded_ok", 1)
    with socket.create_connection(("127.0.0.1", ports.ingress), timeout=10) as sock:
        sock.sendall(head + b"x" * 1024)
        sock.settimeout(1.0)
        with pytest.raises(TimeoutError):
            sock.recv(4096)  # the listener waits for the body instead of refusing it

    assert before.startswith(b"HTTP/1.1 413")
    assert config_diagnostics(http, ports)["generation"] == 2


# --------------------------------------------------------------------------------------
# Shutdown
# --------------------------------------------------------------------------------------


def test_a_webhook_still_arriving_at_sigterm_is_answered_and_kept(hookaido_process, ports, http):
    pid_file = "run/hookaido.pid"
    node = hookaido_process(render(ports), args=["--pid-file", pid_file]).start()
    head = b"POST /webhooks/a HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\nhello"

    with socket.create_connection(("127.0.0.1", ports.ingress), timeout=10) as sock:
        sock.sendall(head)
        time.sleep(0.3)
        node.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        sock.sendall(b"world")
        answer = sock.recv(4096)
    code = node.wait_exit(timeout=15)
    node.stop()

    assert answer.startswith(b"HTTP/1.1 202")
    assert code == 0
    assert not (node.workdir / pid_file).exists()
    node.start()
    dequeued = http(
        "POST",
        f"http://127.0.0.1:{ports.pull}/a/dequeue",
        json_body={},
        headers={"Authorization": "Bearer worker"},
    )
    assert [item["payload_b64"] for item in dequeued.json()["items"]] == ["aGVsbG93b3JsZA=="]


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def test_a_quoted_dotenv_value_may_be_followed_by_a_comment(hookaido_process, ports, http):
    route = "auth basic user {env.HOOKAIDO_TEST_PASSWORD}"
    node = hookaido_process(
        render(ports, route=route),
        args=["--dotenv", ".env"],
        env={"HOOKAIDO_TEST_PASSWORD": None},
    )
    (node.workdir / ".env").write_text(
        'export HOOKAIDO_TEST_PASSWORD="two words" # the sender\'s password\n'
    )
    node.start()
    url = f"http://127.0.0.1:{ports.ingress}/webhooks/a"

    accepted = http("POST", url, headers={"Authorization": "Basic dXNlcjp0d28gd29yZHM="})

    assert accepted.status == 202  # user:two words


@pytest.mark.parametrize("argv", [[], ["bogus"], ["start", "--config", "x"]])
def test_no_or_an_unknown_command_prints_the_help_and_exits_2(argv):
    done = subprocess.run(
        [sys.executable, "-m", "hookaido", *argv], capture_output=True, text=True, timeout=30
    )

    assert done.returncode == 2
    assert "usage: hookaido" in done.stderr
    assert "start the server" in done.stderr
    assert "print the version" in done.stderr


@pytest.mark.parametrize(
    ("argv", "usage"),
    [
        (["run", "--bogus"], "usage: hookaido run "),
        (["config", "validate", "--bogus"], "usage: hookaido config validate "),
        (["config", "fmt", "stray"], "usage: hookaido config fmt "),
    ],
)
def test_an_unknown_flag_exits_2_with_the_usage_of_its_own_command(argv, usage, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "hookaido", *argv],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )

    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(usage)
    assert f"error: unrecognized arguments: {argv[-1]}" in done.stderr


def test_a_second_sigterm_ends_at_once_and_still_removes_the_pid_file(hookaido_process, ports):
    node = hookaido_process(render(ports), args=["--pid-file", "hookaido.pid"]).start()
    head = b"POST /webhooks/a HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\nhello"

    with socket.create_connection(("127.0.0.1", ports.ingress), timeout=10) as sock:
        sock.sendall(head)  # keeps the first shutdown waiting
        time.sleep(0.3)
        node.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        node.send_signal(signal.SIGTERM)
        code = node.wait_exit(timeout=15)
    node.stop()

    assert code == 1
    assert not (node.workdir / "hookaido.pid").exists()
