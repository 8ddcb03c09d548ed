"""Compile a route's ``auth`` directives into one ``AuthConfig`` (basic, hmac, forward, plugins).

Core rules for the built-in kinds are checked here; a kind no installed plugin provides is an
error naming the installed ones. Plugin kinds get their options as plain data.
"""

import base64
import binascii
import re
from datetime import timedelta
from urllib.parse import urlsplit

from hookaido.config import values
from hookaido.config.ast import Directive, Value
from hookaido.config.compile_reader import Block, Problems, parse_secret_ref, parse_value, quote
from hookaido.config.model import AuthConfig, SecretRef
from hookaido.config.placeholders import find_placeholders

PROVIDERS = ("github", "gitea", "stripe", "cituro", "shopify", "slack", "standard-webhooks")
HMAC_DEFAULTS = {
    "signature_header": "X-Signature",
    "timestamp_header": "X-Timestamp",
    "nonce_header": "X-Nonce",
}
HMAC_OPTIONS = {"secret", "secret_ref", "tolerance", "provider", *HMAC_DEFAULTS}
FORWARD_OPTIONS = {"timeout", "copy_headers", "body_limit"}


def missing_plugin(kind: str, name: str, registry) -> str | None:
    """The message for ``name`` when no installed plugin registers it as ``kind``."""
    if registry is None or registry.get(kind, name) is not None:
        return None
    installed = ", ".join(registry.names(kind)) or "none"
    return f"no installed plugin provides {kind} {quote(name)} (installed: {installed})"


def compile_auth(
    directives: list[Directive],
    problems: Problems,
    where: str,
    secret_ids: set[str],
    registry,
) -> AuthConfig | None:
    if not directives:
        return None
    kinds: dict[str, list[Directive]] = {}
    for directive in directives:
        if not directive.args:
            problems.error(directive, f"{where}: auth needs a kind such as hmac, basic, forward")
            continue
        kinds.setdefault(directive.args[0].text, []).append(directive)
    if not kinds:
        return None

    names = list(kinds)
    for index, name in enumerate(names[1:], start=1):
        for earlier in names[:index]:
            problems.error(
                kinds[name][0], f"{where}: auth {name} cannot be combined with auth {earlier}"
            )
    for name, found in kinds.items():
        message = missing_plugin("auth", name, registry)
        if message is not None:
            problems.error(found[0], f"{where}: auth {name}: {message}")
        if name != "basic":
            for repeat in found[1:]:
                problems.error(repeat, f"{where}: duplicate auth {name}")

    name = names[0]
    first = kinds[name]
    if name == "basic":
        options = _basic(first, problems, where)
    elif name == "hmac":
        options = _hmac(first[0], problems, where, secret_ids)
    elif name == "forward":
        options = _forward(first[0], problems, where)
    else:
        options = plugin_options(first[0], registry)
    return AuthConfig(name=name, options=options, location=first[0].location)


# --------------------------------------------------------------------------------------
# basic
# --------------------------------------------------------------------------------------


def _basic(directives: list[Directive], problems: Problems, where: str) -> dict:
    users: list[list[str]] = []
    for directive in directives:
        credentials = directive.args[1:]
        if len(credentials) != 2 or directive.block is not None:
            problems.error(directive, f"{where}: auth basic expects <user> <password>")
            continue
        user, password = credentials
        bad = False
        for value, role in ((user, "user"), (password, "password")):
            if not value.text:
                problems.error(value, f"{where}: auth basic {role} must not be empty")
                bad = True
            elif values.is_secret_ref(value.text) and not _filled_from_outside(value):
                problems.error(
                    value,
                    f"{where}: auth basic {role} {quote(value.text)} is a secret reference;"
                    " basic credentials are compared literally, use {env.NAME} instead",
                )
                bad = True
        if any(existing[0] == user.text for existing in users):
            problems.error(user, f"{where}: auth basic: duplicate user {quote(user.text)}")
            continue
        if not bad:
            users.append([user.text, password.text])
    return {"users": users}


def _filled_from_outside(value: Value) -> bool:
    """Whether the value took its text from the environment or a file: such text is the
    credential itself, however it looks."""
    if value.written is None:
        return False
    return any(kind != "vars." for kind, _ in find_placeholders(value.written))


# --------------------------------------------------------------------------------------
# hmac
# --------------------------------------------------------------------------------------

_STANDARD_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def is_whsec_key(secret: str) -> bool:
    """Whether a Standard Webhooks secret is usable: ``whsec_`` needs standard base64 after it
    (padding may be left out); a secret without that prefix is used as it is."""
    if not secret.startswith("whsec_"):
        return True
    encoded = secret[len("whsec_") :]
    encoded += "=" * (-len(encoded) % 4)
    if not _STANDARD_BASE64.fullmatch(encoded):
        return False
    try:
        return bool(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError):
        return False


