"""The Admin API checked line by line against spec/admin-api.md, over real loopback HTTP."""

import logging
from datetime import UTC, datetime, timedelta

import pytest

from hookaido.config.model import TrendSignals
from hookaido.observability.metrics import Metrics
from hookaido.server.admin_trends import TrendRow, trend_signals

from ..server.conftest import open_backend
from ..server.test_admin_api import (
    ADMIN,
    FANOUT,
    GITHUB,
    JOBS,
    MANAGED,
    OUTBOUND,
    AdminServer,
    admin_config,
)

TOKEN = "admin-token"


@pytest.fixture(params=["memory", "sqlite"])
def admin(request, tmp_path):
    """An Admin API with a bearer token, a labeled route and metrics, over each store."""
    store = open_backend(request.param, tmp_path)
    config = admin_config(GITHUB, JOBS, OUTBOUND, FANOUT, MANAGED, tokens=(ADMIN,))
    server = AdminServer(config, store, Metrics())
    yield server
    server.close()
    store.close()


def get(server, path, **query):
    return server.call("GET", path, token=TOKEN, query=query or None)


# -- §2 health -------------------------------------------------------------------------


def test_health_keeps_a_zero_age_and_lag_while_items_are_queued(admin):
    """'Age/lag keys and top_queued are omitted when no item is queued': a fresh item (age 0)
    still shows all four keys."""
    admin.store("fresh-1")

    status, body = get(admin, "/healthz", details="1")

    queue = body["diagnostics"]["queue"]
    assert status == 200
    assert queue["oldest_queued_age_seconds"] == 0
    assert queue["ready_lag_seconds"] == 0
    assert "oldest_queued_received_at" in queue and "earliest_queued_next_run_at" in queue
    assert queue["top_queued"][0]["queued"] == 1


def test_health_leaves_out_age_and_lag_when_nothing_is_queued(admin):
    admin.store("gone-1", state="dead")

    _, body = get(admin, "/healthz", details="1")

    queue = body["diagnostics"]["queue"]
    assert not {"oldest_queued_age_seconds", "ready_lag_seconds", "top_queued"} & set(queue)


# -- §1 before -------------------------------------------------------------------------

AUDIT = {"X-Hookaido-Audit-Reason": "conformance"}
MIDNIGHT = "2026-01-01T00:00:00Z"


def publish_at(server, received_at, *ids):
    items = [{"id": i, "route": "/jobs/deploy", "received_at": received_at} for i in ids]
    status, body = server.call(
        "POST", "/messages/publish", {"items": items}, token=TOKEN, headers=AUDIT
    )
    assert status == 200, body


def test_before_with_nanoseconds_keeps_items_strictly_earlier(admin):
    """'before … keeps items with received_at strictly earlier': midnight is earlier than
    one nanosecond past midnight, even though stored times stop at microseconds."""
    publish_at(admin, MIDNIGHT, "at-midnight")

    _, listed = get(admin, "/messages", before="2026-01-01T00:00:00.000000001Z")
    _, exact = get(admin, "/messages", before=MIDNIGHT)

    assert [item["id"] for item in listed["items"]] == ["at-midnight"]
    assert exact["items"] == []


def test_filter_before_with_nanoseconds_keeps_items_strictly_earlier(admin):
    publish_at(admin, MIDNIGHT, "to-cancel")
    body = {"route": "/jobs/deploy", "before": "2026-01-01T00:00:00.0000005Z", "preview_only": True}

    status, answer = admin.call(
        "POST", "/messages/cancel_by_filter", body, token=TOKEN, headers=AUDIT
    )

    assert status == 200
    assert answer["matched"] == 1


def test_messages_with_equal_received_at_are_ordered_by_id_descending(admin):
    publish_at(admin, MIDNIGHT, "evt-a", "evt-c", "evt-b")

    _, listed = get(admin, "/messages", route="/jobs/deploy")

    assert [item["id"] for item in listed["items"]] == ["evt-c", "evt-b", "evt-a"]


# -- hostile input: only ASCII numbers and times ---------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "\uff11"},  # fullwidth 1
        {"limit": "1_0"},
        {"before": "\uff12026-01-01T00:00:00Z"},
    ],
)
def test_query_numbers_and_times_take_ascii_digits_only(admin, query):
    status, body = get(admin, "/messages", **query)

    assert (status, body["code"]) == (400, "invalid_query")


def test_trend_window_takes_ascii_digits_only(admin):
    status, body = get(admin, "/backlog/trends", window="\uff11h")

    assert (status, body["code"]) == (400, "invalid_query")


def test_publish_times_take_ascii_digits_only(admin):
    item = {"id": "wide-1", "route": "/jobs/deploy", "received_at": "\uff12026-01-01T00:00:00Z"}

    status, body = admin.call(
        "POST", "/messages/publish", {"items": [item]}, token=TOKEN, headers=AUDIT
    )

    assert (status, body["code"], body["item_index"]) == (400, "invalid_received_at", 0)


# -- §9 trend signals ------------------------------------------------------------------


def test_growth_rate_rounds_a_half_tenth_away_from_zero():
    """'growth_rate_per_minute: (latest − earliest) / minutes between them, rounded to 0.1':
    one more item over four minutes is 0.25 per minute, shown as 0.3."""
    start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    samples = [
        TrendRow(start, queued=0, leased=0, dead=0),
        TrendRow(start + timedelta(minutes=4), queued=1, leased=0, dead=0),
    ]

    signals = trend_signals(samples, TrendSignals(), timedelta(minutes=15), samples[-1].captured_at)

    assert signals["growth_rate_per_minute"] == 0.3


# -- observability.md §3: the admin_management_mutation event --------------------------

MUTATION_KEYS = {
    "operation",
    "route",
    "target",
    "state",
    "limit",
    "preview_only",
    "matched",
    "changed",
    "reason",
    "actor",
    "request_id",
    "at",
}


class MutationLog(logging.Handler):
    def __init__(self):
        super().__init__()
        self.fields = []

    def emit(self, record):
        if record.getMessage() == "admin_management_mutation":
            self.fields.append(getattr(record, "fields", {}))


@pytest.fixture
def mutation_log():
    handler = MutationLog()
    logger = logging.getLogger("hookaido.runtime")
    logger.addHandler(handler)
    yield handler.fields
    logger.removeHandler(handler)


def test_every_mutation_event_carries_every_documented_key(admin, mutation_log):
    admin.store("dead-1", state="dead")
    publish_at(admin, MIDNIGHT, "published-1")
    admin.call("POST", "/dlq/requeue", {"ids": ["dead-1"]}, token=TOKEN, headers=AUDIT)
    admin.call(
        "POST",
        "/messages/cancel_by_filter",
        {"route": "/jobs/deploy", "preview_only": True},
        token=TOKEN,
        headers=AUDIT,
    )

    operations = [fields["operation"] for fields in mutation_log]
    assert operations == ["publish_messages", "dlq_requeue", "cancel_by_filter"]
    for fields in mutation_log:
        assert MUTATION_KEYS <= set(fields), fields["operation"]
    publish, requeue, _ = mutation_log
    assert (publish["route"], publish["target"], publish["changed"]) == ("/jobs/deploy", "pull", 1)
    assert (requeue["target"], requeue["matched"], requeue["changed"]) == ("pull", 1, 1)


def test_trend_durations_accept_the_micro_sign_unit(admin):
    """spec/README.md: API durations take the units ns, us/µs, ms, s, m, h."""
    status, body = get(admin, "/backlog/trends", window="3600000000\u00b5s", step="5m")

    assert (status, body["code"]) == (503, "backlog_unavailable")  # valid; no recorder here
