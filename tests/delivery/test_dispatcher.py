"""The push dispatcher end to end on both backends (SQLite in tmp_path), real receivers on
loopback and real scripts."""

import hashlib
import hmac
import stat
import time
from datetime import UTC, datetime, timedelta

import pytest

from hookaido import plugins
from hookaido.config.model import (
    Config,
    Defaults,
    DeliverTarget,
    EgressPolicy,
    PullConfig,
    RetryPolicy,
    Route,
    SecretRef,
    SignConfig,
)
from hookaido.dispatcher import Dispatcher
from hookaido.observability.metrics import Metrics
from hookaido.queue import AttemptFilter, BackendSettings, Envelope, new_event_id
from hookaido.runtime import Generation, Runtime

from .conftest import Reply

LOOPBACK = EgressPolicy(allow=("127.0.0.1",), https_only=False, dns_rebind_protection=False)
FAST = RetryPolicy(max=8, base=timedelta(milliseconds=10), cap=timedelta(seconds=1), jitter=0)


def http_target(url, retry=FAST, timeout=5.0, **options) -> DeliverTarget:
    return DeliverTarget(
        target=url, kind="http", retry=retry, timeout=timedelta(seconds=timeout), **options
    )


def push_route(*targets, path="/hooks/in", concurrency=4, channel="inbound") -> Route:
    return Route(
        path=path,
        channel=channel,
        backend="memory",
        deliver_concurrency=concurrency,
        targets=tuple(targets),
    )


def generation(*routes, egress=LOOPBACK, number=1) -> Generation:
    config = Config(routes=tuple(routes), defaults=Defaults(egress=egress), backend="memory")
    return Generation(config, number=number)


@pytest.fixture(params=["memory", "sqlite"])
def backend(request, tmp_path):
    settings = BackendSettings(db_path=str(tmp_path / "hookaido.db"))
    store = plugins.registry().get("backend", request.param).factory(settings)
    store.open()
    yield store
    store.close()


@pytest.fixture
def running(backend):
    """Start a dispatcher over the given generation; every one started is stopped."""
    started = []

    def start(gen: Generation) -> Dispatcher:
        runtime = Runtime(gen, backend, plugins.registry(), Metrics())
        dispatcher = Dispatcher(runtime, idle_wait=0.2)
        dispatcher.start()
        started.append(dispatcher)
        return dispatcher

    yield start
    for dispatcher in started:
        assert dispatcher.stop(timeout=10)


def enqueue(backend, route, target, payload=b'{"n":1}', headers=None) -> str:
    now = datetime.now(UTC)
    envelope = Envelope(
        id=new_event_id(),
        route=route,
        target=target,
        payload=payload,
        received_at=now,
        next_run_at=now,
        headers=dict(headers or {"Content-Type": "application/json"}),
    )
    backend.enqueue([envelope])
    return envelope.id


