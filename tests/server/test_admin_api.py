"""The Admin API over real HTTP: a waitress server on a loopback port in front of a real backend."""

import base64
import json
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookaido.config.model import (
    AdminAPIConfig,
    Config,
    Defaults,
    DeliverTarget,
    PublishPolicy,
    PublishSettings,
    PullConfig,
    Route,
    SecretRef,
)
from hookaido.observability.metrics import Metrics
from hookaido.plugins import registry
from hookaido.queue import Attempt, Envelope, new_attempt_id
from hookaido.runtime import Generation, Runtime
from hookaido.server.admin_api import make_admin_app

from ..support.loopback import LoopbackServer
from .conftest import FailingStore, open_backend

ADMIN = SecretRef("raw", "admin-token")
SECRETS = {ADMIN: b"admin-token"}
AUDIT = {"X-Hookaido-Audit-Reason": "incident 42 cleanup"}

GITHUB = Route(path="/webhooks/github", pull=PullConfig(path="/github"))
JOBS = Route(path="/jobs/deploy", channel="internal", pull=PullConfig(path="/jobs"))
OUTBOUND = Route(
    path="/out/billing",
    channel="outbound",
    targets=(DeliverTarget("https://billing.example.test/hook", "https"),),
)
FANOUT = Route(
    path="/out/fanout",
    channel="outbound",
    targets=(
        DeliverTarget("https://a.example.test/", "https"),
        DeliverTarget("https://b.example.test/", "https"),
    ),
)
MANAGED = Route(
    path="/managed/orders",
    pull=PullConfig(path="/orders"),
    application="shop",
    endpoint_name="orders",
)


def admin_config(*routes, tokens=(), **defaults) -> Config:
    return Config(
        routes=routes or (GITHUB, JOBS, OUTBOUND, FANOUT),
        admin_api=AdminAPIConfig(tokens=tokens),
        defaults=Defaults(**defaults),
    )


class AdminServer(LoopbackServer):
    """The Admin API over a real backend, with a tiny HTTP client."""

    def __init__(self, config: Config, backend, metrics=None):
        self.backend = backend
        generation = Generation(
            config,
            secrets=SECRETS,
            number=3,
            fingerprint="ab" * 32,
            loaded_at=datetime(2026, 2, 9, 10, 0, tzinfo=UTC),
        )
        self.runtime = Runtime(generation, backend, registry(), metrics)
        super().__init__(make_admin_app(self.runtime), threads=4)

    def call(self, method, path, body=None, token=None, headers=None, raw=None, query=None):
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        data = raw if body is None else json.dumps(body).encode()
        if query:
            path = f"{path}?{urlencode(query)}"
        status, document, _ = self.exchange(method, path, data, sent)
        return status, document

    def publish(self, *items, headers=AUDIT):
        return self.call("POST", "/messages/publish", {"items": list(items)}, headers=headers)

    def store(self, message_id, route="/webhooks/github", state="queued", age=0, **fields):
        """Put one envelope in ``state`` straight into the backend."""
        received = datetime.now(UTC) - timedelta(seconds=age)
        envelope = Envelope(
            id=message_id,
            route=route,
            target=fields.pop("target", "pull"),
            payload=fields.pop("payload", b"{}"),
            received_at=received,
            # an item to be leased right away is made the first in line
            next_run_at=received if state == "queued" else datetime(2000, 1, 1, tzinfo=UTC),
            **fields,
        )
        self.backend.enqueue([envelope])
        if state == "queued":
            return
        (leased,) = self.backend.dequeue(route, envelope.target, 1, timedelta(minutes=5))
        if state == "dead":
            self.backend.nack([leased.lease_id], dead=True, reason="max_retries")
        elif state == "canceled":
            self.backend.cancel([message_id])


@pytest.fixture
def serve(backend, loopback_servers):
    def start(config=None, metrics=None, store=None):
        server = AdminServer(config or admin_config(), store or backend, metrics)
        loopback_servers.append(server)
        return server

    return start


def item(message_id="job-1", route="/jobs/deploy", **fields):
    return {"id": message_id, "route": route, **fields}


# -- health ----------------------------------------------------------------------------


def test_healthz_without_a_query_is_open_plain_text(serve):
    server = serve(admin_config(tokens=(ADMIN,)))

    status, body = server.call("GET", "/healthz")

    assert (status, body) == (200, b"ok\n")


@pytest.mark.parametrize("details", ["0", "false", "OFF", "no"])
def test_healthz_with_a_false_details_is_text_but_needs_the_token(serve, details):
    server = serve(admin_config(tokens=(ADMIN,)))

    refused, _ = server.call("GET", "/healthz", query={"details": details})
    allowed = server.call("GET", "/healthz", query={"details": details}, token="admin-token")

    assert refused == 401
    assert allowed == (200, b"ok\n")


def test_healthz_with_an_invalid_details_is_invalid_query(serve):
    server = serve()

    status, body = server.call("GET", "/healthz", query={"details": "maybe"})

    assert (status, body["code"]) == (400, "invalid_query")


