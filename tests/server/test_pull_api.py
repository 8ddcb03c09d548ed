"""The Pull API over real HTTP: a waitress server on a loopback port in front of a real backend."""

import base64
import http.client
import json
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookaido.config.model import Config, PullAPIConfig, PullConfig, Route, SecretRef
from hookaido.observability.metrics import Metrics
from hookaido.plugins import registry
from hookaido.queue import Envelope, new_event_id
from hookaido.runtime import Generation, Runtime
from hookaido.server.pull_api import make_pull_app

from ..support.loopback import LoopbackServer
from .conftest import FailingStore, open_backend

GLOBAL = SecretRef("raw", "global-token")
BILLING = SecretRef("raw", "billing-token")
SECRETS = {GLOBAL: b"global-token", BILLING: b"billing-token"}


def pull_config(**pull_api) -> Config:
    settings = PullAPIConfig(tokens=(GLOBAL,), **pull_api)
    return Config(
        routes=(
            Route(path="/webhooks/github", pull=PullConfig(path="/github")),
            Route(path="/webhooks/stripe", pull=PullConfig(path="/stripe")),
        ),
        pull_api=settings,
    )


class PullServer(LoopbackServer):
    """The Pull API over a real backend, with a tiny HTTP client."""

    def __init__(self, config: Config, backend, metrics=None, waiting_limit=4):
        self.backend = backend
        self.runtime = Runtime(Generation(config, secrets=SECRETS), backend, registry(), metrics)
        app = make_pull_app(self.runtime, waiting_limit)
        super().__init__(app, threads=waiting_limit + 2, channel_request_lookahead=1)

    def call(self, method, path, body=None, token="global-token", headers=None, raw=None):
        sent = dict(headers or {})
        if token is not None:
            sent.setdefault("Authorization", f"Bearer {token}")
        data = raw if body is None else json.dumps(body).encode()
        return self.exchange(method, path, data, sent)

    def enqueue(self, route="/webhooks/github", payload=b'{"action":"push"}', **fields):
        now = datetime.now(UTC)
        envelope = Envelope(
            id=new_event_id(),
            route=route,
            target="pull",
            payload=payload,
            received_at=now,
            next_run_at=now,
            **fields,
        )
        self.backend.enqueue([envelope])
        return envelope.id


@pytest.fixture
def serve(backend, loopback_servers):
    def start(config=None, metrics=None, store=None):
        server = PullServer(config or pull_config(), store or backend, metrics)
        loopback_servers.append(server)
        return server

    return start


def lease_one(server, endpoint="/github", **body):
    status, answer, _ = server.call("POST", f"{endpoint}/dequeue", body or None)
    assert status == 200
    (item,) = answer["items"]
    return item


# -- dequeue ---------------------------------------------------------------------------


def test_dequeue_leases_a_queued_webhook_with_every_documented_field(serve):
    server = serve()
    message_id = server.enqueue(
        headers={"X-Github-Event": "push"}, trace={"remote_addr": "203.0.113.7:51234"}
    )

    status, answer, response = server.call("POST", "/github/dequeue", {"batch": 5})

    assert status == 200
    assert response.getheader("Content-Type") == "application/json"
    (item,) = answer["items"]
    assert item["id"] == message_id
    assert item["lease_id"].startswith("lease_") and len(item["lease_id"]) == 22
    assert item["route"] == "/webhooks/github"
    assert item["target"] == "pull"
    assert item["attempt"] == 1
    assert base64.b64decode(item["payload_b64"]) == b'{"action":"push"}'
    assert item["headers"] == {"X-Github-Event": "push"}
    assert item["trace"] == {"remote_addr": "203.0.113.7:51234"}
    assert item["received_at"].endswith("Z") and item["next_run_at"].endswith("Z")


def test_dequeue_with_an_empty_body_uses_every_default(serve):
    server = serve()
    server.enqueue()
    server.enqueue()

    status, answer, _ = server.call("POST", "/github/dequeue")

    assert status == 200
    assert len(answer["items"]) == 1


def test_dequeue_on_an_empty_queue_answers_200_with_no_items(serve):
    server = serve()

    status, answer, _ = server.call("POST", "/github/dequeue", {})

    assert (status, answer) == (200, {"items": []})


def test_headers_and_trace_are_omitted_when_empty(serve):
    server = serve()
    server.enqueue()

    item = lease_one(server)

    assert "headers" not in item and "trace" not in item


def test_dequeue_only_sees_its_own_route(serve):
    server = serve()
    server.enqueue(route="/webhooks/stripe")

    status, answer, _ = server.call("POST", "/github/dequeue", {})

    assert answer == {"items": []}