def settled(backend, message_id, timeout=10.0):
    """The envelope once it left queued/leased (None when acked and removed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        envelope = backend.get(message_id)
        if envelope is None or envelope.state not in ("queued", "leased"):
            return envelope
        time.sleep(0.01)
    raise AssertionError(f"{message_id} still {backend.get(message_id).state}")


def history(backend, message_id):
    attempts = backend.list_attempts(AttemptFilter(event_id=message_id))
    return [
        (a.attempt, a.outcome, a.status_code, a.dead_reason)
        for a in sorted(attempts, key=lambda a: a.attempt)
    ]


def logged(events, name):
    return [fields for event, fields in events if event == name]


def test_a_2xx_answer_acks_the_message_and_records_the_attempt(backend, running, receiver, events):
    url = receiver.url()
    dispatcher = running(generation(push_route(http_target(url))))
    message_id = enqueue(backend, "/hooks/in", url, payload=b'{"order":7}')

    assert settled(backend, message_id) is None
    assert receiver.requests[0].body == b'{"order":7}'
    assert history(backend, message_id) == [(1, "acked", 200, "")]
    assert logged(events, "delivery_ok") == [
        {"route": "/hooks/in", "target": url, "status": 200, "attempt": 1, "event_id": message_id}
    ]
    assert dispatcher.runtime.metrics.delivery_acked._value.get() == 1


def test_retry_then_success_follows_the_backoff(backend, running, receiver, events):
    receiver.replies += [Reply(503), Reply(500)]
    url = receiver.url()
    running(generation(push_route(http_target(url))))
    message_id = enqueue(backend, "/hooks/in", url)

    assert settled(backend, message_id) is None
    assert history(backend, message_id) == [
        (1, "retry", 503, ""),
        (2, "retry", 500, ""),
        (3, "acked", 200, ""),
    ]
    times = [request.at for request in receiver.requests]
    assert times[1] - times[0] >= 0.010 and times[2] - times[1] >= 0.020
    assert [fields["delay"] for fields in logged(events, "delivery_retry")] == ["10ms", "20ms"]


def test_a_permanent_4xx_goes_to_the_dlq_at_once(backend, running, receiver, events):
    receiver.replies.append(Reply(422))
    url = receiver.url()
    dispatcher = running(generation(push_route(http_target(url))))
    message_id = enqueue(backend, "/hooks/in", url)

    dead = settled(backend, message_id)

    assert (dead.state, dead.dead_reason) == ("dead", "no_retry")
    assert history(backend, message_id) == [(1, "dead", 422, "no_retry")]
    [line] = logged(events, "delivery_dead")
    assert (line["reason"], line["status"]) == ("no_retry", 422)
    metrics = dispatcher.runtime.metrics
    assert metrics.delivery_dead_by_reason.labels("no_retry")._value.get() == 1


def test_exhausted_retries_go_to_the_dlq_with_the_attempt_history(backend, running, receiver):
    receiver.replies += [Reply(503)] * 3
    url = receiver.url()
    retry = RetryPolicy(max=2, base=timedelta(milliseconds=10), cap=timedelta(seconds=1))
    running(generation(push_route(http_target(url, retry=retry))))
    message_id = enqueue(backend, "/hooks/in", url)

    dead = settled(backend, message_id)

    assert (dead.state, dead.dead_reason, dead.attempt) == ("dead", "max_retries", 3)
    assert history(backend, message_id) == [
        (1, "retry", 503, ""),
        (2, "retry", 503, ""),
        (3, "dead", 503, "max_retries"),
    ]


def test_retry_after_lengthens_the_wait(backend, running, receiver, events):
    receiver.replies.append(Reply(429, headers={"Retry-After": "1"}))
    url = receiver.url()
    running(generation(push_route(http_target(url))))
    message_id = enqueue(backend, "/hooks/in", url)

    assert settled(backend, message_id) is None
    first, second = receiver.requests
    assert second.at - first.at >= 0.95
    [line] = logged(events, "delivery_retry")
    assert (line["delay"], line["retry_after"], line["status"]) == ("1s", "1s", 429)


def test_a_timeout_is_retried(backend, running, receiver):
    receiver.replies.append(Reply(200, delay=1.0))
    url = receiver.url()
    running(generation(push_route(http_target(url, timeout=0.2))))
    message_id = enqueue(backend, "/hooks/in", url)

    assert settled(backend, message_id) is None
    assert history(backend, message_id) == [(1, "retry", 0, ""), (2, "acked", 200, "")]
    [timed_out] = backend.list_attempts(AttemptFilter(event_id=message_id, outcome="retry"))
    assert timed_out.error == "timeout after 0.2s"


def test_an_egress_denied_target_is_dead_as_policy_denied(backend, running, receiver):
    url = receiver.url()
    denied = EgressPolicy(deny=("127.0.0.0/8",), https_only=False, dns_rebind_protection=False)
    running(generation(push_route(http_target(url)), egress=denied))
    message_id = enqueue(backend, "/hooks/in", url)

    dead = settled(backend, message_id)

    assert (dead.state, dead.dead_reason) == ("dead", "policy_denied")
    assert receiver.requests == []


def test_a_redirect_is_not_followed_and_is_not_retried(backend, running, receiver):
    receiver.replies.append(Reply(302, headers={"Location": receiver.url("/other")}))
    url = receiver.url()
    running(generation(push_route(http_target(url))))
    message_id = enqueue(backend, "/hooks/in", url)

    dead = settled(backend, message_id)

    assert (dead.state, dead.dead_reason) == ("dead", "no_retry")
    assert [request.path for request in receiver.requests] == ["/hook"]


def test_the_receiver_verifies_the_signature_with_the_canonical_string(backend, running, receiver):
    url = receiver.url("/build?x=1")
    sign = SignConfig(secrets=(SecretRef("raw", "s3cr3t"),))
    target = http_target(url, sign=sign)
    gen = generation(push_route(target))
    gen.secrets[SecretRef("raw", "s3cr3t")] = b"s3cr3t"
    running(gen)
    message_id = enqueue(backend, "/hooks/in", url, payload=b'{"ref":"main"}')

    assert settled(backend, message_id) is None
    [request] = receiver.requests
    timestamp = request.headers["X-Hookaido-Timestamp"]
    digest = hashlib.sha256(request.body).hexdigest()
    canonical = f"POST\n/build\n{timestamp}\n{digest}".encode()
    assert request.headers["X-Hookaido-Signature"] == (
        hmac.new(b"s3cr3t", canonical, hashlib.sha256).hexdigest()
    )


def test_fan_out_targets_progress_and_fail_independently(backend, running, receiver):
    good, bad = receiver.url("/good"), receiver.url("/bad")
    receiver.replies_for["/bad"] = [Reply(404)]
    running(generation(push_route(http_target(bad), http_target(good), concurrency=1)))
    bad_id = enqueue(backend, "/hooks/in", bad)
    good_id = enqueue(backend, "/hooks/in", good)

    assert settled(backend, bad_id).dead_reason == "no_retry"
    assert settled(backend, good_id) is None
    assert sorted(request.path for request in receiver.requests) == ["/bad", "/good"]


def test_concurrency_is_a_budget_shared_by_the_routes_targets(backend, running, receiver):
    receiver.replies += [Reply(200, delay=0.2)] * 12
    first, second = receiver.url("/a"), receiver.url("/b")
    running(generation(push_route(http_target(first), http_target(second), concurrency=3)))
    ids = [enqueue(backend, "/hooks/in", url) for url in (first, second) * 6]

    for message_id in ids:
        assert settled(backend, message_id) is None
    assert receiver.most_in_flight == 3


def test_pull_routes_are_left_to_workers_in_a_hybrid_config(backend, running, receiver):
    url = receiver.url()
    pull = Route(path="/hooks/pulled", backend="memory", pull=PullConfig(path="/pulled"))
    outbound = push_route(http_target(url), path="/out/orders", channel="outbound")
    running(generation(pull, outbound))
    pulled_id = enqueue(backend, "/hooks/pulled", "pull")
    pushed_id = enqueue(backend, "/out/orders", url)

    assert settled(backend, pushed_id) is None
    assert backend.get(pulled_id).state == "queued"


def script(tmp_path, body: str) -> str:
    path = tmp_path / "deliver.sh"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_exec_targets_are_delivered_and_a_missing_command_is_dead_at_once(
    backend, running, tmp_path
):
    out = tmp_path / "out"
    command = script(tmp_path, f'cat >> "{out}"\n')
    missing = str(tmp_path / "nope")
    targets = [DeliverTarget(target=c, kind="exec", retry=FAST) for c in (command, missing)]
    running(generation(push_route(*targets)))
    ok_id = enqueue(backend, "/hooks/in", command, payload=b"payload-1")
    missing_id = enqueue(backend, "/hooks/in", missing)

    assert settled(backend, ok_id) is None
    assert out.read_bytes() == b"payload-1"
    assert settled(backend, missing_id).dead_reason == "policy_denied"
    assert history(backend, missing_id) == [(1, "dead", 0, "policy_denied")]


def test_stop_lets_a_delivery_in_flight_finish_and_returns_the_rest_of_its_batch(backend, receiver):
    receiver.replies += [Reply(200, delay=0.4)] * 2
    url = receiver.url()
    runtime = Runtime(
        generation(push_route(http_target(url), concurrency=2)), backend, plugins.registry()
    )
    dispatcher = Dispatcher(runtime, idle_wait=0.2)
    ids = [enqueue(backend, "/hooks/in", url) for _ in range(4)]
    dispatcher.start()
    receiver.wait_for(2)

    assert dispatcher.stop(timeout=5) is True

    states = sorted((backend.get(i).state if backend.get(i) else "acked") for i in ids)
    assert states == ["acked", "acked", "queued", "queued"]
    assert len(receiver.requests) == 2


def test_reload_with_changed_targets_drains_and_replaces_the_workers(
    backend, running, receiver, events
):
    old_url, new_url = receiver.url("/old"), receiver.url("/new")
    dispatcher = running(generation(push_route(http_target(old_url))))

    replaced = dispatcher.reload(generation(push_route(http_target(new_url)), number=2))
    message_id = enqueue(backend, "/hooks/in", new_url)

    assert replaced is True
    assert settled(backend, message_id) is None
    assert [request.path for request in receiver.requests] == ["/new"]
    names = [name for name, _ in events if name.startswith("dispatcher_")]
    assert names == ["dispatcher_stopped_for_reload", "dispatcher_reloaded"]
    assert logged(events, "dispatcher_reloaded") == [{"routes": 1}]


def test_reload_without_delivery_changes_keeps_the_workers(backend, running, receiver, events):
    url = receiver.url()
    dispatcher = running(generation(push_route(http_target(url))))

    replaced = dispatcher.reload(generation(push_route(http_target(url)), number=2))

    assert replaced is False
    assert [name for name, _ in events if name.startswith("dispatcher_")] == []


def test_a_drain_over_budget_is_logged_and_the_replacement_starts_anyway(
    backend, running, receiver, events, monkeypatch
):
    monkeypatch.setattr("hookaido.dispatcher.drain_budget", lambda config: timedelta(seconds=0.2))
    receiver.replies_for["/slow"] = [Reply(200, delay=1.0)]
    slow, fresh = receiver.url("/slow"), receiver.url("/fresh")
    dispatcher = running(generation(push_route(http_target(slow))))
    slow_id = enqueue(backend, "/hooks/in", slow)
    receiver.wait_for(1)

    replaced = dispatcher.reload(generation(push_route(http_target(fresh)), number=2))
    fresh_id = enqueue(backend, "/hooks/in", fresh)

    assert replaced is True
    assert settled(backend, fresh_id) is None
    assert settled(backend, slow_id) is None  # the old worker still finished and acked it
    names = [name for name, _ in events if name.startswith("dispatcher_")]
    assert names == ["dispatcher_drain_incomplete", "dispatcher_reloaded"]


def test_messages_for_a_target_no_longer_configured_are_reported_and_left_queued(
    backend, running, receiver, events
):
    gone = receiver.url("/removed")
    orphan_id = enqueue(backend, "/hooks/in", gone)

    running(generation(push_route(http_target(receiver.url("/kept")))))
    time.sleep(0.3)

    assert logged(events, "dispatcher_target_config_missing") == [
        {"route": "/hooks/in", "target": gone, "count": 1}
    ]
    assert backend.get(orphan_id).state == "queued"
    assert receiver.requests == []
