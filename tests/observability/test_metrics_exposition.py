"""What a Prometheus scrape of the metrics listener shows, over real HTTP on loopback."""

from datetime import UTC, datetime, timedelta

import pytest

from hookaido.observability.metrics import Metrics
from hookaido.observability.metrics_server import install_queue_collector, make_metrics_app
from hookaido.queue.backend import BackendSettings
from hookaido.queue.model import Stats

from ..support.scrape import samples

NOW = datetime(2026, 2, 9, 10, 0, 0, tzinfo=UTC)


class FixedStatsSource:
    """Answers ``stats()`` like a backend holding a known queue, counting how often it is asked."""

    def __init__(self, stats: Stats | None = None, diagnostics: dict | None = None):
        self.settings = BackendSettings(clock=lambda: NOW)
        self._stats = stats or Stats(
            total=0, by_state={}, oldest_queued_received_at=None, earliest_queued_next_run_at=None
        )
        self._diagnostics = diagnostics
        self.calls = 0
        self.broken = False

    def stats(self) -> Stats:
        self.calls += 1
        if self.broken:
            raise RuntimeError("database is locked")
        return self._stats

    def diagnostics(self):
        return self._diagnostics


@pytest.fixture
def scrape(serve, fetch):
    def start(metrics, backend=None, prefix="/metrics"):
        if backend is not None:
            install_queue_collector(metrics, backend)
        base = serve(make_metrics_app(metrics, prefix))

        def get(path=prefix):
            status, headers, body = fetch("GET", base + path)
            return status, headers, body.decode()

        return get

    return start


def test_scrape_after_known_traffic_shows_exact_counter_values(scrape):
    metrics = Metrics()
    for _ in range(3):
        metrics.ingress_accepted.inc()
    metrics.ingress_enqueued.inc(4)
    metrics.ingress_reject("auth", 401)
    metrics.ingress_reject("auth", 401)
    metrics.ingress_reject("not_found", 404)
    metrics.ingress_reject("policy", 418)
    metrics.delivery_attempts.inc(5)
    metrics.delivery_acked.inc(3)
    metrics.delivery_retry.inc(1)
    metrics.delivery_dead.inc(1)
    metrics.delivery_dead_by_reason.labels("max_retries").inc()
    metrics.pull_dequeue.labels("/webhooks/github", "200").inc(2)
    metrics.pull_dequeue.labels("/webhooks/github", "4xx").inc()
    metrics.pull_acked.labels("/webhooks/github").inc(2)
    metrics.publish_accepted.inc(7)
    metrics.publish_rejected.inc()
    metrics.publish_rejected_kind["validation"].inc()
    get = scrape(metrics)

    status, headers, text = get()
    values = samples(text)

    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    assert values[("hookaido_ingress_accepted_total", ())] == 3
    assert values[("hookaido_ingress_enqueued_total", ())] == 4
    assert values[("hookaido_ingress_rejected_total", ())] == 4
    reason = "hookaido_ingress_rejected_by_reason_total"
    assert values[(reason, (("reason", "auth"), ("status", "401")))] == 2
    assert values[(reason, (("reason", "not_found"), ("status", "404")))] == 1
    assert values[(reason, (("reason", "policy"), ("status", "other")))] == 1
    assert values[(reason, (("reason", "queue_full"), ("status", "503")))] == 0
    assert values[("hookaido_delivery_attempts_total", ())] == 5
    assert values[("hookaido_delivery_acked_total", ())] == 3
    assert values[("hookaido_delivery_retry_total", ())] == 1
    assert values[("hookaido_delivery_dead_total", ())] == 1
    assert values[("hookaido_delivery_dead_by_reason_total", (("reason", "max_retries"),))] == 1
    assert values[("hookaido_delivery_dead_by_reason_total", (("reason", "no_retry"),))] == 0
    dequeue = "hookaido_pull_dequeue_total"
    assert values[(dequeue, (("route", "/webhooks/github"), ("status", "200")))] == 2
    assert values[(dequeue, (("route", "/webhooks/github"), ("status", "4xx")))] == 1
    assert values[("hookaido_pull_acked_total", (("route", "/webhooks/github"),))] == 2
    assert values[("hookaido_publish_accepted_total", ())] == 7
    assert values[("hookaido_publish_rejected_total", ())] == 1
    assert values[("hookaido_publish_rejected_validation_total", ())] == 1
    assert values[("hookaido_publish_rejected_queue_full_total", ())] == 0


def test_exposition_has_help_and_type_lines_and_no_created_twins(scrape):
    get = scrape(Metrics())

    _, _, text = get()

    assert "# HELP hookaido_ingress_accepted_total " in text
    assert "# TYPE hookaido_ingress_accepted_total counter" in text
    assert "# TYPE hookaido_up gauge" in text
    assert "_created" not in text


def test_closed_label_sets_are_emitted_at_zero(scrape):
    get = scrape(Metrics())

    _, _, text = get()
    values = samples(text)

    rejected = [key for key in values if key[0] == "hookaido_ingress_rejected_by_reason_total"]
    assert len(rejected) == 8 * 9
    backpressure = [
        key for key in values if key[0] == "hookaido_ingress_adaptive_backpressure_total"
    ]
    assert len(backpressure) == 6
    assert values[("hookaido_tracing_enabled", ())] == 0
    assert values[("hookaido_tracing_init_failures_total", ())] == 0
    assert values[("hookaido_publish_scoped_accepted_total", ())] == 0
    assert "# TYPE hookaido_runtime_secret_gc_pruned_total counter" in text
    assert not [key for key in values if key[0] == "hookaido_runtime_secret_gc_pruned_total"]


