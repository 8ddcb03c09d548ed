"""Fixtures of the backend contract suite: every registered backend, a fresh store, a fake clock.

A third-party backend is tested by installing its plugin and running this folder.
"""

import threading
from datetime import UTC, datetime, timedelta

import pytest

from hookaido.plugins import registry
from hookaido.queue import BackendSettings, Envelope, Retention, new_event_id

START = datetime(2026, 2, 9, 10, 0, tzinfo=UTC)
BACKEND_NAMES = [registration.name for registration in registry().registrations("backend")]


class FakeClock:
    """A clock the test moves by hand; thread-safe because dequeuers run in threads."""

    def __init__(self, start: datetime = START):
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, **delta) -> datetime:
        with self._lock:
            self._now += timedelta(**delta)
            return self._now


@pytest.fixture(params=BACKEND_NAMES)
def backend_name(request) -> str:
    return request.param


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path) -> str:
    return str(tmp_path / "state" / "queue" / "hookaido.db")


@pytest.fixture
def make_backend(backend_name, db_path, clock):
    """Build and open a backend of the current kind; pruning only when a test asks for it."""
    opened = []

    def make(**overrides):
        overrides.setdefault("retention", Retention(prune_interval=None))
        settings = BackendSettings(db_path=db_path, clock=clock, **overrides)
        backend = registry().get("backend", backend_name).factory(settings)
        backend.open()
        opened.append(backend)
        return backend

    yield make
    for backend in opened:
        backend.close()


@pytest.fixture
def backend(make_backend):
    return make_backend()


@pytest.fixture
def envelope(clock):
    """Build an envelope received now (or at ``received_at``) on route ``/r``, target pull."""

    def build(message_id=None, route="/r", target="pull", received_at=None, **fields):
        received_at = received_at or clock()
        fields.setdefault("next_run_at", received_at)
        fields.setdefault("payload", b'{"n":1}')
        return Envelope(
            id=message_id or new_event_id(),
            route=route,
            target=target,
            received_at=received_at,
            **fields,
        )

    return build
