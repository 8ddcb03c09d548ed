"""Listeners: listen-address parsing, the shared-socket prefix router and graceful stop."""

import http.client
import json
import socket
import threading
import time

import pytest

from hookaido.server.listeners import (
    Listener,
    ListenError,
    Mount,
    PrefixRouter,
    make_server,
    parse_listen,
)


@pytest.mark.parametrize(
    ("listen", "address"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        (":9443", ("", 9443)),
        ("[::1]:2019", ("::1", 2019)),
        ("localhost:1", ("localhost", 1)),
    ],
)
def test_listen_strings_parse_to_host_and_port(listen, address):
    assert parse_listen(listen) == address


@pytest.mark.parametrize("listen", ["8080", "127.0.0.1:http", "[::1]8080", "host:70000"])
def test_bad_listen_strings_are_refused_with_the_address(listen):
    with pytest.raises(ListenError, match=listen.replace("[", r"\[")):
        parse_listen(listen)


def answering(name):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        text = f"{name} {environ['SCRIPT_NAME']} {environ['PATH_INFO']} "
        return [(text + environ.get("hookaido.component", "")).encode()]

    return app


def route(router, path):
    environ = {"PATH_INFO": path, "SCRIPT_NAME": ""}
    seen = {}

    def start_response(status, headers):
        seen["status"] = status

    body = b"".join(router(environ, start_response)).decode()
    return seen["status"], body


def test_router_strips_the_prefix_on_segment_boundaries():
    router = PrefixRouter(
        [
            Mount("/pull", answering("pull"), "pull_api"),
            Mount("/admin", answering("a"), "admin_api"),
        ],
        answering("ingress"),
    )

    assert route(router, "/pull/github/dequeue") == (
        "200 OK",
        "pull /pull /github/dequeue pull_api",
    )
    assert route(router, "/pull") == ("200 OK", "pull /pull / pull_api")
    assert route(router, "/admin/healthz") == ("200 OK", "a /admin /healthz admin_api")
    assert route(router, "/pullx/a") == ("200 OK", "ingress  /pullx/a ingress")
    assert route(router, "/webhooks/a") == ("200 OK", "ingress  /webhooks/a ingress")


def test_router_without_ingress_answers_bare_404_outside_its_prefixes():
    router = PrefixRouter([Mount("/pull", answering("pull"), "pull_api")])

    assert route(router, "/webhooks/a") == ("404 Not Found", "")
    assert route(router, "/") == ("404 Not Found", "")


def test_stop_lets_a_request_in_flight_finish_and_refuses_new_connections(http):
    def slow(environ, start_response):
        time.sleep(0.5)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"finished"]

    listener = make_server(slow, "127.0.0.1:0")
    listener.start()
    url = f"http://127.0.0.1:{listener.address[1]}/"
    replies = []
    in_flight = threading.Thread(target=lambda: replies.append(http("GET", url)))
    in_flight.start()
    time.sleep(0.2)

    listener.stop(timeout=5)
    in_flight.join(timeout=5)

    assert replies[0].body == b"finished"
    with pytest.raises(Exception, match="(?i)refused|failed to establish"):
        http("GET", url, timeout=1)


def test_a_taken_port_is_a_listen_error_naming_the_address():
    first = Listener(answering("a"), "127.0.0.1:0")
    first.start()
    taken = f"127.0.0.1:{first.address[1]}"
    try:
        with pytest.raises(ListenError, match=taken):
            Listener(answering("b"), taken).start()
    finally:
        first.stop(timeout=1)


def raw_exchange(port: int, request: bytes) -> tuple[int, dict, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(request)
        answer = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (
            b"POST /hooks HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
            400,
            "invalid_request",
        ),
        (
            b"POST /hooks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            400,
            "invalid_request",
        ),
        (b"get /hooks HTTP/1.1\r\nHost: x\r\n\r\n", 400, "invalid_request"),
        (  # framed twice: a proxy reading the other header would see another request
            b"POST /hooks HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"transfer-encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
            "invalid_request",
        ),
        (
            b"POST /hooks HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n",
            413,
            "payload_too_large",
        ),
    ],
)
def test_requests_the_http_server_refuses_get_the_json_error_body(request_bytes, status, code):
    listener = Listener(answering("ingress"), "127.0.0.1:0", threads=2, max_body=1024)
    listener.start()
    try:
        got_status, headers, body = raw_exchange(listener.address[1], request_bytes)
    finally:
        listener.stop(timeout=1.0)
    assert got_status == status
    assert headers["Content-Type"] == "application/json"
    document = json.loads(body)
    assert document["code"] == code and document["detail"]


def test_an_answer_without_a_body_keeps_the_connection_open():
    def no_content(environ, start_response):
        start_response("204 No Content", [])
        return [b""]

    listener = Listener(no_content, "127.0.0.1:0", threads=2)
    listener.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", listener.address[1], timeout=5)
        statuses = []
        for _ in range(3):
            connection.request("POST", "/ack", body=b"{}")
            response = connection.getresponse()
            response.read()
            statuses.append((response.status, response.getheader("Connection")))
        first_socket = connection.sock
        connection.request("POST", "/ack", body=b"{}")
        connection.getresponse().read()
        assert connection.sock is first_socket  # never reconnected
        connection.close()
    finally:
        listener.stop(timeout=1.0)
    assert statuses == [(204, None)] * 3


def test_a_repeated_header_reaches_the_app_joined_with_a_bare_comma():
    def echo(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ.get("HTTP_X_TAG", "-").encode("latin-1")]

    listener = Listener(echo, "127.0.0.1:0", threads=2)
    listener.start()
    try:
        status, _, body = raw_exchange(
            listener.address[1],
            b"GET /h HTTP/1.1\r\nHost: x\r\nX-Tag: a\r\nx-tag:  b \r\nX-Tag: c d\r\n"
            b"Connection: close\r\n\r\n",
        )
        _, _, single = raw_exchange(
            listener.address[1],
            b"GET /h HTTP/1.1\r\nHost: x\r\nX-Tag: a, b\r\nConnection: close\r\n\r\n",
        )
    finally:
        listener.stop(timeout=1.0)
    assert status == 200
    assert body == b"a,b,c d"
    assert single == b"a, b"  # one header's own value is left as sent


def test_an_answer_handed_over_whole_leaves_in_one_write_and_others_still_arrive(monkeypatch):
    from hookaido.server import listeners

    writes: list[bytes] = []
    original = listeners._Channel.write_soon

    def recording_write_soon(self, data):
        writes.append(bytes(data))
        return original(self, data)

    monkeypatch.setattr(listeners._Channel, "write_soon", recording_write_soon)
    body = json.dumps({"items": ["x" * 100] * 300}).encode()

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/whole":
            start_response("200 OK", [("Content-Length", str(len(body)))])
            return [body]
        start_response("200 OK", [])  # no length: waitress streams it chunked
        return [body[:10], body[10:]]

    listener = Listener(app, "127.0.0.1:0", threads=2)
    listener.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", listener.address[1], timeout=5)
        connection.request("GET", "/whole")
        whole = connection.getresponse().read()
        whole_writes, writes[:] = list(writes), []
        connection.request("GET", "/streamed")
        streamed = connection.getresponse().read()
        connection.request("HEAD", "/whole")
        head = connection.getresponse()
        assert head.read() == b"" and head.getheader("Content-Length") == str(len(body))
        connection.close()
    finally:
        listener.stop(timeout=1.0)
    assert whole == body and streamed == body
    assert len(whole_writes) == 1
    assert whole_writes[0].startswith(b"HTTP/1.1 200 OK") and whole_writes[0].endswith(body)
