"""Ingress routing, matchers, limits and backpressure against spec/ingress.md §1-§8, over real
HTTP to a ``hookaido run`` on loopback: what a webhook sender is answered and what is stored."""

import base64
import hashlib
import hmac
import json
import time
import uuid
from http.client import HTTPConnection

import pytest

TOKEN = {"Authorization": "Bearer routing-token"}


def node_config(ports, routes: str, globals_: str = "") -> str:
    return f"""
ingress {{
  listen 127.0.0.1:{ports.ingress}
}}
pull_api {{
  listen 127.0.0.1:{ports.pull}
  auth token raw:routing-token
}}
admin_api {{
  listen 127.0.0.1:{ports.admin}
}}
observability {{
  access_log off
}}
{globals_}
{routes}
"""


def stored(http, ports) -> list[dict]:
    """Every message the Admin API lists, newest first."""
    reply = http("GET", f"http://127.0.0.1:{ports.admin}/messages?limit=1000")
    assert reply.status == 200, reply.body
    return reply.json()["items"]


def lease(http, ports, pull_path: str, count: int) -> None:
    reply = http(
        "POST",
        f"http://127.0.0.1:{ports.pull}{pull_path}/dequeue",
        json_body={"batch": count, "lease_ttl": "1h"},
        headers=TOKEN,
    )
    assert reply.status == 200, reply.body
    assert len(reply.json()["items"]) == count


def health(http, ports) -> dict:
    reply = http("GET", f"http://127.0.0.1:{ports.admin}/healthz?details=1")
    assert reply.status == 200, reply.body
    return reply.json()["diagnostics"]


# -- §2 route resolution ------------------------------------------------------------------

ROUTES = """
@push_events {
  header X-Event push
}
/hooks/host {
  match { host example.com "*.example.net" }
  pull { path /host }
}
/hooks/event {
  match @push_events
  match { header_exists X-Delivery }
  pull { path /event }
}
/hooks/query {
  match { query kind order; query_exists dry }
  pull { path /query }
}
/hooks/peer {
  match { remote_ip 127.0.0.0/8 }
  pull { path /peer }
}
/hooks/far {
  match { remote_ip 10.0.0.0/8 "192.168.1.7" }
  pull { path /far }
}
/hooks/methods {
  match { method put get }
  pull { path /methods }
}
/hooks/methods/sub {
  match { method PATCH PUT }
  pull { path /methods-sub }
}
/hooks {
  pull { path /hooks }
}
outbound /hooks-out {
  deliver "https://example.invalid/out" {}
}
"""


@pytest.fixture(scope="module")
def router(module_hookaido_process, module_ports):
    module_hookaido_process(node_config(module_ports, ROUTES)).start()
    return module_ports


def send(port: int, method: str, target: str, headers=(), body: bytes = b"{}", host="h.test"):
    """One request exactly as written: ``target`` unchanged, headers repeated as given.
    Returns (status, headers, parsed JSON body)."""
    connection = HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        if host is not None:
            connection.putheader("Host", host)
        for name, value in headers:
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    return response.status, response.headers, json.loads(data) if data else None


def accepted_by(http, ports, method, target, **options):
    """Send one webhook carrying a unique body; return the route and trace path it was
    stored under, or the refusal status and code when nothing was stored."""
    marker = uuid.uuid4().hex.encode()
    status, _, answer = send(ports.ingress, method, target, body=marker, **options)
    reply = http(
        "GET",
        f"http://127.0.0.1:{ports.admin}/messages?limit=1000&include_payload=1&include_trace=1",
    )
    found = [
        item
        for item in reply.json()["items"]
        if base64.b64decode(item.get("payload_b64", "")) == marker
    ]
    if status != 202:
        assert found == [], f"a refused webhook was stored: {found}"
        return status, answer["code"]
    assert answer == {"status": "queued"}
    assert len(found) == 1
    return found[0]["route"], found[0]["trace"]["path"]


