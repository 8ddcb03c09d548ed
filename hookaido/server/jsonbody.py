"""Strict JSON request bodies and the ``{"code", "detail"}`` error answer of the Pull and
Admin APIs. A malformed request always ends as a 4xx ``APIError``, never as a traceback.
"""

import json
from datetime import timedelta
from typing import Any

import falcon
import orjson

from hookaido.config import values
from hookaido.config.values import parse_api_duration, render_duration
from hookaido.observability.log import event

PULL_BODY_LIMIT = 1024 * 1024
__all__ = ["parse_api_duration", "render_duration"]


class APIError(Exception):
    """An answer with ``status`` and a JSON body ``{"code", "detail", **extra}``."""

    def __init__(
        self, status: int, code: str, detail: str, headers: dict | None = None, **extra: Any
    ):
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict:
        return {"code": self.code, "detail": self.detail, **self.extra}


def invalid_body(detail: str, **extra: Any) -> APIError:
    return APIError(400, "invalid_body", detail, **extra)


HTTP_ERROR_CODES = {400: "invalid_body", 404: "not_found", 405: "method_not_allowed"}


def http_error_as_api_error(error: falcon.HTTPError) -> APIError:
    """A falcon-raised error (bad header, unreadable request) in this API's error shape."""
    status = error.status_code
    if status == 413:
        return invalid_body("the request body is too large")
    code = HTTP_ERROR_CODES.get(status, "internal_error" if status >= 500 else "invalid_body")
    return APIError(status, code, str(error.title or error.status))


def answer_error(resp: falcon.Response, error: APIError) -> None:
    resp.status = error.status
    resp.content_type = "application/json"
    for name, value in error.headers.items():
        resp.set_header(name, value)
    resp.text = json.dumps(error.body())


def unexpected_error_handler(event_name: str):
    """A falcon error handler for an API app: an ``APIError`` or falcon's own refusal answers
    in the ``{"code", "detail"}`` shape; anything else is logged as ``event_name`` and is a 500
    ``internal_error`` without a traceback."""

    def answer_unexpected(req, resp, error, params) -> None:
        if isinstance(error, APIError):
            answer_error(resp, error)
            return
        if isinstance(error, falcon.HTTPError):
            answer_error(resp, http_error_as_api_error(error))
            return
        event(event_name, level="error", error=type(error).__name__)
        answer_error(resp, APIError(500, "internal_error", "unexpected server error"))

    return answer_unexpected


def answer_json(resp: falcon.Response, body: Any, status: int = 200) -> None:
    resp.status = status
    resp.content_type = "application/json"
    try:
        # A dequeue answer of 100 messages is the hottest answer there is; orjson writes it
        # several times faster than the standard encoder, as compact UTF-8 JSON.
        resp.data = orjson.dumps(body)
    except (orjson.JSONEncodeError, TypeError):
        resp.text = json.dumps(body)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def read_object(req: falcon.Request, limit: int, allow_empty: bool = False) -> dict | None:
    """The request body as exactly one JSON object of at most ``limit`` bytes, whatever
    Content-Type it declares.

    Returns None for an empty body when ``allow_empty``. Raises ``invalid_body`` for an
    oversized, non-UTF-8, malformed or non-object body, or trailing data.
    """
    if req.content_length is not None and req.content_length > limit:
        raise invalid_body(f"body exceeds {limit} bytes")
    raw = req.bounded_stream.read(limit + 1)
    if len(raw) > limit:
        raise invalid_body(f"body exceeds {limit} bytes")
    if not raw.strip():
        if allow_empty:
            return None
        raise invalid_body("a JSON object body is required")

    # The declared Content-Type is not checked: `curl -d` and urllib label JSON as a form by
    # default, and the body is held to the JSON rules below either way.
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid_body("the body is not valid UTF-8") from None
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise invalid_body(f"JSON nested too deeply (at most {MAX_DEPTH} levels)") from None
    except ValueError as exc:
        raise invalid_body(f"malformed JSON: {exc}") from None
    if not isinstance(document, dict):
        raise invalid_body("the body must be one JSON object")
    _check_strings(document, "", 0)
    return document


MAX_DEPTH = 64


def _check_strings(value: Any, field: str, depth: int) -> None:
    """Refuse a body nested deeper than ``MAX_DEPTH`` or holding a string (key or value) that
    cannot be encoded as UTF-8, such as a lone surrogate escape ``"\\ud800"``."""
    if depth > MAX_DEPTH:
        raise invalid_body(f"JSON nested too deeply (at most {MAX_DEPTH} levels)")
    if isinstance(value, str):
        if not _encodable(value):
            raise invalid_body(f"field {field!r} holds a string that is not valid Unicode")
    elif isinstance(value, dict):
        for key, entry in value.items():
            name = key if depth == 0 else field
            if not _encodable(key):
                raise invalid_body(f"field {name!r} holds a key that is not valid Unicode")
            _check_strings(entry, name, depth + 1)
    elif isinstance(value, list):
        for entry in value:
            _check_strings(entry, field, depth + 1)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_fields(document: dict, allowed: tuple[str, ...], where: str = "") -> None:
    """Reject any key of ``document`` not in ``allowed``."""
    for key in document:
        if key not in allowed:
            raise invalid_body(f"unknown field {where}{key!r}; allowed: {', '.join(allowed)}")


def _typed_field(document: dict, name: str, fits, expected: str):
    """The field ``name`` if absent (``None``) or of the right type; else ``invalid_body``."""
    value = document.get(name)
    if value is None:
        return None
    if not fits(value):
        raise invalid_body(f"field {name!r} must be {expected}")
    return value


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_str_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(entry, str) for entry in value)


def _is_str_map(value) -> bool:
    return isinstance(value, dict) and all(isinstance(entry, str) for entry in value.values())


def get_int(document: dict, name: str) -> int | None:
    return _typed_field(document, name, _is_int, "an integer")


def get_bool(document: dict, name: str) -> bool | None:
    return _typed_field(document, name, lambda value: isinstance(value, bool), "true or false")


def get_str(document: dict, name: str) -> str | None:
    return _typed_field(document, name, lambda value: isinstance(value, str), "a string")


def get_str_list(document: dict, name: str) -> list[str] | None:
    return _typed_field(document, name, _is_str_list, "a list of strings")


def get_str_map(document: dict, name: str) -> dict[str, str] | None:
    return _typed_field(document, name, _is_str_map, "an object of strings")


def get_duration(document: dict, name: str) -> timedelta | None:
    """A unit-suffixed duration string field (``"30s"``, ``"1m30s"``, ``"0"``)."""
    text = get_str(document, name)
    if text is None:
        return None
    try:
        return parse_api_duration(text)
    except ValueError:
        raise invalid_body(f'field {name!r} is not a duration like "30s": {text!r}') from None


def query_count(text: str, cap: int) -> int:
    """A count from a query string: ASCII digits with an optional ``+``, above zero, at most
    ``cap`` (a larger number, however long, gives ``cap``).

    Raises ``ValueError`` for anything else. ``int()`` alone would also take ``1_000`` and
    other scripts' digits, and refuses numbers of more than 4300 digits.
    """
    digits = text.strip().removeprefix("+")
    significant = digits.lstrip("0")
    if not (digits.isascii() and digits.isdigit()) or not significant:
        raise ValueError(f"not a positive integer: {text!r}")
    if len(significant) > len(str(cap)):
        return cap
    return min(int(significant), cap)


def clean_path(path: str) -> str:
    """Collapse ``//``, resolve ``.`` and ``..``, drop a trailing slash; always starts with /."""
    return values.clean_path("/" + path.lstrip("/"))
