"""The ingress falcon app: match a route, limit, authenticate, store durably, then answer 202.

Nothing here answers 202 before the backend returned from ``enqueue``; every refusal is a
JSON ``{"code", "detail"}`` body. The per-generation parts are built by ``build_parts``.
"""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import falcon

from hookaido.auth import AuthContext, InboundRequest, Verdict, path_bytes
from hookaido.config.model import Config, Route
from hookaido.errors import ConfigError
from hookaido.observability import log
from hookaido.observability.log import event
from hookaido.queue import Envelope, MemoryPressure, QueueFull, new_event_id
from hookaido.server.backpressure import Backpressure
from hookaido.server.group_commit import GroupCommitter
from hookaido.server.matching import RequestFacts, RouteTable
from hookaido.server.ratelimit import RateLimiters, retry_after_seconds

PART = "ingress"
QUEUED_BODY = b'{"status":"queued"}\n'
QUEUE_FULL_RETRY_AFTER = 5
UNSTORED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "host"})


@dataclass
class IngressParts:
    """What ingress builds from one config: routes, rate-limit buckets and verifiers."""

    table: RouteTable
    limiters: RateLimiters
    verifiers: dict[str, Any] = field(default_factory=dict)  # route path -> verifier


def build_parts(config: Config, registry, resolve_secret, nonces, previous=None) -> IngressParts:
    """Build the ingress parts of a generation; raise ``ConfigError`` if a verifier cannot."""
    verifiers = {}
    for route in config.routes:
        if route.channel != "inbound" or route.auth is None:
            continue
        verifiers[route.path] = _build_verifier(route, config, registry, resolve_secret, nonces)
    limiters = RateLimiters.build(config, previous.limiters if previous else None)
    return IngressParts(RouteTable(config.routes), limiters, verifiers)


def _build_verifier(route: Route, config: Config, registry, resolve_secret, nonces):
    registration = registry.get("auth", route.auth.name)
    if registration is None:
        installed = ", ".join(registry.names("auth")) or "none"
        raise ConfigError(
            f"route {route.path!r}: no installed plugin provides auth {route.auth.name!r}"
            f" (installed: {installed})",
            route.auth.location,
        )
    context = AuthContext(
        route=route.path,
        resolve_secret=resolve_secret,
        secret_versions=config.secrets,
        nonces=nonces,
    )
    return registration.factory(dict(route.auth.options), context)


class Refusal(Exception):
    """Ends a request with an error status, a stable code and the metrics reason."""

    def __init__(self, status: int, code: str, detail: str, reason: str, headers=None):
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.reason = reason
        self.headers = headers or {}


