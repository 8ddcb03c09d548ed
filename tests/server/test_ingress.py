"""Ingress behaviour on compiled-config values: routing, limits, auth, storage and errors."""

import base64
import json
from datetime import UTC, datetime, timedelta

import falcon.testing
import pytest

from hookaido.auth import Verdict
from hookaido.config.model import (
    AdaptiveBackpressure,
    AuthConfig,
    Defaults,
    DeliverTarget,
    IngressConfig,
    Matcher,
    PullConfig,
    RateLimit,
    Route,
)
from hookaido.queue import MemoryPressure, QueueFull, StoreUnavailable


def pull_route(path, **fields):
    return Route(path=path, pull=PullConfig(path="/pull" + path), **fields)


def basic(user, password):
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


# -- accepting --------------------------------------------------------------------------------


def test_accepted_webhook_is_stored_before_202(ingress_harness):
    harness = ingress_harness((pull_route("/webhooks/github"),))

    result = harness.post(
        "/webhooks/github",
        body=b'{"action":"push"}',
        headers={
            "Content-Type": "application/json",
            "x-github-event": "push",
            "Authorization": "token secret",
            "Cookie": "a=b",
        },
        remote_addr="203.0.113.7",
    )

    assert result.status_code == 202
    assert result.headers["content-type"] == "application/json"
    assert result.content == b'{"status":"queued"}\n'
    [envelope] = harness.queue.envelopes
    assert envelope.id.startswith("evt_") and len(envelope.id) == 20
    assert envelope.route == "/webhooks/github"
    assert envelope.target == "pull"
    assert envelope.payload == b'{"action":"push"}'
    assert envelope.headers["X-Github-Event"] == "push"
    assert envelope.headers["Content-Type"] == "application/json"
    assert "Authorization" not in envelope.headers and "Cookie" not in envelope.headers
    assert envelope.trace["path"] == "/webhooks/github"
    assert envelope.trace["remote_addr"].startswith("203.0.113.7")
    assert envelope.state == "queued" and envelope.attempt == 0
    assert envelope.next_run_at == envelope.received_at
    assert harness.runtime.metrics.ingress_accepted._value.get() == 1


def test_push_route_fans_out_one_envelope_per_target_in_order(ingress_harness):
    targets = (
        DeliverTarget(target="https://a.internal/hook", kind="https"),
        DeliverTarget(target="https://b.internal/hook", kind="https"),
    )
    harness = ingress_harness((Route(path="/orders", targets=targets),))

    result = harness.post("/orders")

    assert result.status_code == 202
    assert [e.target for e in harness.queue.envelopes] == [
        "https://a.internal/hook",
        "https://b.internal/hook",
    ]
    assert len({e.id for e in harness.queue.envelopes}) == 2
    assert harness.runtime.metrics.ingress_enqueued._value.get() == 2


def test_failed_second_target_answers_503_and_keeps_the_first(ingress_harness):
    targets = (
        DeliverTarget(target="https://a.internal/hook", kind="https"),
        DeliverTarget(target="https://b.internal/hook", kind="https"),
    )
    harness = ingress_harness((Route(path="/orders", targets=targets),))
    harness.queue.refuse, harness.queue.refuse_after = QueueFull(), 1

    result = harness.post("/orders")

    assert result.status_code == 503
    assert result.json["code"] == "queue_full"
    assert [e.target for e in harness.queue.envelopes] == ["https://a.internal/hook"]


# -- routing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/hooks", 202),
        ("/hooks/", 202),
        ("/hooks/x/y", 202),
        ("//hooks/./x/../x", 202),
        ("/hooks-x", 404),
        ("/hook", 404),
        ("/", 404),
    ],
)
def test_route_prefix_matches_on_segment_boundaries(ingress_harness, path, status):
    harness = ingress_harness((pull_route("/hooks"),))

    result = harness.post(path)

    assert result.status_code == status
    if status == 404:
        assert result.json["code"] == "not_found"
        assert harness.rejected("not_found", 404) == 1


def test_first_matching_route_in_file_order_wins(ingress_harness):
    harness = ingress_harness(
        (
            pull_route("/hooks", matcher=Matcher(headers=(("X-Kind", "a"),))),
            pull_route("/hooks/b"),
        )
    )

    harness.post("/hooks/b", headers={"X-Kind": "a"})
    harness.post("/hooks/b", headers={"X-Kind": "c"})

    assert [e.route for e in harness.queue.envelopes] == ["/hooks", "/hooks/b"]


