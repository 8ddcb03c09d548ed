"""The Pull API: workers lease webhooks with dequeue or an SSE stream and settle them with
ack, nack and extend. Reads the current config per request; the queue is the backend's.
"""

import heapq
import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import falcon
import waitress.task

from hookaido.queue.errors import LeaseConflict, QueueError
from hookaido.server.envelope_json import LATEST_TIME, dequeue_item, dequeue_items
from hookaido.server.jsonbody import (
    PULL_BODY_LIMIT,
    APIError,
    answer_error,
    answer_json,
    check_fields,
    clean_path,
    get_bool,
    get_duration,
    get_int,
    get_str,
    get_str_list,
    invalid_body,
    parse_api_duration,
    query_count,
    read_object,
    unexpected_error_handler,
)
from hookaido.server.tokens import bearer_token, load_allowlist, token_allowed

OPERATIONS = ("dequeue", "ack", "nack", "extend", "stream")
PULL_TARGET = "pull"
BATCH_HARD_CAP = 100
# Long-polls and streams wait in slices this long so a departed client is noticed promptly.
WAIT_SLICE_SECONDS = 0.25
# Long-polls and streams waiting at once: each holds a request thread, and the listener has
# SETTLE_THREADS more, so that acks, nacks and extends never queue behind waiting workers.
# A long-poll past the limit is answered at once; a stream past it gets 503 and Retry-After.
WAITING_LIMIT = 112
SETTLE_THREADS = 16
STREAM_RETRY_AFTER_SECONDS = 5
UNKNOWN_ROUTE = "_unknown"


class LeaseBook:
    """Leases handed out by this API and not yet settled or expired, per route.

    Feeds the ``hookaido_pull_lease_active`` gauge. A heap of deadlines lets expired
    leases be forgotten without scanning every open lease on each request.
    """

    def __init__(self, gauge):
        self._gauge = gauge
        self._lock = threading.Lock()
        self._leases: dict[str, tuple[str, datetime]] = {}
        self._deadlines: list[tuple[datetime, str]] = []
        gauge.refresh_with(self.forget_expired)

    def opened(self, route: str, leases: list[tuple[str, datetime]]) -> None:
        """Record ``(lease_id, lease_until)`` pairs just handed out on ``route``."""
        with self._lock:
            self._forget_expired()
            for lease_id, until in leases:
                self._leases[lease_id] = (route, until)
                heapq.heappush(self._deadlines, (until, lease_id))
            self._gauge.labels(route).inc(len(leases))

    def extended(self, lease_id: str, by: timedelta) -> None:
        with self._lock:
            entry = self._leases.get(lease_id)
            if entry is not None:
                route, until = entry
                self._leases[lease_id] = (route, until + by)
                heapq.heappush(self._deadlines, (until + by, lease_id))

    def closed(self, lease_ids) -> None:
        with self._lock:
            routes: Counter[str] = Counter()
            for lease_id in lease_ids:
                entry = self._leases.pop(lease_id, None)
                if entry is not None:
                    routes[entry[0]] += 1
            for route, count in routes.items():
                self._gauge.labels(route).dec(count)
            self._forget_expired()

    def forget_expired(self) -> None:
        """Drop leases past their deadline from the gauge; called whenever it is read."""
        with self._lock:
            self._forget_expired()

    def _forget_expired(self) -> None:
        now = datetime.now(UTC)
        routes: Counter[str] = Counter()
        while self._deadlines and self._deadlines[0][0] <= now:
            until, lease_id = heapq.heappop(self._deadlines)
            entry = self._leases.get(lease_id)
            if entry is not None and entry[1] == until:
                del self._leases[lease_id]
                routes[entry[0]] += 1
        for route, count in routes.items():
            self._gauge.labels(route).dec(count)