def test_healthz_details_reports_config_queue_and_counters(serve):
    server = serve(metrics=Metrics())
    server.store("evt_old", age=120)
    server.store("evt_dead", state="dead")

    status, body = server.call("GET", "/healthz", query={"details": "1"})

    assert status == 200
    assert body["ok"] is True and body["time"].endswith("Z")
    diagnostics = body["diagnostics"]
    assert diagnostics["config"] == {
        "fingerprint": "ab" * 32,
        "generation": 3,
        "loaded_at": "2026-02-09T10:00:00Z",
    }
    queue = diagnostics["queue"]
    assert queue["ok"] is True and queue["total"] == 2
    assert queue["by_state"] == {"queued": 1, "leased": 0, "delivered": 0, "dead": 1, "canceled": 0}
    assert queue["oldest_queued_age_seconds"] >= 119
    assert queue["top_queued"][0]["route"] == "/webhooks/github"
    assert queue["trend_signals"]["status"] == "warn"
    assert set(diagnostics) >= {"ingress", "delivery", "pull", "publish", "tracing"}
    assert diagnostics["pull"]["total"]["dequeue_total"] == {"200": 0, "204": 0, "4xx": 0, "5xx": 0}
    assert diagnostics["publish"]["accepted_total"] == 0


def test_healthz_details_leave_out_age_keys_without_queued_items(serve):
    server = serve()

    _, body = server.call("GET", "/healthz", query={"details": "true"})

    queue = body["diagnostics"]["queue"]
    assert "oldest_queued_age_seconds" not in queue and "top_queued" not in queue


# -- auth, paths and methods -----------------------------------------------------------


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Basic admin-token"])
def test_with_admin_tokens_every_endpoint_needs_a_bearer_token(serve, authorization):
    server = serve(admin_config(tokens=(ADMIN,)))
    headers = {"Authorization": authorization} if authorization else {}

    status, body = server.call("GET", "/messages", headers=headers)

    assert (status, body["code"]) == (401, "unauthorized")


def test_with_admin_tokens_the_right_token_is_let_in(serve):
    server = serve(admin_config(tokens=(ADMIN,)))

    status, body = server.call("GET", "/messages", token="admin-token")

    assert (status, body) == (200, {"items": []})


def test_an_unknown_path_is_not_found(serve):
    server = serve()

    status, body = server.call("GET", "/teleport")

    assert (status, body["code"]) == (404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [("POST", "/messages", "GET"), ("GET", "/messages/publish", "POST"), ("DELETE", "/dlq", "GET")],
)
def test_a_wrong_method_is_405_naming_the_expected_one(serve, method, path, expected):
    server = serve()

    status, body = server.call(method, path)

    assert (status, body["code"]) == (405, "method_not_allowed")
    assert expected in body["detail"]


# -- GET /messages ---------------------------------------------------------------------


def test_messages_are_listed_newest_first_with_their_state(serve):
    server = serve()
    server.store("evt_a", age=30)
    server.store("evt_b", age=10, state="dead")

    status, body = server.call("GET", "/messages")

    assert status == 200
    assert [entry["id"] for entry in body["items"]] == ["evt_b", "evt_a"]
    newest = body["items"][0]
    assert newest["state"] == "dead" and newest["dead_reason"] == "max_retries"
    assert newest["route"] == "/webhooks/github" and newest["target"] == "pull"
    assert newest["attempt"] == 1
    assert "payload_b64" not in newest and "headers" not in newest


def test_messages_filter_by_route_state_target_limit_and_before(serve):
    server = serve()
    server.store("evt_a", age=300)
    server.store("evt_b", age=200)
    server.store("evt_c", age=100, state="dead")
    server.store("job_x", route="/jobs/deploy")
    cutoff = (datetime.now(UTC) - timedelta(seconds=150)).isoformat()

    by_route = server.call("GET", "/messages", query={"route": "/webhooks/github", "limit": "2"})
    by_state = server.call("GET", "/messages", query={"state": "dead"})
    by_before = server.call("GET", "/messages", query={"before": cutoff})
    by_target = server.call("GET", "/messages", query={"target": "https://nowhere.test/"})

    assert [entry["id"] for entry in by_route[1]["items"]] == ["evt_c", "evt_b"]
    assert [entry["id"] for entry in by_state[1]["items"]] == ["evt_c"]
    assert [entry["id"] for entry in by_before[1]["items"]] == ["evt_b", "evt_a"]
    assert by_target[1] == {"items": []}


def test_messages_include_payload_headers_and_trace_on_request(serve):
    server = serve()
    server.store("evt_a", payload=b"hello", headers={"X-A": "1"}, trace={"path": "/p"})

    _, body = server.call(
        "GET",
        "/messages",
        query={"include_payload": "yes", "include_headers": "1", "include_trace": "TRUE"},
    )

    (entry,) = body["items"]
    assert base64.b64decode(entry["payload_b64"]) == b"hello"
    assert entry["headers"] == {"X-A": "1"} and entry["trace"] == {"path": "/p"}


@pytest.mark.parametrize("limit", ["50000", "+50000", "9" * 5000])
def test_a_limit_above_1000_is_clamped(serve, limit):
    server = serve()
    server.store("evt_a")

    status, body = server.call("GET", "/messages", query={"limit": limit})

    assert status == 200 and len(body["items"]) == 1


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "-4"},
        {"limit": "ten"},
        {"limit": "1_0"},
        {"limit": "\u0663"},
        {"before": "yesterday"},
        {"before": "2026-02-30T00:00:00Z"},
        {"include_payload": "sure"},
        {"route": "webhooks/github"},
        {"state": "sleeping"},
    ],
)
def test_invalid_query_parameters_are_invalid_query(serve, query):
    server = serve()

    status, body = server.call("GET", "/messages", query=query)

    assert (status, body["code"]) == (400, "invalid_query")


