"""The conventions ingress keeps with every inbound verifier, as ``register_auth`` documents
them: canonical header names, ``needs_body = False`` and ``Verdict.headers`` merging."""

import falcon.testing
import pytest

from hookaido.auth import Verdict
from hookaido.config.model import AuthConfig, Config, PullConfig, Route
from hookaido.observability.metrics import Metrics
from hookaido.plugins import PluginInfo, Registry
from hookaido.plugins import registry as installed_plugins
from hookaido.queue import BackendSettings, MessageFilter
from hookaido.runtime import Generation, Runtime
from hookaido.server import ingress

ROUTE = "/webhooks/shop"


class HeaderKeyVerifier:
    """Allows a request whose ``X-Shop-Key`` is ``k1`` and names the shop it belongs to."""

    def __init__(self, needs_body: bool):
        self.needs_body = needs_body
        self.seen = []

    def verify(self, request):
        self.seen.append(request)
        if request.headers.get("X-Shop-Key") != "k1":
            return Verdict.deny("unknown key")
        return Verdict.allow(headers={"X-Shop-Id": "shop-7", "X-Shop-Key": "checked"})


@pytest.fixture
def gateway():
    """``gateway(verifier, max_body=...)`` -> ``(falcon test client, memory backend)``."""
    backends = []

    def build(verifier, max_body: int = 1024):
        registry = Registry()
        registry.add(PluginInfo("tests", "0", "tests"), "auth", "shopkey", lambda o, c: verifier)
        route = Route(
            path=ROUTE,
            auth=AuthConfig("shopkey", {}),
            max_body=max_body,
            backend="memory",
            pull=PullConfig(path="/pull/shop"),
        )
        config = Config(routes=(route,))
        generation = Generation(config=config)
        generation.parts[ingress.PART] = ingress.build_parts(
            config, registry, lambda ref: b"", None, None
        )
        backend = installed_plugins().get("backend", "memory").factory(BackendSettings())
        backend.open()
        backends.append(backend)
        runtime = Runtime(generation, backend, registry, Metrics())
        return falcon.testing.TestClient(ingress.make_ingress_app(runtime)), backend

    yield build
    for backend in backends:
        backend.close()


def stored(backend):
    return backend.list_messages(MessageFilter(limit=0))


def test_header_names_reach_the_verifier_canonicalised(gateway):
    verifier = HeaderKeyVerifier(needs_body=True)
    client, _ = gateway(verifier)

    result = client.simulate_post(
        ROUTE, body=b"{}", headers={"x-shop-key": "k1", "X-GITHUB-EVENT": "push"}
    )

    assert result.status_code == 202
    [request] = verifier.seen
    assert request.headers["X-Shop-Key"] == "k1"
    assert request.headers["X-Github-Event"] == "push"
    assert request.body == b"{}"


def test_a_verifier_that_needs_no_body_refuses_before_the_body_is_read(gateway):
    verifier = HeaderKeyVerifier(needs_body=False)
    client, backend = gateway(verifier, max_body=16)

    refused = client.simulate_post(ROUTE, body=b"x" * 64, headers={"X-Shop-Key": "wrong"})
    too_large = client.simulate_post(ROUTE, body=b"x" * 64, headers={"X-Shop-Key": "k1"})

    assert (refused.status_code, refused.json["code"]) == (401, "unauthorized")
    assert (too_large.status_code, too_large.json["code"]) == (413, "payload_too_large")
    assert [request.body for request in verifier.seen] == [b"", b""]
    assert stored(backend) == []


def test_verdict_headers_are_merged_into_the_stored_headers(gateway):
    client, backend = gateway(HeaderKeyVerifier(needs_body=False))

    result = client.simulate_post(
        ROUTE, body=b'{"order": 1}', headers={"x-shop-key": "k1", "x-request-id": "r-1"}
    )

    assert result.status_code == 202
    [envelope] = stored(backend)
    assert envelope.payload == b'{"order": 1}'
    assert envelope.headers["X-Shop-Id"] == "shop-7"  # added by the verdict
    assert envelope.headers["X-Shop-Key"] == "checked"  # replaces the inbound value
    assert envelope.headers["X-Request-Id"] == "r-1"
