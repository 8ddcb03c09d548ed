"""Fixtures for push delivery: scriptable loopback receivers, envelopes and captured log events."""

import http.server
import logging
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from hookaido.queue import Envelope, new_event_id


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    peer: tuple


class Receiver:
    """An HTTP server on 127.0.0.1 that answers with queued replies (then 200) and records."""

    def __init__(self, tls_context: ssl.SSLContext | None = None):
        self.replies: list[Reply] = []
        self.replies_for: dict[str, list[Reply]] = {}  # by request path, before ``replies``
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.requests.append(
                        Received(
                            self.command,
                            self.path,
                            dict(self.headers),
                            body,
                            time.time(),
                            self.client_address,
                        )
                    )
                    reply = receiver.next_reply(self.path)
                    receiver.in_flight += 1
                    receiver.most_in_flight = max(receiver.most_in_flight, receiver.in_flight)
                if reply.delay:
                    time.sleep(reply.delay)
                with receiver.lock:
                    receiver.in_flight -= 1
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.timeout = 1
        if tls_context is not None:
            self.server.socket = tls_context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def next_reply(self, path: str) -> Reply:
        for queue in (self.replies_for.get(path), self.replies):
            if queue:
                return queue.pop(0)
        return Reply()

    def url(self, path: str = "/hook", host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.01)
        raise AssertionError(f"expected {count} requests, got {len(self.requests)}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def events():
    """Runtime log events as (name, fields) tuples, debug level included."""
    captured: list[tuple[str, dict]] = []

    class Collect(logging.Handler):
        def emit(self, record):
            captured.append((record.getMessage(), dict(getattr(record, "fields", {}))))

    logger = logging.getLogger("hookaido.runtime")
    handler = Collect(level=logging.DEBUG)
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield captured
    logger.removeHandler(handler)
    logger.setLevel(previous)


def make_envelope(route="/hooks/in", target="t", payload=b'{"n":1}', headers=None, attempt=1):
    now = datetime.now(UTC)
    return Envelope(
        id=new_event_id(),
        route=route,
        target=target,
        payload=payload,
        received_at=now,
        next_run_at=now,
        state="leased",
        attempt=attempt,
        headers=dict(headers or {}),
    )
