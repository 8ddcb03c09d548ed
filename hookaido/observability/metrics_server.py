"""The metrics listener: Prometheus text exposition of a ``Metrics`` registry on its own socket.

Queue gauges are computed at scrape time from backend stats at most one second old; this
module reads the backend and never changes it.
"""

import threading
import time
from datetime import UTC, datetime

from prometheus_client import make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from hookaido.config.model import LogConfig, MetricsConfig
from hookaido.observability.accesslog import wrap_access_log
from hookaido.observability.log import event

QUEUE_DEPTH_STATES = ("queued", "leased", "dead")
MEMORY_STATES = ("queued", "leased", "delivered", "dead")
MEMORY_EVICTION_REASONS = (
    "drop_oldest",
    "queue_retention_age",
    "delivered_retention_age",
    "delivered_retention_depth",
    "dead_retention_age",
    "dead_retention_depth",
)
STATS_MAX_AGE = 1.0
TEXT_FORMAT = "text/plain; version=0.0.4"


class CachedStats:
    """``backend.stats()`` (and ``diagnostics()``) fetched at most once per ``max_age`` seconds."""

    def __init__(self, backend, max_age: float = STATS_MAX_AGE):
        self.backend = backend
        self.max_age = max_age
        self._lock = threading.Lock()
        self._fetched_at = float("-inf")
        self._value = None

    def get(self):
        """``(stats, diagnostics)``; raises what the backend raised when it cannot answer."""
        with self._lock:
            if time.monotonic() - self._fetched_at > self.max_age:
                stats = self.backend.stats()
                details = getattr(self.backend, "diagnostics", lambda: None)()
                self._value = (stats, details)
                self._fetched_at = time.monotonic()
            return self._value


def _seconds_since(moment: datetime | None, now: datetime) -> float:
    if moment is None:
        return 0.0
    return max(0.0, (now - moment).total_seconds())


class QueueCollector:
    """Adds the ``hookaido_queue_*`` gauges (and memory-store families) to each scrape."""

    def __init__(self, backend, max_age: float = STATS_MAX_AGE):
        self.stats = CachedStats(backend, max_age)
        settings = getattr(backend, "settings", None)
        self.clock = getattr(settings, "clock", None) or (lambda: datetime.now(UTC))
        self._last_failure_logged = float("-inf")

    def describe(self):
        # Declared without samples so registering does not read the store.
        return [
            GaugeMetricFamily("hookaido_queue_depth", "Queue items by state", labels=["state"]),
            GaugeMetricFamily("hookaido_queue_total", "Queue items in every state"),
            GaugeMetricFamily("hookaido_queue_oldest_queued_age_seconds", "Oldest queued age"),
            GaugeMetricFamily("hookaido_queue_ready_lag_seconds", "Ready lag"),
        ]

    def collect(self):
        try:
            stats, details = self.stats.get()
        except Exception as error:
            self._log_failure(error)
            return
        now = self.clock()

        depth = GaugeMetricFamily("hookaido_queue_depth", "Queue items by state", labels=["state"])
        for state in QUEUE_DEPTH_STATES:
            depth.add_metric([state], stats.by_state.get(state, 0))
        yield depth
        yield GaugeMetricFamily(
            "hookaido_queue_total", "Queue items in every state", value=stats.total
        )
        yield GaugeMetricFamily(
            "hookaido_queue_oldest_queued_age_seconds",
            "Seconds since the oldest queued item was received (0 when none)",
            value=_seconds_since(stats.oldest_queued_received_at, now),
        )
        yield GaugeMetricFamily(
            "hookaido_queue_ready_lag_seconds",
            "Seconds the earliest ready queued item has waited past next_run_at (0 when none)",
            value=_seconds_since(stats.earliest_queued_next_run_at, now),
        )
        if isinstance(details, dict) and details.get("backend") == "memory":
            yield from _memory_families(details)

    def _log_failure(self, error: Exception) -> None:
        # One line per minute at most: a scraper polls every few seconds.
        if time.monotonic() - self._last_failure_logged >= 60:
            self._last_failure_logged = time.monotonic()
            event("metrics_queue_stats_failed", level="warn", error=str(error))


def _memory_families(details: dict):
    items = GaugeMetricFamily(
        "hookaido_store_memory_items", "Memory store items by state", labels=["state"]
    )
    retained = GaugeMetricFamily(
        "hookaido_store_memory_retained_bytes", "Memory store bytes by state", labels=["state"]
    )
    items_by_state = details.get("items_by_state") or {}
    bytes_by_state = details.get("retained_bytes_by_state") or {}
    for state in MEMORY_STATES:
        items.add_metric([state], items_by_state.get(state, 0))
        retained.add_metric([state], bytes_by_state.get(state, 0))
    yield items
    yield retained
    yield GaugeMetricFamily(
        "hookaido_store_memory_retained_bytes_total",
        "Memory store bytes retained",
        value=details.get("retained_bytes_total", 0),
    )
    evictions = CounterMetricFamily(
        "hookaido_store_memory_evictions", "Memory store evictions", labels=["reason"]
    )
    counts = details.get("evictions_total") or {}
    for reason in MEMORY_EVICTION_REASONS:
        evictions.add_metric([reason], counts.get(reason, 0))
    yield evictions


def _not_found(start_response, text: bytes):
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "10")])
    return [text]


def make_metrics_app(metrics, prefix: str = "/metrics"):
    """WSGI app answering ``GET <prefix>`` with the text exposition of ``metrics.registry``."""
    exposition = make_wsgi_app(metrics.registry)
    path = prefix.rstrip("/") or "/"

    def metrics_app(environ, start_response):
        requested = environ.get("PATH_INFO", "") or "/"
        if requested != path and requested.rstrip("/") != path:
            return _not_found(start_response, b"not found\n")
        # Always the Prometheus text format: prometheus-client would answer an OpenMetrics
        # Accept header in OpenMetrics, whose counter families drop the ``_total`` suffix.
        environ = {**environ, "HTTP_ACCEPT": TEXT_FORMAT}
        # prometheus-client answers GET and OPTIONS, and 405 to every other method.
        return exposition(environ, start_response)

    return metrics_app


def install_queue_collector(metrics, backend) -> QueueCollector:
    """Register the queue collector on ``metrics.registry`` once; later calls reuse it."""
    collector = getattr(metrics, "queue_collector", None)
    if collector is None:
        collector = QueueCollector(backend)
        metrics.registry.register(collector)
        metrics.queue_collector = collector
    return collector


def start_metrics_server(runtime, metrics_config: MetricsConfig, access_log: LogConfig = None):
    """Start the metrics listener for ``runtime`` when enabled; returns it (or ``None``).

    The listener has the ``start()``/``stop()`` shape of every other listener; stop it at
    shutdown. Binding problems raise what the listener layer raises (``ListenError``).
    """
    if not metrics_config.enabled:
        return None
    from hookaido.server.listeners import make_server

    install_queue_collector(runtime.metrics, runtime.backend)
    if access_log is None:
        access_log = runtime.config.observability.access_log
    app = wrap_access_log(
        make_metrics_app(runtime.metrics, metrics_config.prefix), "metrics", access_log
    )
    listener = make_server(app, metrics_config.listen, threads=2)
    listener.start()
    event("metrics_listening", listen=metrics_config.listen, prefix=metrics_config.prefix)
    return listener
