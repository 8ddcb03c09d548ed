"""``POST /messages/publish``: validate every item in the documented order, then enqueue all
of them in one batch or none. Policy and validation failures never touch the store.
"""

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from hookaido.config import values
from hookaido.queue.errors import MessageExists, QueueError, QueueFull
from hookaido.queue.model import Envelope
from hookaido.server.admin_common import (
    labeled_routes,
    parse_api_time,
    read_audit,
    require_policy_headers,
)
from hookaido.server.admin_mutations import log_mutation
from hookaido.server.envelope_json import TIME_FORMAT
from hookaido.server.jsonbody import (
    APIError,
    answer_json,
    check_fields,
    invalid_body,
    read_object,
)

MAX_ITEMS = 1000
STANDARD_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
ITEM_FIELDS = (
    "id",
    "route",
    "target",
    "payload_b64",
    "headers",
    "trace",
    "received_at",
    "next_run_at",
    "application",
    "endpoint_name",
)
TEXT_FIELDS = (
    "id",
    "route",
    "target",
    "received_at",
    "next_run_at",
    "application",
    "endpoint_name",
)
VALIDATION_CODES = frozenset(
    {
        "invalid_body",
        "invalid_received_at",
        "invalid_next_run_at",
        "invalid_payload_b64",
        "invalid_header",
        "payload_too_large",
        "headers_too_large",
        "selector_scope_mismatch",
        "audit_reason_required",
        "audit_actor_required",
        "audit_request_id_required",
    }
)
POLICY_CODES = frozenset(
    {
        "audit_actor_not_allowed",
        "route_not_found",
        "target_unresolvable",
        "scoped_publish_required",
        "global_publish_disabled",
        "route_publish_disabled",
        "pull_route_publish_disabled",
        "deliver_route_publish_disabled",
    }
)


@dataclass
class PublishItem:
    """One item of the request as received, with its position."""

    index: int
    fields: dict


def publish(runtime, generation, req, resp) -> None:
    """Answer ``POST /messages/publish``; counts the outcome in the publish metrics."""
    try:
        published, audit, envelopes = _publish(runtime, generation, req)
    except APIError as error:
        _count_rejection(runtime.metrics, error.code)
        raise
    if runtime.metrics is not None:
        runtime.metrics.publish_accepted.inc(published)
    answer_json(resp, {"published": published, "audit": audit.as_json()})
    log_mutation(
        "publish_messages",
        audit,
        route=",".join(sorted({envelope.route for envelope in envelopes})),
        target=",".join(sorted({envelope.target for envelope in envelopes})),
        matched=published,
        changed=published,
    )


def _publish(runtime, generation, req):
    config = generation.config
    policy = config.defaults.publish_policy
    if not policy.direct:
        raise APIError(403, "global_publish_disabled", "publish_policy.direct is off")
    audit = read_audit(req)
    require_policy_headers(audit, policy)

    items = _read_items(req, config.defaults.max_body)
    for item in items:
        if "application" in item.fields or "endpoint_name" in item.fields:
            raise APIError(
                400,
                "scoped_publish_required",
                "items with application/endpoint_name need the scoped publish API",
                item_index=item.index,
            )

    now = datetime.now(UTC)
    envelopes = [_checked_envelope(config, item, now) for item in items]
    backend = runtime.backend
    try:
        for envelope, item in zip(envelopes, items, strict=True):
            if backend.get(envelope.id) is not None:
                raise APIError(
                    409,
                    "duplicate_id",
                    f"a message with id {envelope.id!r} already exists",
                    item_index=item.index,
                )
        backend.enqueue(envelopes)
    except MessageExists as exists:
        raise APIError(409, "duplicate_id", f"id {exists.message_id!r} already exists") from None
    except QueueFull:
        raise APIError(503, "queue_full", "the queue is full") from None
    except QueueError:
        raise APIError(503, "store_unavailable", "the queue store is unavailable") from None
    return len(envelopes), audit, envelopes


def _read_items(req, limit: int) -> list[PublishItem]:
    """Check 3: the body's shape, item by item, before any route is looked at."""
    document = read_object(req, limit)
    check_fields(document, ("items",))
    raw_items = document.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        raise invalid_body("field 'items' must be a list of 1 to 1000 items")
    if len(raw_items) > MAX_ITEMS:
        raise invalid_body(f"at most {MAX_ITEMS} items per request, got {len(raw_items)}")

    items = []
    seen: set[str] = set()
    for index, fields in enumerate(raw_items):
        _check_item_shape(index, fields)
        if fields["id"] in seen:
            raise invalid_body(f"id {fields['id']!r} appears twice", item_index=index)
        seen.add(fields["id"])
        items.append(PublishItem(index, fields))
    return items


