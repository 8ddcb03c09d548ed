"""Pull API against spec/pull-api.md over real HTTP to a ``hookaido run`` on each queue
backend: every ``pull_api`` control written in the config file as a worker sees it, stream
query parameters, lease scoping of expired leases, and settlement memory."""

import json
import socket
import time
from datetime import UTC, datetime, timedelta

import pytest

from ..support.loopback import Ports, http

GLOBAL = {"Authorization": "Bearer global-token"}
BILLING = {"Authorization": "Bearer billing-token"}


def controls_config(ports: Ports, backend: str) -> str:
    return f"""
ingress {{
  listen 127.0.0.1:{ports.ingress}
}}
pull_api {{
  listen 127.0.0.1:{ports.pull}
  prefix /pull
  auth token raw:global-token
  max_batch 2
  max_lease_batch 3
  default_lease_ttl 20s
  max_lease_ttl 1m
  default_max_wait 500ms
  max_wait 1500ms
  sse_keepalive 200ms
}}
admin_api {{
  listen 127.0.0.1:{ports.admin}
}}
/hooks {{
  queue {backend}
  pull {{
    path /hooks
  }}
}}
/billing {{
  queue {backend}
  pull {{
    path /billing
    auth token raw:billing-token
  }}
}}
"""


class Worker:
    def __init__(self, ports: Ports):
        self.ports = ports
        self.ingress = f"http://127.0.0.1:{ports.ingress}"
        self.pull = f"http://127.0.0.1:{ports.pull}/pull"

    def send(self, route: str, count: int = 1) -> None:
        for number in range(count):
            reply = http("POST", f"{self.ingress}{route}", body=f"n{number}".encode())
            assert reply.status == 202, reply.body

    def call(self, endpoint: str, operation: str, document=None, headers=GLOBAL):
        body = None if document is None else document
        return http("POST", f"{self.pull}{endpoint}/{operation}", json_body=body, headers=headers)

    def drain(self, endpoint: str, headers=GLOBAL) -> None:
        """Lease whatever earlier tests left ready, so each test starts on an empty queue."""
        while self.call(endpoint, "dequeue", {"batch": 100, "max_wait": "0"}, headers).json()[
            "items"
        ]:
            pass

    def lease(self, endpoint: str, count: int = 1, headers=GLOBAL, **fields) -> list[dict]:
        self.send(endpoint, count)
        reply = self.call(endpoint, "dequeue", {"batch": count, "max_wait": "0", **fields}, headers)
        assert reply.status == 200, reply.body
        return reply.json()["items"]


@pytest.fixture(scope="module", params=["sqlite", "memory"])
def worker(request, module_hookaido_process):
    ports = Ports.allocate()
    module_hookaido_process(
        controls_config(ports, request.param), name=f"controls-{request.param}"
    ).start()
    return Worker(ports)


@pytest.fixture
def hooks(worker):
    worker.drain("/hooks")
    return worker


def deadline_of(item: dict) -> datetime:
    return datetime.fromisoformat(item["next_run_at"].replace("Z", "+00:00"))


def stream_lines(port: int, query: str, seconds: float) -> tuple[str, list[str]]:
    """Open a stream, read for ``seconds``, hang up; the status line and the body lines."""
    with socket.create_connection(("127.0.0.1", port), timeout=seconds + 2) as conn:
        conn.sendall(
            f"GET /pull/hooks/stream{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: {GLOBAL['Authorization']}\r\nConnection: close\r\n\r\n".encode()
        )
        data = b""
        ends = time.monotonic() + seconds
        while time.monotonic() < ends:
            conn.settimeout(max(ends - time.monotonic(), 0.01))
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), body.decode("utf-8", "replace").split("\n")


# -- §4 dequeue: the configured caps and defaults -----------------------------------------


def test_dequeue_batch_is_capped_by_max_batch(hooks):
    hooks.send("/hooks", 3)

    reply = hooks.call("/hooks", "dequeue", {"batch": 10})

    assert reply.status == 200
    assert len(reply.json()["items"]) == 2


def test_an_absent_lease_ttl_is_the_configured_default(hooks):
    hooks.send("/hooks")
    before = datetime.now(UTC)

    [item] = hooks.call("/hooks", "dequeue").json()["items"]

    lease = deadline_of(item) - before
    assert timedelta(seconds=19) < lease <= timedelta(seconds=21)


def test_a_lease_ttl_above_max_lease_ttl_gets_the_cap(hooks):
    hooks.send("/hooks")
    before = datetime.now(UTC)

    [item] = hooks.call("/hooks", "dequeue", {"lease_ttl": "5m"}).json()["items"]

    lease = deadline_of(item) - before
    assert timedelta(seconds=59) < lease <= timedelta(seconds=61)