@pytest.mark.parametrize(
    ("target", "route", "path"),
    [
        ("/hooks/./a/../b/", "/hooks", "/hooks/b"),
        ("//hooks//b", "/hooks", "/hooks/b"),
        ("/x/%2e%2e/hooks", "/hooks", "/hooks"),
        ("/../hooks", "/hooks", "/hooks"),
        ("/hooks%2Fb", "/hooks", "/hooks/b"),
        ("/hooks/?kind=order", "/hooks", "/hooks"),
        ("/hooks/a%20b", "/hooks", "/hooks/a b"),
    ],
)
def test_the_request_path_is_cleaned_before_routing(router, http, target, route, path):
    assert accepted_by(http, router, "POST", target) == (route, path)


@pytest.mark.parametrize("target", ["/hooks-x", "/HOOKS", "/hooks/..", "/hooks;v=1", "/hooks-out"])
def test_a_path_outside_every_route_segment_is_404(router, http, target):
    assert accepted_by(http, router, "POST", target) == (404, "not_found")


@pytest.mark.parametrize(
    ("host", "route"),
    [
        ("example.com", "/hooks/host"),
        ("EXAMPLE.com.:8443", "/hooks/host"),
        ("a.example.net", "/hooks/host"),
        ("a.b.example.net:80", "/hooks/host"),
        ("example.net", "/hooks"),
        ("[::1]:8080", "/hooks"),
        ("", "/hooks"),
        (None, "/hooks"),
    ],
)
def test_host_matcher_falls_through_to_the_next_route(router, http, host, route):
    assert accepted_by(http, router, "POST", "/hooks/host", host=host)[0] == route


@pytest.mark.parametrize(
    ("headers", "route"),
    [
        ([("X-Event", "push"), ("X-Delivery", "1")], "/hooks/event"),
        ([("x-event", "ping, push"), ("X-Delivery", "")], "/hooks/event"),
        ([("X-Event", "ping"), ("X-Event", "push"), ("X-Delivery", "1")], "/hooks/event"),
        ([("X-Event", "pushed"), ("X-Delivery", "1")], "/hooks"),
        ([("X-Event", "Push"), ("X-Delivery", "1")], "/hooks"),
        ([("X-Event", "push")], "/hooks"),
    ],
)
def test_named_and_inline_matchers_must_all_hold(router, http, headers, route):
    assert accepted_by(http, router, "POST", "/hooks/event", headers=headers)[0] == route


@pytest.mark.parametrize(
    ("query", "route"),
    [
        ("?kind=order&dry", "/hooks/query"),
        ("?dry=&kind=other&kind=order", "/hooks/query"),
        ("?kind=%6Frder&dry=1", "/hooks/query"),
        ("?kind=order,other&dry", "/hooks"),
        ("?kind=order", "/hooks"),
        ("?Kind=order&dry", "/hooks"),
    ],
)
def test_query_matcher_compares_whole_decoded_values(router, http, query, route):
    assert accepted_by(http, router, "POST", "/hooks/query" + query)[0] == route


def test_remote_ip_is_the_tcp_peer_never_a_forwarding_header(router, http):
    forwarded = [("X-Forwarded-For", "10.1.2.3"), ("Forwarded", "for=10.1.2.3")]

    assert accepted_by(http, router, "POST", "/hooks/peer")[0] == "/hooks/peer"
    assert accepted_by(http, router, "POST", "/hooks/far", headers=forwarded)[0] == "/hooks"


def test_405_lists_the_methods_of_every_route_that_matched_but_the_method(router):
    status, headers, answer = send(router.ingress, "DELETE", "/hooks/methods/sub")

    assert (status, answer["code"]) == (405, "method_not_allowed")
    assert headers["Allow"] == "PUT, GET, PATCH, POST"
    assert headers["Content-Type"] == "application/json"


def test_an_earlier_route_that_allows_the_method_wins(router, http):
    assert accepted_by(http, router, "GET", "/hooks/methods/sub")[0] == "/hooks/methods"
    assert accepted_by(http, router, "PATCH", "/hooks/methods/sub")[0] == "/hooks/methods/sub"
    assert accepted_by(http, router, "PUT", "/hooks/host") == (405, "method_not_allowed")


# -- §1 check order, §3 rate limits, §5-§6 size limits ------------------------------------

