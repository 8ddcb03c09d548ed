"""The HTTP deliverer against real loopback receivers: one attempt, classified."""

import email.utils
import ssl
import time
from datetime import UTC, datetime, timedelta

import pytest
import trustme
from hookaido_deliver_http.deliverer import HTTPDeliverer, parse_retry_after

from hookaido.config.model import DeliverTarget, EgressPolicy
from hookaido.delivery import DeliveryContext

from .conftest import Receiver, Reply, make_envelope

LOOPBACK = EgressPolicy(allow=("127.0.0.1",), https_only=False, dns_rebind_protection=False)


def deliverer(url, egress=LOOPBACK, timeout=5.0, headers=(), resolver=None) -> HTTPDeliverer:
    target = DeliverTarget(
        target=url, kind=url.split(":")[0], timeout=timedelta(seconds=timeout), headers=headers
    )
    extra = {"resolver": resolver} if resolver else {}
    return HTTPDeliverer(target, DeliveryContext(egress=egress, extra=extra))


def test_2xx_acks_and_the_receiver_gets_payload_stored_headers_and_custom_headers(receiver):
    receiver.replies.append(Reply(204))
    envelope = make_envelope(
        payload=b'{"order":42}',
        headers={
            "Content-Type": "application/json",
            "X-Source": "provider",
            "X-GitHub-Event": "push",
            "Content-Length": "999",
            "Host": "edge.example.com",
            "Transfer-Encoding": "chunked",
        },
    )

    outcome = deliverer(receiver.url("/build?x=1"), headers=(("x-source", "edge"),)).deliver(
        envelope
    )

    assert (outcome.result, outcome.status_code) == ("acked", 204)
    [got] = receiver.requests
    assert (got.method, got.path, got.body) == ("POST", "/build?x=1", b'{"order":42}')
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["X-GitHub-Event"] == "push"
    assert got.headers["x-source"] == "edge"
    assert "X-Source" not in got.headers
    assert got.headers["Host"] == f"127.0.0.1:{receiver.port}"
    assert got.headers["Content-Length"] == "12"
    assert "Transfer-Encoding" not in got.headers


def test_connections_are_kept_alive_between_deliveries(receiver):
    http = deliverer(receiver.url())

    for _ in range(3):
        assert http.deliver(make_envelope()).result == "acked"

    assert len({request.peer for request in receiver.requests}) == 1


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 599])
def test_retryable_statuses(receiver, status):
    receiver.replies.append(Reply(status, body=b"busy"))

    outcome = deliverer(receiver.url()).deliver(make_envelope())

    assert (outcome.result, outcome.status_code, outcome.retry_after) == ("retry", status, None)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 410, 422, 301, 302, 307, 308])
def test_other_statuses_go_to_the_dlq_as_no_retry_even_on_the_first_attempt(receiver, status):
    receiver.replies.append(Reply(status, headers={"Location": receiver.url("/elsewhere")}))

    outcome = deliverer(receiver.url()).deliver(make_envelope())

    assert (outcome.result, outcome.status_code, outcome.dead_reason) == (
        "dead",
        status,
        "no_retry",
    )
    assert [request.path for request in receiver.requests] == ["/hook"]


def test_redirects_are_followed_only_when_egress_allows_them(receiver):
    receiver.replies.append(Reply(307, headers={"Location": "/moved"}))
    egress = EgressPolicy(
        allow=("127.0.0.1",), https_only=False, dns_rebind_protection=False, redirects=True
    )

    outcome = deliverer(receiver.url(), egress=egress).deliver(make_envelope(payload=b"again"))

    assert outcome.result == "acked"
    assert [(r.path, r.body) for r in receiver.requests] == [
        ("/hook", b"again"),
        ("/moved", b"again"),
    ]


def test_a_followed_redirect_is_checked_against_egress_again(receiver):
    receiver.replies.append(Reply(302, headers={"Location": "http://127.0.0.2:9/outside"}))
    egress = EgressPolicy(
        allow=("127.0.0.1",), https_only=False, dns_rebind_protection=False, redirects=True
    )

    outcome = deliverer(receiver.url(), egress=egress).deliver(make_envelope())

    assert (outcome.result, outcome.dead_reason) == ("dead", "policy_denied")


def test_retry_after_in_seconds_and_as_an_http_date_is_passed_on(receiver):
    later = datetime.now(UTC) + timedelta(seconds=90)
    receiver.replies.append(Reply(429, headers={"Retry-After": "30"}))
    receiver.replies.append(
        Reply(503, headers={"Retry-After": email.utils.format_datetime(later, usegmt=True)})
    )
    http = deliverer(receiver.url())

    seconds = http.deliver(make_envelope())
    date = http.deliver(make_envelope())

    assert seconds.retry_after == timedelta(seconds=30)
    assert timedelta(seconds=85) < date.retry_after <= timedelta(seconds=90)