# -- management-labeled routes ---------------------------------------------------------


def managed_config(**policy) -> Config:
    return admin_config(GITHUB, MANAGED, publish_policy=PublishPolicy(**policy))


def test_messages_accept_a_managed_selector_instead_of_a_route(serve):
    server = serve(managed_config())
    server.store("ord_1", route="/managed/orders")
    server.store("evt_a")

    status, body = server.call(
        "GET", "/messages", query={"application": "shop", "endpoint_name": "orders"}
    )

    assert status == 200
    assert [entry["id"] for entry in body["items"]] == ["ord_1"]


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ({"application": "shop"}, 400, "selector_scope_mismatch"),
        (
            {"application": "shop", "endpoint_name": "orders", "route": "/managed/orders"},
            400,
            "selector_scope_mismatch",
        ),
        ({"application": "shop", "endpoint_name": "refunds"}, 404, "managed_endpoint_not_found"),
        ({"application": "-bad label", "endpoint_name": "orders"}, 400, "invalid_body"),
    ],
)
def test_bad_managed_selectors_are_refused(serve, query, status, code):
    server = serve(managed_config())

    answered, body = server.call("GET", "/messages", query=query)

    assert (answered, body["code"]) == (status, code)


# -- POST /messages/publish ------------------------------------------------------------


def test_publish_enqueues_every_item_as_queued_with_attempt_zero(serve):
    server = serve(metrics=Metrics())
    payload = base64.b64encode(b'{"ref":"v2.1.0"}').decode()

    status, body = server.call(
        "POST",
        "/messages/publish",
        {
            "items": [
                item("job-1", payload_b64=payload, headers={"Content-Type": "application/json"}),
                item("job-2", trace={"source": "ci"}),
            ]
        },
        headers={**AUDIT, "X-Hookaido-Audit-Actor": "ops@example", "X-Request-ID": "req-7"},
    )

    assert status == 200
    assert body == {
        "published": 2,
        "audit": {"reason": "incident 42 cleanup", "actor": "ops@example", "request_id": "req-7"},
    }
    envelope = server.backend.get("job-1")
    assert (envelope.state, envelope.attempt, envelope.target) == ("queued", 0, "pull")
    assert envelope.payload == b'{"ref":"v2.1.0"}'
    assert envelope.headers == {"Content-Type": "application/json"}
    assert server.backend.get("job-2").trace == {"source": "ci"}
    assert server.runtime.metrics.registry.get_sample_value("hookaido_publish_accepted_total") == 2


