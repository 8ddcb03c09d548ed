"""Loopback fixtures: a throwaway waitress listener and a urllib client; the runtime log is
restored after each test. ``hookaido run`` processes and free ports come from tests/conftest.py."""

import threading
import urllib.error
import urllib.request

import pytest
import waitress.server
from prometheus_client.parser import text_string_to_metric_families
from waitress import wasyncore

from hookaido.observability import log


@pytest.fixture
def serve():
    """Serve a WSGI app on 127.0.0.1:<free port>; returns its base URL. Stopped after the test."""
    servers = []

    def start(app) -> str:
        server = waitress.server.create_server(app, host="127.0.0.1", port=0, threads=2)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.effective_port}"

    yield start
    for server, thread in servers:
        server.trigger.pull_trigger(lambda server=server: wasyncore.close_all(server._map))
        thread.join(timeout=5)
        server.task_dispatcher.shutdown(timeout=1)


def http(method: str, url: str, body: bytes | None = None):
    """(status, headers, body) of one request; HTTP errors are answers, not exceptions."""
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a text exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


@pytest.fixture
def fetch():
    return http


@pytest.fixture(autouse=True)
def default_runtime_log():
    yield
    log.configure("info", "stderr")
