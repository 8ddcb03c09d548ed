"""Fixtures for server tests: an in-process ingress harness over a recording queue, an open
backend, and the API servers started on loopback.

Loopback ports, HTTP calls and ``hookaido run`` processes come from ``tests/conftest.py``.
"""

from dataclasses import dataclass, field

import falcon.testing
import pytest

from hookaido.builtin.auth_basic import make_basic_verifier
from hookaido.config.model import Config, Route
from hookaido.observability.metrics import Metrics
from hookaido.plugins import PluginInfo, Registry, registry
from hookaido.queue import BackendSettings, Stats, StoreUnavailable
from hookaido.runtime import Generation, Runtime
from hookaido.server import ingress


@dataclass
class RecordingQueue:
    """Keeps enqueued envelopes in a list; ``refuse`` makes the next enqueues raise it."""

    envelopes: list = field(default_factory=list)
    refuse: Exception | None = None
    refuse_after: int = 0  # enqueues that succeed before ``refuse`` applies
    by_state: dict = field(default_factory=dict)
    oldest_queued_received_at: object = None
    earliest_queued_next_run_at: object = None

    def enqueue(self, envelopes) -> None:
        if self.refuse is not None and len(self.envelopes) >= self.refuse_after:
            raise self.refuse
        self.envelopes.extend(envelopes)

    def stats(self) -> Stats:
        return Stats(
            total=sum(self.by_state.values()),
            by_state=dict(self.by_state),
            oldest_queued_received_at=self.oldest_queued_received_at,
            earliest_queued_next_run_at=self.earliest_queued_next_run_at,
        )


def make_auth_registry(**verifiers) -> Registry:
    """A registry with the built-in ``basic`` verifier plus the given factories by name."""
    registry = Registry()
    info = PluginInfo("tests", "0", "tests")
    registry.add(info, "auth", "basic", make_basic_verifier)
    for name, factory in verifiers.items():
        registry.add(info, "auth", name, factory)
    return registry


class IngressHarness:
    """An ingress app on a ``Config`` value; ``reload(config)`` swaps generations."""

    def __init__(self, routes: tuple[Route, ...], registry=None, **config_fields):
        self.queue = RecordingQueue()
        self.registry = registry or make_auth_registry()
        config = Config(routes=routes, **config_fields)
        self.runtime = Runtime(self._generation(config), self.queue, self.registry, Metrics())
        self.client = falcon.testing.TestClient(ingress.make_ingress_app(self.runtime))

    def _generation(self, config: Config, previous=None) -> Generation:
        generation = Generation(config=config)
        generation.parts[ingress.PART] = ingress.build_parts(
            config,
            self.registry,
            lambda ref: ref.value.encode(),
            None,
            previous.parts[ingress.PART] if previous else None,
        )
        return generation

    def reload(self, routes: tuple[Route, ...], **config_fields) -> None:
        config = Config(routes=routes, **config_fields)
        self.runtime.swap(self._generation(config, self.runtime.current))

    def post(self, path: str, body: bytes = b"{}", **kwargs):
        return self.client.simulate_request("POST", path, body=body, **kwargs)

    def request(self, method: str, path: str, **kwargs):
        return self.client.simulate_request(method, path, **kwargs)

    def rejected(self, reason: str, status: int) -> float:
        metric = self.runtime.metrics.ingress_rejected_by_reason
        return metric.labels(reason, str(status))._value.get()


def open_backend(name: str, tmp_path, **settings):
    """The installed backend ``name``, opened, its database file (if any) in ``tmp_path``."""
    store = (
        registry()
        .get("backend", name)
        .factory(BackendSettings(db_path=str(tmp_path / "hookaido.db"), **settings))
    )
    store.open()
    return store


class FailingStore:
    """The real backend, except that chosen operations report the store unavailable."""

    def __init__(self, backend, failing):
        self._backend = backend
        self._failing = failing

    def __getattr__(self, name):
        if name in self._failing:

            def unavailable(*args, **kwargs):
                raise StoreUnavailable("disk I/O error")

            return unavailable
        return getattr(self._backend, name)


@pytest.fixture
def backend(tmp_path):
    """An open memory backend, closed after the test."""
    store = open_backend("memory", tmp_path)
    yield store
    store.close()


@pytest.fixture
def loopback_servers():
    """A list for the test's started ``LoopbackServer`` objects; each is closed afterwards."""
    servers: list = []
    yield servers
    for server in servers:
        server.close()


@pytest.fixture
def ingress_harness():
    """The ``IngressHarness`` class: ``ingress_harness(routes, registry=None, **config)``."""
    return IngressHarness


@pytest.fixture(name="auth_registry")
def auth_registry_fixture():
    """``auth_registry(name=factory, ...)``: the ``basic`` verifier plus the given ones."""
    return make_auth_registry