class PullAPI:
    """Answers every request of the Pull API from one sink, in the documented check order."""

    def __init__(self, runtime, waiting_limit: int = WAITING_LIMIT):
        self.runtime = runtime
        metrics = runtime.metrics
        self.leases = LeaseBook(metrics.pull_lease_active) if metrics is not None else None
        self.waiting = threading.BoundedSemaphore(waiting_limit)

    # -- dispatch -----------------------------------------------------------------------

    def __call__(self, req: falcon.Request, resp: falcon.Response, **_params) -> None:
        generation = self.runtime.current
        config = generation.config
        path = clean_path(req.path)
        endpoint, _, operation = path.rpartition("/")
        endpoint = endpoint or "/"
        route = self._route_for(config, endpoint)
        route_label = route.path if route is not None else UNKNOWN_ROUTE

        try:
            self._check_method(req.method, operation)
            self._check_token(req, generation, config, route)
            if route is None and self._route_for(config, path) is not None:
                # The last segment is the operation, so the endpoint looked up is the one
                # above it; the detail points to what was probably meant.
                raise APIError(
                    404,
                    "route_not_found",
                    f"no pull endpoint {endpoint!r}; {path!r} is one and needs an operation:"
                    f" add one of /{', /'.join(OPERATIONS)}",
                )
            if route is None:
                raise APIError(404, "route_not_found", f"no pull endpoint {endpoint!r}")
            if operation not in OPERATIONS:
                raise APIError(
                    404,
                    "operation_not_found",
                    f"unknown operation {operation!r}; use one of {', '.join(OPERATIONS)}",
                )
            handler = getattr(self, "_" + operation)
            handler(req, resp, generation, route)
        except APIError as error:
            answer_error(resp, error)
            if error.status == 405:
                resp.set_header("Allow", "GET" if operation == "stream" else "POST")
        if operation == "dequeue" and self.runtime.metrics is not None:
            status = resp.status_code
            label = "200" if status == 200 else "204" if status == 204 else f"{status // 100}xx"
            self.runtime.metrics.pull_dequeue.labels(route_label, label).inc()

    @staticmethod
    def _route_for(config, endpoint: str):
        for route in config.pull_routes:
            if clean_path(route.pull.path) == endpoint:
                return route
        return None

    @staticmethod
    def _check_method(method: str, operation: str) -> None:
        if method == "GET" and operation == "stream":
            return
        if method == "POST" and operation != "stream":
            return
        expected = "GET" if operation == "stream" else "POST"
        raise APIError(405, "method_not_allowed", f"use {expected} for {operation!r}")

    @staticmethod
    def _check_token(req, generation, config, route) -> None:
        refs = route.pull.tokens if route is not None and route.pull.tokens else None
        if refs is None:
            refs = config.pull_api.tokens
        allowlist = load_allowlist(generation, refs)
        if not token_allowed(bearer_token(req.get_header("Authorization")), allowlist):
            raise APIError(401, "unauthorized", "a valid bearer token is required")

    @staticmethod
    def _lease_scope(config, route) -> str | None:
        """Leases are tied to their route only once some route has tokens of its own."""
        if any(other.pull.tokens for other in config.pull_routes):
            return route.path
        return None

    # -- dequeue ------------------------------------------------------------------------

    def _dequeue(self, req, resp, generation, route) -> None:
        document = _read_body(req, allow_empty=True) or {}
        check_fields(document, ("batch", "lease_ttl", "max_wait"))
        settings = generation.config.pull_api
        batch = _effective_batch(get_int(document, "batch"), settings.max_batch)
        lease_ttl = _effective_lease_ttl(get_duration(document, "lease_ttl"), settings)
        max_wait = get_duration(document, "max_wait")
        max_wait = settings.default_max_wait if max_wait is None else max(max_wait, timedelta(0))
        if settings.max_wait is not None:
            max_wait = min(max_wait, settings.max_wait)

        waits = max_wait > timedelta(0) and self.waiting.acquire(blocking=False)
        if not waits:
            max_wait = timedelta(0)  # nothing to wait for, or every waiting place is taken
        try:
            leased = self._lease_waiting(req, route.path, batch, lease_ttl, max_wait)
        except QueueError:
            raise APIError(503, "store_unavailable", "the queue store is unavailable") from None
        except OverflowError:
            raise invalid_body("lease_ttl puts the lease deadline out of range") from None
        finally:
            if waits:
                self.waiting.release()

        answer_json(resp, {"items": dequeue_items(leased)})

    def _lease_waiting(self, req, route: str, batch: int, ttl: timedelta, wait: timedelta):
        deadline = time.monotonic() + wait.total_seconds()
        backend = self.runtime.backend
        while True:
            if _client_gone(req):
                return []
            leased = backend.dequeue(route, PULL_TARGET, batch, ttl)
            if leased:
                if _client_gone(req):
                    backend.nack([envelope.lease_id for envelope in leased], route=route)
                    return []
                self._record_leased(route, leased)
                return leased
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            backend.wait_for_ready(route, PULL_TARGET, min(remaining, WAIT_SLICE_SECONDS))

    def _record_leased(self, route: str, leased) -> None:
        if self.leases is not None:
            self.leases.opened(
                route,
                [(env.lease_id, env.lease_until or env.next_run_at) for env in leased],
            )

    # -- ack / nack ---------------------------------------------------------------------

    def _ack(self, req, resp, generation, route) -> None:
        document = _read_body(req)
        check_fields(document, ("lease_id", "lease_ids"))
        lease_ids, single = _lease_ids(document, generation.config.pull_api.max_lease_batch)

        scope = self._lease_scope(generation.config, route)
        result = self._settle(lambda: self.runtime.backend.ack(lease_ids, route=scope))

        self._count_settlement(route.path, lease_ids, result, "ack")
        _answer_settlement(resp, result, single, "acked")

    def _nack(self, req, resp, generation, route) -> None:
        document = _read_body(req)
        check_fields(document, ("lease_id", "lease_ids", "delay", "dead", "reason"))
        lease_ids, single = _lease_ids(document, generation.config.pull_api.max_lease_batch)
        dead = bool(get_bool(document, "dead"))
        reason = get_str(document, "reason") or ""
        delay = timedelta(0)
        if not dead:
            delay = max(get_duration(document, "delay") or timedelta(0), timedelta(0))
            _check_deadline(delay, "delay")

        scope = self._lease_scope(generation.config, route)
        backend = self.runtime.backend
        result = self._settle(
            lambda: backend.nack(lease_ids, delay=delay, dead=dead, reason=reason, route=scope)
        )

        self._count_settlement(route.path, lease_ids, result, "nack")
        _answer_settlement(resp, result, single, "succeeded")

    @staticmethod
    def _settle(operation):
        try:
            return operation()
        except QueueError:
            raise APIError(500, "internal_error", "the queue store failed") from None
        except OverflowError:
            raise invalid_body("the delay reaches past the representable time range") from None

    def _count_settlement(self, route: str, lease_ids, result, kind: str) -> None:
        conflicted = {lease_id for lease_id, _ in result.conflicts}
        if self.leases is not None:
            self.leases.closed(
                [lease_id for lease_id in lease_ids if lease_id not in conflicted]
                + [lease_id for lease_id, why in result.conflicts if why == "lease_expired"]
            )
        metrics = self.runtime.metrics
        if metrics is None:
            return
        succeeded = metrics.pull_acked if kind == "ack" else metrics.pull_nacked
        conflict = metrics.pull_ack_conflict if kind == "ack" else metrics.pull_nack_conflict
        if result.succeeded:
            succeeded.labels(route).inc(result.succeeded)
        if result.conflicts:
            conflict.labels(route).inc()
        expired = sum(1 for _, why in result.conflicts if why == "lease_expired")
        if expired:
            metrics.pull_lease_expired.labels(route).inc(expired)

    # -- extend -------------------------------------------------------------------------

    def _extend(self, req, resp, generation, route) -> None:
        document = _read_body(req)
        check_fields(document, ("lease_id", "extend_by", "lease_ttl"))
        lease_id = (get_str(document, "lease_id") or "").strip()
        if not lease_id:
            raise invalid_body("field 'lease_id' is required")
        if "lease_ids" in document:
            raise invalid_body("extend takes one 'lease_id'")
        by = get_duration(document, "extend_by")
        if by is None:
            by = get_duration(document, "lease_ttl")
        if by is None:
            raise invalid_body("field 'extend_by' is required, e.g. \"30s\"")

        if by > timedelta(0):
            _check_deadline(by, "extend_by")
            scope = self._lease_scope(generation.config, route)
            try:
                self.runtime.backend.extend(lease_id, by, route=scope)
            except LeaseConflict as conflict:
                self._count_extend_conflict(route.path, lease_id, conflict.reason)
                raise APIError(
                    409, "lease_conflict", f"lease {lease_id!r}: {conflict.reason}"
                ) from None
            except QueueError:
                raise APIError(500, "internal_error", "the queue store failed") from None
            except OverflowError:
                raise invalid_body("the new deadline is past the representable range") from None
            if self.leases is not None:
                self.leases.extended(lease_id, by)

        resp.status = 204

    def _count_extend_conflict(self, route: str, lease_id: str, reason: str) -> None:
        if reason != "lease_expired":
            return
        if self.leases is not None:
            self.leases.closed([lease_id])
        if self.runtime.metrics is not None:
            self.runtime.metrics.pull_lease_expired.labels(route).inc()

    # -- stream -------------------------------------------------------------------------

    def _stream(self, req, resp, generation, route) -> None:
        settings = generation.config.pull_api
        batch = _query_batch(req.get_param("batch"), settings.max_batch)
        lease_ttl = _query_lease_ttl(req.get_param("lease_ttl"), settings)

        if not self.waiting.acquire(blocking=False):
            raise APIError(
                503,
                "stream_limit",
                "too many streams and long-polls are open on this listener; retry later",
                headers={"Retry-After": str(STREAM_RETRY_AFTER_SECONDS)},
            )
        resp.status = 200
        resp.content_type = "text/event-stream"
        resp.set_header("Cache-Control", "no-cache")
        resp.set_header("X-Accel-Buffering", "no")
        if not _served_by_waitress(req.env):
            resp.set_header("Connection", "keep-alive")  # waitress: see KeepAliveStreams
        events = self._events(req, route.path, batch, lease_ttl, settings)
        resp.stream = _Releasing(events, self.waiting.release)

    def _events(self, req, route: str, batch: int, ttl: timedelta, settings):
        metrics = self.runtime.metrics
        backend = self.runtime.backend
        keepalive = max(settings.sse_keepalive.total_seconds(), 0.05)
        limit = settings.sse_max_connection
        closes_at = time.monotonic() + limit.total_seconds() if limit else None
        unsent: list[str] = []
        if metrics is not None:
            metrics.pull_sse_connections.labels(route).inc()
            metrics.pull_sse_active.labels(route).inc()
        try:
            # An idle stream opens with a keepalive comment at once: the server sends no
            # headers before the first non-empty chunk, and the client should see them.
            next_tick = time.monotonic()
            while closes_at is None or time.monotonic() < closes_at:
                if _client_gone(req):
                    return
                try:
                    leased = backend.dequeue(route, PULL_TARGET, batch, ttl)
                except QueueError:
                    yield b"event: error\ndata: dequeue is temporarily unavailable\n\n"
                    return
                if leased:
                    self._record_leased(route, leased)
                    unsent = [envelope.lease_id for envelope in leased]
                    for envelope in leased:
                        if metrics is not None:
                            metrics.pull_sse_messages.labels(route).inc()
                        yield _sse_message(envelope)
                        unsent.remove(envelope.lease_id)
                    next_tick = time.monotonic() + keepalive
                    continue

                now = time.monotonic()
                if now >= next_tick:
                    yield b": keepalive\n\n"
                    next_tick = now + keepalive
                    continue
                pause = min(next_tick - now, WAIT_SLICE_SECONDS)
                if closes_at is not None:
                    pause = max(min(pause, closes_at - now), 0)
                try:
                    backend.wait_for_ready(route, PULL_TARGET, pause)
                except QueueError:
                    yield b"event: error\ndata: dequeue is temporarily unavailable\n\n"
                    return
        finally:
            if unsent:
                self._release(route, unsent)
            if metrics is not None:
                metrics.pull_sse_active.labels(route).dec()

    def _release(self, route: str, lease_ids: list[str]) -> None:
        """Give back leases whose events never reached a departed client."""
        try:
            self.runtime.backend.nack(lease_ids, route=route)
        except QueueError:
            return  # the leases expire on their own
        if self.leases is not None:
            self.leases.closed(lease_ids)