def test_publish_keeps_given_times_and_a_future_next_run_at_delays_the_item(serve):
    server = serve()
    # an hour from now, written with a +01:00 offset
    later = (datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+01:00")

    status, _ = server.publish(
        item("job-1", received_at="2026-02-09T10:00:00.5Z", next_run_at=later)
    )

    assert status == 200
    envelope = server.backend.get("job-1")
    assert envelope.received_at == datetime(2026, 2, 9, 10, 0, 0, 500000, tzinfo=UTC)
    assert server.backend.dequeue("/jobs/deploy", "pull", 1, timedelta(seconds=30)) == []


def test_publish_feeds_outbound_routes_with_their_deliver_target(serve):
    server = serve()

    status, _ = server.publish(item("inv-1", route="/out/billing"))

    assert status == 200
    assert server.backend.get("inv-1").target == "https://billing.example.test/hook"


def test_publish_to_a_route_with_several_targets_needs_one_of_them(serve):
    server = serve()

    missing = server.publish(item("x-1", route="/out/fanout"))
    wrong = server.publish(item("x-2", route="/out/fanout", target="https://c.example.test/"))
    chosen = server.publish(item("x-3", route="/out/fanout", target="https://b.example.test/"))

    assert (missing[0], missing[1]["code"]) == (400, "target_unresolvable")
    assert "https://a.example.test/" in missing[1]["detail"]
    assert (wrong[0], wrong[1]["code"]) == (400, "target_unresolvable")
    assert chosen[0] == 200


def test_nothing_is_published_when_a_later_item_fails(serve):
    server = serve()

    status, body = server.publish(item("job-1"), item("job-2", route="/nowhere"))

    assert (status, body["code"], body["item_index"]) == (400, "route_not_found", 1)
    assert server.backend.get("job-1") is None


AUDIT_ROWS = [
    ({}, {}, "audit_reason_required"),
    ({"X-Hookaido-Audit-Reason": "x" * 513}, {}, "audit_reason_required"),
    ({**AUDIT, "X-Hookaido-Audit-Actor": "a" * 257}, {}, "audit_reason_required"),
    ({**AUDIT, "X-Request-ID": "r" * 257}, {}, "audit_reason_required"),
    (AUDIT, {"require_actor": True}, "audit_actor_required"),
    (AUDIT, {"require_request_id": True}, "audit_request_id_required"),
]


@pytest.mark.parametrize(("headers", "policy", "code"), AUDIT_ROWS)
def test_publish_audit_headers_are_checked(serve, headers, policy, code):
    server = serve(admin_config(publish_policy=PublishPolicy(**policy)))

    status, body = server.publish(item(), headers=headers)

    assert (status, body["code"]) == (400, code)


def test_publish_is_refused_when_direct_publish_is_off(serve):
    server = serve(admin_config(publish_policy=PublishPolicy(direct=False)))

    status, body = server.publish(item(), headers={})

    assert (status, body["code"]) == (403, "global_publish_disabled")


@pytest.mark.parametrize(
    ("raw", "index"),
    [
        (b"not json", None),
        (b'{"items": []}', None),
        (b'{"items": {}}', None),
        (b'{"items": [{"id": "a", "route": "/jobs/deploy"}], "extra": 1}', None),
        (b'{"items": [{"id": "a", "route": "/jobs/deploy"}]} {}', None),
        (b'{"items": [{"route": "/jobs/deploy"}]}', 0),
        (b'{"items": [{"id": "", "route": "/jobs/deploy"}]}', 0),
        (b'{"items": [{"id": "a"}]}', 0),
        (b'{"items": [{"id": "a", "route": "jobs/deploy"}]}', 0),
        (b'{"items": [{"id": "a", "route": "/jobs/deploy", "colour": "red"}]}', 0),
        (b'{"items": [{"id": 5, "route": "/jobs/deploy"}]}', 0),
        (b'{"items": [{"id": "a", "route": "/jobs/deploy", "headers": {"A": 1}}]}', 0),
        (b'{"items": [{"id": "a", "route": "/jobs/deploy"}, {"id": "a", "route": "/j"}]}', 1),
        (b'{"items": [{"id": "a", "route": "/jobs/deploy", "application": "shop"}]}', 0),
        (b'{"items": [1]}', 0),
    ],
)
def test_publish_body_shape_errors_are_invalid_body(serve, raw, index):
    server = serve()

    status, body = server.call("POST", "/messages/publish", raw=raw, headers=AUDIT)

    assert (status, body["code"]) == (400, "invalid_body")
    assert body.get("item_index") == index


def test_publish_of_more_than_1000_items_is_invalid(serve):
    server = serve()
    items = [item(f"job-{n}") for n in range(1001)]

    status, body = server.publish(*items)

    assert (status, body["code"]) == (400, "invalid_body")


def test_publish_with_labels_needs_the_scoped_api(serve):
    server = serve(managed_config())

    status, body = server.publish(
        item("a", route="/webhooks/github"),
        {"id": "b", "application": "shop", "endpoint_name": "orders"},
    )

    assert (status, body["code"], body["item_index"]) == (400, "scoped_publish_required", 1)


def route_with(route: Route, **changes) -> Config:
    return admin_config(replace(route, **changes))


@pytest.mark.parametrize(
    ("config", "published", "status", "code"),
    [
        (managed_config(), item("a", "/managed/orders"), 400, "managed_selector_required"),
        (admin_config(), item("a", "/nowhere"), 400, "route_not_found"),
        (
            route_with(JOBS, publish=PublishSettings(enabled=False)),
            item("a"),
            403,
            "route_publish_disabled",
        ),
        (
            route_with(JOBS, publish=PublishSettings(direct=False)),
            item("a"),
            403,
            "route_publish_disabled",
        ),
        (
            admin_config(publish_policy=PublishPolicy(allow_pull_routes=False)),
            item("a"),
            403,
            "pull_route_publish_disabled",
        ),
        (
            admin_config(publish_policy=PublishPolicy(allow_deliver_routes=False)),
            item("a", "/out/billing"),
            403,
            "deliver_route_publish_disabled",
        ),
        (admin_config(), item("a", target="https://x.test/"), 400, "target_unresolvable"),
        (admin_config(), item("a", received_at="2026-02-09"), 400, "invalid_received_at"),
        (admin_config(), item("a", received_at=[]), 400, "invalid_received_at"),
        (admin_config(), item("a", next_run_at="soon"), 400, "invalid_next_run_at"),
        (admin_config(), item("a", next_run_at=5), 400, "invalid_next_run_at"),
        (admin_config(), item("a", payload_b64="not base64!"), 400, "invalid_payload_b64"),
        (admin_config(), item("a", payload_b64="YWJj="), 400, "invalid_payload_b64"),
        (
            route_with(JOBS, max_body=4),
            item("a", payload_b64=base64.b64encode(b"12345").decode()),
            413,
            "payload_too_large",
        ),
        (admin_config(), item("a", headers={"Bad Name": "v"}), 400, "invalid_header"),
        (admin_config(), item("a", headers={" X-A": "v"}), 400, "invalid_header"),
        (admin_config(), item("a", headers={"X-A": "line\nbreak"}), 400, "invalid_header"),
        (admin_config(), item("a", headers={"X-A": "del\x7f"}), 400, "invalid_header"),
        (route_with(JOBS, max_headers=10), item("a", headers={"X-Long": "v" * 8}), 413, None),
    ],
)
def test_every_publish_check_answers_its_status_and_code(serve, config, published, status, code):
    server = serve(config)

    answered, body = server.publish(published)

    assert answered == status
    assert body["code"] == (code or "headers_too_large")
    assert body["item_index"] == 0


def test_a_tab_in_a_header_value_is_allowed(serve):
    server = serve()

    status, _ = server.publish(item("a", headers={"X-A": "one\ttwo"}))

    assert status == 200


def test_publishing_an_existing_id_is_a_conflict(serve):
    server = serve(metrics=Metrics())
    server.publish(item("job-1"))

    status, body = server.publish(item("job-0"), item("job-1"))

    assert (status, body["code"], body["item_index"]) == (409, "duplicate_id", 1)
    assert server.backend.get("job-0") is None
    metrics = server.runtime.metrics.registry
    assert metrics.get_sample_value("hookaido_publish_rejected_conflict_total") == 1
    assert metrics.get_sample_value("hookaido_publish_rejected_total") == 1


def test_publish_into_a_full_queue_is_503_queue_full(serve, tmp_path):
    full = open_backend("memory", tmp_path, max_depth=1)
    server = serve(store=full)
    server.publish(item("job-1"))

    status, body = server.publish(item("job-2"))

    assert (status, body["code"]) == (503, "queue_full")
    full.close()


def test_a_store_failure_is_503_store_unavailable(serve, backend):
    server = serve(store=FailingStore(backend, {"enqueue", "list_messages", "list_attempts"}))

    publish = server.publish(item())
    messages = server.call("GET", "/messages")
    attempts = server.call("GET", "/attempts")

    for status, body in (publish, messages, attempts):
        assert (status, body["code"]) == (503, "store_unavailable")


# -- DLQ -------------------------------------------------------------------------------


def test_dlq_lists_dead_items_only_without_a_state_field(serve):
    server = serve()
    server.store("evt_dead", state="dead", payload=b"x")
    server.store("evt_live")

    status, body = server.call("GET", "/dlq", query={"include_payload": "1"})

    assert status == 200
    (entry,) = body["items"]
    assert entry["id"] == "evt_dead" and entry["dead_reason"] == "max_retries"
    assert entry["payload_b64"] == "eA=="
    assert "state" not in entry and "next_run_at" not in entry


def test_dlq_requeue_resets_the_attempt_and_skips_other_states(serve):
    server = serve()
    server.store("evt_dead", state="dead")
    server.store("evt_live")

    status, body = server.call(
        "POST",
        "/dlq/requeue",
        {"ids": ["evt_dead", " evt_dead ", "evt_live", "evt_gone"]},
        headers=AUDIT,
    )

    assert (status, body) == (200, {"requeued": 1, "audit": {"reason": "incident 42 cleanup"}})
    envelope = server.backend.get("evt_dead")
    assert (envelope.state, envelope.attempt) == ("queued", 0)


def test_dlq_delete_removes_dead_items(serve):
    server = serve()
    server.store("evt_dead", state="dead")
    server.store("evt_live")

    status, body = server.call(
        "POST", "/dlq/delete", {"ids": ["evt_dead", "evt_live"]}, headers=AUDIT
    )

    assert (status, body["deleted"]) == (200, 1)
    assert server.backend.get("evt_dead") is None
    assert server.backend.get("evt_live").state == "queued"


@pytest.mark.parametrize(
    "body",
    [{}, {"ids": []}, {"ids": ["a", " "]}, {"ids": "a"}, {"ids": [1]}, {"ids": ["a"], "x": 1}],
)
@pytest.mark.parametrize(
    "path", ["/dlq/requeue", "/dlq/delete", "/messages/cancel", "/messages/resume"]
)
def test_malformed_id_lists_are_invalid_body(serve, path, body):
    server = serve()

    status, answer = server.call("POST", path, body, headers=AUDIT)

    assert (status, answer["code"]) == (400, "invalid_body")


def test_more_than_1000_ids_is_invalid_body(serve):
    server = serve()

    status, answer = server.call(
        "POST", "/dlq/requeue", {"ids": [f"e{n}" for n in range(1001)]}, headers=AUDIT
    )

    assert (status, answer["code"]) == (400, "invalid_body")


@pytest.mark.parametrize("path", ["/dlq/requeue", "/dlq/delete", "/messages/requeue"])
def test_id_mutations_need_an_audit_reason(serve, path):
    server = serve()

    status, answer = server.call("POST", path, {"ids": ["a"]})

    assert (status, answer["code"]) == (400, "audit_reason_required")


# -- cancel / requeue / resume ---------------------------------------------------------


def test_cancel_then_resume_keeps_the_attempt(serve):
    server = serve()
    server.store("evt_leased", state="leased")

    canceled = server.call("POST", "/messages/cancel", {"ids": ["evt_leased"]}, headers=AUDIT)
    resumed = server.call("POST", "/messages/resume", {"ids": ["evt_leased"]}, headers=AUDIT)

    assert canceled[1]["canceled"] == 1 and resumed[1]["resumed"] == 1
    envelope = server.backend.get("evt_leased")
    assert (envelope.state, envelope.attempt) == ("queued", 1)


def test_requeue_of_a_canceled_item_resets_the_attempt(serve):
    server = serve()
    server.store("evt_c", state="canceled")

    status, body = server.call("POST", "/messages/requeue", {"ids": ["evt_c"]}, headers=AUDIT)

    assert (status, body["requeued"]) == (200, 1)
    assert server.backend.get("evt_c").attempt == 0


def test_canceling_a_leased_item_invalidates_its_lease(serve):
    server = serve()
    server.store("evt_a")
    (leased,) = server.backend.dequeue("/webhooks/github", "pull", 1, timedelta(minutes=1))

    server.call("POST", "/messages/cancel", {"ids": ["evt_a"]}, headers=AUDIT)

    assert server.backend.ack([leased.lease_id]).conflicts


ACTOR_POLICY = {"actor_allow": ("alice",), "actor_prefix": ("svc-",)}


@pytest.mark.parametrize(
    ("actor", "status", "code"),
    [
        (None, 400, "audit_actor_required"),
        ("mallory", 403, "audit_actor_not_allowed"),
        ("alice", 200, None),
        ("svc-deployer", 200, None),
    ],
)
def test_id_mutations_on_labeled_routes_apply_the_actor_policy(serve, actor, status, code):
    server = serve(managed_config(**ACTOR_POLICY))
    server.store("ord_1", route="/managed/orders")
    headers = {**AUDIT, "X-Hookaido-Audit-Actor": actor} if actor else AUDIT

    answered, body = server.call("POST", "/messages/cancel", {"ids": ["ord_1"]}, headers=headers)

    assert answered == status
    assert body.get("code") == code


def test_the_actor_policy_leaves_unlabeled_routes_alone(serve):
    server = serve(managed_config(**ACTOR_POLICY))
    server.store("evt_a")

    status, body = server.call("POST", "/messages/cancel", {"ids": ["evt_a"]}, headers=AUDIT)

    assert (status, body["canceled"]) == (200, 1)


# -- mutations by filter ---------------------------------------------------------------


def test_preview_only_counts_without_changing_anything(serve):
    server = serve()
    server.store("evt_a")
    server.store("evt_b", state="dead")

    status, body = server.call(
        "POST", "/messages/cancel_by_filter", {"preview_only": True}, headers=AUDIT
    )

    assert (status, body) == (
        200,
        {"matched": 2, "preview_only": True, "audit": {"reason": "incident 42 cleanup"}},
    )
    assert server.backend.get("evt_a").state == "queued"


def test_requeue_by_filter_changes_the_newest_matches_up_to_the_limit(serve):
    server = serve()
    server.store("evt_old", state="dead", age=300)
    server.store("evt_new", state="dead", age=10)
    server.store("evt_other", state="dead", route="/jobs/deploy")

    status, body = server.call(
        "POST",
        "/messages/requeue_by_filter",
        {"route": "/webhooks/github", "state": "dead", "limit": 1},
        headers=AUDIT,
    )

    assert (status, body["matched"], body["requeued"]) == (200, 1, 1)
    assert server.backend.get("evt_new").state == "queued"
    assert server.backend.get("evt_old").state == "dead"


def test_filter_before_keeps_older_items_only(serve):
    server = serve()
    server.store("evt_old", state="canceled", age=300)
    server.store("evt_new", state="canceled", age=10)
    cutoff = (datetime.now(UTC) - timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ")

    _, body = server.call("POST", "/messages/resume_by_filter", {"before": cutoff}, headers=AUDIT)

    assert body["resumed"] == 1
    assert server.backend.get("evt_old").state == "queued"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/messages/resume_by_filter", {"state": "dead"}),
        ("/messages/cancel_by_filter", {"state": "canceled"}),
        ("/messages/requeue_by_filter", {"limit": -1}),
        ("/messages/requeue_by_filter", {"limit": "10"}),
        ("/messages/requeue_by_filter", {"route": "jobs"}),
        ("/messages/requeue_by_filter", {"before": "last week"}),
        ("/messages/requeue_by_filter", {"preview_only": "yes"}),
        ("/messages/requeue_by_filter", {"state": "dead", "colour": "red"}),
    ],
)
def test_bad_filters_are_invalid_body(serve, path, body):
    server = serve()

    status, answer = server.call("POST", path, body, headers=AUDIT)

    assert (status, answer["code"]) == (400, "invalid_body")


