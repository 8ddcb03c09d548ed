"""What every Admin API endpoint shares: query parameters, managed-route selectors and the
audit headers of mutations. Parsing only; no endpoint logic lives here.
"""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from hookaido.config import values
from hookaido.queue.model import STATES
from hookaido.server.envelope_json import TIME_FORMAT, parse_time
from hookaido.server.jsonbody import APIError, query_count

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
TRUE_WORDS = ("1", "true", "on", "yes")
FALSE_WORDS = ("0", "false", "off", "no")
AUDIT_REASON_MAX = 512
AUDIT_ID_MAX = 256
FRACTION = re.compile(r"[Tt ]\d\d:\d\d:\d\d\.(\d+)")


def invalid_query(detail: str) -> APIError:
    return APIError(400, "invalid_query", detail)


def query_param(req, name: str) -> str | None:
    """A query parameter without surrounding spaces; ``""`` when given empty."""
    value = req.get_param(name)
    return value.strip() if isinstance(value, str) else None


def query_limit(req) -> int:
    text = query_param(req, "limit")
    if not text:
        return DEFAULT_LIMIT
    try:
        return query_count(text, MAX_LIMIT)
    except ValueError:
        raise invalid_query(f"limit must be a positive integer, got {text!r}") from None


def query_time(req, name: str) -> datetime | None:
    text = query_param(req, name)
    if text is None or text == "":
        return None
    try:
        return parse_api_time(text)
    except ValueError:
        raise invalid_query(f"{name} must be {TIME_FORMAT}, got {text!r}") from None


def parse_api_time(text: str) -> datetime:
    """``parse_time`` for ASCII text only: other Unicode digits (``２０２６``) are refused."""
    if not isinstance(text, str) or not text.isascii():
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    return parse_time(text)


def parse_before(text: str) -> datetime:
    """A ``before`` bound: times are kept to the microsecond, so a bound with a finer, non-zero
    fraction (``…00.000000001Z``) is raised to the next microsecond, keeping "strictly
    earlier" exact. Raises ``ValueError`` like ``parse_time``."""
    moment = parse_api_time(text)
    fraction = FRACTION.search(text)
    if fraction is not None and fraction.group(1)[6:].strip("0"):
        moment += timedelta(microseconds=1)
    return moment


def query_before(req) -> datetime | None:
    """The ``before`` query parameter (see ``parse_before``)."""
    text = query_param(req, "before")
    if text is None or text == "":
        return None
    try:
        return parse_before(text)
    except ValueError:
        raise invalid_query(f"before must be {TIME_FORMAT}, got {text!r}") from None


def query_bool(req, name: str, default: bool = False) -> bool:
    text = query_param(req, name)
    if not text:
        return default
    word = text.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise invalid_query(f"{name} must be one of 1 true on yes / 0 false off no, got {text!r}")


def query_route(req) -> str | None:
    text = query_param(req, "route")
    if text is None or text == "":
        return None
    if not text.startswith("/"):
        raise invalid_query(f"route must start with '/', got {text!r}")
    return text


def query_state(req) -> str | None:
    text = (query_param(req, "state") or "").lower()
    if text == "":
        return None
    if text not in STATES:
        raise invalid_query(f"state must be one of {', '.join(STATES)}, got {text!r}")
    return text


# -- managed selectors ----------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """A route chosen by its management labels."""

    application: str
    endpoint_name: str
    route: str

    def as_json(self) -> dict:
        return {
            "application": self.application,
            "endpoint_name": self.endpoint_name,
            "route": self.route,
        }


def labeled_routes(config) -> dict[str, tuple[str, str]]:
    """Route path → (application, endpoint_name) for every management-labeled route."""
    return {
        route.path: (route.application, route.endpoint_name)
        for route in config.routes
        if route.application and route.endpoint_name
    }


