"""Inbound auth through a real ``hookaido run``: signed webhooks are queued, refused ones are
answered 401 with nothing queued, and a reload rotates a secret without forgetting nonces."""

import hashlib
import hmac
import signal
import time
import uuid
from dataclasses import asdict
from datetime import UTC, datetime

import pytest
import stripe
from standardwebhooks import Webhook

from ..support.loopback import Ports, http
from ..support.process import HookaidoProcess

STRIPE_SECRET = "whsec_e2e_stripe_secret"
SW_SECRET = "whsec_ZTJlLXN0YW5kYXJkLXdlYmhvb2tzLWtleS0zMmI="

CONFIG = """
ingress {{ listen 127.0.0.1:{ingress} }}
admin_api {{ listen 127.0.0.1:{admin} }}
pull_api {{ listen 127.0.0.1:{pull}; auth token raw:e2e-pull-token }}
secrets {{
  secret "orders-a" {{
    value env:ORDERS_SECRET_A
    valid_from "2020-01-01T00:00:00Z"
  }}
  secret "orders-b" {{
    value raw:orders-secret-b
    valid_from "2020-01-01T00:00:00Z"
  }}
}}
/webhooks/orders {{
  auth hmac {{ secret_ref {orders_refs} }}
  pull {{ path /orders }}
}}
/webhooks/stripe {{
  auth hmac {{ provider stripe; secret raw:{stripe_secret} }}
  pull {{ path /stripe }}
}}
/webhooks/svix {{
  auth hmac {{ provider standard-webhooks; secret raw:{sw_secret} }}
  pull {{ path /svix }}
}}
"""


def orders_config(ports: Ports, orders_refs: str) -> str:
    return CONFIG.format(
        **asdict(ports),
        orders_refs=orders_refs,
        stripe_secret=STRIPE_SECRET,
        sw_secret=SW_SECRET,
    )


class Node:
    """A running ``hookaido run`` and the calls these tests make to it."""

    def __init__(self, process: HookaidoProcess, ports: Ports):
        self.process = process
        self.ports = ports

    def post(self, path: str, body: bytes, headers: dict):
        reply = http("POST", f"http://127.0.0.1:{self.ports.ingress}{path}", body, headers)
        return reply.status, reply.json()

    def messages(self, route: str) -> list[dict]:
        admin = f"http://127.0.0.1:{self.ports.admin}"
        return http("GET", f"{admin}/messages?route={route}&include_headers=true").json()["items"]

    def queued(self, route: str) -> int:
        return len(self.messages(route))


@pytest.fixture(scope="module")
def node(module_hookaido_process, module_ports):
    process = module_hookaido_process(
        orders_config(module_ports, "orders-a"),
        env={"ORDERS_SECRET_A": "orders-secret-a"},
        name="auth-e2e",
    )
    return Node(process.start(), module_ports)


def orders_headers(secret: bytes, body: bytes, nonce: str, ts: int | None = None) -> dict:
    ts = int(time.time()) if ts is None else ts
    message = f"{ts}\nPOST\n/webhooks/orders\n{hashlib.sha256(body).hexdigest()}".encode()
    return {
        "X-Timestamp": str(ts),
        "X-Nonce": nonce,
        "X-Signature": hmac.new(secret, message, hashlib.sha256).hexdigest(),
    }


def test_signed_webhook_is_queued_and_its_replay_refused(node):
    body = b'{"order":1}'
    headers = orders_headers(b"orders-secret-a", body, "e2e-" + uuid.uuid4().hex)
    before = node.queued("/webhooks/orders")

    first = node.post("/webhooks/orders", body, headers)
    replay = node.post("/webhooks/orders", body, headers)

    assert first == (202, {"status": "queued"})
    assert replay[0] == 401 and replay[1]["code"] == "unauthorized"
    assert node.queued("/webhooks/orders") == before + 1