def test_a_request_without_max_wait_long_polls_for_default_max_wait(hooks):
    started = time.monotonic()

    reply = hooks.call("/hooks", "dequeue")

    assert (reply.status, reply.json()) == (200, {"items": []})
    assert 0.45 <= time.monotonic() - started < 1.4


def test_max_wait_above_the_configured_cap_waits_for_the_cap(hooks):
    started = time.monotonic()

    reply = hooks.call("/hooks", "dequeue", {"max_wait": "1h"})

    assert (reply.status, reply.json()) == (200, {"items": []})
    assert 1.45 <= time.monotonic() - started < 3


# -- §5 ack: max_lease_batch counts distinct IDs -------------------------------------------


def test_more_distinct_lease_ids_than_max_lease_batch_is_invalid_body(hooks):
    reply = hooks.call("/hooks", "ack", {"lease_ids": ["a", "b", "c", "d"]})

    assert (reply.status, reply.json()["code"]) == (400, "invalid_body")


def test_duplicates_do_not_count_against_max_lease_batch(hooks):
    reply = hooks.call("/hooks", "ack", {"lease_ids": ["a", "b", " c", "a", "c ", " "]})

    assert reply.status == 409
    assert reply.json()["acked"] == 0
    assert reply.json()["conflicts"] == [
        {"lease_id": "a", "reason": "lease_not_found"},
        {"lease_id": "b", "reason": "lease_not_found"},
        {"lease_id": "c", "reason": "lease_not_found"},
    ]


# -- §5/§6 settlement memory is per operation kind ----------------------------------------


def test_a_nack_after_an_ack_is_a_conflict_and_a_repeated_ack_counts(hooks):
    first, second = hooks.lease("/hooks", 2)

    acked = hooks.call("/hooks", "ack", {"lease_id": first["lease_id"]})
    nacked = hooks.call("/hooks", "nack", {"lease_id": first["lease_id"]})
    batch = hooks.call("/hooks", "ack", {"lease_ids": [first["lease_id"], second["lease_id"]]})

    assert acked.status == 204
    assert (nacked.status, nacked.json()["code"]) == (409, "lease_conflict")
    assert (batch.status, batch.json()) == (200, {"acked": 2})


# -- §2 lease scoping: a foreign lease is unknown even once it has expired ----------------


def test_an_expired_foreign_lease_is_not_found_and_its_own_route_sees_it_expired(hooks):
    [item] = hooks.lease("/hooks", lease_ttl="300ms")
    time.sleep(0.5)

    foreign = hooks.call("/billing", "ack", {"lease_ids": [item["lease_id"]]}, BILLING)
    own = hooks.call("/hooks", "ack", {"lease_ids": [item["lease_id"]]})

    assert (foreign.status, foreign.json()["conflicts"]) == (
        409,
        [{"lease_id": item["lease_id"], "reason": "lease_not_found"}],
    )
    assert (own.status, own.json()["conflicts"]) == (
        409,
        [{"lease_id": item["lease_id"], "reason": "lease_expired"}],
    )


def test_global_tokens_do_not_open_an_endpoint_with_its_own_tokens(hooks):
    refused = hooks.call("/billing", "dequeue", None, GLOBAL)
    foreign = hooks.call("/hooks", "dequeue", None, BILLING)

    assert (refused.status, refused.json()["code"]) == (401, "unauthorized")
    assert (foreign.status, foreign.json()["code"]) == (401, "unauthorized")


# -- §8 stream: query parameters and the keepalive tick ----------------------------------


@pytest.mark.parametrize("batch", ["1_0", "%D9%A3", "%EF%BC%93", "0x2", "00", "2.0"])
def test_a_stream_batch_that_is_not_ascii_digits_is_invalid_body(hooks, batch):
    status, lines = stream_lines(hooks.ports.pull, f"?batch={batch}", 2)

    assert status == "HTTP/1.1 400 Bad Request"
    assert json.loads(lines[0])["code"] == "invalid_body"


def test_a_stream_batch_far_past_every_cap_is_capped_not_refused(hooks):
    hooks.send("/hooks", 3)

    status, lines = stream_lines(hooks.ports.pull, "?batch=" + "9" * 5000, 0.5)

    assert status == "HTTP/1.1 200 OK"
    assert len([line for line in lines if line.startswith("data: ")]) == 3


def test_an_idle_stream_ticks_every_sse_keepalive(hooks):
    status, lines = stream_lines(hooks.ports.pull, "", 0.9)

    assert status == "HTTP/1.1 200 OK"
    assert 3 <= lines.count(": keepalive") <= 6
