"""Prometheus metrics of one Hookaido process, on their own registry.

Components increment these directly (``runtime.metrics.ingress_accepted.inc()``); queue
gauges are read from the backend at scrape time by the collector the metrics listener adds.
"""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from hookaido import __version__

# The exposition carries only the series the metric tables name, not ``*_created`` twins.
disable_created_metrics()

INGRESS_REJECT_REASONS = (
    "memory_pressure",
    "queue_full",
    "adaptive_backpressure",
    "rate_limit",
    "auth",
    "not_found",
    "policy",
    "other",
)
INGRESS_REJECT_STATUSES = ("400", "401", "403", "404", "405", "413", "429", "503", "other")
BACKPRESSURE_REASONS = (
    "queued_pressure",
    "ready_lag",
    "oldest_queued_age",
    "sustained_growth",
    "unspecified",
    "other",
)
DEAD_REASONS = ("max_retries", "no_retry", "policy_denied", "unspecified", "other")
PUBLISH_REJECT_KINDS = (
    "validation",
    "policy",
    "conflict",
    "queue_full",
    "store",
    "managed_target_mismatch",
    "managed_resolver_missing",
)


class ScrapeTimeGauge(Gauge):
    """A gauge whose owners bring it up to date each time it is read.

    Owners register a callable with ``refresh_with``; every ``collect()`` (a scrape, or the
    health details reading the same series) calls them first, so a value that goes stale
    with time alone, such as a lease passing its deadline, is corrected when it is read.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._refreshers: list = []

    def refresh_with(self, refresh) -> None:
        self._refreshers.append(refresh)

    def collect(self):
        for refresh in self._refreshers:
            refresh()
        return super().collect()


def ingress_status_label(status: int) -> str:
    text = str(status)
    return text if text in INGRESS_REJECT_STATUSES else "other"


class Metrics:
    def __init__(self):
        self.registry = r = CollectorRegistry()
        self.up = Gauge("hookaido_up", "Process is up", registry=r)
        self.start_time = Gauge("hookaido_start_time_seconds", "Start time", registry=r)
        self.build_info = Gauge("hookaido_build_info", "Build", ["version"], registry=r)
        self.schema_info = Gauge("hookaido_metrics_schema_info", "Schema", ["schema"], registry=r)
        self.up.set(1)
        self.start_time.set_to_current_time()
        self.build_info.labels(__version__).set(1)
        self.schema_info.labels("1.3.0").set(1)

        self.ingress_accepted = Counter(
            "hookaido_ingress_accepted", "Requests answered 202", registry=r
        )
        self.ingress_rejected = Counter("hookaido_ingress_rejected", "Rejected", registry=r)
        self.ingress_rejected_by_reason = Counter(
            "hookaido_ingress_rejected_by_reason",
            "Rejected requests by reason and status",
            ["reason", "status"],
            registry=r,
        )
        for reason in INGRESS_REJECT_REASONS:
            for status in INGRESS_REJECT_STATUSES:
                self.ingress_rejected_by_reason.labels(reason, status)
        self.ingress_enqueued = Counter(
            "hookaido_ingress_enqueued", "Envelopes enqueued by ingress", registry=r
        )
        self.ingress_backpressure = Counter(
            "hookaido_ingress_adaptive_backpressure",
            "Adaptive backpressure decisions",
            ["reason"],
            registry=r,
        )
        for reason in BACKPRESSURE_REASONS:
            self.ingress_backpressure.labels(reason)
        self.ingress_backpressure_applied = Counter(
            "hookaido_ingress_adaptive_backpressure_applied", "Applied", registry=r
        )

        self.delivery_attempts = Counter("hookaido_delivery_attempts", "Attempts", registry=r)
        self.delivery_acked = Counter("hookaido_delivery_acked", "Acked", registry=r)
        self.delivery_retry = Counter("hookaido_delivery_retry", "Retries", registry=r)
        self.delivery_dead = Counter("hookaido_delivery_dead", "Dead", registry=r)
        self.delivery_dead_by_reason = Counter(
            "hookaido_delivery_dead_by_reason", "Dead by reason", ["reason"], registry=r
        )
        for reason in DEAD_REASONS:
            self.delivery_dead_by_reason.labels(reason)

        def per_route(kind, name, doc):
            return kind(name, doc, ["route"], registry=r)

        self.pull_dequeue = Counter(
            "hookaido_pull_dequeue", "Dequeue requests", ["route", "status"], registry=r
        )
        self.pull_acked = per_route(Counter, "hookaido_pull_acked", "Acked leases")
        self.pull_nacked = per_route(Counter, "hookaido_pull_nacked", "Nacked leases")
        self.pull_ack_conflict = per_route(Counter, "hookaido_pull_ack_conflict", "Ack 409s")
        self.pull_nack_conflict = per_route(Counter, "hookaido_pull_nack_conflict", "Nack 409s")
        self.pull_lease_active = per_route(
            ScrapeTimeGauge, "hookaido_pull_lease_active", "Leases handed out, unsettled, unexpired"
        )
        self.pull_lease_expired = per_route(
            Counter, "hookaido_pull_lease_expired", "Expired leases seen"
        )
        self.pull_sse_connections = per_route(
            Counter, "hookaido_pull_sse_connections", "SSE connections"
        )
        self.pull_sse_messages = per_route(
            Counter, "hookaido_pull_sse_messages_sent", "SSE messages sent"
        )
        self.pull_sse_active = per_route(
            Gauge, "hookaido_pull_sse_connection_active", "Open SSE connections"
        )

        self.publish_accepted = Counter("hookaido_publish_accepted", "Items", registry=r)
        self.publish_rejected = Counter("hookaido_publish_rejected", "Requests", registry=r)
        self.publish_rejected_kind = {
            kind: Counter(f"hookaido_publish_rejected_{kind}", kind, registry=r)
            for kind in PUBLISH_REJECT_KINDS
        }
        self.publish_scoped_accepted = Counter(
            "hookaido_publish_scoped_accepted", "Scoped publish accepted", registry=r
        )
        self.publish_scoped_rejected = Counter(
            "hookaido_publish_scoped_rejected", "Scoped publish rejected", registry=r
        )

        self.store_operation_seconds = Histogram(
            "hookaido_store_operation_seconds",
            "Store operation latency",
            ["backend", "operation"],
            registry=r,
        )
        self.store_operation = Counter(
            "hookaido_store_operation", "Store operations", ["backend", "operation"], registry=r
        )
        self.store_errors = Counter(
            "hookaido_store_errors", "Store errors", ["backend", "operation", "kind"], registry=r
        )
        self._store_observers: dict[str, StoreMetrics] = {}

        self.tracing_enabled = Gauge("hookaido_tracing_enabled", "Tracing", registry=r)
        self.tracing_init_failures = Counter(
            "hookaido_tracing_init_failures", "Tracing init failures", registry=r
        )
        self.tracing_export_errors = Counter(
            "hookaido_tracing_export_errors", "Tracing export errors", registry=r
        )
        # Runtime secret rotation is not implemented: the family is declared, never filled.
        self.runtime_secret_gc_pruned = Counter(
            "hookaido_runtime_secret_gc_pruned",
            "Runtime secrets pruned by garbage collection",
            ["pool"],
            registry=r,
        )

    def store_observer(self, backend: str) -> "StoreMetrics":
        """The ``StoreObserver`` to put in the ``BackendSettings`` of backend ``backend``.

        For ``sqlite`` it also declares the ``hookaido_store_sqlite_*`` families, which stay
        absent on every other backend. Asking twice for one backend gives the same observer.
        """
        if backend not in self._store_observers:
            self._store_observers[backend] = StoreMetrics(self, backend)
        return self._store_observers[backend]

    def ingress_reject(self, reason: str, status: int) -> None:
        self.ingress_rejected.inc()
        self.ingress_rejected_by_reason.labels(reason, ingress_status_label(status)).inc()


# sqlite's own families: which generic report feeds which of them.
SQLITE_SECONDS = {
    "write_tx": ("hookaido_store_sqlite_write_seconds", "SQLite write transaction latency"),
    "dequeue_tx": ("hookaido_store_sqlite_dequeue_seconds", "SQLite dequeue transaction latency"),
    "checkpoint": ("hookaido_store_sqlite_checkpoint_seconds", "SQLite WAL checkpoint latency"),
}
SQLITE_COUNTS = {
    "retry": ("hookaido_store_sqlite_retry", "SQLite transactions retried"),
    "tx_commit": ("hookaido_store_sqlite_tx_commit", "SQLite transactions committed"),
    "tx_rollback": ("hookaido_store_sqlite_tx_rollback", "SQLite transactions rolled back"),
    "checkpoint": ("hookaido_store_sqlite_checkpoint", "SQLite WAL checkpoints"),
}
SQLITE_ERRORS = {
    ("begin_tx", "busy"): ("hookaido_store_sqlite_busy", "SQLite busy when beginning a write"),
    ("checkpoint", "error"): ("hookaido_store_sqlite_checkpoint_errors", "Failed checkpoints"),
}


# The operations each built-in backend reports; their series are shown from the start, at 0.
STORE_OPERATIONS = {
    "sqlite": {
        "seconds": tuple(SQLITE_SECONDS),
        "counts": tuple(SQLITE_COUNTS),
        "errors": tuple(SQLITE_ERRORS),
    },
    "memory": {
        "seconds": (),
        "counts": ("enqueue_reject", "evict"),
        "errors": (("enqueue", "memory_pressure"),),
    },
}


class StoreMetrics:
    """A ``StoreObserver`` that records one backend's reports into a ``Metrics`` registry."""

    def __init__(self, metrics: Metrics, backend: str):
        self.backend = backend
        self._seconds = metrics.store_operation_seconds
        self._total = metrics.store_operation
        self._errors = metrics.store_errors
        self._own_seconds: dict = {}
        self._own_counts: dict = {}
        self._own_errors: dict = {}
        self._declare_known_operations()
        if backend == "sqlite":
            self._declare_sqlite(metrics.registry)

    def _declare_known_operations(self) -> None:
        known = STORE_OPERATIONS.get(self.backend)
        if known is None:
            return  # a third-party backend's operations appear as it reports them
        for operation in known["seconds"]:
            self._seconds.labels(self.backend, operation)
        for operation in known["counts"]:
            self._total.labels(self.backend, operation)
        for operation, kind in known["errors"]:
            self._errors.labels(self.backend, operation, kind)

    def _declare_sqlite(self, registry) -> None:
        for operation, (name, doc) in SQLITE_SECONDS.items():
            self._own_seconds[operation] = Histogram(name, doc, registry=registry)
        for operation, (name, doc) in SQLITE_COUNTS.items():
            self._own_counts[operation] = Counter(name, doc, registry=registry)
        for key, (name, doc) in SQLITE_ERRORS.items():
            self._own_errors[key] = Counter(name, doc, registry=registry)

    def observe(self, operation: str, seconds: float) -> None:
        self._seconds.labels(self.backend, operation).observe(seconds)
        own = self._own_seconds.get(operation)
        if own is not None:
            own.observe(seconds)

    def count(self, operation: str) -> None:
        self._total.labels(self.backend, operation).inc()
        own = self._own_counts.get(operation)
        if own is not None:
            own.inc()

    def error(self, operation: str, kind: str) -> None:
        self._errors.labels(self.backend, operation, kind).inc()
        own = self._own_errors.get((operation, kind))
        if own is not None:
            own.inc()