def test_filters_need_an_audit_reason(serve):
    server = serve()

    status, answer = server.call("POST", "/messages/cancel_by_filter", {})

    assert (status, answer["code"]) == (400, "audit_reason_required")


@pytest.mark.parametrize("body", [{}, {"route": "/managed/orders"}])
def test_filters_reaching_labeled_routes_need_the_managed_selector(serve, body):
    server = serve(managed_config())

    status, answer = server.call("POST", "/messages/cancel_by_filter", body, headers=AUDIT)

    assert (status, answer["code"]) == (400, "managed_selector_required")


def test_a_filter_with_a_managed_selector_reports_its_scope(serve):
    server = serve(managed_config())
    server.store("ord_1", route="/managed/orders")

    status, body = server.call(
        "POST",
        "/messages/cancel_by_filter",
        {"application": "shop", "endpoint_name": "orders"},
        headers=AUDIT,
    )

    assert (status, body["canceled"]) == (200, 1)
    assert body["scope"] == {
        "application": "shop",
        "endpoint_name": "orders",
        "route": "/managed/orders",
    }


def test_a_filter_with_both_route_and_selector_is_a_scope_mismatch(serve):
    server = serve(managed_config())

    status, body = server.call(
        "POST",
        "/messages/cancel_by_filter",
        {"route": "/webhooks/github", "application": "shop", "endpoint_name": "orders"},
        headers=AUDIT,
    )

    assert (status, body["code"]) == (400, "selector_scope_mismatch")


