"""Loopback fixtures: a throwaway waitress listener and a urllib client; the runtime log is
restored after each test. ``hookaido run`` processes and free ports come from tests/conftest.py."""

import urllib.error
import urllib.request

import pytest

from hookaido.observability import log

from ..support.loopback import LoopbackServer


@pytest.fixture
def serve():
    """Serve a WSGI app on 127.0.0.1:<free port>; returns its base URL. Stopped after the test."""
    servers = []

    def start(app) -> str:
        server = LoopbackServer(app, threads=2)
        servers.append(server)
        return f"http://127.0.0.1:{server.port}"

    yield start
    for server in servers:
        server.close()


def http(method: str, url: str, body: bytes | None = None):
    """(status, headers, body) of one request; HTTP errors are answers, not exceptions."""
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@pytest.fixture
def fetch():
    return http


@pytest.fixture(autouse=True)
def default_runtime_log():
    yield
    log.configure("info", "stderr")
