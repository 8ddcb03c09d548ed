"""Admin API request bodies as clients really send them, against a real ``hookaido run`` on
each queue backend: any declared Content-Type, IDs and routes with surrounding spaces, and
optional text fields left empty."""

import json

import pytest

from ..support.configs import jobs_config
from ..support.loopback import Ports, http

TOKEN = "admin-token"
REASON = {"X-Hookaido-Audit-Reason": "conformance"}


def shop_route(backend: str) -> str:
    return f"""
/webhooks/shop {{
  queue {backend}
  application shop
  endpoint_name orders
  pull {{
    path /shop
  }}
}}
"""


class Admin:
    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"

    def post(self, path: str, document, content_type: str | None = "application/json"):
        headers = {"Authorization": f"Bearer {TOKEN}", **REASON}
        if content_type is not None:
            headers["Content-Type"] = content_type
        reply = http("POST", self.base + path, body=json.dumps(document).encode(), headers=headers)
        return reply.status, reply.json()

    def messages(self, route: str) -> list[dict]:
        reply = http(
            "GET",
            f"{self.base}/messages?route={route}",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert reply.status == 200
        return reply.json()["items"]


@pytest.fixture(scope="module", params=["sqlite", "memory"])
def admin(request, module_hookaido_process):
    ports = Ports.allocate()
    config = jobs_config(ports, request.param, TOKEN, shop_route(request.param))
    module_hookaido_process(config, name=f"bodies-{request.param}").start()
    return Admin(ports.admin)


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", None])
def test_a_json_body_is_read_whatever_content_type_it_declares(admin, content_type):
    label = (content_type or "none").replace("/", "-")
    item = {"id": f"typed-{label}", "route": "/jobs/deploy"}

    status, body = admin.post("/messages/publish", {"items": [item]}, content_type)

    assert (status, body) == (200, {"published": 1, "audit": {"reason": "conformance"}})


def test_a_malformed_body_is_invalid_whatever_content_type_it_declares(admin):
    status, body = admin.post("/dlq/requeue", "not an object", "text/plain")

    assert (status, body["code"]) == (400, "invalid_body")


def test_a_published_id_loses_its_spaces_and_can_be_mutated_by_id(admin):
    item = {"id": "  spaced-1 ", "route": " /jobs/deploy "}

    published = admin.post("/messages/publish", {"items": [item]})
    canceled = admin.post("/messages/cancel", {"ids": ["spaced-1"]})

    assert published == (200, {"published": 1, "audit": {"reason": "conformance"}})
    assert canceled == (200, {"canceled": 1, "audit": {"reason": "conformance"}})
    [listed] = [m for m in admin.messages("/jobs/deploy") if m["id"] == "spaced-1"]
    assert (listed["route"], listed["state"]) == ("/jobs/deploy", "canceled")


def test_publish_treats_empty_optional_fields_as_absent(admin):
    item = {
        "id": "empty-fields-1",
        "route": "/jobs/deploy",
        "target": "",
        "received_at": "",
        "next_run_at": "",
        "application": "",
        "endpoint_name": "",
    }

    status, body = admin.post("/messages/publish", {"items": [item]})

    assert (status, body["published"]) == (200, 1)
    [listed] = [m for m in admin.messages("/jobs/deploy") if m["id"] == "empty-fields-1"]
    assert (listed["target"], listed["state"], listed["attempt"]) == ("pull", "queued", 0)
    assert listed["next_run_at"] == listed["received_at"]


def test_an_id_of_spaces_only_is_invalid_body(admin):
    status, body = admin.post("/messages/publish", {"items": [{"id": "   ", "route": "/jobs"}]})

    assert (status, body["code"], body["item_index"]) == (400, "invalid_body", 0)


def test_a_filter_treats_empty_text_fields_as_absent(admin):
    admin.post("/messages/publish", {"items": [{"id": "filter-empty-1", "route": "/jobs/deploy"}]})
    document = {
        "route": "/jobs/deploy",
        "target": "",
        "state": "",
        "before": "",
        "application": "",
        "endpoint_name": "",
        "preview_only": True,
    }

    status, body = admin.post("/messages/cancel_by_filter", document)

    assert status == 200
    assert body["matched"] >= 1
    assert body["preview_only"] is True
    assert "canceled" not in body and "scope" not in body


def test_a_filter_with_an_empty_route_and_a_managed_selector_reports_its_scope(admin):
    document = {"route": "", "application": "shop", "endpoint_name": "orders"}

    status, body = admin.post("/messages/requeue_by_filter", document)

    assert (status, body["matched"]) == (200, 0)
    assert body["scope"] == {
        "application": "shop",
        "endpoint_name": "orders",
        "route": "/webhooks/shop",
    }


# -- query parameters: an empty value is the default, words are case-insensitive ----------


def get(admin: Admin, path: str):
    reply = http("GET", admin.base + path, headers={"Authorization": f"Bearer {TOKEN}"})
    return reply.status, reply.body


def test_an_empty_details_answers_the_plain_health_text(admin):
    status, body = get(admin, "/healthz?details=")

    assert (status, body) == (200, b"ok\n")


@pytest.mark.parametrize("query", ["include_payload=&include_headers=&include_trace=", "limit=%20"])
def test_an_empty_query_value_means_the_default(admin, query):
    item = {"id": "plain-1", "route": "/jobs/deploy", "payload_b64": "aGk=", "trace": {"a": "b"}}
    admin.post("/messages/publish", {"items": [item]})

    status, body = get(admin, f"/messages?route=/jobs/deploy&{query}")

    assert status == 200
    [item] = [item for item in json.loads(body)["items"] if item["id"] == "plain-1"]
    assert not {"payload_b64", "headers", "trace"} & set(item)


def test_a_state_is_matched_case_insensitively(admin):
    admin.post("/messages/publish", {"items": [{"id": "upper-1", "route": "/jobs/deploy"}]})

    status, body = get(admin, "/messages?route=/jobs/deploy&state=QUEUED&limit=1000")

    assert status == 200
    items = json.loads(body)["items"]
    assert "upper-1" in [item["id"] for item in items]
    assert {item["state"] for item in items} == {"queued"}


@pytest.mark.parametrize(
    "path", ["/attempts?outcome=Dead", "/backlog/aging_summary?states=Queued,DEAD"]
)
def test_outcomes_and_aging_states_are_matched_case_insensitively(admin, path):
    status, _ = get(admin, path)

    assert status == 200


@pytest.mark.parametrize(
    "path",
    [
        "/messages?state=sleeping",
        "/attempts?outcome=maybe",
        "/backlog/aging_summary?states=canceled",
        "/healthz?details=perhaps",
    ],
)
def test_unknown_query_words_stay_invalid_query(admin, path):
    status, body = get(admin, path)

    assert (status, json.loads(body)["code"]) == (400, "invalid_query")
