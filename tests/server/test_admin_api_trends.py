"""Backlog trends: snapshots of the real memory backend, the signals computed from them, and
``GET /backlog/trends`` plus health details over real HTTP."""

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest

from hookaido.config.model import Config, PullConfig, Route, TrendSignals
from hookaido.plugins import registry
from hookaido.queue import BackendSettings, Envelope
from hookaido.runtime import Generation, Runtime
from hookaido.server.admin_api import make_admin_app
from hookaido.server.admin_trends import TrendRecorder, TrendRow, trend_signals

from ..support.loopback import LoopbackServer

START = datetime(2026, 2, 9, 10, 0, tzinfo=UTC)
SETTINGS = TrendSignals()
CONFIG = Config(
    routes=(
        Route(path="/webhooks/github", pull=PullConfig(path="/github")),
        Route(path="/jobs/deploy", channel="internal", pull=PullConfig(path="/jobs")),
    )
)


class Clock:
    def __init__(self, moment: datetime):
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, **span) -> None:
        self.moment += timedelta(**span)


@pytest.fixture
def backend(tmp_path):
    store = registry().get("backend", "memory").factory(BackendSettings())
    store.open()
    yield store
    store.close()


def enqueue(backend, message_id, route="/webhooks/github"):
    now = datetime.now(UTC)
    backend.enqueue([Envelope(message_id, route, "pull", b"{}", now, now)])


class AdminServer(LoopbackServer):
    def __init__(self, backend, trends):
        runtime = Runtime(Generation(CONFIG), backend, registry())
        super().__init__(make_admin_app(runtime, trends), threads=2)

    def get(self, path, **query):
        status, body, _ = self.exchange("GET", f"{path}?{urlencode(query)}" if query else path)
        return status, body


@pytest.fixture
def serve(backend, loopback_servers):
    def start(trends):
        server = AdminServer(backend, trends)
        loopback_servers.append(server)
        return server

    return start


# -- the recorder ----------------------------------------------------------------------


def test_a_capture_records_a_global_row_and_one_per_route_and_target(backend):
    clock = Clock(START)
    recorder = TrendRecorder(backend, clock)
    enqueue(backend, "evt_1")
    enqueue(backend, "evt_2")
    enqueue(backend, "job_1", route="/jobs/deploy")
    backend.dequeue("/jobs/deploy", "pull", 1, timedelta(minutes=5))

    recorder.capture()

    (overall,) = recorder.samples(START, START)
    (github,) = recorder.samples(START, START, route="/webhooks/github")
    (jobs,) = recorder.samples(START, START, route="/jobs/deploy", target="pull")
    assert (overall.queued, overall.leased, overall.dead) == (2, 1, 0)
    assert (github.queued, github.leased) == (2, 0)
    assert (jobs.queued, jobs.leased) == (0, 1)


def test_a_filter_matching_nothing_still_sees_every_capture_as_zero(backend):
    recorder = TrendRecorder(backend, Clock(START))
    enqueue(backend, "evt_1")

    recorder.capture()

    (row,) = recorder.samples(START, START, route="/nowhere")
    assert row.total == 0


def test_the_recorder_thread_captures_at_start(backend):
    recorder = TrendRecorder(backend)

    recorder.start()
    recorder.stop()

    assert len(recorder.samples(START, datetime.now(UTC) + timedelta(seconds=1))) == 1


# -- signals ---------------------------------------------------------------------------


def rows(*totals, dead=0, leased=0, every=timedelta(minutes=1)):
    return [
        TrendRow(START + every * index, total - dead - leased, leased, dead)
        for index, total in enumerate(totals)
    ]


def signals_at_last(samples, settings=SETTINGS):
    return trend_signals(samples, settings, settings.window, samples[-1].captured_at)


def test_without_samples_sampling_is_stale_and_the_status_warns():
    signals = trend_signals([], SETTINGS, SETTINGS.window, START)

    assert signals["status"] == "warn"
    assert signals["sampling_stale"] is True
    assert signals["active_alerts"] == ["sampling_stale"]
    assert [action["id"] for action in signals["operator_actions"]] == ["sampling_stale_recover"]
    assert signals["operator_actions"][0]["severity"] == "critical"


def test_a_flat_backlog_is_ok():
    signals = signals_at_last(rows(5, 5, 5, 5))

    assert signals["status"] == "ok"
    assert signals["active_alerts"] == [] and signals["operator_actions"] == []
    assert (signals["baseline_total"], signals["delta_total"]) == (5, 0)
    assert signals["window"] == "15m0s" and signals["expected_capture_interval"] == "1m0s"