def test_stored_trace_path_is_the_cleaned_request_path(ingress_harness):
    harness = ingress_harness((pull_route("/hooks"),))

    harness.post("//hooks/./a/")

    assert harness.queue.envelopes[0].trace["path"] == "/hooks/a"


def test_only_post_matches_when_no_method_is_configured(ingress_harness):
    harness = ingress_harness((pull_route("/hooks"),))

    result = harness.request("GET", "/hooks")

    assert result.status_code == 405
    assert result.headers["allow"] == "POST"
    assert result.json["code"] == "method_not_allowed"
    assert harness.rejected("not_found", 405) == 1


def test_allow_header_lists_methods_of_every_matching_route_in_order(ingress_harness):
    harness = ingress_harness(
        (
            pull_route("/a", matcher=Matcher(methods=("PUT", "POST"))),
            pull_route("/a/b", matcher=Matcher(methods=("PATCH", "PUT"))),
        )
    )

    result = harness.request("DELETE", "/a/b")

    assert result.status_code == 405
    assert result.headers["allow"] == "PUT, POST, PATCH"


def test_configured_methods_replace_the_post_default(ingress_harness):
    harness = ingress_harness((pull_route("/a", matcher=Matcher(methods=("PUT",))),))

    assert harness.request("PUT", "/a").status_code == 202
    assert harness.request("POST", "/a").status_code == 405


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("api.example.com", 202),
        ("API.Example.com.:8443", 202),
        ("deep.api.example.com", 202),
        ("example.com", 404),
        ("exact.test", 202),
        ("other.test", 404),
    ],
)
def test_host_matcher_takes_exact_names_and_subdomain_wildcards(ingress_harness, host, status):
    matcher = Matcher(hosts=("*.example.com", "exact.test"))
    harness = ingress_harness((pull_route("/h", matcher=matcher),))

    result = harness.post("/h", headers={"Host": host})

    assert result.status_code == status


def test_header_matcher_accepts_one_part_of_a_comma_separated_value(ingress_harness):
    matcher = Matcher(headers=(("X-Event", "push"),), header_exists=("X-Id",))
    harness = ingress_harness((pull_route("/h", matcher=matcher),))

    assert harness.post("/h", headers={"X-Event": "ping, push", "X-Id": "1"}).status_code == 202
    assert harness.post("/h", headers={"X-Event": "pushes", "X-Id": "1"}).status_code == 404
    assert harness.post("/h", headers={"X-Event": "push"}).status_code == 404


def test_query_matcher_compares_whole_values_and_accepts_empty_keys(ingress_harness):
    matcher = Matcher(query=(("kind", "a,b"),), query_exists=("flag",))
    harness = ingress_harness((pull_route("/q", matcher=matcher),))

    assert harness.post("/q", query_string="kind=a,b&flag").status_code == 202
    assert harness.post("/q", query_string="kind=a&flag=1").status_code == 404
    assert harness.post("/q", query_string="kind=a,b").status_code == 404


def test_remote_ip_matcher_uses_the_peer_address(ingress_harness):
    matcher = Matcher(remote_ips=("10.0.0.0/8", "2001:db8::/32"))
    harness = ingress_harness((pull_route("/ip", matcher=matcher),))

    assert harness.post("/ip", remote_addr="10.1.2.3").status_code == 202
    assert harness.post("/ip", remote_addr="::ffff:10.9.9.9").status_code == 202
    assert harness.post("/ip", remote_addr="2001:db8::1").status_code == 202
    forwarded = {"X-Forwarded-For": "10.1.2.3"}
    assert harness.post("/ip", remote_addr="192.0.2.1", headers=forwarded).status_code == 404


def test_outbound_and_internal_routes_are_never_matched(ingress_harness):
    target = DeliverTarget(target="https://a.internal/x", kind="https")
    harness = ingress_harness(
        (
            Route(path="/out", channel="outbound", targets=(target,)),
            Route(path="/jobs", channel="internal", pull=PullConfig(path="/jobs")),
        )
    )

    assert harness.post("/out").status_code == 404
    assert harness.post("/jobs").status_code == 404


# -- rate limits ------------------------------------------------------------------------------


