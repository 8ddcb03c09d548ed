"""``hookaido run`` in push mode as a real process: webhooks and published messages reach a
loopback receiver signed, pull routes keep working beside them, SIGHUP replaces targets."""

import hashlib
import hmac
import json
import signal
import socket
import subprocess
import sys
import time

import pytest
import urllib3

from .conftest import Receiver

CLIENT = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2.0, read=10.0))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def hookaidofile(ports: dict, receiver: Receiver, hook_path: str = "/hook") -> str:
    return f"""
ingress {{ listen 127.0.0.1:{ports["ingress"]} }}
pull_api {{ listen 127.0.0.1:{ports["pull"]}; auth token raw:pull-token }}
admin_api {{ listen 127.0.0.1:{ports["admin"]} }}
defaults {{
  egress {{
    allow 127.0.0.1
    https_only off
    dns_rebind_protection off
  }}
}}
/webhooks/orders {{
  queue memory
  deliver "{receiver.url(hook_path)}" {{
    retry exponential max 3 base 10ms cap 1s
    timeout 2s
    header X-Source edge
    sign hmac raw:s3cr3t
  }}
}}
/webhooks/pulled {{
  queue memory
  pull {{ path /pulled }}
}}
outbound /out/orders {{
  queue memory
  deliver "{receiver.url("/out")}" {{}}
}}
"""


class Node:
    """One ``hookaido run`` subprocess; its JSON log lines are read from a file."""

    def __init__(self, workdir, text: str):
        self.config = workdir / "Hookaidofile"
        self.config.write_text(text)
        self.log_path = workdir / "hookaido.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hookaido", "run", "--config", str(self.config)],
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
        )
        self.wait_for("server_started", timeout=20)

    def events(self, name: str) -> list[dict]:
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("msg") == name:
                found.append(record)
        return found

    def wait_for(self, name: str, count: int = 1, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.events(name)
            if len(found) >= count:
                return found
            assert self.process.poll() is None, self.log_path.read_text()
            time.sleep(0.05)
        raise AssertionError(f"no {name} within {timeout}s:\n{self.log_path.read_text()}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.log.close()
        return self.process.returncode


@pytest.fixture
def ports():
    return {name: free_port() for name in ("ingress", "pull", "admin")}


@pytest.fixture
def node_for(tmp_path):
    started = []

    def start(text: str) -> Node:
        node = Node(tmp_path, text)
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop()


def post(url: str, body: bytes, headers: dict):
    assert url.startswith("http://127.0.0.1:")
    return CLIENT.request("POST", url, body=body, headers=headers)


def test_webhooks_published_messages_and_pull_routes_in_one_process(ports, receiver, node_for):
    node = node_for(hookaidofile(ports, receiver))
    base = f"http://127.0.0.1:{ports['ingress']}"

    pushed = post(f"{base}/webhooks/orders", b'{"order":1}', {"Content-Type": "application/json"})
    pulled = post(f"{base}/webhooks/pulled", b'{"job":2}', {"Content-Type": "application/json"})
    published = post(
        f"http://127.0.0.1:{ports['admin']}/messages/publish",
        json.dumps(
            {"items": [{"id": "job-1", "route": "/out/orders", "payload_b64": "eyJvdXQiOjN9"}]}
        ).encode(),
        {"Content-Type": "application/json", "X-Hookaido-Audit-Reason": "delivery test"},
    )
    received = {request.path: request for request in receiver.wait_for(2)}
    dequeued = post(
        f"http://127.0.0.1:{ports['pull']}/pulled/dequeue",
        b'{"batch": 5}',
        {"Authorization": "Bearer pull-token", "Content-Type": "application/json"},
    )

    assert (pushed.status, pulled.status, published.status) == (202, 202, 200)
    hook = received["/hook"]
    assert hook.body == b'{"order":1}'
    assert hook.headers["X-Source"] == "edge"
    timestamp = hook.headers["X-Hookaido-Timestamp"]
    canonical = f"POST\n/hook\n{timestamp}\n{hashlib.sha256(hook.body).hexdigest()}".encode()
    expected = hmac.new(b"s3cr3t", canonical, hashlib.sha256).hexdigest()
    assert hook.headers["X-Hookaido-Signature"] == expected
    assert received["/out"].body == b'{"out":3}'
    assert [item["route"] for item in json.loads(dequeued.data)["items"]] == ["/webhooks/pulled"]
    assert len(node.wait_for("delivery_ok", count=2)) == 2
    attempts = CLIENT.request(
        "GET", f"http://127.0.0.1:{ports['admin']}/attempts?route=/out/orders"
    )
    [attempt] = json.loads(attempts.data)["items"]
    assert (attempt["event_id"], attempt["outcome"], attempt["status_code"]) == (
        "job-1",
        "acked",
        200,
    )


def test_sighup_with_a_new_target_drains_and_replaces_the_dispatcher(ports, receiver, node_for):
    node = node_for(hookaidofile(ports, receiver, hook_path="/old"))
    node.config.write_text(hookaidofile(ports, receiver, hook_path="/new"))

    node.process.send_signal(signal.SIGHUP)
    [reloaded] = node.wait_for("dispatcher_reloaded")
    accepted = post(
        f"http://127.0.0.1:{ports['ingress']}/webhooks/orders", b"{}", {"X-Test": "reload"}
    )

    assert accepted.status == 202
    assert [request.path for request in receiver.wait_for(1)] == ["/new"]
    assert reloaded["routes"] == 2
    assert len(node.events("dispatcher_stopped_for_reload")) == 1
    assert node.stop() == 0