def test_three_increases_in_a_row_are_sustained_growth():
    signals = signals_at_last(rows(1, 2, 3, 4))

    assert signals["consecutive_increases"] == 3
    assert signals["sustained_growth"] is True
    assert signals["baseline_total"] == 2 and signals["delta_total"] == 2
    assert signals["delta_percent"] == 100
    assert signals["growth_rate_per_minute"] == 1.0
    (action,) = signals["operator_actions"]
    assert (action["id"], action["severity"]) == ("backlog_growth_triage", "warn")


def test_a_jump_over_the_surge_threshold_is_a_recent_surge_and_critical():
    signals = signals_at_last(rows(10, 10, 10, 40))

    assert signals["recent_surge"] is True
    assert signals["sustained_growth"] is False
    assert "recent_surge" in signals["active_alerts"]
    triage = [act for act in signals["operator_actions"] if act["id"] == "backlog_growth_triage"]
    assert triage[0]["severity"] == "critical"


def test_growth_from_zero_reports_one_hundred_percent():
    signals = signals_at_last(rows(0, 0, 3))

    assert (signals["baseline_total"], signals["delta_percent"]) == (0, 100)


def test_a_large_dead_share_is_flagged():
    signals = signals_at_last(rows(20, 20, dead=10))

    assert signals["dead_share_percent"] == 50
    assert signals["dead_share_high"] is True
    assert "dead_share_drain" in [action["id"] for action in signals["operator_actions"]]


def test_queued_items_piling_up_without_workers_is_queued_pressure():
    signals = signals_at_last(rows(30, 30, leased=2))

    assert signals["queued_share_percent"] == 93
    assert signals["queued_pressure"] is True
    assert signals["operator_actions"][0]["id"] == "queued_pressure_relieve"


def test_old_samples_make_sampling_stale():
    samples = rows(5, 5)

    signals = trend_signals(samples, SETTINGS, SETTINGS.window, START + timedelta(minutes=10))

    assert signals["freshness_seconds"] == 540
    assert signals["sampling_stale"] is True
    assert signals["active_alerts"][0] == "sampling_stale"


# -- over HTTP -------------------------------------------------------------------------


def recorded(backend):
    """Three captures a minute apart with a growing backlog."""
    clock = Clock(START)
    recorder = TrendRecorder(backend, clock)
    for number in range(3):
        enqueue(backend, f"evt_{number}")
        recorder.capture()
        clock.advance(minutes=1)
    return recorder


COUNTED = ("queued", "leased", "dead", "total")


def test_trends_bucket_the_recorded_snapshots(serve, backend):
    server = serve(recorded(backend))

    status, body = server.get(
        "/backlog/trends", window="10m", step="5m", until="2026-02-09T10:10:00Z"
    )

    assert status == 200
    assert (body["window"], body["step"]) == ("10m0s", "5m0s")
    assert (body["since"], body["until"]) == ("2026-02-09T10:00:00Z", "2026-02-09T10:10:00Z")
    assert (body["sample_count"], body["point_count"], body["non_empty_point_count"]) == (3, 2, 1)
    assert (body["latest_total"], body["max_total"]) == (3, 3)
    assert body["latest_captured_at"] == "2026-02-09T10:02:00Z"
    first, second = body["items"]
    assert (first["sample_count"], first["queued_last"], first["total_max"]) == (3, 3, 3)
    assert second == {
        "bucket_start": "2026-02-09T10:05:00Z",
        "bucket_end": "2026-02-09T10:10:00Z",
        "sample_count": 0,
        **{f"{state}_{kind}": 0 for kind in ("last", "max") for state in COUNTED},
    }
    assert body["signals"]["sample_count"] == 3
    assert body["selector"] == {}


def test_trends_filtered_by_route_sum_that_route_only(serve, backend):
    recorder = recorded(backend)
    server = serve(recorder)

    _, body = server.get(
        "/backlog/trends", route="/jobs/deploy", window="10m", until="2026-02-09T10:10:00Z"
    )

    assert body["selector"] == {"route": "/jobs/deploy"}
    assert body["latest_total"] == 0 and body["sample_count"] == 3


def test_health_details_carry_the_signals_of_recent_snapshots(serve, backend):
    recorder = TrendRecorder(backend)
    recorder.capture()
    server = serve(recorder)

    status, body = server.get("/healthz", details="1")

    signals = body["diagnostics"]["queue"]["trend_signals"]
    assert status == 200
    assert signals["sample_count"] == 1 and signals["sampling_stale"] is False


def test_too_many_points_are_an_invalid_query(serve, backend):
    server = serve(recorded(backend))

    status, body = server.get("/backlog/trends", window="168h", step="1m")

    assert (status, body["code"]) == (400, "invalid_query")