def test_global_rate_limit_is_one_bucket_shared_by_routes(ingress_harness):
    harness = ingress_harness(
        (pull_route("/a"), pull_route("/b")),
        ingress=IngressConfig(listen="127.0.0.1:0", rate_limit=RateLimit(rps=0.5, burst=2)),
    )

    first, second, third = harness.post("/a"), harness.post("/b"), harness.post("/a")

    assert (first.status_code, second.status_code, third.status_code) == (202, 202, 429)
    assert third.json["code"] == "rate_limited"
    assert third.headers["retry-after"] == "2"
    assert harness.rejected("rate_limit", 429) == 1


def test_route_rate_limit_uses_its_own_bucket(ingress_harness):
    harness = ingress_harness(
        (pull_route("/a", rate_limit=RateLimit(rps=1, burst=1)), pull_route("/b")),
        ingress=IngressConfig(listen="127.0.0.1:0", rate_limit=RateLimit(rps=1, burst=1)),
    )

    statuses = [harness.post(p).status_code for p in ("/a", "/b", "/a", "/b")]

    assert statuses == [202, 202, 429, 429]


def test_reload_keeps_an_unchanged_bucket_and_refills_a_changed_one(ingress_harness):
    limited = RateLimit(rps=0.1, burst=1)
    harness = ingress_harness(
        (pull_route("/a", rate_limit=limited), pull_route("/b", rate_limit=limited))
    )
    harness.post("/a")
    harness.post("/b")

    harness.reload(
        (
            pull_route("/a", rate_limit=limited),
            pull_route("/b", rate_limit=RateLimit(rps=0.1, burst=2)),
        )
    )

    assert harness.post("/a").status_code == 429
    assert harness.post("/b").status_code == 202


def test_rate_limit_applies_before_auth(ingress_harness):
    harness = ingress_harness(
        (
            pull_route(
                "/a",
                rate_limit=RateLimit(rps=0.1, burst=1),
                auth=AuthConfig("basic", {"users": [["u", "p"]]}),
            ),
        )
    )

    assert harness.post("/a").status_code == 401
    assert harness.post("/a", headers=basic("u", "p")).status_code == 429


# -- limits -----------------------------------------------------------------------------------


def test_body_over_max_body_is_413_and_not_stored(ingress_harness):
    harness = ingress_harness((pull_route("/a", max_body=8),))

    exact = harness.post("/a", body=b"12345678")
    over = harness.post("/a", body=b"123456789")

    assert exact.status_code == 202
    assert over.status_code == 413
    assert over.json["code"] == "payload_too_large"
    assert len(harness.queue.envelopes) == 1
    assert harness.rejected("policy", 413) == 1


def test_stored_headers_over_max_headers_are_413(ingress_harness):
    harness = ingress_harness((pull_route("/a", max_headers=200),))

    result = harness.post("/a", headers={"X-Big": "v" * 300})

    assert result.status_code == 413
    assert result.json["code"] == "headers_too_large"
    assert harness.queue.envelopes == []


# -- auth -------------------------------------------------------------------------------------


def test_basic_auth_accepts_a_configured_user_and_refuses_others(ingress_harness):
    auth = AuthConfig("basic", {"users": [["alice", "s3cret"], ["bob", "hunter2"]]})
    harness = ingress_harness((pull_route("/a", auth=auth),))

    assert harness.post("/a", headers=basic("bob", "hunter2")).status_code == 202
    wrong = harness.post("/a", headers=basic("alice", "hunter2"))
    unknown = harness.post("/a", headers=basic("mallory", "s3cret"))
    missing = harness.post("/a")
    garbage = harness.post("/a", headers={"Authorization": "Basic !!!"})

    for result in (wrong, unknown, missing, garbage):
        assert result.status_code == 401
        assert result.json["code"] == "unauthorized"
        assert "www-authenticate" not in result.headers
    assert len(harness.queue.envelopes) == 1
    assert harness.rejected("auth", 401) == 4


def test_basic_auth_is_checked_before_the_body_size(ingress_harness):
    auth = AuthConfig("basic", {"users": [["u", "p"]]})
    harness = ingress_harness((pull_route("/a", auth=auth, max_body=4),))

    result = harness.post("/a", body=b"far too large")

    assert result.status_code == 401


def recording_verifier(log, verdict_for):
    class Verifier:
        def verify(self, request):
            verdict = verdict_for(request)
            if verdict.allowed:
                verdict.on_enqueued = lambda: log.append(("enqueued", request.body))
                verdict.on_refused = lambda: log.append(("refused", request.body))
            return verdict

    return lambda options, context: Verifier()