# -- attempts --------------------------------------------------------------------------


def record(server, event_id, outcome, status_code=0, age=0, **fields):
    server.backend.record_attempt(
        Attempt(
            id=new_attempt_id(),
            event_id=event_id,
            route="/out/billing",
            target="https://billing.example.test/hook",
            attempt=1,
            outcome=outcome,
            created_at=datetime.now(UTC) - timedelta(seconds=age),
            status_code=status_code,
            **fields,
        )
    )


def test_attempts_are_listed_newest_first_and_filtered(serve):
    server = serve()
    record(server, "evt_1", "retry", 503, age=20, error="upstream 503")
    record(server, "evt_1", "dead", 0, age=10, error="connection refused", dead_reason="no_retry")
    record(server, "evt_2", "acked", 200)

    everything = server.call("GET", "/attempts")
    only_dead = server.call("GET", "/attempts", query={"event_id": "evt_1", "outcome": "dead"})

    assert [entry["outcome"] for entry in everything[1]["items"]] == ["acked", "dead", "retry"]
    (dead,) = only_dead[1]["items"]
    assert dead["id"].startswith("att_") and dead["event_id"] == "evt_1"
    assert dead["dead_reason"] == "no_retry" and dead["error"] == "connection refused"
    assert "status_code" not in dead
    assert dead["created_at"].endswith("Z")