# -- request parsing helpers -----------------------------------------------------------


def _read_body(req, allow_empty: bool = False):
    return read_object(req, PULL_BODY_LIMIT, allow_empty=allow_empty)


def _effective_batch(requested: int | None, max_batch: int) -> int:
    batch = 1 if requested is None or requested <= 0 else requested
    return max(1, min(batch, max_batch, BATCH_HARD_CAP))


def _effective_lease_ttl(requested: timedelta | None, settings, name: str = "lease_ttl"):
    ttl = (
        settings.default_lease_ttl if requested is None or requested <= timedelta(0) else requested
    )
    if settings.max_lease_ttl is not None and ttl > settings.max_lease_ttl:
        ttl = settings.max_lease_ttl
    _check_deadline(ttl, name)
    return ttl


def _check_deadline(duration: timedelta, name: str) -> None:
    """Refuse a duration that would put a lease deadline or a retry time beyond the times
    every backend stores (``LATEST_TIME``)."""
    if datetime.now(UTC) + duration > LATEST_TIME:
        raise invalid_body(f"{name} reaches past {LATEST_TIME.year}, the latest time stored")


def _lease_ids(document: dict, max_lease_batch: int) -> tuple[list[str], bool]:
    """The lease IDs of an ack/nack body and whether it used the single form."""
    single = get_str(document, "lease_id")
    many = get_str_list(document, "lease_ids")
    if single is not None and many is not None:
        raise invalid_body("give either 'lease_id' or 'lease_ids', not both")
    if single is not None:
        single = single.strip()
        if not single:
            raise invalid_body("field 'lease_id' must not be empty")
        return [single], True
    if many is None:
        raise invalid_body("field 'lease_id' or 'lease_ids' is required")

    unique = list(dict.fromkeys(entry.strip() for entry in many if entry.strip()))
    if not unique:
        raise invalid_body("field 'lease_ids' holds no lease ID")
    if len(unique) > max_lease_batch:
        raise invalid_body(f"at most {max_lease_batch} lease IDs per call, got {len(unique)}")
    return unique, False