@pytest.mark.parametrize(("batch", "leased"), [(0, 1), (-3, 1), (2, 2), (50, 3)])
def test_batch_defaults_to_one_and_is_capped_by_max_batch(serve, batch, leased):
    server = serve(pull_config(max_batch=3))
    for _ in range(5):
        server.enqueue()

    status, answer, _ = server.call("POST", "/github/dequeue", {"batch": batch})

    assert status == 200
    assert len(answer["items"]) == leased


def test_lease_ttl_is_capped_by_max_lease_ttl(serve):
    server = serve(pull_config(max_lease_ttl=timedelta(seconds=10)))
    message_id = server.enqueue()

    lease_one(server, lease_ttl="1h")

    lease_until = server.backend.get(message_id).lease_until
    assert lease_until - datetime.now(UTC) <= timedelta(seconds=10)


def test_non_positive_lease_ttl_falls_back_to_the_default(serve):
    server = serve(pull_config(default_lease_ttl=timedelta(minutes=5)))
    message_id = server.enqueue()

    lease_one(server, lease_ttl="0")

    remaining = server.backend.get(message_id).lease_until - datetime.now(UTC)
    assert timedelta(minutes=4) < remaining <= timedelta(minutes=5)


def test_next_run_at_is_the_lease_deadline(serve):
    server = serve()
    message_id = server.enqueue()

    item = lease_one(server, lease_ttl="45s")

    lease_until = server.backend.get(message_id).lease_until
    assert item["next_run_at"] == lease_until.strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0") + "Z"


def test_attempt_grows_with_each_lease(serve):
    server = serve()
    server.enqueue()
    first = lease_one(server)
    server.call("POST", "/github/nack", {"lease_id": first["lease_id"]})

    second = lease_one(server)

    assert (first["attempt"], second["attempt"]) == (1, 2)


# -- long-poll -------------------------------------------------------------------------


def test_long_poll_wakes_up_when_a_webhook_arrives(serve):
    server = serve()
    timer = threading.Timer(0.3, server.enqueue)
    timer.start()

    started = time.monotonic()
    status, answer, _ = server.call("POST", "/github/dequeue", {"max_wait": "5s"})
    waited = time.monotonic() - started

    timer.join()
    assert status == 200
    assert len(answer["items"]) == 1
    assert 0.25 < waited < 3


def test_long_poll_returns_empty_when_the_wait_ends(serve):
    server = serve()

    started = time.monotonic()
    status, answer, _ = server.call("POST", "/github/dequeue", {"max_wait": "300ms"})

    assert (status, answer) == (200, {"items": []})
    assert 0.25 < time.monotonic() - started < 2


def test_max_wait_is_capped_by_the_configured_limit(serve):
    server = serve(pull_config(max_wait=timedelta(milliseconds=100)))

    started = time.monotonic()
    status, _, _ = server.call("POST", "/github/dequeue", {"max_wait": "30s"})

    assert status == 200
    assert time.monotonic() - started < 2


def test_negative_max_wait_does_not_wait(serve):
    server = serve(pull_config(default_max_wait=timedelta(seconds=20)))

    started = time.monotonic()
    status, _, _ = server.call("POST", "/github/dequeue", {"max_wait": "-5s"})

    assert status == 200
    assert time.monotonic() - started < 2


def test_a_client_that_leaves_during_a_long_poll_leases_nothing(serve):
    server = serve()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request(
        "POST",
        "/github/dequeue",
        body=json.dumps({"max_wait": "3s"}),
        headers={"Authorization": "Bearer global-token", "Content-Type": "application/json"},
    )
    time.sleep(0.3)
    connection.sock.close()
    connection.close()
    time.sleep(0.5)

    message_id = server.enqueue()
    time.sleep(0.6)

    assert server.backend.get(message_id).state == "queued"


# -- ack -------------------------------------------------------------------------------


def test_ack_settles_a_lease_with_204(serve):
    server = serve()
    message_id = server.enqueue()
    item = lease_one(server)

    status, body, _ = server.call("POST", "/github/ack", {"lease_id": item["lease_id"]})

    assert (status, body) == (204, b"")
    assert server.backend.get(message_id) is None or (
        server.backend.get(message_id).state == "delivered"
    )


def test_repeating_a_successful_ack_is_still_204(serve):
    server = serve()
    server.enqueue()
    item = lease_one(server)
    server.call("POST", "/github/ack", {"lease_id": item["lease_id"]})

    status, _, _ = server.call("POST", "/github/ack", {"lease_id": item["lease_id"]})

    assert status == 204


