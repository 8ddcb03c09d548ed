"""Lifecycle mutations of the Admin API: DLQ requeue/delete and cancel/requeue/resume, by ID
list or by filter. Each checks its audit headers first and logs one mutation event.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from hookaido.observability.log import event
from hookaido.queue.backend import MessageFilter
from hookaido.server.admin_common import (
    MAX_LIMIT,
    Audit,
    labeled_routes,
    parse_before,
    read_audit,
    require_actor_allowed,
    resolve_selector,
)
from hookaido.server.envelope_json import TIME_FORMAT, render_time
from hookaido.server.jsonbody import (
    APIError,
    answer_json,
    check_fields,
    get_bool,
    get_int,
    get_str,
    invalid_body,
    read_object,
)

MAX_IDS = 1000
DEFAULT_FILTER_LIMIT = 100


@dataclass(frozen=True)
class Mutation:
    """One lifecycle operation: the backend call, the states it touches, its names."""

    operation: str  # the event's operation name
    result_key: str  # "requeued", "deleted", ...
    eligible: tuple[str, ...]
    apply: str  # backend method name


BY_ID = {
    "/dlq/requeue": Mutation("dlq_requeue", "requeued", ("dead",), "requeue"),
    "/dlq/delete": Mutation("dlq_delete", "deleted", ("dead",), "delete_dead"),
    "/messages/cancel": Mutation(
        "cancel_messages", "canceled", ("queued", "leased", "dead"), "cancel"
    ),
    "/messages/requeue": Mutation("requeue_messages", "requeued", ("dead", "canceled"), "requeue"),
    "/messages/resume": Mutation("resume_messages", "resumed", ("canceled",), "resume"),
}
BY_FILTER = {
    "/messages/cancel_by_filter": Mutation(
        "cancel_by_filter", "canceled", ("queued", "leased", "dead"), "cancel"
    ),
    "/messages/requeue_by_filter": Mutation(
        "requeue_by_filter", "requeued", ("dead", "canceled"), "requeue"
    ),
    "/messages/resume_by_filter": Mutation("resume_by_filter", "resumed", ("canceled",), "resume"),
}
FILTER_FIELDS = (
    "route",
    "target",
    "state",
    "before",
    "limit",
    "preview_only",
    "application",
    "endpoint_name",
)


def mutate_by_ids(mutation: Mutation, runtime, generation, req, resp) -> None:
    """``{"ids": [...]}``: apply to the listed messages in an eligible state, skip the rest."""
    config = generation.config
    audit = read_audit(req)
    document = read_object(req, config.defaults.max_body)
    check_fields(document, ("ids",))
    ids = _ids(document)

    backend = runtime.backend
    found = [backend.get(message_id) for message_id in ids]
    eligible = [env for env in found if env is not None and env.state in mutation.eligible]
    labeled = labeled_routes(config)
    if any(envelope.route in labeled for envelope in eligible):
        require_actor_allowed(audit, config.defaults.publish_policy)
    changed = getattr(backend, mutation.apply)([envelope.id for envelope in eligible])

    answer_json(resp, {mutation.result_key: changed, "audit": audit.as_json()})
    log_mutation(
        mutation.operation,
        audit,
        route=",".join(sorted({envelope.route for envelope in eligible})),
        target=",".join(sorted({envelope.target for envelope in eligible})),
        changed=changed,
        matched=len(eligible),
    )


def mutate_by_filter(mutation: Mutation, runtime, generation, req, resp) -> None:
    """A filter picks up to ``limit`` eligible messages, newest first; ``preview_only`` counts.

    The body and its selector are checked before the audit headers, and those before the
    management-label rules."""
    config = generation.config
    document = read_object(req, config.defaults.max_body)
    check_fields(document, FILTER_FIELDS)
    route = _filter_text(document, "route")
    target = _filter_text(document, "target")
    state = _filter_text(document, "state")
    limit = get_int(document, "limit")
    preview_only = bool(get_bool(document, "preview_only"))
    before = _before(_filter_text(document, "before"))
    if route is not None and not route.startswith("/"):
        raise invalid_body(f"route must start with '/', got {route!r}")
    if state is not None and state not in mutation.eligible:
        raise invalid_body(
            f"state must be one of {', '.join(mutation.eligible)} here, got {state!r}"
        )
    if limit is not None and limit < 0:
        raise invalid_body(f"limit must not be negative, got {limit}")
    limit = min(limit or DEFAULT_FILTER_LIMIT, MAX_LIMIT)

    scope = resolve_selector(
        config,
        route,
        _filter_text(document, "application"),
        _filter_text(document, "endpoint_name"),
    )
    audit = read_audit(req)
    labeled = labeled_routes(config)
    if scope is not None:
        route = scope.route
        require_actor_allowed(audit, config.defaults.publish_policy)
    elif (route is None and labeled) or route in labeled:
        raise APIError(
            400,
            "managed_selector_required",
            "management-labeled routes are selected by application and endpoint_name",
        )

    backend = runtime.backend
    states = (state,) if state else mutation.eligible
    candidates = backend.list_messages(
        MessageFilter(route=route, target=target, states=states, before=before, limit=limit)
    )
    changed = 0
    if not preview_only and candidates:
        changed = getattr(backend, mutation.apply)([envelope.id for envelope in candidates])

    body: dict = {"matched": len(candidates)}
    if changed:
        body[mutation.result_key] = changed
    body["preview_only"] = preview_only
    body["audit"] = audit.as_json()
    if scope is not None:
        body["scope"] = scope.as_json()
    answer_json(resp, body)
    log_mutation(
        mutation.operation,
        audit,
        route=route or "",
        target=target or "",
        state=state or "",
        limit=limit,
        preview_only=preview_only,
        matched=len(candidates),
        changed=changed,
    )


def _filter_text(document: dict, name: str) -> str | None:
    """A string field of a filter without surrounding spaces; an empty one counts as absent."""
    text = get_str(document, name)
    if text is None:
        return None
    return text.strip() or None


def _ids(document: dict) -> list[str]:
    raw = document.get("ids")
    if not isinstance(raw, list) or not all(isinstance(entry, str) for entry in raw):
        raise invalid_body("field 'ids' must be a list of message IDs")
    ids = [entry.strip() for entry in raw]
    if not ids or len(ids) > MAX_IDS:
        raise invalid_body(f"field 'ids' must hold 1 to {MAX_IDS} IDs, got {len(ids)}")
    if not all(ids):
        raise invalid_body("field 'ids' holds an empty ID")
    return list(dict.fromkeys(ids))


def _before(text: str | None):
    if text is None:
        return None
    try:
        return parse_before(text)
    except ValueError:
        raise invalid_body(f"before must be {TIME_FORMAT}, got {text!r}") from None


MUTATION_LOG_DEFAULTS = {
    "route": "",
    "target": "",
    "state": "",
    "limit": 0,
    "preview_only": False,
    "matched": 0,
    "changed": 0,
}


def log_mutation(operation: str, audit: Audit, **fields) -> None:
    """The ``admin_management_mutation`` event; every documented key is present, the ones an
    operation has no value for are empty (``""``, ``0``, ``false``)."""
    event(
        "admin_management_mutation",
        operation=operation,
        **{**MUTATION_LOG_DEFAULTS, **fields},
        reason=audit.reason,
        actor=audit.actor,
        request_id=audit.request_id,
        at=render_time(datetime.now(UTC)),
    )