def test_plugin_verdicts_decide_status_and_hear_whether_the_webhook_was_stored(
    ingress_harness, auth_registry
):
    log = []
    registry = auth_registry(
        custom=recording_verifier(
            log,
            lambda req: (
                Verdict.allow()
                if req.body != b"forbidden"
                else Verdict.deny("nope", 403, "forbidden")
            ),
        )
    )
    harness = ingress_harness((pull_route("/a", auth=AuthConfig("custom", {})),), registry=registry)

    accepted = harness.post("/a", body=b"ok")
    forbidden = harness.post("/a", body=b"forbidden")
    harness.queue.refuse = StoreUnavailable("disk gone")
    refused = harness.post("/a", body=b"later")

    assert accepted.status_code == 202
    assert (forbidden.status_code, forbidden.json["code"]) == (403, "forbidden")
    assert (refused.status_code, refused.json["code"]) == (503, "store_unavailable")
    assert log == [("enqueued", b"ok"), ("refused", b"later")]


def test_verifier_that_raises_fails_closed_with_503(ingress_harness, auth_registry):
    def broken(options, context):
        class Broken:
            def verify(self, request):
                raise RuntimeError("upstream down")

        return Broken()

    registry = auth_registry(broken=broken)
    harness = ingress_harness((pull_route("/a", auth=AuthConfig("broken", {})),), registry=registry)

    result = harness.post("/a")

    assert (result.status_code, result.json["code"]) == (503, "auth_unavailable")
    assert harness.queue.envelopes == []


# -- storage failures -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "code", "reason", "retry_after"),
    [
        (QueueFull(), "queue_full", "queue_full", True),
        (MemoryPressure("bytes"), "memory_pressure", "memory_pressure", False),
        (StoreUnavailable("locked"), "store_unavailable", "other", False),
        (OSError("disk"), "store_unavailable", "other", False),
    ],
)
def test_enqueue_failures_answer_503_with_their_code(
    ingress_harness, failure, code, reason, retry_after
):
    harness = ingress_harness((pull_route("/a"),))
    harness.queue.refuse = failure

    result = harness.post("/a")

    assert result.status_code == 503
    assert result.json["code"] == code
    assert ("retry-after" in result.headers) == retry_after
    assert harness.rejected(reason, 503) == 1


# -- adaptive backpressure --------------------------------------------------------------------


def test_adaptive_backpressure_refuses_while_the_queue_is_mostly_waiting(ingress_harness):
    settings = AdaptiveBackpressure(enabled=True, min_total=10, queued_percent=80)
    harness = ingress_harness(
        (pull_route("/a"),), defaults=Defaults(adaptive_backpressure=settings)
    )
    harness.queue.by_state = {"queued": 90, "leased": 10}

    result = harness.post("/a")

    assert (result.status_code, result.json["code"]) == (503, "adaptive_backpressure")
    assert harness.runtime.metrics.ingress_backpressure.labels("queued_pressure")._value.get() == 1
    assert harness.rejected("adaptive_backpressure", 503) == 1


def test_adaptive_backpressure_refuses_on_old_ready_work(ingress_harness):
    settings = AdaptiveBackpressure(enabled=True, min_total=10, queued_percent=100)
    harness = ingress_harness(
        (pull_route("/a"),), defaults=Defaults(adaptive_backpressure=settings)
    )
    harness.queue.by_state = {"queued": 5, "leased": 10}
    harness.queue.earliest_queued_next_run_at = datetime.now(UTC) - timedelta(minutes=5)

    result = harness.post("/a")

    assert result.status_code == 503
    assert harness.runtime.metrics.ingress_backpressure.labels("ready_lag")._value.get() == 1


def test_adaptive_backpressure_allows_a_small_queue(ingress_harness):
    settings = AdaptiveBackpressure(enabled=True, min_total=200)
    harness = ingress_harness(
        (pull_route("/a"),), defaults=Defaults(adaptive_backpressure=settings)
    )
    harness.queue.by_state = {"queued": 150, "leased": 0}

    assert harness.post("/a").status_code == 202


def test_a_malformed_content_length_is_a_json_400(ingress_harness):
    harness = ingress_harness((pull_route("/a"),))
    environ = falcon.testing.create_environ(path="/a", method="POST", body=b"{}")
    environ["CONTENT_LENGTH"] = "lots"
    answer = {}

    body = b"".join(
        harness.client.app(environ, lambda status, headers: answer.update(status=status))
    )

    assert answer["status"].startswith("400")
    assert json.loads(body)["code"] == "invalid_request"
    assert harness.queue.envelopes == []
