"""Adaptive backpressure decisions: thresholds in order, cached stats, the growth trend."""

from datetime import UTC, datetime, timedelta

from hookaido.config.model import AdaptiveBackpressure, TrendSignals
from hookaido.queue import Stats
from hookaido.queue.model import TrendRow
from hookaido.server.backpressure import Backpressure, sustained_growth

ON = AdaptiveBackpressure(enabled=True, min_total=10, queued_percent=90)
TREND = TrendSignals(expected_capture_interval=timedelta(seconds=1), window=timedelta(minutes=5))


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class StatsSource:
    def __init__(self, queued=0, leased=0, dead=0, oldest=None, ready=None):
        self.calls = 0
        self.set(queued, leased, dead, oldest, ready)

    def set(self, queued=0, leased=0, dead=0, oldest=None, ready=None):
        self.value = Stats(
            total=queued + leased + dead,
            by_state={"queued": queued, "leased": leased, "dead": dead},
            oldest_queued_received_at=oldest,
            earliest_queued_next_run_at=ready,
        )

    def stats(self):
        self.calls += 1
        return self.value


def test_a_small_active_queue_is_always_allowed():
    source = StatsSource(queued=9, leased=0)

    assert Backpressure(source).check(ON, TREND) is None


def test_old_queued_work_is_refused_after_the_lag_checks():
    old = datetime.now(UTC) - timedelta(minutes=10)
    source = StatsSource(queued=5, leased=10, oldest=old, ready=datetime.now(UTC))

    assert Backpressure(source).check(ON, TREND) == "oldest_queued_age"


def test_stats_are_read_at_most_every_250_ms():
    clock = Clock()
    source = StatsSource(queued=5, leased=10)
    backpressure = Backpressure(source, clock=clock)

    for _ in range(5):
        backpressure.check(ON, TREND)
    clock.now += 0.3
    backpressure.check(ON, TREND)

    assert source.calls == 2


class Snapshots:
    """Backlog trend samples as the ``TrendRecorder`` hands them out, oldest first."""

    def __init__(self, *totals):
        start = datetime.now(UTC) - timedelta(minutes=len(totals))
        self.rows = [
            TrendRow(start + timedelta(minutes=n), total, 0, 0) for n, total in enumerate(totals)
        ]

    def samples(self, since, until):
        return [row for row in self.rows if since <= row.captured_at <= until]


def test_steady_growth_of_the_backlog_snapshots_is_refused():
    source = StatsSource(queued=20, leased=20)
    settings = AdaptiveBackpressure(enabled=True, min_total=10, queued_percent=100)

    growing = Backpressure(source, Snapshots(20, 30, 40, 50)).check(settings, TREND)
    steady = Backpressure(source, Snapshots(40, 40, 40, 40)).check(settings, TREND)

    assert growing == "sustained_growth"
    assert steady is None


def test_growth_is_not_measured_without_snapshots():
    source = StatsSource(queued=20, leased=20)
    settings = AdaptiveBackpressure(enabled=True, min_total=10, queued_percent=100)

    assert Backpressure(source).check(settings, TREND) is None


def test_queued_share_rounds_half_up():
    source = StatsSource(queued=1, leased=7)  # 12.5 %
    settings = AdaptiveBackpressure(enabled=True, min_total=8, queued_percent=13)

    assert Backpressure(source).check(settings, TREND) == "queued_pressure"


def test_sustained_growth_counts_increases_or_net_growth():
    assert sustained_growth([1, 2, 3, 4], TREND) is True
    assert sustained_growth([5, 5, 5, 5, 5], TREND) is False
    assert sustained_growth([10, 0, 0, 0, 40], TREND) is True
    assert sustained_growth([], TREND) is False
    assert sustained_growth([0, 0, 0, 2, 10], TREND) is False  # baseline 0.5 rounds to 1