def _answer_settlement(resp, result, single: bool, count_key: str) -> None:
    if single:
        if result.conflicts:
            lease_id, reason = result.conflicts[0]
            raise APIError(409, "lease_conflict", f"lease {lease_id!r}: {reason}")
        resp.status = 204
        return
    if result.conflicts:
        answer_json(
            resp,
            {
                "code": "lease_conflict",
                "detail": "one or more leases are invalid or expired",
                count_key: result.succeeded,
                "conflicts": [
                    {"lease_id": lease_id, "reason": reason}
                    for lease_id, reason in result.conflicts
                ],
            },
            status=409,
        )
        return
    answer_json(resp, {count_key: result.succeeded})


def _query_batch(text: str | None, max_batch: int) -> int:
    if text is None:
        return 1
    try:
        return query_count(text, max(1, min(max_batch, BATCH_HARD_CAP)))
    except ValueError:
        raise invalid_body(f"query 'batch' must be a positive integer, got {text!r}") from None


def _query_lease_ttl(text: str | None, settings) -> timedelta:
    if text is None:
        return _effective_lease_ttl(None, settings)
    try:
        ttl = parse_api_duration(text.strip())
    except ValueError:
        ttl = timedelta(0)
    if ttl <= timedelta(0):
        raise invalid_body(f"query 'lease_ttl' must be a positive duration, got {text!r}")
    return _effective_lease_ttl(ttl, settings, "query 'lease_ttl'")


