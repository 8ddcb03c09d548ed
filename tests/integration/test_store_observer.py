"""Store reports reach the ``hookaido_store_*`` metrics: a backend given
``BackendSettings(observer=metrics.store_observer(name))`` needs no Prometheus of its own."""

from datetime import UTC, datetime, timedelta

import pytest
from hookaido_backend_memory import MemoryBackend

from hookaido.observability.metrics import Metrics
from hookaido.queue import BackendSettings, Envelope, MemoryPressure, QueueFull, Retention
from hookaido.queue.base import BackendBase

NOW = datetime(2026, 2, 9, 10, 0, tzinfo=UTC)
TTL = timedelta(seconds=30)


def observed_memory_backend(metrics: Metrics, **settings) -> MemoryBackend:
    backend = MemoryBackend(
        BackendSettings(
            clock=lambda: NOW,
            retention=Retention(prune_interval=None),
            observer=metrics.store_observer("memory"),
            **settings,
        )
    )
    backend.open()
    return backend


def envelopes(prefix: str, count: int) -> list[Envelope]:
    return [Envelope(f"{prefix}_{n}", "/r", "pull", b"{}", NOW, NOW) for n in range(count)]


def operations(metrics: Metrics, backend: str, operation: str) -> float | None:
    return metrics.registry.get_sample_value(
        "hookaido_store_operation_total", {"backend": backend, "operation": operation}
    )


def test_drop_oldest_evictions_are_counted_per_envelope():
    metrics = Metrics()
    backend = observed_memory_backend(metrics, max_depth=2, drop_policy="drop_oldest")
    backend.enqueue(envelopes("evt_a", 2))

    backend.enqueue(envelopes("evt_b", 2))

    assert operations(metrics, "memory", "evict") == 2
    assert operations(metrics, "memory", "enqueue_reject") == 0  # declared at 0, never counted


def test_a_full_queue_counts_a_rejected_enqueue_but_no_store_error():
    metrics = Metrics()
    backend = observed_memory_backend(metrics, max_depth=1)
    backend.enqueue(envelopes("evt_a", 1))

    with pytest.raises(QueueFull):
        backend.enqueue(envelopes("evt_b", 1))

    assert operations(metrics, "memory", "enqueue_reject") == 1
    errors = metrics.registry.get_sample_value(
        "hookaido_store_errors_total",
        {"backend": "memory", "operation": "enqueue", "kind": "memory_pressure"},
    )
    assert errors == 0  # declared at 0, never counted


def test_memory_pressure_is_a_rejected_enqueue_and_a_store_error():
    metrics = Metrics()
    backend = observed_memory_backend(metrics, max_depth=10)
    for start in range(0, 1000, 10):  # 1000 dead envelopes reach the retained-items floor
        backend.enqueue(envelopes(f"evt_dead{start}", 10))
        leased = backend.dequeue("/r", "pull", 10, TTL)
        backend.nack([e.lease_id for e in leased], dead=True, reason="test")

    with pytest.raises(MemoryPressure):
        backend.enqueue(envelopes("evt_new", 1))

    assert operations(metrics, "memory", "enqueue_reject") == 1
    errors = metrics.registry.get_sample_value(
        "hookaido_store_errors_total",
        {"backend": "memory", "operation": "enqueue", "kind": "memory_pressure"},
    )
    assert errors == 1


def test_sqlite_reports_also_feed_the_sqlite_only_families():
    metrics = Metrics()
    observer = metrics.store_observer("sqlite")

    observer.observe("write_tx", 0.004)
    observer.observe("dequeue_tx", 0.002)
    observer.count("tx_commit")
    observer.count("retry")
    observer.error("begin_tx", "busy")
    observer.error("checkpoint", "error")
    value = metrics.registry.get_sample_value

    labels = {"backend": "sqlite", "operation": "write_tx"}
    assert value("hookaido_store_operation_seconds_count", labels) == 1
    assert value("hookaido_store_sqlite_write_seconds_count") == 1
    assert value("hookaido_store_sqlite_dequeue_seconds_count") == 1
    assert value("hookaido_store_sqlite_checkpoint_seconds_count") == 0
    assert value("hookaido_store_sqlite_tx_commit_total") == 1
    assert value("hookaido_store_sqlite_retry_total") == 1
    assert value("hookaido_store_sqlite_busy_total") == 1
    assert value("hookaido_store_sqlite_checkpoint_errors_total") == 1
    assert value("hookaido_store_sqlite_tx_rollback_total") == 0
    busy = {"backend": "sqlite", "operation": "begin_tx", "kind": "busy"}
    assert value("hookaido_store_errors_total", busy) == 1


def test_sqlite_families_are_absent_for_other_backends():
    metrics = Metrics()

    metrics.store_observer("memory").count("evict")

    names = {family.name for family in metrics.registry.collect()}
    assert not [name for name in names if name.startswith("hookaido_store_sqlite_")]


def test_asking_twice_for_an_observer_gives_the_same_one():
    metrics = Metrics()

    assert metrics.store_observer("sqlite") is metrics.store_observer("sqlite")


def test_a_backend_built_without_an_observer_reports_to_nobody():
    backend = MemoryBackend(BackendSettings(max_depth=1, drop_policy="drop_oldest"))
    backend.open()

    backend.enqueue(envelopes("evt_a", 1))
    backend.enqueue(envelopes("evt_b", 1))

    assert isinstance(backend, BackendBase)
    assert backend.settings.observer is None
    assert backend.get("evt_b_0").state == "queued"