def test_ack_after_a_nack_of_the_same_lease_is_a_conflict(serve):
    server = serve()
    server.enqueue()
    item = lease_one(server)
    server.call("POST", "/github/nack", {"lease_id": item["lease_id"]})

    status, body, _ = server.call("POST", "/github/ack", {"lease_id": item["lease_id"]})

    assert (status, body["code"]) == (409, "lease_conflict")


def test_ack_of_an_unknown_lease_is_a_conflict(serve):
    server = serve()

    status, body, _ = server.call("POST", "/github/ack", {"lease_id": "lease_0000000000000000"})

    assert (status, body["code"]) == (409, "lease_conflict")
    assert body["detail"]


def test_batch_ack_counts_every_settled_lease(serve):
    server = serve()
    server.enqueue()
    server.enqueue()
    _, answer, _ = server.call("POST", "/github/dequeue", {"batch": 2})
    leases = [item["lease_id"] for item in answer["items"]]

    status, body, _ = server.call("POST", "/github/ack", {"lease_ids": leases})

    assert (status, body) == (200, {"acked": 2})


def test_batch_ack_trims_drops_blanks_and_duplicates(serve):
    server = serve()
    server.enqueue()
    lease = lease_one(server)["lease_id"]

    status, body, _ = server.call(
        "POST", "/github/ack", {"lease_ids": [f"  {lease} ", lease, "", "   "]}
    )

    assert (status, body) == (200, {"acked": 1})


def test_partial_batch_ack_reports_conflicts_and_keeps_successes(serve):
    server = serve()
    message_id = server.enqueue()
    lease = lease_one(server)["lease_id"]

    status, body, _ = server.call(
        "POST", "/github/ack", {"lease_ids": [lease, "lease_ffffffffffffffff"]}
    )

    assert status == 409
    assert body == {
        "code": "lease_conflict",
        "detail": "one or more leases are invalid or expired",
        "acked": 1,
        "conflicts": [{"lease_id": "lease_ffffffffffffffff", "reason": "lease_not_found"}],
    }
    assert server.backend.get(message_id) is None or (
        server.backend.get(message_id).state == "delivered"
    )


def test_expired_lease_is_a_conflict_and_its_item_is_requeued(serve):
    server = serve()
    message_id = server.enqueue()
    lease = lease_one(server, lease_ttl="100ms")["lease_id"]
    time.sleep(0.25)

    status, body, _ = server.call("POST", "/github/ack", {"lease_ids": [lease]})

    assert status == 409
    assert body["conflicts"] == [{"lease_id": lease, "reason": "lease_expired"}]
    assert server.backend.get(message_id).state == "queued"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"lease_id": "lease_a", "lease_ids": ["lease_b"]},
        {"lease_ids": []},
        {"lease_ids": ["", "  "]},
        {"lease_id": "   "},
        {"lease_ids": "lease_a"},
        {"lease_id": 7},
        {"lease_id": "lease_a", "extra": 1},
    ],
)
def test_malformed_ack_bodies_are_invalid(serve, body):
    server = serve()

    status, answer, _ = server.call("POST", "/github/ack", body)

    assert (status, answer["code"]) == (400, "invalid_body")


def test_more_leases_than_max_lease_batch_is_invalid(serve):
    server = serve(pull_config(max_lease_batch=2))

    status, answer, _ = server.call("POST", "/github/ack", {"lease_ids": ["a", "b", "c"]})

    assert (status, answer["code"]) == (400, "invalid_body")


# -- nack ------------------------------------------------------------------------------


def test_nack_requeues_after_the_delay(serve):
    server = serve()
    message_id = server.enqueue()
    lease = lease_one(server)["lease_id"]

    status, _, _ = server.call("POST", "/github/nack", {"lease_id": lease, "delay": "1h"})

    assert status == 204
    envelope = server.backend.get(message_id)
    assert envelope.state == "queued"
    assert envelope.next_run_at > datetime.now(UTC) + timedelta(minutes=59)
    assert server.call("POST", "/github/dequeue", {})[1] == {"items": []}


def test_nack_dead_moves_the_item_to_the_dlq_with_its_reason(serve):
    server = serve()
    message_id = server.enqueue()
    lease = lease_one(server)["lease_id"]

    status, _, _ = server.call(
        "POST",
        "/github/nack",
        {"lease_id": lease, "dead": True, "reason": "unparseable", "delay": "not-a-duration"},
    )

    assert status == 204
    envelope = server.backend.get(message_id)
    assert (envelope.state, envelope.dead_reason) == ("dead", "unparseable")