def test_an_unknown_attempt_outcome_is_invalid_query(serve):
    server = serve()

    status, body = server.call("GET", "/attempts", query={"outcome": "maybe"})

    assert (status, body["code"]) == (400, "invalid_query")


# -- backlog ---------------------------------------------------------------------------


def test_top_queued_groups_queued_items_by_route_and_target(serve):
    server = serve()
    server.store("evt_a", age=60)
    server.store("evt_b", age=30)
    server.store("job_a", route="/jobs/deploy", age=10)

    status, body = server.call("GET", "/backlog/top_queued")
    filtered = server.call("GET", "/backlog/top_queued", query={"route": "/jobs/deploy"})[1]

    assert status == 200
    assert (body["queue_total"], body["queued_total"], body["limit"]) == (3, 3, 100)
    assert body["truncated"] is False and body["source_bounded"] is False
    assert body["oldest_queued_age_seconds"] >= 59
    first = body["items"][0]
    assert (first["route"], first["target"], first["queued"]) == ("/webhooks/github", "pull", 2)
    assert [entry["route"] for entry in filtered["items"]] == ["/jobs/deploy"]


def test_top_queued_reports_truncation_by_limit(serve):
    server = serve()
    server.store("evt_a")
    server.store("job_a", route="/jobs/deploy")

    _, body = server.call("GET", "/backlog/top_queued", query={"limit": "1"})

    assert body["truncated"] is True and len(body["items"]) == 1


def test_oldest_queued_lists_the_oldest_first(serve):
    server = serve()
    server.store("evt_mid", age=60)
    server.store("evt_old", age=120)
    server.store("evt_new", age=5)
    server.store("evt_dead", state="dead", age=500)

    status, body = server.call("GET", "/backlog/oldest_queued", query={"limit": "2"})

    assert status == 200
    assert [entry["id"] for entry in body["items"]] == ["evt_old", "evt_mid"]
    assert (body["returned"], body["truncated"], body["selector"]) == (2, True, {})
    assert body["items"][0]["oldest_queued_age_seconds"] >= 119


def test_aging_summary_buckets_ages_per_route(serve):
    server = serve()
    server.store("evt_a", age=30)
    server.store("evt_b", age=600)
    server.store("evt_c", age=7200, state="dead")

    status, body = server.call("GET", "/backlog/aging_summary")

    assert status == 200
    assert body["states"] == ["queued", "leased", "dead"]
    assert body["scanned"] == 3 and body["bucket_count"] == 1
    assert body["age_windows"] == {
        "le_5m": 1,
        "gt_5m_le_15m": 1,
        "gt_15m_le_1h": 0,
        "gt_1h_le_6h": 1,
        "gt_6h": 0,
    }
    (bucket,) = body["items"]
    assert (bucket["queued_observed"], bucket["dead_observed"]) == (2, 1)
    assert bucket["age_percentiles_seconds"]["p50"] >= 599
    assert body["state_scan"]["dead"] == {"scanned": 1, "truncated": False}


def test_aging_summary_refuses_unknown_states(serve):
    server = serve()

    status, body = server.call("GET", "/backlog/aging_summary", query={"states": "queued,done"})

    assert (status, body["code"]) == (400, "invalid_query")


@pytest.mark.parametrize(
    "query",
    [
        {"window": "0"},
        {"window": "200h"},
        {"step": "30s"},
        {"step": "2h"},
        {"window": "10m", "step": "15m"},
        {"until": "noon"},
        {"window": "soon"},
    ],
)
def test_trend_queries_are_checked(serve, query):
    server = serve()

    status, body = server.call("GET", "/backlog/trends", query=query)

    assert (status, body["code"]) == (400, "invalid_query")


def test_trends_are_unavailable_without_recorded_snapshots(serve):
    server = serve()

    status, body = server.call("GET", "/backlog/trends")

    assert (status, body["code"]) == (503, "backlog_unavailable")


# -- random input and the durable backend ----------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
item_fields = st.sampled_from(
    ["id", "route", "target", "payload_b64", "headers", "trace", "received_at", "next_run_at"]
)
bodies = (
    st.fixed_dictionaries(
        {"items": st.lists(st.dictionaries(item_fields, json_values), max_size=3)}
    )
    | st.dictionaries(
        st.sampled_from(["ids", "route", "state", "limit", "before", "preview_only"]), json_values
    )
    | json_values
)
MUTATING = [
    "/messages/publish",
    "/dlq/requeue",
    "/dlq/delete",
    "/messages/cancel",
    "/messages/requeue_by_filter",
    "/messages/resume_by_filter",
]


def test_random_json_never_causes_a_server_error(serve):
    server = serve()

    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
    @given(path=st.sampled_from(MUTATING), body=bodies)
    def check(path, body):
        status, answer = server.call("POST", path, body, headers=AUDIT)
        assert status < 500
        if status >= 400:
            assert set(answer) >= {"code", "detail"}

    check()