@lru_cache(maxsize=4096)
def canonical_header_name(name: str) -> str:
    """``x-github-event`` -> ``X-Github-Event``."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def stored_headers(headers: dict[str, str]) -> dict[str, str]:
    """Request headers as stored on the envelope: canonical names, credentials left out."""
    stored: dict[str, str] = {}
    for name, value in headers.items():
        if name.lower() in UNSTORED_HEADERS:
            continue
        canonical = canonical_header_name(name)
        stored[canonical] = f"{stored[canonical]},{value}" if canonical in stored else value
    return stored


def header_text(value: str) -> str:
    """A header value as the text its sender wrote. The HTTP server hands over each byte as
    one Latin-1 character (so the size check above counts bytes); bytes that form UTF-8 are
    read as UTF-8, others stay one character per byte."""
    if value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


class IngressResource:
    """A falcon sink for every path and method: ingress has no fixed URL space."""

    def __init__(self, runtime, trends=None):
        self.runtime = runtime
        self.backpressure = Backpressure(runtime.backend, trends)
        self.committer = GroupCommitter(runtime.backend)

    def __call__(self, req: falcon.Request, resp: falcon.Response, **_):
        generation = self.runtime.current
        parts: IngressParts = generation.parts[PART]
        verdict: Verdict | None = None
        raw_headers = req.headers  # falcon builds a new dict on every access
        try:
            route, facts = self._route(req, parts, raw_headers)
            self._limit(route, parts, generation.config)
            verifier = parts.verifiers.get(route.path)
            verdict = self._verify_early(req, raw_headers, verifier)
            body = self._read_body(req, route)
            if verifier is not None and verdict is None:
                verdict = self._verify(verifier, _inbound(req, raw_headers, body))
            headers = self._headers(raw_headers, route, verdict)
            count = self._enqueue(route, facts, body, headers, req)
        except Refusal as refusal:
            if verdict is not None and verdict.on_refused is not None:
                verdict.on_refused()
            self._refuse(resp, refusal)
            return
        except Exception:
            if verdict is not None and verdict.on_refused is not None:
                verdict.on_refused()
            raise

        if verdict is not None and verdict.on_enqueued is not None:
            try:
                verdict.on_enqueued()
            except Exception as exc:  # the webhook is stored: the sender still gets its 202
                event("auth_on_enqueued_failed", level="error", route=route.path, error=str(exc))
        metrics = self.runtime.metrics
        if metrics is not None:
            metrics.ingress_accepted.inc()
            metrics.ingress_enqueued.inc(count)
        resp.status = 202
        resp.content_type = falcon.MEDIA_JSON
        resp.data = QUEUED_BODY

    # -- pipeline steps ------------------------------------------------------------------

    def _route(self, req, parts: IngressParts, raw_headers):
        facts = RequestFacts(
            req.method,
            req.path,
            req.get_header("Host"),
            raw_headers,
            req.query_string,
            req.remote_addr,
        )
        resolution = parts.table.resolve(facts)
        if resolution.route is not None:
            return resolution.route, facts
        if resolution.allowed:
            raise Refusal(
                405,
                "method_not_allowed",
                f"method {req.method} is not allowed here",
                "not_found",
                {"Allow": ", ".join(resolution.allowed)},
            )
        raise Refusal(404, "not_found", "no route matches this request", "not_found")

    def _limit(self, route: Route, parts: IngressParts, config: Config) -> None:
        bucket = parts.limiters.bucket_for(route.path)
        if bucket is not None:
            wait = bucket.take()
            if wait > 0:
                raise Refusal(
                    429,
                    "rate_limited",
                    "rate limit exceeded; retry later",
                    "rate_limit",
                    {"Retry-After": str(retry_after_seconds(wait))},
                )
        settings = config.defaults.adaptive_backpressure
        if settings.enabled:
            reason = self.backpressure.check(settings, config.defaults.trend_signals)
            metrics = self.runtime.metrics
            if reason is not None:
                if metrics is not None:
                    metrics.ingress_backpressure.labels(reason).inc()
                    metrics.ingress_backpressure_applied.inc()
                raise Refusal(
                    503,
                    "adaptive_backpressure",
                    f"queue is under pressure ({reason}); retry later",
                    "adaptive_backpressure",
                )

    def _verify_early(self, req, raw_headers, verifier) -> Verdict | None:
        """Verifiers that declare ``needs_body = False`` run before the body is read."""
        if verifier is None or getattr(verifier, "needs_body", True):
            return None
        return self._verify(verifier, _inbound(req, raw_headers, b""))

    def _verify(self, verifier, request: InboundRequest) -> Verdict:
        try:
            verdict = verifier.verify(request)
        except Exception as exc:
            path = path_bytes(request.path).decode("utf-8", "replace")
            event("auth_verifier_failed", level="error", path=path, error=str(exc))
            raise Refusal(503, "auth_unavailable", "authentication is unavailable", "auth") from exc
        if not verdict.allowed:
            raise Refusal(
                verdict.status,
                verdict.code or "unauthorized",
                verdict.detail or "authentication failed",
                "auth",
            )
        return verdict

    def _read_body(self, req, route: Route) -> bytes:
        limit = route.max_body
        length = req.content_length
        if length is not None and length > limit:
            raise Refusal(413, "payload_too_large", _too_large("body", limit), "policy")
        try:
            body = req.bounded_stream.read(limit + 1)
        except Exception as exc:
            raise Refusal(
                400, "invalid_request", "the request body could not be read", "policy"
            ) from exc
        if len(body) > limit:
            raise Refusal(413, "payload_too_large", _too_large("body", limit), "policy")
        return body

    def _headers(self, raw_headers, route: Route, verdict: Verdict | None = None) -> dict:
        headers = stored_headers(raw_headers)
        if verdict is not None:
            headers.update(verdict.headers)  # forward auth's copy_headers replace inbound ones
        size = sum(len(name) + len(value) for name, value in headers.items())
        if size > route.max_headers:
            raise Refusal(
                413, "headers_too_large", _too_large("headers", route.max_headers), "policy"
            )
        return {name: header_text(value) for name, value in headers.items()}

    def _enqueue(self, route: Route, facts: RequestFacts, body: bytes, headers, req) -> int:
        now = datetime.now(UTC)
        trace = {"remote_addr": _remote_addr(req), "path": facts.path}
        targets = ["pull"] if route.pull is not None else [t.target for t in route.targets]
        envelopes = [
            Envelope(
                id=new_event_id(),
                route=route.path,
                target=target,
                payload=body,
                received_at=now,
                next_run_at=now,
                headers=dict(headers),
                trace=dict(trace),
            )
            for target in targets
        ]
        try:
            self.committer.enqueue(envelopes)
        except QueueFull as exc:
            raise Refusal(
                503,
                "queue_full",
                "the queue is full; retry later",
                "queue_full",
                {"Retry-After": str(QUEUE_FULL_RETRY_AFTER)},
            ) from exc
        except MemoryPressure as exc:
            raise Refusal(
                503, "memory_pressure", "the queue is under memory pressure", "memory_pressure"
            ) from exc
        except Exception as exc:
            event("ingress_enqueue_failed", level="error", route=route.path, error=str(exc))
            raise Refusal(
                503, "store_unavailable", "the queue store is unavailable", "other"
            ) from exc
        if log.enabled("debug"):
            for envelope in envelopes:
                event("webhook_enqueued", level="debug", route=route.path, id=envelope.id)
        return len(envelopes)

    # -- answers ---------------------------------------------------------------------------

    def _refuse(self, resp: falcon.Response, refusal: Refusal) -> None:
        metrics = self.runtime.metrics
        if metrics is not None:
            metrics.ingress_reject(refusal.reason, refusal.status)
        resp.status = refusal.status
        resp.content_type = falcon.MEDIA_JSON
        resp.data = (json.dumps({"code": refusal.code, "detail": refusal.detail}) + "\n").encode()
        for name, value in refusal.headers.items():
            resp.set_header(name, value)


def _too_large(what: str, limit: int) -> str:
    verb = "are" if what.endswith("s") else "is"
    return f"request {what} {verb} larger than the limit of {limit} bytes"


def _remote_addr(req) -> str:
    host = req.remote_addr or ""
    port = req.env.get("REMOTE_PORT")
    if not port:
        return host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _request_path(req) -> str:
    """The request path as sent: UTF-8 text, with any byte that is not UTF-8 kept as a
    surrogate escape (falcon's ``req.path`` turns those into U+FFFD, which no sender
    signed)."""
    raw = req.env.get("PATH_INFO") or "/"
    try:
        return raw.encode("latin-1").decode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return req.path


def _inbound(req, raw_headers, body: bytes) -> InboundRequest:
    return InboundRequest(
        method=req.method,
        path=_request_path(req),
        query=req.query_string,
        headers={canonical_header_name(name): value for name, value in raw_headers.items()},
        body=body,
        remote_addr=_remote_addr(req),
        received_at=datetime.now(UTC),
    )


HTTP_ERROR_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    431: "headers_too_large",
}


def _handle_unexpected(req, resp, exc, params):
    """Falcon's own refusals (a malformed header) keep the JSON error shape; bugs are 500s."""
    resp.content_type = falcon.MEDIA_JSON
    if isinstance(exc, falcon.HTTPError):
        resp.status = exc.status_code
        detail = exc.description or exc.title or "invalid request"
        code = HTTP_ERROR_CODES.get(exc.status_code, "invalid_request")
        resp.data = (json.dumps({"code": code, "detail": detail}) + "\n").encode()
        return
    event("ingress_internal_error", level="error", path=req.path, error=repr(exc))
    resp.status = 500
    resp.data = b'{"code":"internal_error","detail":"unexpected server error"}\n'


def make_ingress_app(runtime, trends=None) -> falcon.App:
    """The ingress WSGI app; reads ``runtime.current.parts["ingress"]`` per request.

    ``trends`` is the ``TrendRecorder`` whose snapshots feed the sustained-growth signal of
    adaptive backpressure."""
    app = falcon.App(media_type=falcon.MEDIA_JSON)
    app.req_options.strip_url_path_trailing_slash = False
    app.add_sink(IngressResource(runtime, trends), prefix="/")
    app.add_error_handler(Exception, _handle_unexpected)
    app.add_error_handler(falcon.HTTPError, _handle_unexpected)
    return app
