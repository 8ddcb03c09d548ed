"""Adaptive backpressure: refuse new webhooks while the queue shows it is not keeping up.

Reads backend stats at most every 250 ms and the backlog trend samples (the same snapshots the
Admin API reports) at most every second. Never blocks ingress on a failing store: no stats,
no refusal.
"""

import math
import threading
import time
from datetime import UTC, datetime

from hookaido.config.model import AdaptiveBackpressure, TrendSignals

STATS_MAX_AGE = 0.25
TREND_MAX_AGE = 1.0
MAX_SAMPLES = 512


def rounded_percent(part: int, whole: int) -> int:
    """``part * 100 / whole`` rounded half up, in exact integer arithmetic (``whole > 0``)."""
    return (part * 200 + whole) // (whole * 2)


def sustained_growth(totals: list[int], settings: TrendSignals) -> bool:
    """The trend rule: enough strictly increasing steps, or enough samples and net growth."""
    if not totals:
        return False
    latest = totals[-1]
    earlier = totals[:-1]
    baseline = (sum(earlier) * 2 + len(earlier)) // (len(earlier) * 2) if earlier else latest
    delta = latest - baseline
    increases = 0
    for index in range(len(totals) - 1, 0, -1):
        if totals[index] > totals[index - 1]:
            increases += 1
        else:
            break
    if increases >= settings.sustained_growth_consecutive:
        return True
    return (
        len(totals) >= settings.sustained_growth_min_samples
        and delta >= settings.sustained_growth_min_delta
        and delta > 0
    )


class Backpressure:
    """Decides per request whether adaptive backpressure refuses it, and why.

    ``trends`` gives the backlog snapshots (``samples(since, until)``, oldest first, as the
    ``TrendRecorder`` does); without it the sustained-growth signal never fires.
    """

    def __init__(self, backend, trends=None, clock=time.monotonic):
        self._backend = backend
        self._trends = trends
        self._clock = clock
        self._lock = threading.Lock()
        self._stats = None
        self._stats_at = -math.inf
        self._growth = False
        self._growth_at = -math.inf

    def _read_stats(self):
        now = self._clock()
        with self._lock:
            if now - self._stats_at < STATS_MAX_AGE:
                return self._stats
            try:
                stats = self._backend.stats()
            except Exception:
                stats = None
            self._stats, self._stats_at = stats, now
            return stats

    def _sustained_growth(self, trend: TrendSignals) -> bool:
        now = self._clock()
        with self._lock:
            if now - self._growth_at >= TREND_MAX_AGE:
                self._growth = sustained_growth(self._totals(trend), trend)
                self._growth_at = now
            return self._growth

    def _totals(self, trend: TrendSignals) -> list[int]:
        if self._trends is None:
            return []
        until = datetime.now(UTC)
        try:
            samples = self._trends.samples(until - trend.window, until)
        except Exception:
            return []
        return [sample.total for sample in samples[-MAX_SAMPLES:]]

    def check(self, settings: AdaptiveBackpressure, trend: TrendSignals) -> str | None:
        """``None`` to allow, else the reason of the refusal."""
        stats = self._read_stats()
        if stats is None:
            return None
        queued = stats.by_state.get("queued", 0)
        active = queued + stats.by_state.get("leased", 0)
        if active < settings.min_total:
            return None
        if rounded_percent(queued, active) >= settings.queued_percent:
            return "queued_pressure"
        now = datetime.now(UTC)
        ready_at = stats.earliest_queued_next_run_at
        if ready_at is not None and now - ready_at >= settings.ready_lag:
            return "ready_lag"
        oldest = stats.oldest_queued_received_at
        if oldest is not None and now - oldest >= settings.oldest_queued_age:
            return "oldest_queued_age"
        if settings.sustained_growth and self._sustained_growth(trend):
            return "sustained_growth"
        return None
