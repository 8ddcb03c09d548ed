"""Ingress and Pull API against spec/ingress.md and spec/pull-api.md, over real HTTP to a
``hookaido run`` on loopback: the places where the product once differed from the spec, and
hostile requests that must end as 4xx JSON, never as a 500."""

import json
import socket

import pytest

TOKEN = {"Authorization": "Bearer conformance-token"}
JSON = {"Content-Type": "application/json"}
SEND = {**TOKEN, **JSON}


def config(ports, access_log: bool) -> str:
    return f"""
ingress {{
  listen 127.0.0.1:{ports.ingress}
}}
pull_api {{
  listen 127.0.0.1:{ports.pull}
  prefix /pull
  auth token raw:conformance-token
  sse_keepalive 100ms
}}
admin_api {{
  listen 127.0.0.1:{ports.admin}
}}
observability {{
  access_log {"on" if access_log else "off"}
}}
/hooks {{
  pull {{ path /hooks }}
}}
/other {{
  pull {{ path /other }}
}}
/accept {{
  pull {{ path /accept }}
}}
"""


@pytest.fixture(scope="module")
def node(module_hookaido_process, module_ports):
    return module_hookaido_process(config(module_ports, access_log=True)).start()


@pytest.fixture(scope="module")
def urls(node, module_ports):
    return {
        "ingress": f"http://127.0.0.1:{module_ports.ingress}",
        "pull": f"http://127.0.0.1:{module_ports.pull}/pull",
        "ports": module_ports,
    }


