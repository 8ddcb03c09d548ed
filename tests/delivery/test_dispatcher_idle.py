"""An idle dispatcher waits on the store instead of polling it: few dequeues while nothing is
queued, prompt delivery when a message arrives, and a stop that does not wait for a poll."""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from hookaido import plugins
from hookaido.config.model import (
    Config,
    Defaults,
    DeliverTarget,
    EgressPolicy,
    RetryPolicy,
    Route,
)
from hookaido.dispatcher import Dispatcher
from hookaido.observability.metrics import Metrics
from hookaido.queue import BackendSettings, Envelope, new_event_id
from hookaido.runtime import Generation, Runtime

from .conftest import Reply

LOOPBACK = EgressPolicy(allow=("127.0.0.1",), https_only=False, dns_rebind_protection=False)


class CountingBackend:
    """A memory backend that counts the dispatcher's store calls."""

    def __init__(self, inner):
        self._inner = inner
        self.lock = threading.Lock()
        self.calls = {"dequeue": 0, "wait_for_ready": 0}

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def _count(self, name):
        with self.lock:
            self.calls[name] += 1

    def dequeue(self, *args, **kwargs):
        self._count("dequeue")
        return self._inner.dequeue(*args, **kwargs)

    def wait_for_ready(self, *args, **kwargs):
        self._count("wait_for_ready")
        return self._inner.wait_for_ready(*args, **kwargs)

    def snapshot(self):
        with self.lock:
            return dict(self.calls)


@pytest.fixture
def backend():
    inner = plugins.registry().get("backend", "memory").factory(BackendSettings())
    inner.open()
    yield CountingBackend(inner)
    inner.close()


def route(path, *urls, concurrency=20):
    targets = tuple(
        DeliverTarget(target=url, kind="http", timeout=timedelta(seconds=5)) for url in urls
    )
    return Route(path=path, backend="memory", deliver_concurrency=concurrency, targets=targets)


def start(backend, *routes):
    config = Config(routes=routes, defaults=Defaults(egress=LOOPBACK), backend="memory")
    runtime = Runtime(Generation(config, number=1), backend, plugins.registry(), Metrics())
    dispatcher = Dispatcher(runtime)
    dispatcher.start()
    return dispatcher


def enqueue(backend, route_path, target):
    now = datetime.now(UTC)
    envelope = Envelope(
        id=new_event_id(),
        route=route_path,
        target=target,
        payload=b"{}",
        received_at=now,
        next_run_at=now,
    )
    backend.enqueue([envelope])
    return envelope.id


def test_idle_workers_make_almost_no_store_calls_and_still_deliver_at_once(backend, receiver):
    urls = [receiver.url(f"/r{n}") for n in range(3)]
    routes = [route(f"/hooks/r{n}", url) for n, url in enumerate(urls)]
    routes.append(route("/hooks/fan", receiver.url("/a"), receiver.url("/b")))
    dispatcher = start(backend, *routes)
    try:
        time.sleep(0.5)  # 80 workers settle into waiting
        before = backend.snapshot()
        time.sleep(3.0)
        idle = {name: n - before[name] for name, n in backend.snapshot().items()}

        sent = time.time()
        enqueue(backend, "/hooks/r1", urls[1])
        [request] = receiver.wait_for(1, timeout=5)
        latency = request.at - sent
    finally:
        assert dispatcher.stop(timeout=10)

    # 5 (route, target) pairs wait, one worker each, in slices of about a second;
    # the 75 other workers sleep without touching the store.
    assert idle["dequeue"] <= 5
    assert idle["wait_for_ready"] <= 5 * 5
    assert request.path == "/r1"
    assert latency < 0.5


def test_stopping_an_idle_dispatcher_is_prompt(backend, receiver):
    dispatcher = start(backend, route("/hooks/in", receiver.url(), concurrency=20))
    time.sleep(0.3)

    began = time.monotonic()
    assert dispatcher.stop(timeout=10) is True
    assert time.monotonic() - began < 1.5


def test_a_retry_scheduled_while_idle_is_delivered_when_it_ripens(backend, receiver):
    receiver.replies.append(Reply(503))
    url = receiver.url()
    retry = RetryPolicy(max=3, base=timedelta(milliseconds=300), cap=timedelta(seconds=1), jitter=0)
    target = DeliverTarget(target=url, kind="http", timeout=timedelta(seconds=5), retry=retry)
    dispatcher = start(
        backend, Route(path="/hooks/in", backend="memory", deliver_concurrency=4, targets=(target,))
    )
    try:
        message_id = enqueue(backend, "/hooks/in", url)
        requests = receiver.wait_for(2, timeout=5)
        time.sleep(0.1)
    finally:
        assert dispatcher.stop(timeout=10)

    assert requests[1].at - requests[0].at == pytest.approx(0.3, abs=0.25)
    assert backend.get(message_id) is None
