"""Backlog trend snapshots and the signals computed from them (growth, surges, dead share,
queued pressure, stale sampling). Reads the queue through the backend interface only.
"""

import math
import threading
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from hookaido.observability.log import event
from hookaido.queue.errors import QueueError
from hookaido.queue.model import TREND_ROW_LIMIT, TrendRow
from hookaido.server.admin_common import invalid_query, query_param, query_route, query_time
from hookaido.server.envelope_json import render_time
from hookaido.server.jsonbody import APIError, answer_json, parse_api_duration, render_duration

CAPTURE_INTERVAL = timedelta(minutes=1)
MAX_ROWS = TREND_ROW_LIMIT
TRACKED_STATES = ("queued", "leased", "dead")
ALERT_ORDER = (
    "sampling_stale",
    "sustained_growth",
    "recent_surge",
    "dead_share_high",
    "queued_pressure",
)


class TrendRecorder:
    """Records backlog snapshots: one global row plus one row per (route, target).

    The rows go to the queue store when it keeps trend history (``sqlite``: they survive a
    restart), else to process memory. ``start()`` captures once and then every minute on a
    daemon thread; ``stop()`` ends it. At most 200 000 rows are kept, the oldest dropped first.
    """

    def __init__(self, backend, clock: Callable[[], datetime] | None = None):
        self.backend = backend
        self.clock = clock or (lambda: datetime.now(UTC))
        self._rows: deque[TrendRow] = deque(maxlen=MAX_ROWS)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def capture(self) -> None:
        """Record one snapshot now from one aggregate count. Store errors are logged and
        skipped."""
        now = self.clock()
        try:
            per_bucket = self.backend.counts_by_route(TRACKED_STATES)
        except QueueError as error:
            event("backlog_trend_capture_failed", level="warn", error=str(error))
            return
        rows = [TrendRow(now, 0, 0, 0)]
        totals = [0, 0, 0]
        for (route, target), counts in sorted(per_bucket.items()):
            queued, leased, dead = (counts.get(state, 0) for state in TRACKED_STATES)
            totals[0] += queued
            totals[1] += leased
            totals[2] += dead
            rows.append(TrendRow(now, queued, leased, dead, route, target))
        rows[0] = TrendRow(now, *totals)
        if self.backend.keeps_backlog_trends:
            try:
                self.backend.record_backlog_trends(rows)
            except QueueError as error:
                event("backlog_trend_capture_failed", level="warn", error=str(error))
            return
        with self._lock:
            self._rows.extend(rows)

    def _rows_between(self, since: datetime, until: datetime) -> list[TrendRow]:
        if self.backend.keeps_backlog_trends:
            return self.backend.backlog_trends(since, until)
        with self._lock:
            return [row for row in self._rows if since <= row.captured_at <= until]

    def samples(
        self, since: datetime, until: datetime, route: str | None = None, target: str | None = None
    ) -> list[TrendRow]:
        """Rows captured in ``[since, until]``, oldest first: the global rows without a filter,
        else the matching (route, target) rows summed per capture time."""
        rows = self._rows_between(since, until)
        if route is None and target is None:
            return [row for row in rows if row.route is None]
        summed: dict[datetime, list[int]] = {}
        captures = {row.captured_at for row in rows if row.route is None}
        for moment in captures:
            summed[moment] = [0, 0, 0]
        for row in rows:
            if row.route is None:
                continue
            if (route is None or row.route == route) and (target is None or row.target == target):
                counts = summed.setdefault(row.captured_at, [0, 0, 0])
                counts[0] += row.queued
                counts[1] += row.leased
                counts[2] += row.dead
        return [TrendRow(moment, *summed[moment]) for moment in sorted(summed)]

    # -- the capture thread -------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="backlog trends", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.capture()
            self._stop.wait(CAPTURE_INTERVAL.total_seconds())


# -- GET /backlog/trends ---------------------------------------------------------------

MAX_WINDOW = timedelta(hours=168)
MIN_STEP = timedelta(minutes=1)
MAX_STEP = timedelta(hours=1)
MAX_POINTS = 1000
MAX_SAMPLES = 20_000