def test_batch_nack_answers_succeeded(serve):
    server = serve()
    server.enqueue()
    server.enqueue()
    _, answer, _ = server.call("POST", "/github/dequeue", {"batch": 2})
    leases = [item["lease_id"] for item in answer["items"]]

    status, body, _ = server.call("POST", "/github/nack", {"lease_ids": leases})

    assert (status, body) == (200, {"succeeded": 2})


def test_partial_batch_nack_reports_succeeded_and_conflicts(serve):
    server = serve()
    server.enqueue()
    lease = lease_one(server)["lease_id"]

    status, body, _ = server.call("POST", "/github/nack", {"lease_ids": [lease, "lease_gone"]})

    assert status == 409
    assert body["code"] == "lease_conflict"
    assert body["succeeded"] == 1
    assert body["conflicts"] == [{"lease_id": "lease_gone", "reason": "lease_not_found"}]


def test_repeating_a_successful_nack_is_still_204(serve):
    server = serve()
    server.enqueue()
    lease = lease_one(server)["lease_id"]
    server.call("POST", "/github/nack", {"lease_id": lease, "delay": "1h"})

    status, _, _ = server.call("POST", "/github/nack", {"lease_id": lease, "dead": True})

    assert status == 204


@pytest.mark.parametrize(
    "body",
    [
        {"lease_id": "lease_a", "delay": "soon"},
        {"lease_id": "lease_a", "delay": 5},
        {"lease_id": "lease_a", "dead": "yes"},
        {"lease_id": "lease_a", "reason": 3},
    ],
)
def test_malformed_nack_bodies_are_invalid(serve, body):
    server = serve()

    status, answer, _ = server.call("POST", "/github/nack", body)

    assert (status, answer["code"]) == (400, "invalid_body")


# -- extend ----------------------------------------------------------------------------


def test_extend_moves_the_deadline_from_the_current_one(serve):
    server = serve()
    message_id = server.enqueue()
    lease = lease_one(server, lease_ttl="30s")["lease_id"]
    before = server.backend.get(message_id).lease_until

    status, _, _ = server.call("POST", "/github/extend", {"lease_id": lease, "extend_by": "1m"})

    assert status == 204
    assert server.backend.get(message_id).lease_until - before == timedelta(minutes=1)


def test_extend_accepts_lease_ttl_as_an_alias(serve):
    server = serve()
    message_id = server.enqueue()
    lease = lease_one(server)["lease_id"]
    before = server.backend.get(message_id).lease_until

    status, _, _ = server.call("POST", "/github/extend", {"lease_id": lease, "lease_ttl": "10s"})

    assert status == 204
    assert server.backend.get(message_id).lease_until - before == timedelta(seconds=10)


def test_extend_by_a_non_positive_duration_changes_nothing(serve):
    server = serve()
    message_id = server.enqueue()
    lease = lease_one(server)["lease_id"]
    before = server.backend.get(message_id).lease_until

    status, _, _ = server.call("POST", "/github/extend", {"lease_id": lease, "extend_by": "-5s"})

    assert status == 204
    assert server.backend.get(message_id).lease_until == before


def test_extend_of_an_unknown_lease_is_a_conflict(serve):
    server = serve()

    status, body, _ = server.call(
        "POST", "/github/extend", {"lease_id": "lease_0123456789abcdef", "extend_by": "5s"}
    )

    assert (status, body["code"]) == (409, "lease_conflict")


@pytest.mark.parametrize(
    "body",
    [
        {"lease_id": "lease_a"},
        {"extend_by": "5s"},
        {"lease_ids": ["lease_a"], "extend_by": "5s"},
        {"lease_id": "lease_a", "extend_by": "5 seconds"},
        {"lease_id": "lease_a", "extend_by": 5},
    ],
)
def test_malformed_extend_bodies_are_invalid(serve, body):
    server = serve()

    status, answer, _ = server.call("POST", "/github/extend", body)

    assert (status, answer["code"]) == (400, "invalid_body")