def _hmac(directive: Directive, problems: Problems, where: str, secret_ids: set[str]) -> dict:
    context = f"{where}: auth hmac"
    secrets: list[SecretRef] = []
    secret_refs: list[tuple[str, Value]] = []
    args = directive.args[1:]
    if len(args) == 1:
        ref = parse_secret_ref(problems, args[0], context)
        if ref is not None:
            secrets.append(ref)
    elif len(args) >= 2 and args[0].text == "secret_ref":
        secret_refs.extend((value.text, value) for value in args[1:])
    elif args:
        problems.error(
            directive,
            f"{context}: expected auth hmac <secret-ref>, auth hmac secret_ref <ID> or a block",
        )

    block = Block(directive.block, problems, f"{where}.auth hmac", known=HMAC_OPTIONS)
    for secret_directive in block.all("secret"):
        for value in secret_directive.args:
            ref = parse_secret_ref(problems, value, context)
            if ref is not None:
                secrets.append(ref)
    for ref_directive in block.all("secret_ref"):
        secret_refs.extend((value.text, value) for value in ref_directive.args)

    seen: set[str] = set()
    for secret_id, value in secret_refs:
        if secret_id in seen:
            problems.error(value, f"{context}: duplicate secret_ref {quote(secret_id)}")
        elif secret_id not in secret_ids:
            problems.error(
                value, f"{context}: secret_ref {quote(secret_id)} is not declared in secrets"
            )
        seen.add(secret_id)
    if not secrets and not secret_refs and context not in problems.rejected:
        problems.error(directive, f"{context} needs at least one secret or secret_ref")

    provider = None
    provider_value = block.value("provider")
    if provider_value is not None:
        provider = provider_value.text.lower()
        if provider not in PROVIDERS:
            problems.error(
                provider_value,
                f"{context}: unknown provider {quote(provider_value.text)}"
                f" (expected one of: {' '.join(PROVIDERS)})",
            )
        for name in (*HMAC_DEFAULTS, "tolerance"):
            if block.has(name):
                problems.error(
                    block.one(name), f"{context}: provider cannot be combined with {name}"
                )

    if provider == "standard-webhooks":
        for ref in secrets:
            if ref.scheme == "raw" and not is_whsec_key(ref.value):
                problems.error(
                    ref.location or directive,
                    f"{context}: a whsec_ secret must carry a non-empty standard base64 key",
                )

    headers = {}
    for name, default in HMAC_DEFAULTS.items():
        value = block.value(name)
        headers[name] = default if value is None else value.text
        if value is not None and not values.is_http_token(value.text):
            problems.error(value, f"{context}: {name} {quote(value.text)} is not a valid header")
    _check_distinct(headers, problems, directive, context)
    tolerance = block.parsed("tolerance", values.parse_positive_duration, timedelta(minutes=5))
    return {
        "secrets": secrets,
        "secret_refs": list(dict.fromkeys(secret_id for secret_id, _ in secret_refs)),
        "provider": provider,
        **headers,
        "tolerance": tolerance,
    }


def _check_distinct(headers: dict[str, str], problems: Problems, at, context: str) -> None:
    names = list(headers)
    for index, name in enumerate(names):
        for other in names[index + 1 :]:
            if headers[name].lower() == headers[other].lower():
                problems.error(
                    at,
                    f"{context}: {name} and {other} must differ (both {quote(headers[name])})",
                )


# --------------------------------------------------------------------------------------
# forward
# --------------------------------------------------------------------------------------


def check_http_url(text: str) -> str:
    """An ``http``/``https`` URL with a host."""
    try:
        parts = urlsplit(text)
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{quote(text)} is not an http or https URL with a host")
    return text


def _forward(directive: Directive, problems: Problems, where: str) -> dict:
    context = f"{where}: auth forward"
    args = directive.args[1:]
    url = ""
    if len(args) != 1:
        problems.error(directive, f"{context}: expects one URL")
    else:
        url = parse_value(problems, args[0], check_http_url, context, "")
    block = Block(directive.block, problems, f"{where}.auth forward", known=FORWARD_OPTIONS)
    copy_headers: list[str] = []
    for copy_directive in block.all("copy_headers"):
        for value in copy_directive.args:
            if not values.is_http_token(value.text):
                problems.error(value, f"{context}: copy_headers {quote(value.text)} is not a token")
            elif value.text.lower() not in (name.lower() for name in copy_headers):
                copy_headers.append(value.text)
    return {
        "url": url,
        "timeout": block.parsed("timeout", values.parse_positive_duration, timedelta(seconds=2)),
        "copy_headers": copy_headers,
        "body_limit": block.parsed(
            "body_limit", lambda text: values.parse_size(text, allow_off=True)
        ),
    }


# --------------------------------------------------------------------------------------
# plugin kinds: plain data
# --------------------------------------------------------------------------------------


def plugin_options(directive: Directive, registry) -> dict:
    """``{"args": [...values after the kind], <option>: <value(s)>, ...}`` for a plugin."""
    registration = registry.get("auth", directive.args[0].text) if registry else None
    schema = (registration.schema or {}) if registration else {}
    data = block_data(directive.block or [], schema)
    data["args"] = [value.text for value in directive.args[1:]]
    return data


def block_data(directives: list[Directive], schema: dict) -> dict:
    """A block as plain data: one value → str, several → list, a block → dict; repeats → list.

    A property the schema types as ``array`` is always a list.
    """
    properties = schema.get("properties", {}) if isinstance(schema, dict) else {}
    data: dict = {}
    for directive in directives:
        prop = properties.get(directive.name, {})
        if directive.block is not None:
            item = block_data(directive.block, prop)
        elif prop.get("type") == "array" or len(directive.args) > 1:
            item = [value.text for value in directive.args]
        elif directive.args:
            item = directive.args[0].text
        else:
            item = True
        if directive.name not in data:
            data[directive.name] = item
        elif prop.get("type") == "array" and isinstance(item, list):
            data[directive.name] = data[directive.name] + item
        elif isinstance(data[directive.name], list) and directive.block is None:
            data[directive.name].append(item)
        else:
            data[directive.name] = [data[directive.name], item]
    return data