def answer_trends(recorder, config, req, resp) -> None:
    """Bucketed backlog history of ``[until - window, until)`` with its signals."""
    window = _query_span(req, "window", timedelta(hours=1))
    step = _query_span(req, "step", timedelta(minutes=5))
    until = query_time(req, "until") or datetime.now(UTC)
    route = query_route(req)
    target = query_param(req, "target") or None
    if not timedelta(0) < window <= MAX_WINDOW:
        raise invalid_query(
            f"window must be above 0 and at most 168h, got {render_duration(window)}"
        )
    if not MIN_STEP <= step <= MAX_STEP or step > window:
        raise invalid_query("step must be between 1m and 1h and not longer than window")
    points = math.ceil(window / step)
    if points > MAX_POINTS:
        raise invalid_query(f"window/step gives {points} points; at most {MAX_POINTS}")
    if recorder is None:
        raise APIError(503, "backlog_unavailable", "backlog trend snapshots are not recorded")

    since = until - window
    samples = recorder.samples(since, until, route, target)
    truncated = len(samples) > MAX_SAMPLES
    samples = samples[-MAX_SAMPLES:]
    items = [
        _trend_point(samples, since + step * i, min(since + step * (i + 1), until))
        for i in range(points)
    ]

    body: dict = {
        "window": render_duration(window),
        "step": render_duration(step),
        "since": render_time(since),
        "until": render_time(until),
        "sample_count": len(samples),
        "point_count": points,
        "non_empty_point_count": sum(1 for item in items if item["sample_count"]),
        "truncated": truncated,
    }
    if samples:
        body["latest_captured_at"] = render_time(samples[-1].captured_at)
    body["latest_total"] = samples[-1].total if samples else 0
    body["max_total"] = max((sample.total for sample in samples), default=0)
    body["selector"] = {
        key: value for key, value in (("route", route), ("target", target)) if value
    }
    body["signals"] = trend_signals(
        samples, config.defaults.trend_signals, window, until, truncated=truncated
    )
    body["items"] = items
    answer_json(resp, body)


def _trend_point(samples: list[TrendRow], start: datetime, end: datetime) -> dict:
    """One bucket; an empty one has no ``last_captured_at`` and zero counts."""
    inside = [sample for sample in samples if start <= sample.captured_at < end]
    point: dict = {
        "bucket_start": render_time(start),
        "bucket_end": render_time(end),
        "sample_count": len(inside),
    }
    if inside:
        point["last_captured_at"] = render_time(inside[-1].captured_at)
    last = inside[-1] if inside else None
    for name in ("queued", "leased", "dead", "total"):
        point[f"{name}_last"] = getattr(last, name) if last else 0
    for name in ("queued", "leased", "dead", "total"):
        point[f"{name}_max"] = max((getattr(sample, name) for sample in inside), default=0)
    return point


def _query_span(req, name: str, default: timedelta) -> timedelta:
    text = query_param(req, name)
    if text is None or text == "":
        return default
    try:
        # only ASCII digits; the micro sign of "µs" is the one non-ASCII character allowed
        if not text.replace("\u00b5", "").replace("\u03bc", "").isascii():
            raise ValueError(text)
        return parse_api_duration(text)
    except ValueError:
        raise invalid_query(f"{name} must be a duration like 5m, got {text!r}") from None


def health_signals(recorder, settings, now: datetime) -> dict:
    """The ``trend_signals`` of health details: the global rows of the configured window."""
    samples: list[TrendRow] = []
    if recorder is not None:
        try:
            samples = recorder.samples(now - settings.window, now)
        except QueueError:
            samples = []  # a store that cannot be read reports stale sampling
    return trend_signals(samples, settings, settings.window, now)


# -- signals ---------------------------------------------------------------------------


def round_half_away(value: float) -> int:
    return int(math.floor(abs(value) + 0.5)) * (1 if value >= 0 else -1)