# -- the error table -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "token", "status", "code"),
    [
        ("GET", "/github/dequeue", "global-token", 405, "method_not_allowed"),
        ("GET", "/github/ack", None, 405, "method_not_allowed"),
        ("POST", "/github/stream", "global-token", 405, "method_not_allowed"),
        ("PUT", "/github/ack", "global-token", 405, "method_not_allowed"),
        ("DELETE", "/nowhere/stream", None, 405, "method_not_allowed"),
        ("POST", "/github/dequeue", None, 401, "unauthorized"),
        ("POST", "/github/dequeue", "wrong", 401, "unauthorized"),
        ("POST", "/nowhere/dequeue", None, 401, "unauthorized"),
        ("POST", "/nowhere/dequeue", "global-token", 404, "route_not_found"),
        ("POST", "/github/teleport", "global-token", 404, "operation_not_found"),
        ("POST", "/github", "global-token", 404, "route_not_found"),
    ],
)
def test_every_request_error_has_its_status_and_code_in_check_order(
    serve, method, path, token, status, code
):
    server = serve()

    answered, body, response = server.call(method, path, token=token)

    assert answered == status
    assert body["code"] == code and body["detail"]
    assert response.getheader("Content-Type") == "application/json"


@pytest.mark.parametrize(
    "authorization",
    ["global-token", "Basic global-token", "Bearer", "Bearer global-token-x", "Bearer  "],
)
def test_anything_but_the_exact_bearer_token_is_unauthorized(serve, authorization):
    server = serve()

    status, body, _ = server.call(
        "POST", "/github/dequeue", token=None, headers={"Authorization": authorization}
    )

    assert (status, body["code"]) == (401, "unauthorized")


def test_bearer_scheme_is_case_insensitive_and_the_token_trimmed(serve):
    server = serve()

    status, _, _ = server.call(
        "POST", "/github/dequeue", token=None, headers={"Authorization": "bEaReR   global-token "}
    )

    assert status == 200


def test_the_path_is_cleaned_before_lookup(serve):
    server = serve()

    status, _, _ = server.call("POST", "//github/./x/../dequeue")

    assert status == 200


# -- request bodies --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        (b'{"batch": 1', "application/json"),
        (b'{"batch": 1} {"batch": 2}', "application/json"),
        (b'{"batch": 1}]', "application/json"),
        (b"[1, 2]", "application/json"),
        (b'"text"', "application/json"),
        (b'{"batch": NaN}', "application/json"),
        (b"\xff\xfe{}", "application/json"),
        (b'{"batch": "2"}', "application/json"),
        (b'{"batch": 1.5}', "application/json"),
        (b'{"batch": true}', "application/json"),
        (b'{"lease_ttl": 30}', "application/json"),
        (b'{"max_wait": "10 seconds"}', "application/json"),
        (b'{"max_wait": "5d"}', "application/json"),
        (b'{"surprise": 1}', "application/json"),
    ],
)
def test_malformed_dequeue_bodies_are_invalid_body(serve, raw, content_type):
    server = serve()

    status, body, _ = server.call(
        "POST", "/github/dequeue", raw=raw, headers={"Content-Type": content_type}
    )

    assert (status, body["code"]) == (400, "invalid_body")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_json_body_is_read_whatever_content_type_it_declares(serve, content_type):
    server = serve()

    status, _, _ = server.call(
        "POST", "/github/dequeue", raw=b'{"batch": 1}', headers={"Content-Type": content_type}
    )

    assert status == 200


def test_content_type_may_carry_a_charset(serve):
    server = serve()

    status, _, _ = server.call(
        "POST",
        "/github/dequeue",
        raw=b'{"batch": 1}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )

    assert status == 200


def test_a_body_without_content_type_is_read_as_json(serve):
    server = serve()
    server.enqueue()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.putrequest("POST", "/github/dequeue", skip_accept_encoding=True)
    body = b'{"batch": 1}'
    connection.putheader("Authorization", "Bearer global-token")
    connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body)
    response = connection.getresponse()
    document = json.loads(response.read())
    connection.close()

    assert response.status == 200
    assert len(document["items"]) == 1


def test_a_body_over_one_mebibyte_is_invalid(serve):
    server = serve()
    padding = "x" * (1024 * 1024)

    status, body, _ = server.call(
        "POST", "/github/ack", raw=json.dumps({"lease_id": padding}).encode()
    )

    assert (status, body["code"]) == (400, "invalid_body")


# -- tokens per route and lease scoping ------------------------------------------------


def scoped_config() -> Config:
    config = pull_config()
    github, stripe = config.routes
    stripe = replace(stripe, pull=PullConfig(path="/stripe", tokens=(BILLING,)))
    return replace(config, routes=(github, stripe))


def test_route_tokens_replace_the_global_list_for_their_endpoint(serve):
    server = serve(scoped_config())

    own = server.call("POST", "/stripe/dequeue", token="billing-token")[0]
    global_there = server.call("POST", "/stripe/dequeue", token="global-token")[0]
    global_elsewhere = server.call("POST", "/github/dequeue", token="global-token")[0]
    route_token_elsewhere = server.call("POST", "/github/dequeue", token="billing-token")[0]

    assert (own, global_there, global_elsewhere, route_token_elsewhere) == (200, 401, 200, 401)


