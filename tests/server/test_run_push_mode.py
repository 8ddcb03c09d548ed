"""Hybrid mode in a real ``hookaido run``: a push route delivered to a loopback receiver next
to a pull route, and a reload that moves the push target to another receiver."""

import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

CONFIG = """
ingress {{ listen 127.0.0.1:{ingress} }}
admin_api {{ listen 127.0.0.1:{admin} }}
pull_api {{
  listen 127.0.0.1:{pull}
  auth token raw:worker
}}
defaults {{
  egress {{
    https_only off
    dns_rebind_protection off
    allow 127.0.0.1
  }}
}}
/webhooks/pull {{ pull {{ path /pulled }} }}
/webhooks/push {{
  deliver "http://127.0.0.1:{receiver}/hook" {{ timeout 2s }}
}}
"""


class Receiver:
    """An HTTP server on 127.0.0.1 recording the bodies POSTed to it."""

    def __init__(self):
        self.bodies: list[bytes] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                received.append(self.rfile.read(length))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.timeout = 1
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, body: bytes, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if body in self.bodies:
                return True
            time.sleep(0.05)
        return False

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def receivers():
    started = [Receiver(), Receiver()]
    yield started
    for receiver in started:
        receiver.close()


def render(ports, receiver) -> str:
    return CONFIG.format(
        ingress=ports.ingress, admin=ports.admin, pull=ports.pull, receiver=receiver.port
    )


def test_push_route_delivers_and_reload_moves_the_target(hookaido_process, ports, http, receivers):
    first, second = receivers
    node = hookaido_process(render(ports, first)).start()
    url = f"http://127.0.0.1:{ports.ingress}/webhooks/push"

    assert http("POST", url, body=b"to-first").status == 202
    assert first.wait_for(b"to-first")

    node.write_config(render(ports, second))
    node.send_signal(signal.SIGHUP)
    node.wait_for_event("config_reloaded_ok")
    node.wait_for_event("dispatcher_reloaded")
    assert http("POST", url, body=b"to-second").status == 202

    assert second.wait_for(b"to-second")
    assert b"to-second" not in first.bodies
    pulled = http(
        "POST",
        f"http://127.0.0.1:{ports.pull}/pulled/dequeue",
        json_body={},
        headers={"Authorization": "Bearer worker"},
    )
    assert pulled.json() == {"items": []}
    assert node.stop() == 0
