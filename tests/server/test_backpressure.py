"""Adaptive backpressure decisions: thresholds in order, cached stats, the growth trend."""

from datetime import UTC, datetime, timedelta

from hookaido.config.model import AdaptiveBackpressure, TrendSignals
from hookaido.queue import Stats
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


def test_steady_growth_of_the_queue_is_refused():
    clock = Clock()
    source = StatsSource()
    backpressure = Backpressure(source, clock=clock)
    settings = AdaptiveBackpressure(enabled=True, min_total=10, queued_percent=100)

    decisions = []
    for total in (20, 30, 40, 50):
        source.set(queued=total // 2, leased=total - total // 2)
        decisions.append(backpressure.check(settings, TREND))
        clock.now += 1.5

    assert decisions[:3] == [None, None, None]
    assert decisions[3] == "sustained_growth"


def test_sustained_growth_counts_increases_or_net_growth():
    assert sustained_growth([1, 2, 3, 4], TREND) is True
    assert sustained_growth([5, 5, 5, 5, 5], TREND) is False
    assert sustained_growth([10, 0, 0, 0, 40], TREND) is True
    assert sustained_growth([], TREND) is False
