"""The Admin API: health, message and DLQ listings, publish, lifecycle mutations, delivery
attempts and backlog views. One sink dispatches by cleaned path; every error is JSON.
"""

import threading
import time
from datetime import UTC, datetime

import falcon

from hookaido.queue.backend import AttemptFilter, MessageFilter
from hookaido.queue.errors import QueueError
from hookaido.server import admin_backlog, admin_mutations, admin_publish, admin_trends
from hookaido.server.admin_common import (
    invalid_query,
    query_before,
    query_bool,
    query_limit,
    query_param,
    query_route,
    query_selector,
    query_state,
)
from hookaido.server.envelope_json import attempt_item, message_item, render_time
from hookaido.server.jsonbody import (
    APIError,
    answer_error,
    answer_json,
    clean_path,
    unexpected_error_handler,
)
from hookaido.server.tokens import bearer_token, load_allowlist, token_allowed

OUTCOMES = ("acked", "retry", "dead")
QUEUE_DIAGNOSTICS_MAX_AGE = 1.0


class AdminAPI:
    """Answers every Admin API request: auth, then path, then method, then the endpoint."""

    def __init__(self, runtime, trends=None):
        self.runtime = runtime
        self.trends = trends
        self.health = HealthReport(runtime, trends)
        self.endpoints = {
            "/healthz": {"GET": self.health.answer},
            "/messages": {"GET": self._messages},
            "/messages/publish": {"POST": self._publish},
            "/dlq": {"GET": self._dlq},
            "/attempts": {"GET": self._attempts},
            "/backlog/top_queued": {"GET": self._backlog(admin_backlog.top_queued)},
            "/backlog/oldest_queued": {"GET": self._backlog(admin_backlog.oldest_queued)},
            "/backlog/aging_summary": {"GET": self._backlog(admin_backlog.aging_summary)},
            "/backlog/trends": {"GET": self._trends},
        }
        for path, mutation in admin_mutations.BY_ID.items():
            self.endpoints[path] = {"POST": self._by_ids(mutation)}
        for path, mutation in admin_mutations.BY_FILTER.items():
            self.endpoints[path] = {"POST": self._by_filter(mutation)}

    def __call__(self, req: falcon.Request, resp: falcon.Response, **_params) -> None:
        generation = self.runtime.current
        path = clean_path(req.path)
        try:
            if not (path == "/healthz" and req.method == "GET" and not req.query_string):
                self._check_token(req, generation)
            methods = self.endpoints.get(path)
            if methods is None:
                raise APIError(404, "not_found", f"no admin endpoint {path}")
            handler = methods.get(req.method)
            if handler is None:
                expected = ", ".join(methods)
                resp.set_header("Allow", expected)
                raise APIError(405, "method_not_allowed", f"{path} takes {expected}")
            handler(generation, req, resp)
        except APIError as error:
            answer_error(resp, error)
        except QueueError:
            answer_error(resp, APIError(503, "store_unavailable", "the queue store failed"))

    @staticmethod
    def _check_token(req, generation) -> None:
        refs = generation.config.admin_api.tokens
        if not refs:
            return
        allowlist = load_allowlist(generation, refs)
        if not token_allowed(bearer_token(req.get_header("Authorization")), allowlist):
            raise APIError(401, "unauthorized", "a valid bearer token is required")

    # -- reads --------------------------------------------------------------------------

    def _messages(self, generation, req, resp) -> None:
        route, _ = query_selector(req, generation.config)
        target = query_param(req, "target") or None
        state = query_state(req)
        selector = MessageFilter(
            route=route,
            target=target,
            states=(state,) if state else None,
            before=query_before(req),
            limit=query_limit(req),
        )
        shown = _included(req)

        found = self.runtime.backend.list_messages(selector)

        answer_json(resp, {"items": [message_item(envelope, *shown) for envelope in found]})

    def _dlq(self, generation, req, resp) -> None:
        selector = MessageFilter(
            route=query_route(req),
            states=("dead",),
            before=query_before(req),
            limit=query_limit(req),
        )
        shown = _included(req)

        found = self.runtime.backend.list_messages(selector)

        items = [message_item(envelope, *shown, with_state=False) for envelope in found]
        answer_json(resp, {"items": items})

    def _attempts(self, generation, req, resp) -> None:
        route, _ = query_selector(req, generation.config)
        outcome = (query_param(req, "outcome") or "").lower() or None
        if outcome is not None and outcome not in OUTCOMES:
            raise invalid_query(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
        selector = AttemptFilter(
            route=route,
            target=query_param(req, "target") or None,
            event_id=query_param(req, "event_id") or None,
            outcome=outcome,
            before=query_before(req),
            limit=query_limit(req),
        )

        found = self.runtime.backend.list_attempts(selector)

        answer_json(resp, {"items": [attempt_item(attempt) for attempt in found]})

    # -- writes -------------------------------------------------------------------------

    def _publish(self, generation, req, resp) -> None:
        admin_publish.publish(self.runtime, generation, req, resp)

    def _by_ids(self, mutation):
        def handler(generation, req, resp):
            admin_mutations.mutate_by_ids(mutation, self.runtime, generation, req, resp)

        return handler

    def _by_filter(self, mutation):
        def handler(generation, req, resp):
            admin_mutations.mutate_by_filter(mutation, self.runtime, generation, req, resp)

        return handler

    def _trends(self, generation, req, resp) -> None:
        admin_trends.answer_trends(self.trends, generation.config, req, resp)

    def _backlog(self, view):
        def handler(generation, req, resp):
            view(self.runtime, req, resp)

        return handler


def _included(req) -> tuple[bool, bool, bool]:
    return (
        query_bool(req, "include_payload"),
        query_bool(req, "include_headers"),
        query_bool(req, "include_trace"),
    )


# -- health ----------------------------------------------------------------------------


class HealthReport:
    """``GET /healthz``: plain ``ok`` or, with ``details=1``, the diagnostics document.

    Queue statistics are reused for up to a second; while one thread refreshes them the
    others answer with the previous value instead of queuing behind the store.
    """

    def __init__(self, runtime, trends=None):
        self.runtime = runtime
        self.trends = trends
        self._refresh = threading.Lock()
        self._cached: tuple[float, dict] | None = None

    def answer(self, generation, req, resp) -> None:
        if not query_bool(req, "details"):
            resp.status = 200
            resp.content_type = "text/plain; charset=utf-8"
            resp.text = "ok\n"
            return
        now = datetime.now(UTC)
        diagnostics = {
            "config": _config_section(generation),
            "queue": self._queue_section(generation, now),
        }
        diagnostics.update(_metric_sections(self.runtime.metrics, generation.config))
        store = self._store_section()
        if store is not None:
            diagnostics["store"] = store
        answer_json(resp, {"ok": True, "time": render_time(now), "diagnostics": diagnostics})

    def _queue_section(self, generation, now) -> dict:
        cached = self._cached
        if cached is not None and time.monotonic() - cached[0] <= QUEUE_DIAGNOSTICS_MAX_AGE:
            return cached[1]
        if not self._refresh.acquire(blocking=cached is None):
            return cached[1] if cached is not None else {"ok": False, "status": "warming"}
        try:
            try:
                stats = self.runtime.backend.stats()
            except QueueError as error:
                return {"ok": False, "error": str(error) or type(error).__name__}
            signals = admin_trends.health_signals(
                self.trends, generation.config.defaults.trend_signals, now
            )
            section = admin_backlog.queue_diagnostics(stats, now, signals)
            self._cached = (time.monotonic(), section)
            return section
        finally:
            self._refresh.release()

    def _store_section(self) -> dict | None:
        diagnose = getattr(self.runtime.backend, "diagnostics", None)
        if diagnose is None:
            return None
        try:
            return diagnose()
        except QueueError:
            return None


def _config_section(generation) -> dict:
    section = {"fingerprint": generation.fingerprint, "generation": generation.number}
    if generation.loaded_at is not None:
        section["loaded_at"] = render_time(generation.loaded_at)
    return section


def _samples(metric) -> list:
    return [sample for family in metric.collect() for sample in family.samples]


def _total(metric) -> int:
    return int(sum(s.value for s in _samples(metric) if s.name.endswith("_total")))


def _by_label(metric, label: str) -> dict:
    counts: dict = {}
    for sample in _samples(metric):
        if sample.name.endswith("_total"):
            key = sample.labels[label]
            counts[key] = counts.get(key, 0) + int(sample.value)
    return counts


def _metric_sections(metrics, config) -> dict:
    """The ingress, delivery, pull, publish and tracing sections, read from the counters."""
    if metrics is None:
        return {
            "ingress": {},
            "delivery": {},
            "pull": {"total": _pull_shape(), "by_route": {}},
            "publish": {},
            "tracing": {
                "enabled": False,
                "init_failures_total": 0,
                "export_errors_total": 0,
            },
        }
    publish = {
        "accepted_total": _total(metrics.publish_accepted),
        "rejected_total": _total(metrics.publish_rejected),
    }
    for kind, counter in metrics.publish_rejected_kind.items():
        publish[f"rejected_{kind}_total"] = _total(counter)
    publish["scoped_accepted_total"] = _total(metrics.publish_scoped_accepted)
    publish["scoped_rejected_total"] = _total(metrics.publish_scoped_rejected)
    return {
        "ingress": {
            "accepted_total": _total(metrics.ingress_accepted),
            "rejected_total": _total(metrics.ingress_rejected),
            "enqueued_total": _total(metrics.ingress_enqueued),
            "rejected_by_reason": _by_label(metrics.ingress_rejected_by_reason, "reason"),
            "adaptive_backpressure_applied_total": _total(metrics.ingress_backpressure_applied),
            "adaptive_backpressure_by_reason": _by_label(metrics.ingress_backpressure, "reason"),
        },
        "delivery": {
            "attempt_total": _total(metrics.delivery_attempts),
            "acked_total": _total(metrics.delivery_acked),
            "retry_total": _total(metrics.delivery_retry),
            "dead_total": _total(metrics.delivery_dead),
            "dead_by_reason": _by_label(metrics.delivery_dead_by_reason, "reason"),
        },
        "pull": _pull_section(metrics),
        "publish": publish,
        "tracing": {
            "enabled": bool(config.observability.tracing_enabled),
            "init_failures_total": _total(metrics.tracing_init_failures),
            "export_errors_total": _total(metrics.tracing_export_errors),
        },
    }


def _pull_shape() -> dict:
    return {
        "dequeue_total": {"200": 0, "204": 0, "4xx": 0, "5xx": 0},
        "acked_total": 0,
        "nacked_total": 0,
        "ack_conflict_total": 0,
        "nack_conflict_total": 0,
        "lease_active": 0,
        "lease_expired_total": 0,
    }


def _pull_section(metrics) -> dict:
    total = _pull_shape()
    by_route: dict[str, dict] = {}

    def add(route: str, key: str, value: float, status: str | None = None) -> None:
        for shape in (total, by_route.setdefault(route, _pull_shape())):
            if status is not None:
                shape[key][status] = shape[key].get(status, 0) + int(value)
            else:
                shape[key] += int(value)

    for sample in _samples(metrics.pull_dequeue):
        if sample.name.endswith("_total"):
            add(sample.labels["route"], "dequeue_total", sample.value, sample.labels["status"])
    per_route = (
        ("acked_total", metrics.pull_acked),
        ("nacked_total", metrics.pull_nacked),
        ("ack_conflict_total", metrics.pull_ack_conflict),
        ("nack_conflict_total", metrics.pull_nack_conflict),
        ("lease_expired_total", metrics.pull_lease_expired),
    )
    for key, counter in per_route:
        for sample in _samples(counter):
            if sample.name.endswith("_total"):
                add(sample.labels["route"], key, sample.value)
    for sample in _samples(metrics.pull_lease_active):
        add(sample.labels["route"], "lease_active", sample.value)
    return {"total": total, "by_route": by_route}


# -- the app ---------------------------------------------------------------------------


def make_admin_app(runtime, trends=None) -> falcon.App:
    """The Admin API as a falcon app; paths arrive without the configured prefix.

    ``trends`` is a started ``TrendRecorder``; without one, trend signals report stale
    sampling and ``GET /backlog/trends`` answers ``503 backlog_unavailable``.
    """
    app = falcon.App()
    app.add_sink(AdminAPI(runtime, trends), prefix="/")
    app.add_error_handler(Exception, unexpected_error_handler("admin_api_internal_error"))
    return app