def stream_head(port: int, path: str, version: str = "HTTP/1.1") -> tuple[str, dict[str, str]]:
    """Open an SSE stream, read its status line and headers, then hang up."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(
            f"GET {path} {version}\r\nHost: 127.0.0.1\r\n"
            f"Authorization: {TOKEN['Authorization']}\r\n\r\n".encode()
        )
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            assert chunk, f"connection closed before the headers: {data!r}"
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return head[0], headers


def leased(http, urls, count: int = 1, **fields) -> list[dict]:
    for number in range(count):
        http("POST", urls["ingress"] + "/hooks", body=f"n{number}".encode())
    reply = http(
        "POST", urls["pull"] + "/hooks/dequeue", json_body={"batch": count, **fields}, headers=TOKEN
    )
    assert reply.status == 200, reply.body
    return reply.json()["items"]


# -- pull-api.md §8: the stream's response headers ----------------------------------------


def test_stream_answers_with_every_documented_header(urls):
    status, headers = stream_head(urls["ports"].pull, "/pull/hooks/stream")

    assert status == "HTTP/1.1 200 OK"
    assert headers["content-type"] == "text/event-stream"
    assert headers["cache-control"] == "no-cache"
    assert headers["connection"].lower() == "keep-alive"
    assert headers["x-accel-buffering"] == "no"


def test_stream_has_its_headers_without_an_access_log(hookaido_process, ports):
    hookaido_process(config(ports, access_log=False), name="quiet").start()

    status, headers = stream_head(ports.pull, "/pull/hooks/stream")

    assert status == "HTTP/1.1 200 OK"
    assert headers["connection"].lower() == "keep-alive"


def test_an_http_1_0_stream_does_not_promise_keep_alive(urls):
    status, headers = stream_head(urls["ports"].pull, "/pull/hooks/stream", "HTTP/1.0")

    assert status.endswith("200 OK")
    assert headers.get("connection", "close").lower() == "close"


# -- durations that reach past every storable time are invalid_body, not 500 --------------

FAR = "2562047h"  # the largest unit-suffixed duration: about 292 years from now


def test_a_lease_ttl_past_the_storable_range_is_invalid_body(http, urls):
    reply = http(
        "POST", urls["pull"] + "/hooks/dequeue", json_body={"lease_ttl": FAR}, headers=TOKEN
    )

    assert (reply.status, reply.json()["code"]) == (400, "invalid_body")


def test_a_stream_lease_ttl_past_the_storable_range_is_invalid_body(http, urls):
    reply = http("GET", urls["pull"] + f"/hooks/stream?lease_ttl={FAR}", headers=TOKEN)

    assert (reply.status, reply.json()["code"]) == (400, "invalid_body")


@pytest.mark.parametrize(("operation", "field"), [("extend", "extend_by"), ("nack", "delay")])
def test_an_extend_or_delay_past_the_storable_range_is_invalid_body(http, urls, operation, field):
    [item] = leased(http, urls)

    reply = http(
        "POST",
        urls["pull"] + f"/hooks/{operation}",
        json_body={"lease_id": item["lease_id"], field: FAR},
        headers=TOKEN,
    )
    settled = http(
        "POST", urls["pull"] + "/hooks/ack", json_body={"lease_id": item["lease_id"]}, headers=TOKEN
    )

    assert (reply.status, reply.json()["code"]) == (400, "invalid_body")
    assert settled.status == 204  # the refused request left the lease as it was


def test_a_long_but_storable_lease_ttl_is_granted(http, urls):
    [item] = leased(http, urls, lease_ttl="87600h")  # ten years

    assert item["next_run_at"] > "2030"
    http(
        "POST", urls["pull"] + "/hooks/ack", json_body={"lease_id": item["lease_id"]}, headers=TOKEN
    )


# -- the spec's tables, row by row, over real HTTP ----------------------------------------


def test_ingress_accepts_with_the_exact_body_and_content_type(http, urls):
    reply = http("POST", urls["ingress"] + "//accept/x/../?q=1", body=b"{}")

    assert reply.status == 202
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.body == b'{"status":"queued"}\n'
    [item] = http("POST", urls["pull"] + "/accept/dequeue", headers=TOKEN).json()["items"]
    assert item["trace"]["path"] == "/accept"


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/hooks", 405, "method_not_allowed"),
        ("POST", "/hooks-x", 404, "not_found"),
        ("POST", "/", 404, "not_found"),
    ],
)
def test_ingress_refusals_are_json_with_their_code(http, urls, method, path, status, code):
    reply = http(method, urls["ingress"] + path, body=b"x")

    assert (reply.status, reply.json()["code"]) == (status, code)
    assert reply.headers["Content-Type"] == "application/json"
    if status == 405:
        assert reply.headers["Allow"] == "POST"


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "code"),
    [
        ("GET", "/hooks/dequeue", TOKEN, 405, "method_not_allowed"),
        ("POST", "/hooks/stream", TOKEN, 405, "method_not_allowed"),
        ("PUT", "/nowhere/dequeue", {}, 405, "method_not_allowed"),
        ("POST", "/nowhere/dequeue", {}, 401, "unauthorized"),
        (
            "POST",
            "/hooks/dequeue",
            {"Authorization": "Basic Y29uZm9ybWFuY2UtdG9rZW4="},
            401,
            "unauthorized",
        ),
        ("POST", "/nowhere/dequeue", TOKEN, 404, "route_not_found"),
        ("POST", "/hooks/peek", TOKEN, 404, "operation_not_found"),
    ],
)
def test_pull_errors_follow_the_check_order(http, urls, method, path, headers, status, code):
    reply = http(method, urls["pull"] + path, headers=headers)

    assert (reply.status, reply.json()["code"]) == (status, code)
    assert reply.headers["Content-Type"] == "application/json"


def test_a_request_outside_the_prefix_is_a_bare_404(http, urls):
    reply = http("POST", f"http://127.0.0.1:{urls['ports'].pull}/hooks/dequeue", headers=TOKEN)

    assert (reply.status, reply.body) == (404, b"")


def test_dequeue_items_carry_the_documented_fields(http, urls):
    http(
        "POST",
        urls["ingress"] + "/other",
        body=b'{"a":1}',
        headers={"X-GitHub-Event": "push", "Cookie": "c=1"},
    )

    reply = http("POST", urls["pull"] + "/other/dequeue", headers=TOKEN)
    [item] = reply.json()["items"]
    http(
        "POST",
        urls["pull"] + "/other/ack",
        json_body={"lease_ids": [item["lease_id"]]},
        headers=TOKEN,
    )

    assert set(item) == {
        "id",
        "lease_id",
        "route",
        "target",
        "received_at",
        "next_run_at",
        "attempt",
        "payload_b64",
        "headers",
        "trace",
    }
    assert (item["route"], item["target"], item["attempt"]) == ("/other", "pull", 1)
    assert item["headers"]["X-Github-Event"] == "push"
    assert "Cookie" not in item["headers"] and "Host" not in item["headers"]
    assert item["trace"]["path"] == "/other"


def test_header_values_keep_the_text_the_sender_wrote(http, urls):
    # UTF-8 bytes are read as UTF-8; a byte that is not UTF-8 stays one character.
    with socket.create_connection(("127.0.0.1", urls["ports"].ingress), timeout=5) as conn:
        conn.sendall(
            b"POST /other HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n"
            + "X-Note: 5 € für Café\r\n".encode()
            + b"X-Legacy: caf\xe9\r\nConnection: close\r\n\r\n{}"
        )
        assert conn.recv(4096).startswith(b"HTTP/1.1 202")

    reply = http("POST", urls["pull"] + "/other/dequeue", headers=TOKEN)
    [item] = reply.json()["items"]
    http(
        "POST", urls["pull"] + "/other/ack", json_body={"lease_id": item["lease_id"]}, headers=TOKEN
    )

    assert item["headers"]["X-Note"] == "5 € für Café"
    assert item["headers"]["X-Legacy"] == "café"


# -- hostile requests: always a 4xx JSON answer --------------------------------------------

HOSTILE_BODIES = [
    b"",
    b"   ",
    b"null",
    b"[]",
    b'"text"',
    b"{",
    b'{"batch": 1}{"batch": 2}',
    b'{"batch": NaN}',
    b'{"batch": 1e400}',
    b'{"batch": 100000000000000000000000000000}',
    b'{"batch": -100000000000000000000000000000}',
    b'{"batch": true}',
    b'{"batch": "5"}',
    b'{"lease_ttl": 30}',
    b'{"lease_ttl": "30d"}',
    b'{"lease_ttl": "99999999999999999999h"}',
    b'{"max_wait": "-1h"}',
    b'{"max_wait": ""}',
    b'{"lease_id": "\\ud800"}',
    '{"lease_id": "lease_\u00e9\u2603\U0001f4a5"}'.encode(),
    b'{"lease_id": "x", "lease_ids": ["y"]}',
    b'{"lease_ids": [1, 2]}',
    b'{"lease_ids": "lease_x"}',
    b'{"lease_ids": ["", "  "]}',
    b'{"lease_id": "x", "extend_by": "-1s"}',
    b'{"lease_id": "x", "extend_by": "1y"}',
    b'{"lease_id": "x", "delay": {"s": 1}}',
    b'{"lease_id": "x", "dead": "yes"}',
    b'{"lease_id": "x", "dead": true, "reason": 7}',
    b"\xff\xfe\x00",
    b'{"a": ' * 200 + b"1" + b"}" * 200,
]


@pytest.mark.parametrize("operation", ["dequeue", "ack", "nack", "extend"])
def test_hostile_bodies_never_cause_a_server_error(http, urls, operation):
    statuses = set()
    for body in HOSTILE_BODIES:
        reply = http("POST", urls["pull"] + f"/hooks/{operation}", body=body, headers=SEND)
        assert reply.status < 500, (body, reply.status, reply.body)
        if reply.status >= 400:
            assert json.loads(reply.body)["code"] in {"invalid_body", "lease_conflict"}, body
        statuses.add(reply.status)
    assert 400 in statuses


@pytest.mark.parametrize(
    "query",
    [
        "batch=0",
        "batch=-1",
        "batch=abc",
        "batch=%00",
        "batch=99999999999999999999999",
        "lease_ttl=0",
        "lease_ttl=1d",
        "lease_ttl=%ff",
        f"lease_ttl={FAR}",
        "lease_ttl=99999999999999999999h",
    ],
)
def test_hostile_stream_parameters_never_cause_a_server_error(urls, query):
    status, headers = stream_head(urls["ports"].pull, f"/pull/hooks/stream?{query}")

    code = int(status.split(" ", 2)[1])
    assert code in (200, 400), status
    assert headers["content-type"] in ("application/json", "text/event-stream")


@pytest.mark.parametrize(
    "request_line",
    [
        b"POST /hooks/%00 HTTP/1.1",
        b"POST /hooks/%ff%fe HTTP/1.1",
        b"POST http://elsewhere.example/hooks HTTP/1.1",
        b"DELETE /hooks HTTP/1.1",
        b"POST /../../hooks HTTP/1.1",
        b"POST /hooks?%zz=%%&a HTTP/1.1",
    ],
)
def test_hostile_ingress_requests_get_a_json_answer(urls, request_line):
    with socket.create_connection(("127.0.0.1", urls["ports"].ingress), timeout=5) as conn:
        conn.sendall(
            request_line + b"\r\nHost: [::1\r\nX-Odd: \xc3\xa9\xff\r\n"
            b"Content-Length: 2\r\nConnection: close\r\n\r\n{}"
        )
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])

    assert status in (202, 404, 405), data
    assert b"Content-Type: application/json" in head
    json.loads(body)