LIMITS = """
/own {
  rate_limit { rps 0.5; burst 2 }
  pull { path /own }
}
/shared-a {
  pull { path /shared-a }
}
/shared-b {
  match { method POST PUT }
  pull { path /shared-b }
}
/basic {
  auth basic hook-user hook-pass
  max_body 4
  pull { path /basic }
}
/signed {
  rate_limit { rps 1000; burst 100 }
  auth hmac raw:s3cr3t
  max_body 4
  max_headers 16
  pull { path /signed }
}
/small {
  rate_limit { rps 1000; burst 100 }
  max_body 10
  pull { path /small }
}
/headers {
  rate_limit { rps 1000; burst 100 }
  max_headers 40
  pull { path /headers }
}
"""


def limits_config(ports) -> str:
    text = node_config(ports, LIMITS)
    return text.replace(
        f"listen 127.0.0.1:{ports.ingress}\n",
        f"listen 127.0.0.1:{ports.ingress}\n  rate_limit {{ rps 2; burst 3 }}\n",
        1,
    )


@pytest.fixture
def limited(hookaido_process, ports):
    hookaido_process(limits_config(ports)).start()
    return ports


def test_a_route_with_its_own_rate_limit_does_not_draw_on_the_shared_bucket(limited, http):
    answers = [send(limited.ingress, "POST", "/own")[0] for _ in range(3)]
    status, headers, answer = send(limited.ingress, "POST", "/own")

    assert answers == [202, 202, 429]
    assert (status, answer["code"]) == (429, "rate_limited")
    assert headers["Retry-After"] == "2"  # an empty bucket refilled at 0.5/s
    assert [send(limited.ingress, "POST", "/shared-a")[0] for _ in range(3)] == [202] * 3
    assert len(stored(http, limited)) == 5


def test_routes_without_their_own_limit_share_one_bucket(limited, http):
    answers = [
        send(limited.ingress, "POST", "/shared-a")[0],
        send(limited.ingress, "PUT", "/shared-b")[0],
        send(limited.ingress, "POST", "/shared-a")[0],
    ]
    status, headers, answer = send(limited.ingress, "POST", "/shared-b")

    assert answers == [202, 202, 202]
    assert (status, answer["code"], headers["Retry-After"]) == (429, "rate_limited", "1")
    time.sleep(0.6)  # two tokens a second refill the bucket
    assert send(limited.ingress, "POST", "/shared-b")[0] == 202
    assert len(stored(http, limited)) == 4


def test_routing_errors_win_over_the_rate_limit_and_spend_no_token(limited):
    for _ in range(5):
        assert send(limited.ingress, "GET", "/own")[0] == 405
        assert send(limited.ingress, "POST", "/nowhere")[0] == 404

    assert [send(limited.ingress, "POST", "/own")[0] for _ in range(3)] == [202, 202, 429]


def test_unauthenticated_requests_spend_tokens_and_are_answered_429_first(limited, http):
    refused = [send(limited.ingress, "POST", "/basic", body=b"1")[0] for _ in range(3)]
    status, _, answer = send(limited.ingress, "POST", "/basic", body=b"1")

    assert refused == [401, 401, 401]
    assert (status, answer["code"]) == (429, "rate_limited")
    assert stored(http, limited) == []


def basic(user: str, password: str) -> tuple[str, str]:
    credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
    return ("Authorization", f"Basic {credentials}")


def test_basic_auth_is_checked_before_the_body_size(limited, http):
    oversized = b"12345"

    wrong = send(limited.ingress, "POST", "/basic", body=oversized)
    right = send(limited.ingress, "POST", "/basic", [basic("hook-user", "hook-pass")], oversized)

    assert (wrong[0], wrong[2]["code"]) == (401, "unauthorized")
    assert (right[0], right[2]["code"]) == (413, "payload_too_large")
    assert stored(http, limited) == []


def signature(timestamp: str, path: str, body: bytes) -> str:
    text = f"{timestamp}\nPOST\n{path}\n{hashlib.sha256(body).hexdigest()}"
    return hmac.new(b"s3cr3t", text.encode(), hashlib.sha256).hexdigest()