def resolve_selector(
    config, route: str | None, application: str | None, endpoint_name: str | None
) -> Scope | None:
    """The labeled route named by ``application`` + ``endpoint_name``, or None without them.

    Both labels are required together and exclude ``route``.
    """
    if application is None and endpoint_name is None:
        return None
    if application is None or endpoint_name is None or route is not None:
        raise APIError(
            400,
            "selector_scope_mismatch",
            "give application and endpoint_name together, and not with route",
        )
    for label in (application, endpoint_name):
        if not values.is_label(label):
            raise APIError(400, "invalid_body", f"{label!r} is not a valid management label")
    for path, labels in labeled_routes(config).items():
        if labels == (application, endpoint_name):
            return Scope(application, endpoint_name, path)
    raise APIError(
        404,
        "managed_endpoint_not_found",
        f"no route is labeled application={application!r} endpoint_name={endpoint_name!r}",
    )


def query_selector(req, config) -> tuple[str | None, Scope | None]:
    """The ``route`` query parameter, or the route of ``application`` + ``endpoint_name``."""
    route = query_route(req)
    application = query_param(req, "application")
    endpoint_name = query_param(req, "endpoint_name")
    scope = resolve_selector(config, route, application or None, endpoint_name or None)
    if scope is not None:
        return scope.route, scope
    return route, None


# -- audit headers --------------------------------------------------------------------


@dataclass(frozen=True)
class Audit:
    reason: str
    actor: str
    request_id: str

    def as_json(self) -> dict:
        body = {"reason": self.reason}
        if self.actor:
            body["actor"] = self.actor
        if self.request_id:
            body["request_id"] = self.request_id
        return body


def _header_text(req, name: str) -> str:
    """A header value, stripped; WSGI hands header bytes over decoded as Latin-1, so bytes
    that are valid UTF-8 (``été``) are decoded as UTF-8 again, others are kept as they came."""
    value = (req.get_header(name) or "").strip()
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def read_audit(req) -> Audit:
    """The audit headers; a missing or over-long reason (or over-long actor/request id)
    is ``400 audit_reason_required``."""
    reason = _header_text(req, "X-Hookaido-Audit-Reason")
    actor = _header_text(req, "X-Hookaido-Audit-Actor")
    request_id = _header_text(req, "X-Request-ID")
    if not reason:
        raise APIError(400, "audit_reason_required", "X-Hookaido-Audit-Reason is required")
    if len(reason) > AUDIT_REASON_MAX:
        raise APIError(
            400,
            "audit_reason_required",
            f"X-Hookaido-Audit-Reason is longer than {AUDIT_REASON_MAX} characters",
        )
    for header, value in (("X-Hookaido-Audit-Actor", actor), ("X-Request-ID", request_id)):
        if len(value) > AUDIT_ID_MAX:
            raise APIError(
                400, "audit_reason_required", f"{header} is longer than {AUDIT_ID_MAX} characters"
            )
    return Audit(reason, actor, request_id)


def require_policy_headers(audit: Audit, policy) -> None:
    """``require_actor`` / ``require_request_id`` of ``publish_policy``."""
    if policy.require_actor and not audit.actor:
        raise APIError(400, "audit_actor_required", "X-Hookaido-Audit-Actor is required")
    if policy.require_request_id and not audit.request_id:
        raise APIError(400, "audit_request_id_required", "X-Request-ID is required")


def require_actor_allowed(audit: Audit, policy) -> None:
    """The actor policy of management-labeled routes (``actor_allow`` / ``actor_prefix``)."""
    require_policy_headers(audit, policy)
    if not (policy.actor_allow or policy.actor_prefix):
        return
    if not audit.actor:
        raise APIError(400, "audit_actor_required", "X-Hookaido-Audit-Actor is required")
    if audit.actor in policy.actor_allow:
        return
    if any(audit.actor.startswith(prefix) for prefix in policy.actor_prefix):
        return
    raise APIError(403, "audit_actor_not_allowed", f"actor {audit.actor!r} is not allowed")
