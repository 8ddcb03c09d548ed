"""Backlog views of the Admin API (``/backlog/...``) and the queue section of health details:
where queued work piles up and how old it is. Read-only.
"""

import math
from collections import defaultdict
from datetime import UTC, datetime

from hookaido.queue.backend import MessageFilter
from hookaido.server.admin_common import (
    invalid_query,
    query_limit,
    query_param,
    query_route,
)
from hookaido.server.envelope_json import render_time
from hookaido.server.jsonbody import answer_json

AGING_STATES = ("queued", "leased", "dead")
AGE_WINDOWS = (
    ("le_5m", 5 * 60),
    ("gt_5m_le_15m", 15 * 60),
    ("gt_15m_le_1h", 60 * 60),
    ("gt_1h_le_6h", 6 * 60 * 60),
    ("gt_6h", None),
)
PERCENTILES = (50, 90, 99)


def age_seconds(now: datetime, moment: datetime | None) -> int:
    if moment is None:
        return 0
    return max(int((now - moment).total_seconds()), 0)


def indicators(oldest_received: datetime | None, earliest_next_run: datetime | None, now) -> dict:
    """The four age/lag keys of a queue or bucket; zero or absent ones are left out."""
    body: dict = {}
    if oldest_received is not None:
        body["oldest_queued_received_at"] = render_time(oldest_received)
        age = age_seconds(now, oldest_received)
        if age:
            body["oldest_queued_age_seconds"] = age
    if earliest_next_run is not None:
        body["earliest_queued_next_run_at"] = render_time(earliest_next_run)
        lag = age_seconds(now, earliest_next_run)
        if lag:
            body["ready_lag_seconds"] = lag
    return body


def queue_diagnostics(stats, now: datetime, trend_signals: dict) -> dict:
    """The ``queue`` section of ``/healthz?details=1``."""
    body: dict = {"ok": True, "total": stats.total, "by_state": dict(stats.by_state)}
    if stats.by_state.get("queued", 0):
        # Unlike the backlog views, health keeps a zero age or lag: its age/lag keys are left
        # out only when nothing is queued.
        oldest, earliest = stats.oldest_queued_received_at, stats.earliest_queued_next_run_at
        if oldest is not None:
            body["oldest_queued_received_at"] = render_time(oldest)
            body["oldest_queued_age_seconds"] = age_seconds(now, oldest)
        if earliest is not None:
            body["earliest_queued_next_run_at"] = render_time(earliest)
            body["ready_lag_seconds"] = age_seconds(now, earliest)
        body["top_queued"] = [_bucket_json(bucket, now) for bucket in stats.top_queued]
    body["trend_signals"] = trend_signals
    return body


def _bucket_json(bucket, now) -> dict:
    body = {"route": bucket.route, "target": bucket.target, "queued": bucket.queued}
    body.update(
        indicators(bucket.oldest_queued_received_at, bucket.earliest_queued_next_run_at, now)
    )
    return body


def _selector(route: str | None, target: str | None) -> dict:
    body = {}
    if route:
        body["route"] = route
    if target:
        body["target"] = target
    return body


def _query_target(req) -> str | None:
    return query_param(req, "target") or None


def _oldest_first(backend, state: str, route, target, count: int) -> list:
    """Every ``state`` item of the selection, oldest ``received_at`` first."""
    # Limitation: the backend lists newest first, so the whole selection of one state is read
    # to find its oldest items; cost grows with the number of items in that state.
    found = backend.list_messages(
        MessageFilter(route=route, target=target, states=(state,), limit=max(count, 1))
    )
    return sorted(found, key=lambda envelope: (envelope.received_at, envelope.id))


def top_queued(runtime, req, resp) -> None:
    route, target, limit = query_route(req), _query_target(req), query_limit(req)
    stats = runtime.backend.stats()
    now = datetime.now(UTC)

    buckets = [
        bucket
        for bucket in stats.top_queued
        if (route is None or bucket.route == route) and (target is None or bucket.target == target)
    ]
    queued_total = stats.by_state.get("queued", 0)
    body = {
        "queue_total": stats.total,
        "queued_total": queued_total,
        "limit": limit,
        "truncated": len(buckets) > limit,
        "source_bounded": sum(bucket.queued for bucket in stats.top_queued) < queued_total,
    }
    body.update(indicators(stats.oldest_queued_received_at, stats.earliest_queued_next_run_at, now))
    body["items"] = [_bucket_json(bucket, now) for bucket in buckets[:limit]]
    answer_json(resp, body)


