"""The counter sections of ``/healthz?details=1`` agree with the Prometheus counters."""

from hookaido.observability.diagnostics import metrics_diagnostics
from hookaido.observability.metrics import Metrics


def test_sections_after_known_traffic():
    metrics = Metrics()
    metrics.ingress_accepted.inc(3)
    metrics.ingress_enqueued.inc(5)
    metrics.ingress_reject("auth", 401)
    metrics.ingress_reject("auth", 403)
    metrics.ingress_reject("rate_limit", 429)
    metrics.ingress_backpressure.labels("ready_lag").inc()
    metrics.ingress_backpressure_applied.inc()
    metrics.delivery_attempts.inc(4)
    metrics.delivery_acked.inc(2)
    metrics.delivery_retry.inc(1)
    metrics.delivery_dead.inc(1)
    metrics.delivery_dead_by_reason.labels("no_retry").inc()
    metrics.pull_dequeue.labels("/a", "200").inc(2)
    metrics.pull_dequeue.labels("/a", "204").inc()
    metrics.pull_dequeue.labels("/b", "4xx").inc()
    metrics.pull_acked.labels("/a").inc(2)
    metrics.pull_nack_conflict.labels("/b").inc()
    metrics.pull_lease_active.labels("/a").set(1)
    metrics.publish_accepted.inc(6)
    metrics.publish_rejected.inc(2)
    metrics.publish_rejected_kind["conflict"].inc()
    metrics.publish_rejected_kind["queue_full"].inc()

    sections = metrics_diagnostics(metrics)

    ingress = sections["ingress"]
    assert ingress["accepted_total"] == 3
    assert ingress["rejected_total"] == 3
    assert ingress["enqueued_total"] == 5
    assert ingress["rejected_by_reason"] == {
        "memory_pressure": 0,
        "queue_full": 0,
        "adaptive_backpressure": 0,
        "rate_limit": 1,
        "auth": 2,
        "not_found": 0,
        "policy": 0,
        "other": 0,
    }
    assert ingress["adaptive_backpressure_applied_total"] == 1
    assert ingress["adaptive_backpressure_by_reason"]["ready_lag"] == 1
    assert ingress["adaptive_backpressure_by_reason"]["sustained_growth"] == 0
    assert sections["delivery"] == {
        "attempt_total": 4,
        "acked_total": 2,
        "retry_total": 1,
        "dead_total": 1,
        "dead_by_reason": {
            "max_retries": 0,
            "no_retry": 1,
            "policy_denied": 0,
            "unspecified": 0,
            "other": 0,
        },
    }
    pull = sections["pull"]
    assert pull["total"]["dequeue_total"] == {"200": 2, "204": 1, "4xx": 1, "5xx": 0}
    assert pull["total"]["acked_total"] == 2
    assert pull["total"]["nack_conflict_total"] == 1
    assert pull["total"]["lease_active"] == 1
    assert pull["by_route"]["/a"]["dequeue_total"] == {"200": 2, "204": 1, "4xx": 0, "5xx": 0}
    assert pull["by_route"]["/b"]["nack_conflict_total"] == 1
    assert sections["publish"]["accepted_total"] == 6
    assert sections["publish"]["rejected_total"] == 2
    assert sections["publish"]["rejected_conflict_total"] == 1
    assert sections["publish"]["rejected_queue_full_total"] == 1
    assert sections["publish"]["rejected_validation_total"] == 0
    assert sections["publish"]["scoped_rejected_total"] == 0
    assert sections["tracing"] == {
        "enabled": False,
        "init_failures_total": 0,
        "export_errors_total": 0,
    }


def test_a_fresh_process_reports_zeros_and_no_routes():
    sections = metrics_diagnostics(Metrics())

    assert sections["ingress"]["accepted_total"] == 0
    assert sections["pull"]["by_route"] == {}
    assert sections["pull"]["total"]["dequeue_total"] == {"200": 0, "204": 0, "4xx": 0, "5xx": 0}
    assert set(sections["publish"]) == {
        "accepted_total",
        "rejected_total",
        "rejected_validation_total",
        "rejected_policy_total",
        "rejected_conflict_total",
        "rejected_queue_full_total",
        "rejected_store_total",
        "rejected_managed_target_mismatch_total",
        "rejected_managed_resolver_missing_total",
        "scoped_accepted_total",
        "scoped_rejected_total",
    }
