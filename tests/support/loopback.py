"""Free TCP ports, one-call HTTP and a waitress server, all on 127.0.0.1 and all bounded."""

import json
import random
import socket
import threading
from dataclasses import dataclass
from http.client import HTTPConnection

import urllib3
import waitress

# Ports are drawn below the kernel's ephemeral range (32768 and up here), so a port handed
# out cannot be taken by the local end of some client connection before the server binds it.
_PORT_RANGE = (20000, 32000)


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports on 127.0.0.1 that nothing listens on right now."""
    chosen: list[int] = []
    for _ in range(1000):
        port = random.randrange(*_PORT_RANGE)
        if port not in chosen and _bindable(port):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise RuntimeError("no free loopback ports found")


@dataclass
class Ports:
    ingress: int
    pull: int
    admin: int

    @classmethod
    def allocate(cls) -> "Ports":
        return cls(free_port(), free_port(), free_port())


@dataclass
class Reply:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


_pool = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2.0, read=10.0))


def http(method: str, url: str, body=None, headers=None, json_body=None, timeout=10.0) -> Reply:
    """One HTTP request to a loopback URL; never raises for an HTTP status."""
    assert url.startswith("http://127.0.0.1:"), url
    headers = dict(headers or {})
    if json_body is not None:
        body = json.dumps(json_body).encode()
        headers.setdefault("Content-Type", "application/json")
    response = _pool.request(
        method,
        url,
        body=body,
        headers=headers,
        timeout=urllib3.Timeout(connect=2.0, read=timeout),
        redirect=False,
    )
    return Reply(response.status, dict(response.headers), response.data)


class LoopbackServer:
    """A WSGI app on waitress at 127.0.0.1:<free port>; stops within a fraction of a second.

    ``options`` go to ``waitress.create_server`` (``threads`` and the like).
    """

    def __init__(self, app, **options):
        self.server = waitress.create_server(app, host="127.0.0.1", port=0, **options)
        self.port = self.server.effective_port
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            self.server.asyncore.loop(timeout=0.05, map=self.server._map, count=1)
        for channel in list(self.server._map.values()):
            channel.close()
        self.server.task_dispatcher.shutdown(timeout=5)

    def exchange(self, method: str, path: str, data: bytes | None = None, headers=None):
        """One request: (status, the JSON object answered or the raw body, the response).

        A request with a body is sent as ``application/json`` unless ``headers`` say otherwise.
        """
        connection = HTTPConnection("127.0.0.1", self.port, timeout=10)
        sent = dict(headers or {})
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        payload = response.read()
        connection.close()
        document = json.loads(payload) if payload.startswith(b"{") else payload
        return response.status, document, response

    def close(self) -> None:
        self._stop.set()
        self.thread.join(timeout=10)