def test_publish_list_and_dlq_work_on_sqlite(serve, tmp_path):
    (tmp_path / "durable").mkdir()
    store = open_backend("sqlite", tmp_path / "durable")
    try:
        server = serve(store=store)

        published = server.publish(item("job-1"), item("inv-1", route="/out/billing"))
        listed = server.call("GET", "/messages", query={"route": "/jobs/deploy"})
        (leased,) = store.dequeue("/jobs/deploy", "pull", 1, timedelta(minutes=1))
        store.nack([leased.lease_id], dead=True, reason="bad job")
        dlq = server.call("GET", "/dlq")
        requeued = server.call("POST", "/dlq/requeue", {"ids": ["job-1"]}, headers=AUDIT)

        assert published == (200, {"published": 2, "audit": {"reason": "incident 42 cleanup"}})
        assert [entry["id"] for entry in listed[1]["items"]] == ["job-1"]
        assert dlq[1]["items"][0]["dead_reason"] == "bad job"
        assert requeued[1]["requeued"] == 1
    finally:
        server.close()
        store.close()


# -- more edges ------------------------------------------------------------------------


def test_a_body_over_defaults_max_body_is_invalid(serve):
    server = serve(admin_config(max_body=64))

    status, body = server.call("POST", "/dlq/requeue", {"ids": ["e" * 100]}, headers=AUDIT)

    assert (status, body["code"]) == (400, "invalid_body")


def test_a_body_is_read_as_json_whatever_content_type_it_declares(serve):
    server = serve()

    status, body = server.call(
        "POST",
        "/dlq/requeue",
        raw=b'{"ids": ["a"]}',
        headers={**AUDIT, "Content-Type": "text/plain"},
    )

    assert (status, body["requeued"]) == (200, 0)


@pytest.mark.parametrize(
    "path", ["/dlq", "/backlog/top_queued", "/backlog/oldest_queued", "/backlog/aging_summary"]
)
def test_read_endpoints_check_their_route_parameter(serve, path):
    server = serve()

    status, body = server.call("GET", path, query={"route": "no-slash"})

    assert (status, body["code"]) == (400, "invalid_query")


def test_attempts_accept_a_managed_selector(serve):
    server = serve(managed_config())

    status, body = server.call(
        "GET", "/attempts", query={"application": "shop", "endpoint_name": "nope"}
    )

    assert (status, body["code"]) == (404, "managed_endpoint_not_found")


def test_a_store_failure_during_a_mutation_is_503(serve, backend):
    server = serve(store=FailingStore(backend, {"get", "list_messages"}))

    by_id = server.call("POST", "/messages/cancel", {"ids": ["a"]}, headers=AUDIT)
    by_filter = server.call("POST", "/messages/cancel_by_filter", {}, headers=AUDIT)

    assert (by_id[0], by_id[1]["code"]) == (503, "store_unavailable")
    assert (by_filter[0], by_filter[1]["code"]) == (503, "store_unavailable")


def test_health_details_report_a_failing_store_in_the_queue_section(serve, backend):
    server = serve(store=FailingStore(backend, {"stats"}))

    status, body = server.call("GET", "/healthz", query={"details": "1"})

    assert status == 200
    assert body["diagnostics"]["queue"]["ok"] is False
    assert body["diagnostics"]["queue"]["error"]


def test_health_details_count_publish_results(serve):
    server = serve(metrics=Metrics())
    server.publish(item("job-1"))
    server.publish(item("job-2", route="/nowhere"))

    _, body = server.call("GET", "/healthz", query={"details": "1"})

    publish = body["diagnostics"]["publish"]
    assert (publish["accepted_total"], publish["rejected_total"]) == (1, 1)
    assert publish["rejected_policy_total"] == 1


class EventLog(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append((record.getMessage(), getattr(record, "fields", {})))


def test_a_successful_mutation_is_logged_with_its_audit_fields(serve):
    server = serve()
    server.store("evt_dead", state="dead")
    log = EventLog()
    logger = logging.getLogger("hookaido.runtime")
    logger.addHandler(log)
    try:
        server.call(
            "POST",
            "/dlq/requeue",
            {"ids": ["evt_dead"]},
            headers={**AUDIT, "X-Hookaido-Audit-Actor": "ops"},
        )
    finally:
        logger.removeHandler(log)

    ((name, fields),) = [entry for entry in log.records if entry[0] == "admin_management_mutation"]
    assert fields["operation"] == "dlq_requeue"
    assert (fields["reason"], fields["actor"], fields["changed"]) == (
        "incident 42 cleanup",
        "ops",
        1,
    )


READ_PATHS = [
    "/healthz",
    "/messages",
    "/dlq",
    "/attempts",
    "/backlog/top_queued",
    "/backlog/oldest_queued",
    "/backlog/aging_summary",
    "/backlog/trends",
]
query_names = st.sampled_from(
    ["details", "route", "target", "state", "limit", "before", "include_payload", "outcome"]
    + ["application", "endpoint_name", "states", "window", "step", "until", "event_id"]
)


def test_random_query_parameters_never_cause_a_server_error(serve):
    server = serve()
    server.store("evt_a")

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        path=st.sampled_from(READ_PATHS),
        query=st.dictionaries(query_names, st.text(max_size=30), max_size=4),
    )
    def check(path, query):
        status, _ = server.call("GET", path, query=query)
        assert status < 500 or (path == "/backlog/trends" and status == 503)

    check()