def test_with_route_tokens_a_foreign_lease_is_an_unknown_lease(serve):
    server = serve(scoped_config())
    message_id = server.enqueue(route="/webhooks/stripe")
    _, answer, _ = server.call("POST", "/stripe/dequeue", {}, token="billing-token")
    lease = answer["items"][0]["lease_id"]

    single = server.call("POST", "/github/ack", {"lease_id": lease})
    batch = server.call("POST", "/github/nack", {"lease_ids": [lease]})
    extend = server.call("POST", "/github/extend", {"lease_id": lease, "extend_by": "5s"})

    assert (single[0], single[1]["code"]) == (409, "lease_conflict")
    assert batch[1]["conflicts"] == [{"lease_id": lease, "reason": "lease_not_found"}]
    assert (extend[0], extend[1]["code"]) == (409, "lease_conflict")
    assert server.backend.get(message_id).state == "leased"


def test_with_only_global_tokens_any_endpoint_settles_any_lease(serve):
    server = serve()
    server.enqueue(route="/webhooks/stripe")
    lease = lease_one(server, "/stripe")["lease_id"]

    status, _, _ = server.call("POST", "/github/ack", {"lease_id": lease})

    assert status == 204


# -- store failures --------------------------------------------------------------------


def test_a_store_failure_on_dequeue_is_503_store_unavailable(serve, backend):
    server = serve(store=FailingStore(backend, {"dequeue"}))

    status, body, _ = server.call("POST", "/github/dequeue", {})

    assert (status, body["code"]) == (503, "store_unavailable")


def test_a_store_failure_on_a_lease_operation_is_500_internal_error(serve, backend):
    server = serve(store=FailingStore(backend, {"ack", "extend"}))

    ack = server.call("POST", "/github/ack", {"lease_id": "lease_a"})
    extend = server.call("POST", "/github/extend", {"lease_id": "lease_a", "extend_by": "1s"})

    assert (ack[0], ack[1]["code"]) == (500, "internal_error")
    assert (extend[0], extend[1]["code"]) == (500, "internal_error")


# -- metrics ---------------------------------------------------------------------------


def sample(metrics, name, **labels):
    return metrics.registry.get_sample_value(name, labels) or 0


def test_pull_metrics_count_dequeues_acks_conflicts_and_active_leases(serve):
    metrics = Metrics()
    server = serve(metrics=metrics)
    server.enqueue()
    server.enqueue()
    _, answer, _ = server.call("POST", "/github/dequeue", {"batch": 2})
    first, second = (item["lease_id"] for item in answer["items"])

    server.call("POST", "/github/ack", {"lease_id": first})
    server.call("POST", "/github/ack", {"lease_id": "lease_unknown"})
    server.call("POST", "/github/nack", {"lease_id": second, "dead": True})
    server.call("POST", "/nowhere/dequeue", {})
    server.call("POST", "/github/dequeue", {"batch": "x"})

    route = "/webhooks/github"
    assert sample(metrics, "hookaido_pull_dequeue_total", route=route, status="200") == 1
    assert sample(metrics, "hookaido_pull_dequeue_total", route=route, status="4xx") == 1
    assert sample(metrics, "hookaido_pull_dequeue_total", route="_unknown", status="4xx") == 1
    assert sample(metrics, "hookaido_pull_acked_total", route=route) == 1
    assert sample(metrics, "hookaido_pull_ack_conflict_total", route=route) == 1
    assert sample(metrics, "hookaido_pull_nacked_total", route=route) == 1
    assert sample(metrics, "hookaido_pull_lease_active", route=route) == 0


def test_lease_active_counts_open_leases(serve):
    metrics = Metrics()
    server = serve(metrics=metrics)
    server.enqueue()

    lease_one(server)

    assert sample(metrics, "hookaido_pull_lease_active", route="/webhooks/github") == 1


# -- the durable backend ---------------------------------------------------------------


def test_a_worker_round_trip_works_on_sqlite(serve, tmp_path):
    (tmp_path / "durable").mkdir()
    store = open_backend("sqlite", tmp_path / "durable")
    try:
        server = serve(store=store)
        message_id = server.enqueue()

        item = lease_one(server)
        status, _, _ = server.call("POST", "/github/ack", {"lease_id": item["lease_id"]})
        again, _, _ = server.call("POST", "/github/ack", {"lease_id": item["lease_id"]})

        assert item["id"] == message_id
        assert (status, again) == (204, 204)
    finally:
        server.close()
        store.close()


