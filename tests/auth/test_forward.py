"""``auth forward``: what the authorization service receives, and how its answer decides."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from hookaido.auth import AuthContext, InboundRequest
from hookaido.builtin.auth_forward import ForwardVerifier
from hookaido.errors import ConfigError


def inbound(body=b'{"id":1}', method="POST", path="/hooks//orders/"):
    headers = {
        "Content-Type": "application/json",
        "X-Event": "order.created",
        "Content-Length": str(len(body)),
        "Host": "edge.example",
    }
    return InboundRequest(method, path, "", headers, body, "127.0.0.1:5000", datetime.now(UTC))


def forward(url, **options):
    context = AuthContext(route="/hooks", resolve_secret=lambda ref: b"")
    return ForwardVerifier.from_options({"url": url, **options}, context)


def answer(status, headers=None, body=b""):
    return lambda request: (status, headers or {}, body)


def test_2xx_allows_and_the_service_sees_the_inbound_request(loopback_server):
    server = loopback_server(answer(204))
    verifier = forward(server.url + "/check")

    verdict = verifier.verify(inbound(method="PUT"))

    assert verdict.allowed
    seen = server.seen[0]
    assert (seen.method, seen.path, seen.body) == ("PUT", "/check", b'{"id":1}')
    assert seen.headers["X-Event"] == "order.created"
    assert seen.headers["X-Hookaido-Original-Path"] == "/hooks/orders"
    assert seen.headers["X-Hookaido-Original-Method"] == "PUT"
    assert seen.headers["Host"] == server.url.removeprefix("http://")


def test_copy_headers_are_joined_and_returned_for_storage(loopback_server):
    server = loopback_server(
        answer(200, {"X-Tenant": ["acme", "eu"], "X-Not-Copied": "no", "x-user": "7"})
    )
    verifier = forward(server.url, copy_headers=["X-Tenant", "X-User", "X-Absent"])

    verdict = verifier.verify(inbound())

    assert verdict.headers == {"X-Tenant": "acme,eu", "X-User": "7"}


def test_body_limit_truncates_what_is_sent(loopback_server):
    server = loopback_server(answer(200))
    verifier = forward(server.url, body_limit=4)

    verifier.verify(inbound(body=b"0123456789"))

    assert server.seen[0].body == b"0123"
    assert server.seen[0].headers["Content-Length"] == "4"


@pytest.mark.parametrize("limit", [None, 0])
def test_no_body_limit_sends_the_whole_body(limit, loopback_server):
    server = loopback_server(answer(200))

    forward(server.url, body_limit=limit).verify(inbound(body=b"0123456789"))

    assert server.seen[0].body == b"0123456789"


@pytest.mark.parametrize(("status", "code"), [(401, "unauthorized"), (403, "forbidden")])
def test_401_and_403_are_passed_back(status, code, loopback_server):
    server = loopback_server(answer(status))

    verdict = forward(server.url).verify(inbound())

    assert (verdict.allowed, verdict.status, verdict.code) == (False, status, code)


@pytest.mark.parametrize("status", [302, 400, 404, 500, 502])
def test_any_other_status_fails_closed_with_503(status, loopback_server):
    server = loopback_server(answer(status, {"Location": "http://127.0.0.1:1/"}))

    verdict = forward(server.url).verify(inbound())

    assert (verdict.allowed, verdict.status, verdict.code) == (False, 503, "auth_unavailable")


def test_unreachable_service_fails_closed_with_503(closed_port):
    verdict = forward(f"http://127.0.0.1:{closed_port}/check").verify(inbound())

    assert (verdict.status, verdict.code) == (503, "auth_unavailable")


def test_slow_service_times_out_and_fails_closed(loopback_server):
    def slow(request):
        time.sleep(1.0)
        return 200, {}, b""

    server = loopback_server(slow)
    verifier = forward(server.url, timeout=timedelta(milliseconds=200))
    started = time.monotonic()

    verdict = verifier.verify(inbound())

    assert (verdict.status, verdict.code) == (503, "auth_unavailable")
    assert time.monotonic() - started < 0.9


def test_long_answer_body_does_not_break_the_next_call(loopback_server):
    server = loopback_server(answer(200, body=b"x" * 200_000))
    verifier = forward(server.url)

    first, second = verifier.verify(inbound()), verifier.verify(inbound())

    assert first.allowed and second.allowed


def test_url_may_come_as_the_directive_argument(loopback_server):
    server = loopback_server(answer(200))
    context = AuthContext(route="/hooks", resolve_secret=lambda ref: b"")

    verifier = ForwardVerifier.from_options({"args": [server.url]}, context)

    assert verifier.verify(inbound()).allowed


def test_url_that_is_not_http_is_a_config_error():
    with pytest.raises(ConfigError, match="http:// or https://"):
        forward("ftp://127.0.0.1/check")