def _client_gone(req) -> bool:
    # Limitation: only waitress reports a departed client; on a TLS listener a long-poll whose
    # client left can still lease an arriving webhook, whose lease then simply expires.
    probe = req.env.get("waitress.client_disconnected")
    return bool(probe and probe())


def _sse_message(envelope) -> bytes:
    data = json.dumps(dequeue_item(envelope), separators=(",", ":"))
    return f"id: {envelope.lease_id}\nevent: message\ndata: {data}\n\n".encode()


# -- the app ---------------------------------------------------------------------------


class _Releasing:
    """An SSE body that gives its waiting place back once the server closes it, even when
    the client left before the first event was asked for."""

    def __init__(self, events, release):
        self._events = events
        self._release = release

    def __iter__(self):
        return self._events

    def close(self) -> None:
        release, self._release = self._release, None
        try:
            self._events.close()
        finally:
            if release is not None:
                release()


SSE_MEDIA_TYPE = "text/event-stream"
# How many closures deep to look for waitress's task behind wrapped start_response callables.
START_RESPONSE_DEPTH = 4


def _served_by_waitress(environ) -> bool:
    return "waitress.client_disconnected" in environ


class KeepAliveStreams:
    """Gives an SSE answer served by waitress its ``Connection: keep-alive`` header.

    waitress refuses hop-by-hop headers from an application and marks every streamed
    (chunked) answer ``Connection: close``. For an event stream the header is added to the
    answer's own header list once the app has started it, before anything is written.
    """

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if not _served_by_waitress(environ) or environ.get("SERVER_PROTOCOL") != "HTTP/1.1":
            return self.app(environ, start_response)

        def starting(status, headers, exc_info=None):
            write = start_response(status, headers, exc_info)
            if any(
                name.lower() == "content-type" and value.startswith(SSE_MEDIA_TYPE)
                for name, value in headers
            ):
                task = _waitress_task(start_response, START_RESPONSE_DEPTH)
                if task is not None and not task.wrote_header:
                    task.response_headers.append(("Connection", "keep-alive"))
            return write

        return self.app(environ, starting)


def _waitress_task(function, depth: int):
    """The waitress task whose ``start_response`` is ``function`` or is wrapped by it.

    Limitation: this reads waitress internals (the closure of its ``start_response``); when
    they change, the stream simply goes out without the header.
    """
    for cell in getattr(function, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if isinstance(value, waitress.task.Task):
            return value
        if depth > 0 and callable(value):
            task = _waitress_task(value, depth - 1)
            if task is not None:
                return task
    return None


def make_pull_app(runtime, waiting_limit: int = WAITING_LIMIT):
    """The Pull API as a WSGI app; paths arrive without the configured prefix."""
    app = falcon.App()
    app.add_sink(PullAPI(runtime, waiting_limit), prefix="/")
    app.add_error_handler(Exception, unexpected_error_handler("pull_api_internal_error"))
    return KeepAliveStreams(app)