# -- SSE stream ------------------------------------------------------------------------


def open_stream(server, query="", token="global-token"):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request(
        "GET", f"/github/stream{query}", headers={"Authorization": f"Bearer {token}"}
    )
    return connection, connection.getresponse()


def read_event(response) -> list[str]:
    """The lines of the next event or comment, without the blank line that ends it."""
    lines = []
    while True:
        line = response.readline().decode()
        if line in ("\n", ""):
            return lines
        lines.append(line.rstrip("\n"))


def test_streams_past_the_waiting_limit_get_503_and_acks_still_answer(serve):
    server = serve()  # 4 waiting places, 6 threads
    server.enqueue()
    item = lease_one(server)
    streams = [open_stream(server) for _ in range(4)]

    status, answer, response = server.call("GET", "/github/stream")
    ack_status, _, _ = server.call("POST", "/github/ack", {"lease_id": item["lease_id"]})
    started = time.monotonic()
    poll_status, poll_answer, _ = server.call("POST", "/github/dequeue", {"max_wait": "5s"})
    polled_in = time.monotonic() - started

    assert (status, answer["code"]) == (503, "stream_limit")
    assert response.getheader("Retry-After") == "5"
    assert ack_status == 204
    assert (poll_status, poll_answer, polled_in < 1) == (200, {"items": []}, True)

    connection, _ = streams.pop()
    connection.sock.close()
    connection.close()
    deadline = time.monotonic() + 5
    while True:
        reopened, response = open_stream(server)
        if response.status == 200:
            break
        reopened.close()
        assert time.monotonic() < deadline, "a closed stream never gave its place back"
        time.sleep(0.1)
    for connection, _ in [*streams, (reopened, response)]:
        connection.close()


def test_stream_delivers_a_webhook_as_a_message_event(serve):
    server = serve()
    connection, response = open_stream(server)
    opening = read_event(response)

    message_id = server.enqueue(headers={"X-Github-Event": "push"})
    lines = read_event(response)
    connection.close()

    assert response.status == 200
    assert opening == [": keepalive"]
    assert response.getheader("Content-Type") == "text/event-stream"
    assert response.getheader("Cache-Control") == "no-cache"
    assert response.getheader("X-Accel-Buffering") == "no"
    id_line, event_line, data_line = lines
    item = json.loads(data_line.removeprefix("data: "))
    assert event_line == "event: message"
    assert id_line == f"id: {item['lease_id']}"
    assert item["id"] == message_id and item["target"] == "pull"
    assert item["headers"] == {"X-Github-Event": "push"}
    assert server.backend.get(message_id).state == "leased"


def test_stream_sends_items_already_waiting_in_batches(serve):
    server = serve()
    first, second = server.enqueue(), server.enqueue()

    connection, response = open_stream(server, "?batch=5&lease_ttl=1m")
    events = [read_event(response), read_event(response)]
    connection.close()

    sent = {json.loads(lines[2].removeprefix("data: "))["id"] for lines in events}
    assert sent == {first, second}


def test_an_idle_stream_sends_keepalive_comments(serve):
    server = serve(pull_config(sse_keepalive=timedelta(milliseconds=100)))

    connection, response = open_stream(server)
    opening = read_event(response)
    started = time.monotonic()
    lines = read_event(response)
    waited = time.monotonic() - started
    connection.close()

    assert opening == lines == [": keepalive"]
    assert 0.05 < waited < 2


def test_a_stream_ends_after_sse_max_connection(serve):
    server = serve(pull_config(sse_max_connection=timedelta(milliseconds=300)))

    started = time.monotonic()
    connection, response = open_stream(server)
    response.read()
    connection.close()

    assert time.monotonic() - started < 3


def test_a_store_failure_ends_the_stream_with_an_error_event(serve, backend):
    server = serve(store=FailingStore(backend, {"dequeue"}))

    connection, response = open_stream(server)
    lines = read_event(response)
    rest = response.read()
    connection.close()

    assert lines == ["event: error", "data: dequeue is temporarily unavailable"]
    assert rest == b""


@pytest.mark.parametrize("query", ["?batch=0", "?batch=two", "?lease_ttl=0", "?lease_ttl=x"])
def test_invalid_stream_parameters_are_invalid_body(serve, query):
    server = serve()

    connection, response = open_stream(server, query)
    body = json.loads(response.read())
    connection.close()

    assert (response.status, body["code"]) == (400, "invalid_body")