def oldest_queued(runtime, req, resp) -> None:
    route, target, limit = query_route(req), _query_target(req), query_limit(req)
    backend = runtime.backend
    stats = backend.stats()
    now = datetime.now(UTC)

    queued = _oldest_first(backend, "queued", route, target, stats.by_state.get("queued", 0))
    items = []
    for envelope in queued[:limit]:
        item = {
            "id": envelope.id,
            "route": envelope.route,
            "target": envelope.target,
            "received_at": render_time(envelope.received_at),
            "attempt": envelope.attempt,
            "next_run_at": render_time(envelope.next_run_at),
            "oldest_queued_age_seconds": age_seconds(now, envelope.received_at),
        }
        lag = age_seconds(now, envelope.next_run_at)
        if lag:
            item["ready_lag_seconds"] = lag
        items.append(item)

    body = {
        "queue_total": stats.total,
        "queued_total": stats.by_state.get("queued", 0),
        "limit": limit,
        "returned": len(items),
        "truncated": len(queued) > limit,
    }
    body.update(indicators(stats.oldest_queued_received_at, stats.earliest_queued_next_run_at, now))
    body["selector"] = _selector(route, target)
    body["items"] = items
    answer_json(resp, body)


def aging_summary(runtime, req, resp) -> None:
    route, target, limit = query_route(req), _query_target(req), query_limit(req)
    states = _query_states(req)
    backend = runtime.backend
    stats = backend.stats()
    now = datetime.now(UTC)

    observed = []
    state_scan = {}
    for state in states:
        found = _oldest_first(backend, state, route, target, stats.by_state.get(state, 0))
        observed.extend(found[:limit])
        state_scan[state] = {"scanned": min(len(found), limit), "truncated": len(found) > limit}
    groups = defaultdict(list)
    for envelope in observed:
        groups[(envelope.route, envelope.target)].append(envelope)
    buckets = sorted(
        (_aging_bucket(route_target, members, now) for route_target, members in groups.items()),
        key=lambda pair: pair[0],
    )

    ages = [age_seconds(now, envelope.received_at) for envelope in observed]
    truncated = any(scan["truncated"] for scan in state_scan.values())
    in_scope = sum(stats.by_state.get(state, 0) for state in states)
    body = {
        "queue_total": stats.total,
        "queued_total": stats.by_state.get("queued", 0),
        "limit": limit,
        "states": list(states),
        "age_sample_count": len(ages),
        "age_windows": _age_windows(ages),
        "age_percentiles_seconds": _percentiles(ages),
        "scanned": len(observed),
        "bucket_count": len(buckets),
        "truncated": truncated,
        "source_bounded": truncated
        or (route is None and target is None and len(observed) < in_scope),
        "state_scan": state_scan,
    }
    body.update(indicators(stats.oldest_queued_received_at, stats.earliest_queued_next_run_at, now))
    body["selector"] = _selector(route, target)
    body["items"] = [bucket for _, bucket in buckets]
    answer_json(resp, body)


def _query_states(req) -> tuple[str, ...]:
    text = query_param(req, "states")
    if text is None or not text.strip():
        return AGING_STATES
    states = []
    for word in text.split(","):
        state = word.strip().lower()
        if state not in AGING_STATES:
            raise invalid_query(f"states must list queued, leased or dead; got {state!r}")
        if state not in states:
            states.append(state)
    return tuple(states)


def _aging_bucket(route_target, members, now):
    route, target = route_target
    queued = [envelope for envelope in members if envelope.state == "queued"]
    ages = [age_seconds(now, envelope.received_at) for envelope in members]
    counts = {state: 0 for state in AGING_STATES}
    for envelope in members:
        counts[envelope.state] = counts.get(envelope.state, 0) + 1
    bucket = {
        "route": route,
        "target": target,
        "total_observed": len(members),
        "queued_observed": counts["queued"],
        "leased_observed": counts["leased"],
        "dead_observed": counts["dead"],
        "state_counts": counts,
        "age_sample_count": len(ages),
        "age_windows": _age_windows(ages),
        "age_percentiles_seconds": _percentiles(ages),
    }
    if queued:
        oldest = min(envelope.received_at for envelope in queued)
        newest = max(envelope.received_at for envelope in queued)
        earliest = min(envelope.next_run_at for envelope in queued)
        overdue = [envelope for envelope in queued if envelope.next_run_at < now]
        bucket["oldest_queued_received_at"] = render_time(oldest)
        bucket["oldest_queued_age_seconds"] = age_seconds(now, oldest)
        bucket["newest_queued_received_at"] = render_time(newest)
        bucket["newest_queued_age_seconds"] = age_seconds(now, newest)
        bucket["earliest_queued_next_run_at"] = render_time(earliest)
        bucket["ready_overdue_count"] = len(overdue)
        bucket["max_ready_lag_seconds"] = age_seconds(now, earliest)
    first_seen = min(envelope.received_at for envelope in members)
    return first_seen, bucket


def _age_windows(ages: list[int]) -> dict:
    windows = {name: 0 for name, _ in AGE_WINDOWS}
    for age in ages:
        for name, upper in AGE_WINDOWS:
            if upper is None or age <= upper:
                windows[name] += 1
                break
    return windows


def _percentiles(ages: list[int]) -> dict:
    """Nearest rank: the value at rank ceil(p * N / 100) of the sorted ages."""
    if not ages:
        return {f"p{p}": 0 for p in PERCENTILES}
    ordered = sorted(ages)
    return {f"p{p}": ordered[max(math.ceil(p * len(ordered) / 100), 1) - 1] for p in PERCENTILES}