def test_hmac_routes_check_the_body_size_first_and_the_stored_headers_last(limited, http):
    now = str(int(time.time()))
    unsigned = [("X-Timestamp", now), ("X-Nonce", "n-1"), ("X-Signature", "00")]
    signed = [
        ("X-Timestamp", now),
        ("X-Nonce", "n-2"),
        ("X-Signature", signature(now, "/signed", b"1234")),
    ]

    too_long = send(limited.ingress, "POST", "/signed", unsigned, b"12345")
    bad_signature = send(limited.ingress, "POST", "/signed", unsigned, b"1234")
    too_many_headers = send(limited.ingress, "POST", "/signed", signed, b"1234")

    assert (too_long[0], too_long[2]["code"]) == (413, "payload_too_large")
    assert (bad_signature[0], bad_signature[2]["code"]) == (401, "unauthorized")
    assert (too_many_headers[0], too_many_headers[2]["code"]) == (413, "headers_too_large")
    assert stored(http, limited) == []


def send_chunked(port: int, target: str, chunks: list[bytes]) -> tuple[int, dict]:
    connection = HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", target, body=iter(chunks), encode_chunked=True)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_max_body_is_inclusive_with_or_without_content_length(limited, http):
    exact = send(limited.ingress, "POST", "/small", body=b"0123456789")
    over = send(limited.ingress, "POST", "/small", body=b"0123456789A")
    chunked_exact = send_chunked(limited.ingress, "/small", [b"01234", b"56789"])
    chunked_over = send_chunked(limited.ingress, "/small", [b"01234", b"56789", b"A"])

    assert (exact[0], over[0], over[2]["code"]) == (202, 413, "payload_too_large")
    assert chunked_exact[0] == 202
    assert (chunked_over[0], chunked_over[1]["code"]) == (413, "payload_too_large")
    payloads = sorted(
        base64.b64decode(item["payload_b64"]) for item in stored_payloads(http, limited)
    )
    assert payloads == [b"0123456789", b"0123456789"]


def stored_payloads(http, ports) -> list[dict]:
    reply = http("GET", f"http://127.0.0.1:{ports.admin}/messages?limit=1000&include_payload=1")
    return reply.json()["items"]


def test_max_headers_counts_the_stored_names_and_values_inclusively(limited, http):
    # Stored: Content-Length "1" (14 + 1 bytes) and X-Pad; Host and credentials are not.
    credentials = [("Authorization", "x" * 64), ("Cookie", "c" * 64), ("Proxy-Authorization", "p")]
    exact = [("X-Pad", "p" * 20), *credentials]
    over = [("X-Pad", "p" * 21)]
    repeated = [("x-pad", "p" * 9), ("X-PAD", "q" * 10)]

    answers = [send(limited.ingress, "POST", "/headers", h, b"1") for h in (exact, over, repeated)]

    assert [status for status, _, _ in answers] == [202, 413, 202]
    assert answers[1][2]["code"] == "headers_too_large"
    reply = http("GET", f"http://127.0.0.1:{limited.admin}/messages?include_headers=1")
    headers = sorted(item["headers"]["X-Pad"] for item in reply.json()["items"])
    assert headers == sorted(["p" * 20, "p" * 9 + "," + "q" * 10])
    assert {name for item in reply.json()["items"] for name in item["headers"]} == {
        "Content-Length",
        "X-Pad",
    }


# -- §7 enqueue: queue_limits -------------------------------------------------------------

QUEUE_ROUTES = """
/hooks {
  pull { path /hooks }
}
/fan {
  deliver "https://one.example.invalid/in" {}
  deliver "https://two.example.invalid/in" {}
}
"""


def queue_limits(policy: str) -> str:
    return f"queue_limits {{\n  max_depth 3\n  drop_policy {policy}\n}}"


def test_a_full_queue_refuses_with_503_and_retry_after_and_stores_nothing(
    hookaido_process, ports, http
):
    hookaido_process(node_config(ports, QUEUE_ROUTES, queue_limits("reject"))).start()
    for number in range(3):
        assert send(ports.ingress, "POST", "/hooks", body=b"%d" % number)[0] == 202

    status, headers, answer = send(ports.ingress, "POST", "/hooks", body=b"late")

    assert (status, answer["code"]) == (503, "queue_full")
    assert int(headers["Retry-After"]) >= 1
    assert sorted(base64.b64decode(i["payload_b64"]) for i in stored_payloads(http, ports)) == [
        b"0",
        b"1",
        b"2",
    ]


