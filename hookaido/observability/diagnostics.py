"""The counter sections of ``/healthz?details=1`` (ingress, delivery, pull, publish, tracing).

Read from the same ``Metrics`` the scrape shows, so health and Prometheus always agree.
"""

from hookaido.observability.metrics import (
    BACKPRESSURE_REASONS,
    DEAD_REASONS,
    INGRESS_REJECT_REASONS,
)

PULL_DEQUEUE_STATUSES = ("200", "204", "4xx", "5xx")


def _samples(metric) -> list[tuple[dict, float]]:
    """(labels, value) of every counted series: ``*_total`` for counters, the value for gauges."""
    found = []
    for family in metric.collect():
        for sample in family.samples:
            if family.type == "counter" and not sample.name.endswith("_total"):
                continue
            found.append((sample.labels, sample.value))
    return found


def _value(metric) -> int:
    return int(sum(value for _, value in _samples(metric)))


def _by_label(metric, label: str, names=()) -> dict[str, int]:
    totals = {name: 0 for name in names}
    for labels, value in _samples(metric):
        key = labels.get(label, "")
        totals[key] = totals.get(key, 0) + int(value)
    return totals


def ingress_section(metrics) -> dict:
    return {
        "accepted_total": _value(metrics.ingress_accepted),
        "rejected_total": _value(metrics.ingress_rejected),
        "enqueued_total": _value(metrics.ingress_enqueued),
        "rejected_by_reason": _by_label(
            metrics.ingress_rejected_by_reason, "reason", INGRESS_REJECT_REASONS
        ),
        "adaptive_backpressure_applied_total": _value(metrics.ingress_backpressure_applied),
        "adaptive_backpressure_by_reason": _by_label(
            metrics.ingress_backpressure, "reason", BACKPRESSURE_REASONS
        ),
    }


def delivery_section(metrics) -> dict:
    return {
        "attempt_total": _value(metrics.delivery_attempts),
        "acked_total": _value(metrics.delivery_acked),
        "retry_total": _value(metrics.delivery_retry),
        "dead_total": _value(metrics.delivery_dead),
        "dead_by_reason": _by_label(metrics.delivery_dead_by_reason, "reason", DEAD_REASONS),
    }


def _empty_pull() -> dict:
    return {
        "dequeue_total": {status: 0 for status in PULL_DEQUEUE_STATUSES},
        "acked_total": 0,
        "nacked_total": 0,
        "ack_conflict_total": 0,
        "nack_conflict_total": 0,
        "lease_active": 0,
        "lease_expired_total": 0,
    }


def pull_section(metrics) -> dict:
    total = _empty_pull()
    by_route: dict[str, dict] = {}

    def add(route: str, key: str, value: float, status: str | None = None) -> None:
        for section in (total, by_route.setdefault(route, _empty_pull())):
            if status is None:
                section[key] += int(value)
            else:
                section[key][status] = section[key].get(status, 0) + int(value)

    for labels, value in _samples(metrics.pull_dequeue):
        add(labels.get("route", "_unknown"), "dequeue_total", value, labels.get("status", "5xx"))
    per_route = {
        "acked_total": metrics.pull_acked,
        "nacked_total": metrics.pull_nacked,
        "ack_conflict_total": metrics.pull_ack_conflict,
        "nack_conflict_total": metrics.pull_nack_conflict,
        "lease_active": metrics.pull_lease_active,
        "lease_expired_total": metrics.pull_lease_expired,
    }
    for key, metric in per_route.items():
        for labels, value in _samples(metric):
            add(labels.get("route", "_unknown"), key, value)
    return {"total": total, "by_route": by_route}


def publish_section(metrics) -> dict:
    section = {
        "accepted_total": _value(metrics.publish_accepted),
        "rejected_total": _value(metrics.publish_rejected),
    }
    for kind, metric in metrics.publish_rejected_kind.items():
        section[f"rejected_{kind}_total"] = _value(metric)
    section["scoped_accepted_total"] = _value(metrics.publish_scoped_accepted)
    section["scoped_rejected_total"] = _value(metrics.publish_scoped_rejected)
    return section


def tracing_section(metrics) -> dict:
    return {
        "enabled": _value(metrics.tracing_enabled) == 1,
        "init_failures_total": _value(metrics.tracing_init_failures),
        "export_errors_total": _value(metrics.tracing_export_errors),
    }


def metrics_diagnostics(metrics) -> dict:
    """``{"ingress": ..., "delivery": ..., "pull": ..., "publish": ..., "tracing": ...}``."""
    return {
        "ingress": ingress_section(metrics),
        "delivery": delivery_section(metrics),
        "pull": pull_section(metrics),
        "publish": publish_section(metrics),
        "tracing": tracing_section(metrics),
    }