@pytest.mark.parametrize(
    "mistake", ["wrong secret", "stale timestamp", "missing header", "tampered body"]
)
def test_refused_webhook_is_answered_401_and_not_queued(mistake, node):
    body = b'{"order":2}'
    nonce = "e2e-" + uuid.uuid4().hex
    headers = orders_headers(b"orders-secret-a", body, nonce)
    if mistake == "wrong secret":
        headers = orders_headers(b"guessed", body, nonce)
    elif mistake == "stale timestamp":
        headers = orders_headers(b"orders-secret-a", body, nonce, int(time.time()) - 600)
    elif mistake == "missing header":
        del headers["X-Nonce"]
    sent = b'{"order":2000}' if mistake == "tampered body" else body
    before = node.queued("/webhooks/orders")

    status, answer = node.post("/webhooks/orders", sent, headers)

    assert (status, answer["code"]) == (401, "unauthorized")
    assert node.queued("/webhooks/orders") == before


def test_stripe_signed_webhook_is_queued(node):
    body = b'{"type":"invoice.paid"}'
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), STRIPE_SECRET)

    accepted = node.post("/webhooks/stripe", body, {"Stripe-Signature": header})
    tampered = node.post("/webhooks/stripe", body + b" ", {"Stripe-Signature": header})

    assert accepted[0] == 202
    assert tampered[0] == 401
    assert node.queued("/webhooks/stripe") == 1


def test_standard_webhooks_signed_webhook_is_queued(node):
    body = b'{"type":"user.created"}'
    now = datetime.now(UTC)
    headers = {
        "webhook-id": "msg_e2e",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(SW_SECRET).sign("msg_e2e", now, body),
    }

    assert node.post("/webhooks/svix", body, headers)[0] == 202
    assert node.post("/webhooks/svix", b"{}", headers)[0] == 401


def test_reload_rotates_the_secret_and_keeps_nonces(node):
    body = b'{"order":3}'
    used = "e2e-" + uuid.uuid4().hex
    assert (
        node.post("/webhooks/orders", body, orders_headers(b"orders-secret-a", body, used))[0]
        == 202
    )
    reloads = len(node.process.events("config_reloaded_ok"))

    node.process.write_config(orders_config(node.ports, "orders-b"))
    node.process.send_signal(signal.SIGHUP)
    node.process.wait_for_event("config_reloaded_ok", reloads + 1)

    old = orders_headers(b"orders-secret-a", body, "e2e-" + uuid.uuid4().hex)
    new = orders_headers(b"orders-secret-b", body, "e2e-" + uuid.uuid4().hex)
    replay_with_new = orders_headers(b"orders-secret-b", body, used)
    assert node.post("/webhooks/orders", body, old)[0] == 401
    assert node.post("/webhooks/orders", body, new)[0] == 202
    assert node.post("/webhooks/orders", body, replay_with_new)[0] == 401


FORWARD_CONFIG = """
ingress {{ listen 127.0.0.1:{ingress} }}
admin_api {{ listen 127.0.0.1:{admin} }}
pull_api {{ listen 127.0.0.1:{pull}; auth token raw:e2e-pull-token }}
/webhooks/partners {{
  auth forward "{url}/check" {{ timeout 500ms; body_limit 4; copy_headers X-Tenant }}
  pull {{ path /partners }}
}}
"""

DECISIONS = {"allow": 204, "deny": 401, "forbid": 403, "broken": 500}


def test_forward_auth_decides_through_hookaido_run(hookaido_process, ports, loopback_server):
    service = loopback_server(
        lambda request: (
            DECISIONS[request.headers.get("X-Decision", "broken")],
            {"X-Tenant": ["acme", "eu"]},
            b"",
        )
    )
    process = hookaido_process(FORWARD_CONFIG.format(**asdict(ports), url=service.url))
    forward_node = Node(process.start(), ports)

    answers = {
        decision: forward_node.post("/webhooks/partners", b"0123456789", {"X-Decision": decision})
        for decision in DECISIONS
    }
    stored = forward_node.messages("/webhooks/partners")

    assert answers["allow"] == (202, {"status": "queued"})
    assert (answers["deny"][0], answers["deny"][1]["code"]) == (401, "unauthorized")
    assert (answers["forbid"][0], answers["forbid"][1]["code"]) == (403, "forbidden")
    assert (answers["broken"][0], answers["broken"][1]["code"]) == (503, "auth_unavailable")
    assert len(stored) == 1
    assert stored[0]["headers"]["X-Tenant"] == "acme,eu"
    assert service.seen[0].body == b"0123"
    assert service.seen[0].headers["X-Hookaido-Original-Path"] == "/webhooks/partners"
