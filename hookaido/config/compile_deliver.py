"""Compile a route's ``deliver`` targets: URL or keyword kind, retry, timeout, headers, exec
environment and outbound signing (``sign ...``)."""

import shlex
from dataclasses import replace
from urllib.parse import urlsplit

from hookaido.config import values
from hookaido.config.ast import Directive
from hookaido.config.compile_auth import block_data, missing_plugin
from hookaido.config.compile_globals import compile_retry
from hookaido.config.compile_reader import Block, Problems, parse_secret_ref, quote
from hookaido.config.model import DeliverTarget, SignConfig

DELIVER_DIRECTIVES = {"retry", "timeout", "header", "sign", "env"}
SIGN_SETTINGS = ("signature_header", "timestamp_header", "secret_selection")
SELECTIONS = ("newest_valid", "oldest_valid")


def compile_targets(directives, problems: Problems, where: str, ctx):
    targets: list[DeliverTarget] = []
    seen: set[str] = set()
    for directive in directives:
        target = _target(directive, problems, where, ctx)
        if target is None:
            continue
        if target.target in seen:
            problems.error(directive, f"{where}: duplicate deliver target {quote(target.target)}")
            continue
        seen.add(target.target)
        targets.append(target)
    return tuple(targets)


def _target_kind(directive: Directive, problems: Problems, where: str, registry):
    """``(kind, target, is_url)`` of a deliver directive, or ``None`` after an error."""
    args = directive.args
    if not args:
        problems.error(directive, f"{where}: deliver needs a URL or exec <command>")
        return None
    if len(args) >= 2:
        keyword, target = args[0].text, " ".join(value.text for value in args[1:])
        message = missing_plugin("deliverer", keyword, registry)
        if message is not None:
            problems.error(args[0], f"{where}: deliver {keyword}: {message}")
            return None
        if not target.strip():
            problems.error(args[1], f"{where}: deliver {keyword}: empty target")
            return None
        if keyword == "exec" and not _splits_into_words(args[1], target, problems, where):
            return None
        return keyword, target, False
    text = args[0].text
    if not text.strip():
        problems.error(args[0], f"{where}: deliver target must not be empty")
        return None
    if "://" not in text:
        if registry is not None and registry.get("deliverer", text) is not None:
            problems.error(args[0], f"{where}: deliver {text} needs a target (deliver {text} <…>)")
        else:
            problems.error(
                args[0], f"{where}: deliver target {quote(text)} is not an http or https URL"
            )
        return None
    scheme = text.split("://", 1)[0].lower()
    message = missing_plugin("deliverer", scheme, registry)
    if message is not None:
        problems.error(args[0], f"{where}: deliver {quote(text)}: {message}")
        return None
    if scheme in ("http", "https"):
        try:
            host = urlsplit(text).hostname
        except ValueError:
            host = None
        if not host:
            problems.error(
                args[0],
                f"{where}: deliver target {quote(text)} is not an http or https URL with a host",
            )
            return None
    return scheme, text, True


def _splits_into_words(at, command: str, problems: Problems, where: str) -> bool:
    """An exec command is split like a shell would split it, at compile time, so a quote
    left open is reported here rather than when the first delivery is attempted."""
    try:
        shlex.split(command)
    except ValueError as exc:
        problems.error(
            at,
            f"{where}: deliver exec {quote(command)}: cannot split the command into words "
            f"({exc}); close every quote, or escape a literal quote with a backslash",
        )
        return False
    return True


def _target(directive: Directive, problems: Problems, where: str, ctx):
    found = _target_kind(directive, problems, where, ctx.registry)
    if directive.block is None:
        problems.error(directive, f"{where}: deliver needs a block {{ ... }} (it may be empty)")
    if found is None:
        return None
    kind, target, is_url = found
    context = f"{where}: deliver {quote(target)}"
    plugin = not is_url and kind != "exec"  # a keyword deliverer from a plugin
    block = Block(directive.block, problems, context, known=None if plugin else DELIVER_DIRECTIVES)
    defaults = ctx.defaults

    retry_directive = block.one("retry")
    retry = (
        compile_retry(retry_directive, problems, context, defaults.retry)
        if retry_directive
        else defaults.retry
    )
    timeout = block.parsed("timeout", values.parse_positive_duration, defaults.timeout)
    options = None
    if plugin:
        registration = ctx.registry.get("deliverer", kind) if ctx.registry else None
        own = [
            entry for entry in block.directives if entry.name not in ("retry", "timeout", "sign")
        ]
        options = block_data(own, (registration.schema if registration else None) or {})
        headers, env = (), ()
    else:
        headers = _headers(block.all("header"), problems, context, is_url)
        env = _env(block.all("env"), problems, context, is_url)
    sign = _sign(block.all("sign"), problems, context, kind, ctx)
    return DeliverTarget(
        target=target,
        kind=kind,
        retry=retry,
        timeout=timeout,
        headers=headers,
        sign=sign,
        env=env,
        location=directive.location,
        options=options,
    )


def _headers(directives, problems: Problems, context: str, is_url: bool):
    headers: list[tuple[str, str]] = []
    for directive in directives:
        if not is_url:
            problems.error(directive, f"{context}: header is only allowed on HTTP targets")
            continue
        if len(directive.args) != 2:
            problems.error(directive, f"{context}: header expects <name> <value>")
            continue
        name, value = directive.args
        if not values.is_http_token(name.text):
            problems.error(name, f"{context}: header {quote(name.text)} is not a valid name")
        elif any(existing.lower() == name.text.lower() for existing, _ in headers):
            problems.error(name, f"{context}: duplicate header {quote(name.text)}")
        else:
            headers.append((name.text, value.text))
    return tuple(headers)