def test_process_series_describe_this_build(scrape):
    from hookaido import __version__

    get = scrape(Metrics())

    _, _, text = get()
    values = samples(text)

    assert values[("hookaido_up", ())] == 1
    assert values[("hookaido_build_info", (("version", __version__),))] == 1
    assert values[("hookaido_metrics_schema_info", (("schema", "1.3.0"),))] == 1
    assert values[("hookaido_start_time_seconds", ())] > 1.7e9


def test_queue_gauges_are_read_from_backend_stats_at_scrape(scrape):
    backend = FixedStatsSource(
        Stats(
            total=11,
            by_state={"queued": 5, "leased": 2, "delivered": 3, "dead": 1, "canceled": 0},
            oldest_queued_received_at=NOW - timedelta(seconds=42),
            earliest_queued_next_run_at=NOW - timedelta(seconds=3),
        )
    )
    get = scrape(Metrics(), backend)

    _, _, text = get()
    values = samples(text)

    assert values[("hookaido_queue_depth", (("state", "queued"),))] == 5
    assert values[("hookaido_queue_depth", (("state", "leased"),))] == 2
    assert values[("hookaido_queue_depth", (("state", "dead"),))] == 1
    assert ("hookaido_queue_depth", (("state", "delivered"),)) not in values
    assert values[("hookaido_queue_total", ())] == 11
    assert values[("hookaido_queue_oldest_queued_age_seconds", ())] == 42
    assert values[("hookaido_queue_ready_lag_seconds", ())] == 3


def test_an_empty_queue_has_zero_ages(scrape):
    get = scrape(Metrics(), FixedStatsSource())

    _, _, text = get()
    values = samples(text)

    assert values[("hookaido_queue_total", ())] == 0
    assert values[("hookaido_queue_depth", (("state", "queued"),))] == 0
    assert values[("hookaido_queue_oldest_queued_age_seconds", ())] == 0
    assert values[("hookaido_queue_ready_lag_seconds", ())] == 0


def test_queue_stats_are_reused_for_a_second(scrape):
    backend = FixedStatsSource()
    get = scrape(Metrics(), backend)

    get()
    get()
    get()

    assert backend.calls == 1


def test_a_failing_store_drops_the_queue_gauges_but_not_the_scrape(scrape):
    backend = FixedStatsSource()
    backend.broken = True
    get = scrape(Metrics(), backend)

    status, _, text = get()
    values = samples(text)

    assert status == 200
    assert ("hookaido_queue_total", ()) not in values
    assert values[("hookaido_up", ())] == 1


def test_memory_store_families_appear_only_for_the_memory_backend(scrape):
    memory = FixedStatsSource(
        diagnostics={
            "backend": "memory",
            "items_by_state": {"queued": 4, "leased": 1, "delivered": 0, "dead": 2},
            "retained_bytes_by_state": {"queued": 400, "leased": 100, "delivered": 0, "dead": 50},
            "retained_bytes_total": 550,
            "evictions_total": {"drop_oldest": 3},
        }
    )
    get_memory = scrape(Metrics(), memory)
    get_other = scrape(Metrics(), FixedStatsSource())

    memory_values = samples(get_memory()[2])
    other_text = get_other()[2]

    assert memory_values[("hookaido_store_memory_items", (("state", "queued"),))] == 4
    assert memory_values[("hookaido_store_memory_retained_bytes", (("state", "dead"),))] == 50
    assert memory_values[("hookaido_store_memory_retained_bytes_total", ())] == 550
    evictions = "hookaido_store_memory_evictions_total"
    assert memory_values[(evictions, (("reason", "drop_oldest"),))] == 3
    assert memory_values[(evictions, (("reason", "dead_retention_age"),))] == 0
    assert "hookaido_store_memory" not in other_text


def test_metrics_are_served_only_at_the_prefix(scrape):
    get = scrape(Metrics(), prefix="/internal/metrics")

    assert get("/internal/metrics")[0] == 200
    assert get("/metrics")[0] == 404
    assert get("/internal/metrics/extra")[0] == 404


@pytest.mark.parametrize("backend_name", ["memory", "sqlite"])
def test_queue_gauges_from_a_real_backend(backend_name, scrape, tmp_path):
    from hookaido.plugins import registry
    from hookaido.queue import Envelope, new_event_id

    settings = BackendSettings(db_path=str(tmp_path / "queue.db"), clock=lambda: NOW)
    backend = registry().get("backend", backend_name).factory(settings)
    backend.open()
    try:
        backend.enqueue(
            Envelope(
                id=new_event_id(),
                route="/webhooks/github",
                target="pull",
                payload=b"{}",
                received_at=NOW - timedelta(seconds=30),
                next_run_at=NOW - timedelta(seconds=30),
            )
            for _ in range(3)
        )
        backend.dequeue("/webhooks/github", "pull", 1, timedelta(seconds=30))
        get = scrape(Metrics(), backend)

        _, _, text = get()
    finally:
        backend.close()
    values = samples(text)

    assert values[("hookaido_queue_depth", (("state", "queued"),))] == 2
    assert values[("hookaido_queue_depth", (("state", "leased"),))] == 1
    assert values[("hookaido_queue_total", ())] == 3
    assert values[("hookaido_queue_oldest_queued_age_seconds", ())] == 30
    assert values[("hookaido_queue_ready_lag_seconds", ())] == 30
    memory_items = ("hookaido_store_memory_items", (("state", "queued"),))
    if backend_name == "memory":
        assert values[memory_items] == 2
    else:
        assert memory_items not in values


def test_only_get_reads_the_metrics(serve, fetch):
    base = serve(make_metrics_app(Metrics()))

    status, headers, _ = fetch("POST", base + "/metrics", body=b"")

    assert status == 405
    assert "GET" in headers["Allow"]
