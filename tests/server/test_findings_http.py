"""New-user findings on the HTTP side, driven against a real ``hookaido run`` on loopback:
far-away timestamps, lone surrogates, oversized and deeply nested bodies, path cleaning
before prefix dispatch, and the smaller error answers."""

import json
import socket

import pytest

from .test_run_pull_mode import TOKEN, example_config

JSON = {"Content-Type": "application/json"}
AUDIT = {"Content-Type": "application/json", "X-Hookaido-Audit-Reason": "t"}


@pytest.fixture(scope="module")
def node(module_hookaido_process, module_ports):
    return module_hookaido_process(example_config(module_ports)).start()


@pytest.fixture(scope="module")
def urls(node, module_ports):
    return {
        "ingress": f"http://127.0.0.1:{module_ports.ingress}",
        "pull": f"http://127.0.0.1:{module_ports.pull}",
        "admin": f"http://127.0.0.1:{module_ports.admin}",
        "ports": module_ports,
    }


def raw_request(port: int, request: bytes) -> tuple[int, bytes]:
    """Send ``request`` as written (no path normalising) and return (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        data = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


FAR = "9999-12-31T23:59:59Z"


@pytest.mark.parametrize(
    "path",
    [
        f"/messages?before={FAR}",
        "/messages?before=2262-04-11T23:47:17Z",
        "/messages?before=1600-01-01T00:00:00Z",
        f"/dlq?before={FAR}",
        f"/attempts?before={FAR}",
        "/backlog/trends?until=0001-01-01T00:00:30Z",
    ],
)
def test_a_far_away_query_time_is_400_invalid_query_naming_the_range(http, urls, path):
    reply = http("GET", urls["admin"] + path)

    assert reply.status == 400
    assert reply.json()["code"] == "invalid_query"
    assert "1678-01-01 and 2261-12-31" in reply.json()["detail"]


def test_a_far_away_before_in_a_filter_is_400_invalid_body(http, urls):
    reply = http(
        "POST",
        urls["admin"] + "/messages/cancel_by_filter",
        json_body={"before": FAR, "preview_only": True},
        headers=AUDIT,
    )

    assert (reply.status, reply.json()["code"]) == (400, "invalid_body")


@pytest.mark.parametrize(
    ("field", "code"),
    [("next_run_at", "invalid_next_run_at"), ("received_at", "invalid_received_at")],
)
def test_a_far_away_publish_time_is_400_with_its_own_code(http, urls, field, code):
    item = {"id": f"far-{field}", "route": "/webhooks/github", field: "2300-01-01T00:00:00Z"}
    reply = http(
        "POST", urls["admin"] + "/messages/publish", json_body={"items": [item]}, headers=AUDIT
    )

    assert (reply.status, reply.json()["code"]) == (400, code)


def test_a_time_inside_the_range_is_still_accepted(http, urls):
    reply = http("GET", urls["admin"] + "/messages?before=2261-12-31T00:00:00Z")

    assert reply.status == 200


SURROGATE_BODIES = [
    ("admin", "/messages/cancel", '{"ids": ["\\ud800"]}'),
    ("admin", "/messages/publish", '{"items": [{"id": "\\ud800", "route": "/webhooks/github"}]}'),
    (
        "admin",
        "/messages/publish",
        '{"items": [{"id": "s2", "route": "/webhooks/github", "headers": {"X": "\\ud800"}}]}',
    ),
    (
        "admin",
        "/messages/publish",
        '{"items": [{"id": "s3", "route": "/webhooks/github", "trace": {"X": "\\ud800"}}]}',
    ),
    ("pull", "/pull/github/nack", '{"lease_id": "\\ud800", "dead": true}'),
]


@pytest.mark.parametrize(("api", "path", "body"), SURROGATE_BODIES)
def test_a_lone_surrogate_in_a_json_string_is_400_invalid_body(http, urls, api, path, body):
    reply = http("POST", urls[api] + path, body=body.encode(), headers={**AUDIT, **TOKEN})

    assert (reply.status, reply.json()["code"]) == (400, "invalid_body")
    assert "not valid Unicode" in reply.json()["detail"]


def test_deeply_nested_json_is_400_with_a_plain_message(http, urls):
    body = b'{"ids": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    reply = http("POST", urls["admin"] + "/messages/cancel", body=body, headers=AUDIT)

    assert (reply.status, reply.json()["code"]) == (400, "invalid_body")
    assert "nested too deeply" in reply.json()["detail"]
    assert "recursion" not in reply.json()["detail"]


def test_a_body_far_over_max_body_gets_the_json_413_with_the_configured_limit(http, urls):
    reply = http("POST", urls["ingress"] + "/webhooks/github", body=b"\0" * 9_000_000)

    assert reply.status == 413
    assert reply.json() == {
        "code": "payload_too_large",
        "detail": "request body is larger than the limit of 2097152 bytes",
    }


def test_a_body_far_over_max_body_on_the_pull_api_is_a_json_error(http, urls):
    reply = http(
        "POST",
        urls["pull"] + "/pull/github/dequeue",
        body=b"\0" * 9_000_000,
        headers={**JSON, **TOKEN},
    )

    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.json()["code"] == "invalid_body"


def test_options_star_is_404_not_found(urls):
    status, body = raw_request(
        urls["ports"].ingress, b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )

    assert (status, json.loads(body)["code"]) == (404, "not_found")


def test_a_pull_endpoint_without_an_operation_says_which_to_add(http, urls):
    reply = http("POST", urls["pull"] + "/pull/github", headers=TOKEN)

    # The last segment is read as the operation, so the endpoint looked up is "/pull".
    assert (reply.status, reply.json()["code"]) == (404, "route_not_found")
    assert "dequeue" in reply.json()["detail"]


def test_a_utf8_audit_reason_is_recorded_as_written(urls):
    body = b'{"ids": ["no-such-id"]}'
    status, answer = raw_request(
        urls["ports"].admin,
        b"POST /messages/cancel HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nX-Hookaido-Audit-Reason: \xc3\xa9t\xc3\xa9\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body,
    )

    assert status == 200
    assert json.loads(answer)["audit"]["reason"] == "été"


SHARED = """
ingress {{ listen 127.0.0.1:{ingress} }}
pull_api {{
  listen 127.0.0.1:{shared}
  prefix /pull
  auth token raw:pt
}}
admin_api {{
  listen 127.0.0.1:{shared}
  prefix /admin
}}
/webhooks/github {{ pull {{ path /github }} }}
"""


def test_a_shared_listener_cleans_the_path_before_matching_the_prefix(
    hookaido_process, ports, http
):
    config = SHARED.format(ingress=ports.ingress, shared=ports.pull)
    hookaido_process(config).start()

    to_admin, admin_body = raw_request(
        ports.pull,
        b"GET /pull/../admin/messages HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    to_pull, pull_body = raw_request(
        ports.pull,
        b"POST /admin/../pull/github/dequeue HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Authorization: Bearer pt\r\nContent-Length: 0\r\n\r\n",
    )

    assert to_admin == 200 and "items" in json.loads(admin_body)
    assert (to_pull, json.loads(pull_body)) == (200, {"items": []})


def test_headers_over_max_headers_are_named_in_plural(http, urls):
    reply = http(
        "POST", urls["ingress"] + "/webhooks/github", body=b"x", headers={"X-Big": "a" * 70_000}
    )

    assert reply.status == 413
    assert reply.json() == {
        "code": "headers_too_large",
        "detail": "request headers are larger than the limit of 65536 bytes",
    }


def test_a_body_far_over_max_body_on_the_admin_api_is_a_json_error(http, urls):
    reply = http("POST", urls["admin"] + "/messages/cancel", body=b"\0" * 9_000_000, headers=AUDIT)

    assert (reply.status, reply.json()["code"]) == (400, "invalid_body")
    assert "2097152" in reply.json()["detail"]
