"""Streaming responses over a TLS listener: sent as produced, and a client that leaves
mid-stream is routine, not an error in the runtime log."""

import json
import socket
import ssl
import threading
import time

from hookaido.config.model import LogConfig
from hookaido.observability import log
from hookaido.observability.accesslog import close_sinks, wrap_access_log


def open_stream(port: int, certs, path: str = "/stream") -> ssl.SSLSocket:
    context = ssl.create_default_context()
    certs.ca.configure_trust(context)
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    stream = context.wrap_socket(raw, server_hostname="127.0.0.1")
    stream.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return stream


def read_until(stream: ssl.SSLSocket, marker: bytes) -> bytes:
    received = b""
    while marker not in received:
        chunk = stream.recv(4096)
        assert chunk, f"stream ended before {marker!r}: {received!r}"
        received += chunk
    return received


def test_a_client_leaving_a_stream_is_not_an_error(tls_listener, certs, tmp_path):
    runtime_log = tmp_path / "runtime.log"
    access_log = tmp_path / "access.log"
    log.configure("debug", "file", str(runtime_log))
    stream_ended = threading.Event()

    def events(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/event-stream")])

        def produce():
            try:
                yield b"data: first\n\n"
                for number in range(100):  # at most 5 s
                    time.sleep(0.05)
                    yield b"data: %d\n\n" % number
            finally:
                stream_ended.set()

        return produce()

    app = wrap_access_log(events, "pull_api", LogConfig(output="file", path=str(access_log)))
    server = tls_listener("none", app=app, client_ca=False)

    stream = open_stream(server.port, certs)
    first = read_until(stream, b"data: first\n\n")
    stream.close()
    ended = stream_ended.wait(timeout=5)
    server.stop(timeout=2)
    log.configure("info", "stderr")
    close_sinks()

    assert first.startswith(b"HTTP/1.1 200 OK")
    assert b"\r\nServer: hookaido\r\n" in first
    assert ended
    levels = [json.loads(line)["level"] for line in runtime_log.read_text().splitlines()]
    assert "ERROR" not in levels
    (record,) = [json.loads(line) for line in access_log.read_text().splitlines()]
    assert record["component"] == "pull_api"
    assert record["path"] == "/stream"
    assert record["status"] == 200
    assert record["bytes"] >= len(b"data: first\n\n")