def test_unusable_retry_after_values_are_ignored():
    now = datetime.now(UTC)
    past = email.utils.format_datetime(now - timedelta(minutes=1), usegmt=True)

    for value in (None, "", "0", "-5", "soon", "1.5", past):
        assert parse_retry_after(value, now) is None, value


def test_a_slow_receiver_times_out_as_a_retry(receiver):
    receiver.replies.append(Reply(200, delay=1.5))

    started = time.monotonic()
    outcome = deliverer(receiver.url(), timeout=0.3).deliver(make_envelope())

    assert (outcome.result, outcome.error) == ("retry", "timeout after 0.3s")
    assert time.monotonic() - started < 1.0


def test_a_refused_connection_is_retryable(receiver):
    url = receiver.url()
    receiver.close()

    outcome = deliverer(url).deliver(make_envelope())

    assert outcome.result == "retry"
    assert outcome.status_code == 0
    assert outcome.error


def test_an_egress_denied_target_goes_to_the_dlq_without_being_contacted(receiver):
    egress = EgressPolicy(deny=("127.0.0.0/8",), https_only=False, dns_rebind_protection=False)

    outcome = deliverer(receiver.url(), egress=egress).deliver(make_envelope())

    assert (outcome.result, outcome.dead_reason) == ("dead", "policy_denied")
    assert "127.0.0.1" in outcome.error
    assert receiver.requests == []


def test_default_egress_refuses_plain_http_and_loopback(receiver):
    plain = deliverer(receiver.url(), egress=EgressPolicy()).deliver(make_envelope())
    loopback = deliverer(
        receiver.url(host="localhost", scheme="https"), egress=EgressPolicy()
    ).deliver(make_envelope())

    assert (plain.result, plain.dead_reason) == ("dead", "policy_denied")
    assert (loopback.result, loopback.dead_reason) == ("dead", "policy_denied")
    assert receiver.requests == []


def test_the_checked_address_is_the_connected_address(receiver):
    answers = [["127.0.0.1"], ["127.0.0.2"]]  # a rebinding resolver: the second answer differs
    calls = []

    def rebinding_resolver(host, port):
        calls.append(host)
        return answers[min(len(calls), 2) - 1]

    egress = EgressPolicy(allow=("127.0.0.1/32",), https_only=False, dns_rebind_protection=False)
    http = deliverer(
        f"http://hooks.test:{receiver.port}/hook", egress=egress, resolver=rebinding_resolver
    )

    first = http.deliver(make_envelope())
    second = http.deliver(make_envelope())

    assert first.result == "acked"
    assert (second.result, second.dead_reason) == ("dead", "policy_denied")
    assert calls == ["hooks.test", "hooks.test"]
    assert [r.headers["Host"] for r in receiver.requests] == [f"hooks.test:{receiver.port}"]


@pytest.fixture(scope="module")
def tls_ca():
    return trustme.CA()


@pytest.fixture
def tls_receiver(tls_ca, tmp_path, monkeypatch):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("localhost").configure_cert(context)
    bundle = tmp_path / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    server = Receiver(tls_context=context)
    yield server
    server.close()


def test_https_connects_to_the_checked_address_and_verifies_the_host_name(tls_receiver):
    resolved = []

    def resolver(host, port):
        resolved.append(host)
        return ["127.0.0.1"]

    egress = EgressPolicy(allow=("localhost",), deny=("10.0.0.0/8",), dns_rebind_protection=False)
    url = tls_receiver.url(host="localhost", scheme="https")

    outcome = deliverer(url, egress=egress, resolver=resolver).deliver(make_envelope())

    assert (outcome.result, outcome.status_code) == ("acked", 200)
    assert resolved == ["localhost"]
    assert tls_receiver.requests[0].headers["Host"] == f"localhost:{tls_receiver.port}"


def test_https_with_a_certificate_for_another_name_is_a_retryable_failure(tls_receiver):
    egress = EgressPolicy(allow=("127.0.0.1",), dns_rebind_protection=False)

    outcome = deliverer(tls_receiver.url(scheme="https"), egress=egress).deliver(make_envelope())

    assert outcome.result == "retry"
    assert "certificate" in outcome.error.lower() or "hostname" in outcome.error.lower()
    assert tls_receiver.requests == []