def test_stream_needs_a_token(serve):
    server = serve()

    connection, response = open_stream(server, token="wrong")
    body = json.loads(response.read())
    connection.close()

    assert (response.status, body["code"]) == (401, "unauthorized")


def test_sse_metrics_count_connections_and_messages(serve):
    metrics = Metrics()
    server = serve(metrics=metrics)
    server.enqueue()

    connection, response = open_stream(server)
    read_event(response)
    active = sample(metrics, "hookaido_pull_sse_connection_active", route="/webhooks/github")
    connection.close()

    route = "/webhooks/github"
    assert active == 1
    assert sample(metrics, "hookaido_pull_sse_connections_total", route=route) == 1
    assert sample(metrics, "hookaido_pull_sse_messages_sent_total", route=route) == 1


# -- random input ----------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
known_fields = st.sampled_from(
    ["batch", "lease_ttl", "max_wait", "lease_id", "lease_ids", "delay", "dead", "reason"]
    + ["extend_by"]
)
bodies = st.dictionaries(known_fields, json_values, max_size=4) | json_values


def test_random_json_never_causes_a_server_error(serve):
    server = serve(pull_config(max_wait=timedelta(0)))

    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        operation=st.sampled_from(["dequeue", "ack", "nack", "extend"]),
        body=bodies,
        token=st.sampled_from(["global-token", "nope"]),
    )
    def check(operation, body, token):
        status, answer, _ = server.call("POST", f"/github/{operation}", body, token=token)
        assert status < 500
        if status >= 400:
            assert set(answer) >= {"code", "detail"}

    check()


def test_random_bytes_never_cause_a_server_error(serve):
    server = serve()

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(operation=st.sampled_from(["dequeue", "ack", "nack", "extend"]), raw=st.binary())
    def check(operation, raw):
        status, _, _ = server.call("POST", f"/github/{operation}", raw=raw)
        assert status < 500

    check()


def test_random_stream_parameters_never_cause_a_server_error(serve):
    server = serve(pull_config(sse_max_connection=timedelta(milliseconds=1)))

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(batch=st.text(max_size=8), lease_ttl=st.text(max_size=8))
    def check(batch, lease_ttl):
        query = urlencode({"batch": batch, "lease_ttl": lease_ttl})
        connection, response = open_stream(server, f"?{query}")
        response.read()
        connection.close()
        assert response.status in (200, 400)

    check()


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "PATCH"])
def test_other_methods_are_not_allowed(serve, method):
    server = serve()

    status, _, response = server.call(method, "/github/dequeue")

    assert status == 405
    assert response.getheader("Allow") == "POST"


# -- both backends ---------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite"])
def each_backend(request, tmp_path):
    (tmp_path / request.param).mkdir()
    store = open_backend(request.param, tmp_path / request.param)
    yield store
    store.close()


def test_long_poll_wakes_up_on_every_backend(serve, each_backend):
    server = serve(store=each_backend)
    timer = threading.Timer(0.3, server.enqueue)
    timer.start()

    started = time.monotonic()
    _, answer, _ = server.call("POST", "/github/dequeue", {"max_wait": "5s"})

    timer.join()
    assert len(answer["items"]) == 1
    assert time.monotonic() - started < 3


def test_stream_delivers_on_every_backend(serve, each_backend):
    server = serve(store=each_backend)
    connection, response = open_stream(server)
    read_event(response)

    message_id = server.enqueue()
    lines = read_event(response)
    connection.close()

    assert json.loads(lines[2].removeprefix("data: "))["id"] == message_id


def test_lease_scoping_holds_on_every_backend(serve, each_backend):
    server = serve(scoped_config(), store=each_backend)
    server.enqueue(route="/webhooks/stripe")
    _, answer, _ = server.call("POST", "/stripe/dequeue", {}, token="billing-token")
    lease = answer["items"][0]["lease_id"]

    foreign = server.call("POST", "/github/ack", {"lease_id": lease})[0]
    own = server.call("POST", "/stripe/ack", {"lease_id": lease}, token="billing-token")[0]

    assert (foreign, own) == (409, 204)


def test_two_waiting_workers_never_get_the_same_webhook(serve):
    server = serve()
    answers = []

    def worker():
        answers.append(server.call("POST", "/github/dequeue", {"max_wait": "1s"})[1])

    workers = [threading.Thread(target=worker) for _ in range(2)]
    for thread in workers:
        thread.start()
    time.sleep(0.2)
    server.enqueue()
    for thread in workers:
        thread.join(timeout=5)

    leased = [item for answer in answers for item in answer["items"]]
    assert len(leased) == 1
