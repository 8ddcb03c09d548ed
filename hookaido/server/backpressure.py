"""Adaptive backpressure: refuse new webhooks while the queue shows it is not keeping up.

Reads backend stats at most every 250 ms and keeps its own short history of queue totals for
the sustained-growth signal. Never blocks ingress on a failing store: no stats, no refusal.
"""

import math
import threading
import time
from collections import deque
from datetime import UTC, datetime

from hookaido.config.model import AdaptiveBackpressure, TrendSignals

STATS_MAX_AGE = 0.25
TREND_MAX_AGE = 1.0
MAX_SAMPLES = 512


def sustained_growth(totals: list[int], settings: TrendSignals) -> bool:
    """The trend rule: enough strictly increasing steps, or enough samples and net growth."""
    if not totals:
        return False
    latest = totals[-1]
    earlier = totals[:-1]
    baseline = round(sum(earlier) / len(earlier)) if earlier else latest
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
    """Decides per request whether adaptive backpressure refuses it, and why."""

    def __init__(self, backend, clock=time.monotonic):
        self._backend = backend
        self._clock = clock
        self._lock = threading.Lock()
        self._stats = None
        self._stats_at = -math.inf
        self._samples: deque[tuple[float, int]] = deque(maxlen=MAX_SAMPLES)
        self._growth = False
        self._growth_at = -math.inf

    def _read_stats(self, trend: TrendSignals):
        now = self._clock()
        with self._lock:
            if now - self._stats_at < STATS_MAX_AGE:
                return self._stats
            try:
                stats = self._backend.stats()
            except Exception:
                stats = None
            self._stats, self._stats_at = stats, now
            if stats is not None:
                self._sample(now, stats, trend)
            return stats

    def _sample(self, now: float, stats, trend: TrendSignals) -> None:
        interval = trend.expected_capture_interval.total_seconds()
        if not self._samples or now - self._samples[-1][0] >= interval:
            counts = stats.by_state
            total = counts.get("queued", 0) + counts.get("leased", 0) + counts.get("dead", 0)
            self._samples.append((now, total))
        horizon = now - trend.window.total_seconds()
        while self._samples and self._samples[0][0] < horizon:
            self._samples.popleft()

    def _sustained_growth(self, trend: TrendSignals) -> bool:
        now = self._clock()
        with self._lock:
            if now - self._growth_at >= TREND_MAX_AGE:
                totals = [total for _, total in self._samples]
                self._growth = sustained_growth(totals, trend)
                self._growth_at = now
            return self._growth

    def check(self, settings: AdaptiveBackpressure, trend: TrendSignals) -> str | None:
        """``None`` to allow, else the reason of the refusal."""
        stats = self._read_stats(trend)
        if stats is None:
            return None
        queued = stats.by_state.get("queued", 0)
        active = queued + stats.by_state.get("leased", 0)
        if active < settings.min_total:
            return None
        if round(queued * 100 / active) >= settings.queued_percent:
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
