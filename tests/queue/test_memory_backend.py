"""Memory backend specifics: the memory-pressure guard, tombstone limits, diagnostics."""

from datetime import UTC, datetime, timedelta

import hookaido_backend_memory.store as memory_store
import pytest
from hookaido_backend_memory import MemoryBackend

from hookaido.queue import (
    Attempt,
    AttemptFilter,
    BackendSettings,
    Envelope,
    MemoryPressure,
    Retention,
)

TTL = timedelta(seconds=30)
NOW = datetime(2026, 2, 9, 10, 0, tzinfo=UTC)


def open_backend(tmp_path=None, **overrides) -> MemoryBackend:
    overrides.setdefault("retention", Retention(prune_interval=None))
    if tmp_path is not None:
        overrides["db_path"] = str(tmp_path / "ignored.db")
    backend = MemoryBackend(BackendSettings(clock=lambda: NOW, **overrides))
    backend.open()
    return backend


def envelopes(prefix: str, count: int, payload: bytes = b"{}") -> list[Envelope]:
    return [Envelope(f"{prefix}_{n}", "/r", "pull", payload, NOW, NOW) for n in range(count)]


def bury(backend: MemoryBackend, count: int, prefix: str = "evt_dead") -> None:
    for start in range(0, count, 10):
        backend.enqueue(envelopes(f"{prefix}{start}", min(10, count - start)))
        leased = backend.dequeue("/r", "pull", 10, TTL)
        backend.nack([e.lease_id for e in leased], dead=True, reason="test")


def test_db_path_is_ignored(tmp_path):
    backend = open_backend(tmp_path)
    backend.enqueue(envelopes("evt", 1))
    backend.close()

    assert list(tmp_path.iterdir()) == []


def test_retained_items_at_the_limit_refuse_new_webhooks():
    backend = open_backend(max_depth=10)
    bury(backend, 1000)

    with pytest.raises(MemoryPressure) as refused:
        backend.enqueue(envelopes("evt_new", 1))

    assert refused.value.reason == "retained_items"
    pressure = backend.diagnostics()["memory_pressure"]
    assert pressure["active"] is True
    assert (pressure["retained_items"], pressure["retained_item_limit"]) == (1000, 1000)
    assert pressure["rejected_total"] == 1


def test_retained_bytes_at_the_limit_refuse_new_webhooks(monkeypatch):
    monkeypatch.setattr(memory_store, "RETAINED_BYTES_LIMIT", 4096)
    backend = open_backend(max_depth=0)
    bury(backend, 2, prefix="evt_big")
    backend.enqueue(envelopes("evt_more", 1, payload=b"x" * 4096))
    [leased] = backend.dequeue("/r", "pull", 1, TTL)
    backend.cancel([leased.id])

    with pytest.raises(MemoryPressure) as refused:
        backend.enqueue(envelopes("evt_new", 1))

    assert refused.value.reason == "retained_bytes"


def test_freeing_retained_items_lifts_the_pressure():
    backend = open_backend(max_depth=10)
    bury(backend, 1000)
    with pytest.raises(MemoryPressure):
        backend.enqueue(envelopes("evt_new", 1))

    backend.delete_dead([f"evt_dead0_{n}" for n in range(10)])
    backend.enqueue(envelopes("evt_new", 1))

    assert backend.diagnostics()["memory_pressure"]["active"] is False


def test_pressure_figures_follow_the_retained_items_without_waiting_for_an_enqueue():
    backend = open_backend(max_depth=10)
    bury(backend, 999)
    backend.enqueue(envelopes("evt_last", 1))
    [leased] = backend.dequeue("/r", "pull", 1, TTL)

    backend.cancel([leased.id])
    built_up = dict(backend.diagnostics()["memory_pressure"])
    backend.resume([leased.id])
    relieved = dict(backend.diagnostics()["memory_pressure"])

    assert (built_up["active"], built_up["reason"], built_up["retained_items"]) == (
        True,
        "retained_items",
        1000,
    )
    assert (relieved["active"], relieved["reason"], relieved["retained_items"]) == (False, "", 999)
    assert relieved["rejected_total"] == 0


def test_delivered_tombstones_are_capped_at_max_depth_without_refusing():
    retention = Retention(prune_interval=None, delivered_max_age=timedelta(hours=1))
    backend = open_backend(max_depth=1000, retention=retention)
    for start in range(0, 1200, 100):
        backend.enqueue(envelopes(f"evt_{start}", 100))
        leased = backend.dequeue("/r", "pull", 100, TTL)
        backend.ack([e.lease_id for e in leased])

    backend.enqueue(envelopes("evt_new", 1))

    diagnostics = backend.diagnostics()
    assert diagnostics["items_by_state"]["delivered"] < 1000
    assert diagnostics["evictions_total"]["delivered_retention_depth"] > 200
    assert backend.get("evt_0_0") is None
    assert backend.get("evt_1100_99").state == "delivered"


def test_evictions_are_counted_by_reason():
    backend = open_backend(max_depth=2, drop_policy="drop_oldest")
    backend.enqueue(envelopes("evt_a", 2))

    backend.enqueue(envelopes("evt_b", 2))

    evictions = backend.diagnostics()["evictions_total"]
    assert evictions["drop_oldest"] == 2
    assert set(evictions) == {
        "drop_oldest",
        "queue_retention_age",
        "delivered_retention_age",
        "delivered_retention_depth",
        "dead_retention_age",
        "dead_retention_depth",
    }


def test_diagnostics_report_items_and_bytes_by_state():
    backend = open_backend()
    backend.enqueue(envelopes("evt", 2, payload=b"12345"))
    backend.dequeue("/r", "pull", 1, TTL)

    diagnostics = backend.diagnostics()

    assert diagnostics["backend"] == "memory"
    assert diagnostics["items_by_state"] == {"queued": 1, "leased": 1, "delivered": 0, "dead": 0}
    # id (5) + route (2) + target (4) + payload (5), plus the lease id (22) while leased
    assert diagnostics["retained_bytes_by_state"]["queued"] == 16
    assert diagnostics["retained_bytes_by_state"]["leased"] == 38
    assert diagnostics["retained_bytes_total"] == 54


def test_retained_bytes_count_utf8_bytes_not_characters():
    backend = open_backend()
    backend.enqueue(
        [
            Envelope(
                "evt_1",
                "/r",
                "pull",
                b"",
                NOW,
                NOW,
                headers={"X-Price": "5 \u20ac"},
                trace={"city": "M\u00fcnchen"},
            )
        ]
    )
    [leased] = backend.dequeue("/r", "pull", 1, TTL)

    backend.nack([leased.lease_id], dead=True, reason="r\u00e9sum\u00e9")

    # id 5 + route 2 + target 4 + "X-Price" 7 + "5 \u20ac" 5 + "city" 4 + "M\u00fcnchen" 8,
    # plus the reason "r\u00e9sum\u00e9" in 8 bytes
    diagnostics = backend.diagnostics()
    assert diagnostics["retained_bytes_by_state"]["dead"] == 43
    assert diagnostics["memory_pressure"]["retained_bytes"] == 43


def test_attempt_rows_are_capped_on_every_write():
    backend = open_backend(retention=Retention(prune_interval=None, attempts_max_rows=2))

    for n in range(1, 5):
        backend.record_attempt(
            Attempt(
                f"att_{n:016x}",
                "evt_1",
                "/r",
                "https://example.test/",
                n,
                "retry",
                NOW + timedelta(seconds=n),
            )
        )

    assert [a.attempt for a in backend.list_attempts(AttemptFilter())] == [4, 3]
