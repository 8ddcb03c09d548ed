"""The policy-heavy parts of the Admin API as an operator meets them: a real ``hookaido run``
on a Hookaidofile with ``publish_policy``, labeled, outbound and internal routes, driven over
loopback HTTP."""

import pytest

from ..support.loopback import Ports, http

TOKEN = "admin-token"
REASON = {"X-Hookaido-Audit-Reason": "conformance"}


def policy_config(ports: Ports) -> str:
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
  auth token raw:{TOKEN}
}}
defaults {{
  publish_policy {{
    actor_allow ops-alice
    actor_prefix ci-
  }}
}}
/webhooks/shop {{
  application shop
  endpoint_name orders
  pull {{
    path /shop
  }}
}}
/webhooks/plain {{
  max_headers 10
  pull {{
    path /plain
  }}
}}
/webhooks/held {{
  publish {{
    enabled on
    direct off
  }}
  pull {{
    path /held
  }}
}}
outbound {{
  /out/billing {{
    publish.managed off
    deliver "https://billing.example.test/hook" {{}}
  }}
}}
internal {{
  /jobs/deploy {{
    pull {{
      path /jobs
    }}
  }}
}}
"""


class Admin:
    """The Admin API of one running Hookaido."""

    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"

    def call(self, method: str, path: str, body=None, headers=None):
        sent = {"Authorization": f"Bearer {TOKEN}", **(headers or {})}
        reply = http(method, self.base + path, json_body=body, headers=sent)
        return reply.status, reply.json()

    def publish(self, *items, headers=REASON):
        return self.call("POST", "/messages/publish", {"items": list(items)}, headers)

    def state_of(self, message_id: str, route: str) -> str:
        _, body = self.call("GET", f"/messages?route={route}")
        return next(item["state"] for item in body["items"] if item["id"] == message_id)


@pytest.fixture(scope="module")
def admin(module_hookaido_process):
    ports = Ports.allocate()
    module_hookaido_process(policy_config(ports), name="policy").start()
    return Admin(ports.admin)


# -- §6: a filter's body and selector come before its audit headers ----------------------


def test_a_malformed_filter_is_invalid_body_even_without_an_audit_reason(admin):
    status, body = admin.call(
        "POST", "/messages/cancel_by_filter", {"route": "/webhooks/plain", "limit": -1}
    )

    assert (status, body["code"]) == (400, "invalid_body")


def test_an_unknown_managed_pair_is_not_found_even_without_an_audit_reason(admin):
    status, body = admin.call(
        "POST",
        "/messages/requeue_by_filter",
        {"application": "shop", "endpoint_name": "returns"},
    )

    assert (status, body["code"]) == (404, "managed_endpoint_not_found")


def test_a_filter_on_a_labeled_route_asks_for_the_audit_reason_first(admin):
    status, body = admin.call("POST", "/messages/resume_by_filter", {"route": "/webhooks/shop"})

    assert (status, body["code"]) == (400, "audit_reason_required")


def test_a_filter_on_a_labeled_route_by_path_needs_the_managed_selector(admin):
    status, body = admin.call(
        "POST", "/messages/resume_by_filter", {"route": "/webhooks/shop"}, REASON
    )

    assert (status, body["code"]) == (400, "managed_selector_required")


# -- §7: the actor policy on labeled routes ---------------------------------------------


@pytest.mark.parametrize(
    ("actor", "status", "code"),
    [
        ({}, 400, "audit_actor_required"),
        ({"X-Hookaido-Audit-Actor": "mallory"}, 403, "audit_actor_not_allowed"),
        ({"X-Hookaido-Audit-Actor": "ops-alice-2"}, 403, "audit_actor_not_allowed"),
    ],
)
def test_a_managed_filter_refuses_actors_outside_the_policy(admin, actor, status, code):
    status_seen, body = admin.call(
        "POST",
        "/messages/cancel_by_filter",
        {"application": "shop", "endpoint_name": "orders", "preview_only": True},
        {**REASON, **actor},
    )

    assert (status_seen, body["code"]) == (status, code)


@pytest.mark.parametrize("actor", ["ops-alice", "ci-deploy"])
def test_a_managed_filter_lets_allowed_and_prefixed_actors_through(admin, actor):
    status, body = admin.call(
        "POST",
        "/messages/cancel_by_filter",
        {"application": "shop", "endpoint_name": "orders", "preview_only": True},
        {**REASON, "X-Hookaido-Audit-Actor": actor, "X-Request-ID": "req-7"},
    )

    assert status == 200
    assert body["audit"] == {"reason": "conformance", "actor": actor, "request_id": "req-7"}
    assert body["scope"] == {
        "application": "shop",
        "endpoint_name": "orders",
        "route": "/webhooks/shop",
    }


def test_the_actor_policy_does_not_apply_to_publish_or_unlabeled_routes(admin):
    status, body = admin.publish({"id": "policy-free-1", "route": "/jobs/deploy"})
    assert (status, body["audit"]) == (200, {"reason": "conformance"})

    status, body = admin.call("POST", "/messages/cancel", {"ids": ["policy-free-1"]}, REASON)

    assert (status, body["canceled"]) == (200, 1)
    assert admin.state_of("policy-free-1", "/jobs/deploy") == "canceled"


# -- §4: per-route publish switches and channels, as written in a Hookaidofile -----------


def test_publish_block_with_direct_off_refuses_the_route(admin):
    status, body = admin.publish({"id": "held-1", "route": "/webhooks/held"})

    assert (status, body["code"], body["item_index"]) == (403, "route_publish_disabled", 0)


def test_publish_managed_off_leaves_direct_publish_open(admin):
    status, body = admin.publish({"id": "billing-1", "route": "/out/billing"})

    assert (status, body["published"]) == (200, 1)
    _, listed = admin.call("GET", "/messages?route=/out/billing")
    assert listed["items"][0]["target"] == "https://billing.example.test/hook"


def test_publish_to_a_labeled_route_needs_the_managed_selector(admin):
    status, body = admin.publish(
        {"id": "plain-ok", "route": "/webhooks/plain"},
        {"id": "shop-1", "route": "/webhooks/shop"},
    )

    assert (status, body["code"], body["item_index"]) == (400, "managed_selector_required", 1)
    _, listed = admin.call("GET", "/messages?route=/webhooks/plain")
    assert [item["id"] for item in listed["items"]] == []


# -- §4 check 14: max_headers is a size in bytes ----------------------------------------


def test_published_headers_are_measured_in_utf8_bytes(admin):
    """``X-Ab`` + ``1234é`` is 10 bytes, at the limit; ``X-Ab`` + ``123éé`` is only 9
    characters but 11 bytes, over it."""
    status, _ = admin.publish(
        {"id": "bytes-ok", "route": "/webhooks/plain", "headers": {"X-Ab": "1234\u00e9"}}
    )
    assert status == 200

    status, body = admin.publish(
        {"id": "bytes-over", "route": "/webhooks/plain", "headers": {"X-Ab": "123\u00e9\u00e9"}}
    )

    assert (status, body["code"], body["item_index"]) == (413, "headers_too_large", 0)
