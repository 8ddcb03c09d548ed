"""A tiny HTTP server on 127.0.0.1 for the Vault and forward-auth tests: it records each
request and answers with whatever the test's handler returns."""

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ..support.loopback import free_port


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class LoopbackServer:
    def __init__(self, respond, ssl_context=None):
        self.respond = respond  # Seen -> (status, headers dict, body bytes)
        self.seen: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Seen(self.command, self.path, dict(self.headers.items()), body)
                server.seen.append(request)
                status, headers, answer = server.respond(request)
                self.send_response(status)
                for name, value in headers.items():
                    for item in value if isinstance(value, list) else [value]:
                        self.send_header(name, item)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                try:
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading, as a timed-out caller does

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        scheme = "http"
        if ssl_context is not None:
            self.httpd.socket = ssl_context.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def loopback_server():
    """``loopback_server(respond, ssl_context=None)`` starts a server (HTTPS with a context);
    every one is stopped after the test."""
    started: list[LoopbackServer] = []

    def start(respond, ssl_context=None) -> LoopbackServer:
        server = LoopbackServer(respond, ssl_context)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture
def closed_port():
    """A loopback port nothing listens on."""
    return free_port()