def trend_signals(
    samples: list[TrendRow], settings, window: timedelta, now: datetime, truncated: bool = False
) -> dict:
    """The signals of a window of samples (oldest first), thresholds from ``settings``."""
    body: dict = {
        "status": "ok",
        "window": render_duration(window),
        "expected_capture_interval": render_duration(settings.expected_capture_interval),
        "since": render_time(now - window),
        "until": render_time(now),
        "sample_count": len(samples),
        "truncated": truncated,
    }
    if not samples:
        body.update(status="warn", sampling_stale=True)
        return _with_alerts(body, ["sampling_stale"], recent_surge=False)

    latest, earliest = samples[-1], samples[0]
    totals = [sample.total for sample in samples]
    earlier = totals[:-1]
    baseline = round_half_away(sum(earlier) / len(earlier)) if earlier else latest.total
    delta = latest.total - baseline
    if baseline:
        delta_percent = round_half_away(delta * 100 / baseline)
    else:
        delta_percent = 100 if latest.total > 0 else 0
    minutes = (latest.captured_at - earliest.captured_at).total_seconds() / 60
    per_minute = (latest.total - earliest.total) / minutes if minutes > 0 else 0.0
    growth = round_half_away(per_minute * 10) / 10
    increases = 0
    for position in range(len(totals) - 1, 0, -1):
        if totals[position] <= totals[position - 1]:
            break
        increases += 1

    sustained = increases >= settings.sustained_growth_consecutive or (
        len(samples) >= settings.sustained_growth_min_samples
        and delta >= settings.sustained_growth_min_delta
        and delta > 0
    )
    if baseline <= 0:
        surge = latest.total >= settings.recent_surge_min_total
    else:
        step = max(
            settings.recent_surge_min_delta,
            math.ceil(baseline * settings.recent_surge_percent / 100),
        )
        surge = latest.total >= max(baseline + step, settings.recent_surge_min_total)
    total = latest.total
    dead_share = round_half_away(latest.dead * 100 / total) if total else 0
    dead_high = (
        total >= settings.dead_share_high_min_total
        and dead_share >= settings.dead_share_high_percent
    )
    queued_share = round_half_away(latest.queued * 100 / total) if total else 0
    pressure = (
        total >= settings.queued_pressure_min_total
        and queued_share >= settings.queued_pressure_percent
        and latest.queued >= latest.leased * settings.queued_pressure_leased_multiplier
    )
    freshness = max(int((now - latest.captured_at).total_seconds()), 0)
    stale = freshness > (
        settings.expected_capture_interval.total_seconds() * settings.stale_grace_factor
    )

    body.update(
        latest_captured_at=render_time(latest.captured_at),
        latest_total=latest.total,
        latest_queued=latest.queued,
        latest_leased=latest.leased,
        latest_dead=latest.dead,
        baseline_total=baseline,
        delta_total=delta,
        delta_percent=delta_percent,
        growth_rate_per_minute=growth,
        consecutive_increases=increases,
        sustained_growth=sustained,
        recent_surge=surge,
        dead_share_percent=dead_share,
        dead_share_high=dead_high,
        queued_share_percent=queued_share,
        queued_pressure=pressure,
        freshness_seconds=freshness,
        sampling_stale=stale,
    )
    raised = {
        "sampling_stale": stale,
        "sustained_growth": sustained,
        "recent_surge": surge,
        "dead_share_high": dead_high,
        "queued_pressure": pressure,
    }
    alerts = [name for name in ALERT_ORDER if raised[name]]
    if alerts:
        body["status"] = "warn"
    return _with_alerts(body, alerts, recent_surge=surge)


def _with_alerts(body: dict, alerts: list[str], recent_surge: bool) -> dict:
    body["active_alerts"] = alerts
    actions = []
    if "sampling_stale" in alerts:
        actions.append(
            _action(
                "sampling_stale_recover",
                "critical",
                ["sampling_stale"],
                "Backlog snapshots are missing or late, so the other signals cannot be trusted.",
                "Check that Hookaido is running and its queue store answers; snapshots are "
                "taken every minute.",
                ["GET /healthz?details=1"],
            )
        )
    if "queued_pressure" in alerts:
        actions.append(
            _action(
                "queued_pressure_relieve",
                "critical",
                ["queued_pressure"],
                "Most of the backlog is waiting and few items are being worked on.",
                "Add pull workers or delivery concurrency, or check that targets answer.",
                ["GET /backlog/top_queued", "GET /backlog/oldest_queued"],
            )
        )
    if "dead_share_high" in alerts:
        actions.append(
            _action(
                "dead_share_drain",
                "warn",
                ["dead_share_high"],
                "A large share of stored items is in the dead-letter queue.",
                "Inspect GET /dlq, fix the cause, then requeue or delete the dead items.",
                ["GET /dlq", "POST /dlq/requeue", "POST /dlq/delete"],
            )
        )
    growth = [name for name in ("sustained_growth", "recent_surge") if name in alerts]
    if growth:
        actions.append(
            _action(
                "backlog_growth_triage",
                "critical" if recent_surge else "warn",
                growth,
                "The backlog keeps growing.",
                "Find the routes that grow with GET /backlog/top_queued and "
                "GET /backlog/aging_summary; scale their consumers or slow their producers.",
                ["GET /backlog/top_queued", "GET /backlog/aging_summary", "GET /backlog/trends"],
            )
        )
    body["operator_actions"] = actions
    return body


def _action(action_id, severity, alerts, summary, playbook, endpoints) -> dict:
    return {
        "id": action_id,
        "severity": severity,
        "alert_routing_key": f"hookaido.backlog.{action_id}",
        "summary": summary,
        "playbook": playbook,
        "alerts": alerts,
        "mcp_tools": [],
        "admin_endpoints": endpoints,
    }