def test_a_fan_out_that_fills_the_queue_keeps_the_targets_already_queued(
    hookaido_process, ports, http
):
    hookaido_process(node_config(ports, QUEUE_ROUTES, queue_limits("reject"))).start()
    for number in range(2):
        assert send(ports.ingress, "POST", "/hooks", body=b"%d" % number)[0] == 202

    status, _, answer = send(ports.ingress, "POST", "/fan", body=b"fan")

    assert (status, answer["code"]) == (503, "queue_full")
    fanned = [item["target"] for item in stored(http, ports) if item["route"] == "/fan"]
    assert fanned == ["https://one.example.invalid/in"]


def test_drop_oldest_makes_room_until_only_leased_messages_are_left(hookaido_process, ports, http):
    hookaido_process(node_config(ports, QUEUE_ROUTES, queue_limits("drop_oldest"))).start()
    for number in range(5):
        assert send(ports.ingress, "POST", "/hooks", body=b"%d" % number)[0] == 202
    kept = sorted(base64.b64decode(i["payload_b64"]) for i in stored_payloads(http, ports))
    lease(http, ports, "/hooks", 3)

    status, _, answer = send(ports.ingress, "POST", "/hooks", body=b"late")

    assert kept == [b"2", b"3", b"4"]
    assert (status, answer["code"]) == (503, "queue_full")
    assert len(stored(http, ports)) == 3


# -- §8 adaptive backpressure -------------------------------------------------------------


def test_queued_share_rounds_half_up_against_queued_percent(hookaido_process, ports, http):
    pressure = """
defaults {
  adaptive_backpressure {
    enabled on
    min_total 8
    queued_percent 13
    ready_lag 1h
    oldest_queued_age 1h
    sustained_growth off
  }
}"""
    hookaido_process(node_config(ports, "/hooks { pull { path /hooks } }", pressure)).start()
    ingress = f"http://127.0.0.1:{ports.ingress}/hooks"
    for _ in range(8):
        assert http("POST", ingress, body=b"{}").status == 202
    lease(http, ports, "/hooks", 7)  # 1 queued of 8 active: 12.5 %, which rounds to 13 %
    time.sleep(0.3)  # queue stats are cached for 250 ms

    reply = http("POST", ingress, body=b"{}")

    assert (reply.status, reply.json()["code"]) == (503, "adaptive_backpressure")
    assert len(stored(http, ports)) == 8
    by_reason = health(http, ports)["ingress"]["adaptive_backpressure_by_reason"]
    assert by_reason["queued_pressure"] == 1


def test_sustained_growth_follows_the_backlog_snapshots(hookaido_process, ports, http):
    growth = """
defaults {
  trend_signals { sustained_growth_consecutive 1 }
  adaptive_backpressure {
    enabled on
    min_total 1
    queued_percent 100
    ready_lag 1h
    oldest_queued_age 1h
  }
}"""
    node = hookaido_process(node_config(ports, "/hooks { pull { path /hooks } }", growth))
    node.start()  # the start-up snapshot sees an empty queue
    ingress = f"http://127.0.0.1:{ports.ingress}/hooks"
    for _ in range(20):
        assert http("POST", ingress, body=b"{}").status == 202
    lease(http, ports, "/hooks", 1)  # 19 of 20 queued stays below queued_percent 100
    node.stop()
    node.start()  # this start-up snapshot sees 20: the backlog grew

    reply = http("POST", ingress, body=b"{}")

    assert (reply.status, reply.json()["code"]) == (503, "adaptive_backpressure")
    diagnostics = health(http, ports)
    assert diagnostics["queue"]["trend_signals"]["sustained_growth"] is True
    assert diagnostics["ingress"]["adaptive_backpressure_by_reason"]["sustained_growth"] == 1
    assert len(stored(http, ports)) == 20
