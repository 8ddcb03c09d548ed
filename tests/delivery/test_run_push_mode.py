"""``hookaido run`` in push mode as a real process: webhooks and published messages reach a
loopback receiver signed, pull routes keep working beside them, SIGHUP replaces targets."""

import hashlib
import hmac
import json
import signal

from ..support.loopback import Ports, http
from .conftest import Receiver


def hookaidofile(ports: Ports, receiver: Receiver, hook_path: str = "/hook") -> str:
    return f"""
ingress {{ listen 127.0.0.1:{ports.ingress} }}
pull_api {{ listen 127.0.0.1:{ports.pull}; auth token raw:pull-token }}
admin_api {{ listen 127.0.0.1:{ports.admin} }}
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


def test_webhooks_published_messages_and_pull_routes_in_one_process(
    ports, receiver, hookaido_process
):
    node = hookaido_process(hookaidofile(ports, receiver)).start()
    base = f"http://127.0.0.1:{ports.ingress}"

    pushed = http(
        "POST", f"{base}/webhooks/orders", b'{"order":1}', {"Content-Type": "application/json"}
    )
    pulled = http(
        "POST", f"{base}/webhooks/pulled", b'{"job":2}', {"Content-Type": "application/json"}
    )
    published = http(
        "POST",
        f"http://127.0.0.1:{ports.admin}/messages/publish",
        json.dumps(
            {"items": [{"id": "job-1", "route": "/out/orders", "payload_b64": "eyJvdXQiOjN9"}]}
        ).encode(),
        {"Content-Type": "application/json", "X-Hookaido-Audit-Reason": "delivery test"},
    )
    received = {request.path: request for request in receiver.wait_for(2)}
    dequeued = http(
        "POST",
        f"http://127.0.0.1:{ports.pull}/pulled/dequeue",
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
    assert [item["route"] for item in dequeued.json()["items"]] == ["/webhooks/pulled"]
    assert len(node.wait_for_event("delivery_ok", count=2)) == 2
    attempts = http("GET", f"http://127.0.0.1:{ports.admin}/attempts?route=/out/orders")
    [attempt] = attempts.json()["items"]
    assert (attempt["event_id"], attempt["outcome"], attempt["status_code"]) == (
        "job-1",
        "acked",
        200,
    )


def test_sighup_with_a_new_target_drains_and_replaces_the_dispatcher(
    ports, receiver, hookaido_process
):
    node = hookaido_process(hookaidofile(ports, receiver, hook_path="/old")).start()
    node.write_config(hookaidofile(ports, receiver, hook_path="/new"))

    node.send_signal(signal.SIGHUP)
    [reloaded] = node.wait_for_event("dispatcher_reloaded")
    accepted = http(
        "POST", f"http://127.0.0.1:{ports.ingress}/webhooks/orders", b"{}", {"X-Test": "reload"}
    )

    assert accepted.status == 202
    assert [request.path for request in receiver.wait_for(1)] == ["/new"]
    assert reloaded["routes"] == 2
    assert len(node.events("dispatcher_stopped_for_reload")) == 1
    assert node.stop() == 0