def _env(directives, problems: Problems, context: str, is_url: bool):
    env: list[tuple[str, str]] = []
    for directive in directives:
        if is_url:
            problems.error(directive, f"{context}: env is only allowed on exec targets")
            continue
        if len(directive.args) != 2:
            problems.error(directive, f"{context}: env expects <KEY> <VALUE>")
            continue
        key, value = directive.args
        if not values.is_env_name(key.text):
            problems.error(
                key, f"{context}: env key {quote(key.text)} must match [A-Za-z_][A-Za-z0-9_]*"
            )
            continue
        env = [(name, old) for name, old in env if name != key.text]
        env.append((key.text, value.text))
    return tuple(env)


def _sign(directives, problems: Problems, context: str, kind: str, ctx):
    if not directives:
        return None
    if kind == "exec":
        for directive in directives:
            problems.error(directive, f"{context}: sign is not allowed on exec targets")
        return None
    direct, refs, settings, signer = [], [], {}, None
    direct_at = refs_at = None
    options = None
    for directive in directives:
        name = directive.args[0].text if directive.args else ""
        rest = directive.args[1:]
        if name in SIGN_SETTINGS:
            if len(rest) != 1:
                problems.error(directive, f"{context}: sign {name} expects one value")
            elif name in settings:
                problems.error(directive, f"{context}: duplicate sign {name}")
            else:
                settings[name] = rest[0]
            continue
        message = missing_plugin("signer", name, ctx.registry) if name else "needs a signer"
        if message is not None:
            problems.error(directive, f"{context}: sign {name}: {message}".replace("  ", " "))
            continue
        if signer is not None and signer != name:
            problems.error(directive, f"{context}: sign {name} cannot be combined with {signer}")
            continue
        signer = name
        if name != "hmac":
            options = _plugin_signer_options(directive, ctx.registry)
        if rest and rest[0].text == "secret_ref":
            if len(rest) < 2:
                problems.error(directive, f"{context}: sign {name} secret_ref needs an ID")
            refs.extend(rest[1:])
            refs_at = refs_at or directive
        elif len(rest) == 1 and (name == "hmac" or values.is_secret_ref(rest[0].text)):
            if direct:
                problems.error(directive, f"{context}: duplicate sign {name} <secret-ref>")
                continue
            ref = parse_secret_ref(problems, rest[0], f"{context}: sign {name}")
            if ref is not None:
                direct.append(ref)
            direct_at = directive
        elif name == "hmac":
            problems.error(
                directive, f"{context}: expected sign {name} <secret-ref> or secret_ref <ID>…"
            )
    sign = _sign_config(problems, context, signer, direct, direct_at, refs, refs_at, settings, ctx)
    return replace(sign, options=options) if sign is not None and options is not None else sign


def _plugin_signer_options(directive: Directive, registry) -> dict:
    registration = registry.get("signer", directive.args[0].text) if registry else None
    data = block_data(directive.block or [], (registration.schema if registration else None) or {})
    data["args"] = [value.text for value in directive.args[1:]]
    return data


def _sign_config(problems, context, signer, direct, direct_at, refs, refs_at, settings, ctx):
    if direct_at is not None and refs_at is not None:
        problems.error(
            refs_at,
            f"{context}: sign {signer} <ref> cannot be combined with sign {signer} secret_ref",
        )
    if signer is None:
        for name, value in settings.items():
            problems.error(value, f"{context}: sign {name} requires sign hmac")
        return None
    seen: set[str] = set()
    for value in refs:
        if value.text in seen:
            problems.error(value, f"{context}: duplicate secret_ref {quote(value.text)}")
        elif value.text not in ctx.secret_ids:
            problems.error(
                value, f"{context}: secret_ref {quote(value.text)} is not declared in secrets"
            )
        seen.add(value.text)

    base = SignConfig()
    signature = settings.get("signature_header")
    timestamp = settings.get("timestamp_header")
    selection = settings.get("secret_selection")
    for value in (signature, timestamp):
        if value is not None and not values.is_http_token(value.text):
            problems.error(value, f"{context}: {quote(value.text)} is not a valid header name")
    signature_header = signature.text if signature else base.signature_header
    timestamp_header = timestamp.text if timestamp else base.timestamp_header
    if signature_header.lower() == timestamp_header.lower():
        problems.error(
            timestamp or signature or refs_at or direct_at,
            f"{context}: sign signature_header and timestamp_header must differ",
        )
    chosen = base.secret_selection
    if selection is not None:
        if direct_at is not None:
            problems.error(
                selection, f"{context}: sign secret_selection needs sign {signer} secret_ref"
            )
        if selection.text.lower() not in SELECTIONS:
            problems.error(
                selection,
                f"{context}: unknown secret_selection {quote(selection.text)}"
                " (expected newest_valid or oldest_valid)",
            )
        else:
            chosen = selection.text.lower()
    return SignConfig(
        name=signer,
        secrets=tuple(direct),
        secret_refs=tuple(dict.fromkeys(value.text for value in refs)),
        signature_header=signature_header,
        timestamp_header=timestamp_header,
        secret_selection=chosen,
    )