def _check_item_shape(index: int, fields) -> None:
    if not isinstance(fields, dict):
        raise invalid_body("each item must be a JSON object", item_index=index)
    for key in fields:
        if key not in ITEM_FIELDS:
            raise invalid_body(f"unknown item field {key!r}", item_index=index)
    present = {key: value for key, value in fields.items() if value is not None}
    fields.clear()
    fields.update(present)

    for key in ("id", "route", "target", "payload_b64", "application", "endpoint_name"):
        if key in fields and not isinstance(fields[key], str):
            raise invalid_body(f"item field {key!r} must be a string", item_index=index)
    for key in ("headers", "trace"):
        value = fields.get(key)
        if value is not None and not (
            isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
        ):
            raise invalid_body(f"item field {key!r} must be an object of strings", item_index=index)

    # Surrounding spaces are dropped, as the ID lists of the lifecycle mutations drop them,
    # and a field left empty counts as absent.
    # Values of another type stay as they are, for the checks of their own field to refuse.
    for key in TEXT_FIELDS:
        if isinstance(fields.get(key), str):
            text = fields.pop(key).strip()
            if text:
                fields[key] = text

    if "id" not in fields:
        raise invalid_body("item field 'id' is required", item_index=index)
    selector = "application" in fields or "endpoint_name" in fields
    if "route" not in fields and not selector:
        raise invalid_body("item field 'route' is required", item_index=index)
    if "route" in fields and not fields["route"].startswith("/"):
        raise invalid_body("item field 'route' must start with '/'", item_index=index)
    if selector:
        application, endpoint_name = fields.get("application"), fields.get("endpoint_name")
        if application is None or endpoint_name is None:
            raise invalid_body(
                "application and endpoint_name must be given together", item_index=index
            )
        if not (values.is_label(application) and values.is_label(endpoint_name)):
            raise invalid_body("application/endpoint_name is not a valid label", item_index=index)


def _checked_envelope(config, item: PublishItem, now: datetime) -> Envelope:
    """Checks 5 to 14 for one item; returns the envelope it will become."""
    fields, index = item.fields, item.index
    route = _checked_route(config, fields["route"], index)
    target = _resolved_target(route, fields.get("target"), index)

    received_at = _item_time(fields, "received_at", "invalid_received_at", index) or now
    next_run_at = _item_time(fields, "next_run_at", "invalid_next_run_at", index) or received_at
    encoded = fields.get("payload_b64", "")
    try:
        if not STANDARD_BASE64.fullmatch(encoded):
            raise ValueError("not padded standard base64")
        payload = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise APIError(
            400, "invalid_payload_b64", "payload_b64 is not standard base64", item_index=index
        ) from None
    if len(payload) > route.max_body:
        raise APIError(
            413,
            "payload_too_large",
            f"payload is {len(payload)} bytes; route {route.path} allows {route.max_body}",
            item_index=index,
        )
    headers = dict(fields.get("headers", {}))
    _check_headers(headers, route.max_headers, index)

    return Envelope(
        id=fields["id"],
        route=route.path,
        target=target,
        payload=payload,
        received_at=received_at,
        next_run_at=next_run_at,
        headers=headers,
        trace=dict(fields.get("trace", {})),
    )


def _checked_route(config, path: str, index: int):
    if path in labeled_routes(config):
        raise APIError(
            400,
            "managed_selector_required",
            f"route {path} is management-labeled; publish to it by application/endpoint_name",
            item_index=index,
        )
    route = next((candidate for candidate in config.routes if candidate.path == path), None)
    if route is None or (route.pull is None and not route.targets):
        raise APIError(400, "route_not_found", f"no route {path}", item_index=index)
    if not route.publish.enabled or not route.publish.direct:
        raise APIError(
            403, "route_publish_disabled", f"publish is off on route {path}", item_index=index
        )
    policy = config.defaults.publish_policy
    if route.pull is not None and not policy.allow_pull_routes:
        raise APIError(
            403,
            "pull_route_publish_disabled",
            "publish_policy.allow_pull_routes is off",
            item_index=index,
        )
    if route.targets and not policy.allow_deliver_routes:
        raise APIError(
            403,
            "deliver_route_publish_disabled",
            "publish_policy.allow_deliver_routes is off",
            item_index=index,
        )
    return route


def _resolved_target(route, requested: str | None, index: int) -> str:
    allowed = ["pull"] if route.pull is not None else [target.target for target in route.targets]
    if requested is None and len(allowed) == 1:
        return allowed[0]
    if requested is not None and requested in allowed:
        return requested
    problem = "target is required" if requested is None else f"unknown target {requested!r}"
    raise APIError(
        400,
        "target_unresolvable",
        f"{problem} on route {route.path}; allowed targets: {', '.join(allowed)}",
        item_index=index,
    )


def _item_time(fields: dict, name: str, code: str, index: int) -> datetime | None:
    text = fields.get(name)
    if text is None:
        return None
    try:
        return parse_api_time(text)
    except ValueError:
        raise APIError(400, code, f"{name} must be {TIME_FORMAT}", item_index=index) from None


def _check_headers(headers: dict[str, str], limit: int, index: int) -> None:
    """Checks 13 and 14; the size is counted in UTF-8 bytes, as ``max_headers`` is a size."""
    size = 0
    for name, value in headers.items():
        if not values.is_http_token(name):
            raise APIError(
                400, "invalid_header", f"header name {name!r} is not a token", item_index=index
            )
        if any((ord(char) < 32 and char != "\t") or ord(char) == 127 for char in value):
            raise APIError(
                400,
                "invalid_header",
                f"header {name!r} holds a control character",
                item_index=index,
            )
        size += len(name.encode()) + len(value.encode())
    if size > limit:
        raise APIError(
            413,
            "headers_too_large",
            f"headers are {size} bytes; the route allows {limit}",
            item_index=index,
        )


def _count_rejection(metrics, code: str) -> None:
    if metrics is None:
        return
    metrics.publish_rejected.inc()
    if code in VALIDATION_CODES:
        kind = "validation"
    elif code in POLICY_CODES or code.startswith("managed_"):
        kind = "policy"
    elif code == "duplicate_id":
        kind = "conflict"
    elif code == "queue_full":
        kind = "queue_full"
    else:
        kind = "store"
    metrics.publish_rejected_kind[kind].inc()
