"""Compile routes: matchers, labels, publish, queue, pull, deliver targets and channel rules.

Per-route rules are checked while a route is built; rules that compare routes (duplicates,
shadowing, label pairs, pull paths, backends) run over the finished list.
"""

from dataclasses import dataclass, replace

from hookaido.config import values
from hookaido.config.ast import Directive, Value
from hookaido.config.compile_auth import compile_auth, missing_plugin
from hookaido.config.compile_deliver import compile_targets
from hookaido.config.compile_globals import compile_rate_limit, compile_tokens
from hookaido.config.compile_reader import Block, Problems, parse_value, quote, single_value
from hookaido.config.model import (
    Defaults,
    Matcher,
    PublishSettings,
    PullConfig,
    Route,
)

ROUTE_DIRECTIVES = {
    "application",
    "endpoint_name",
    "match",
    "rate_limit",
    "auth",
    "max_body",
    "max_headers",
    "publish",
    "publish.direct",
    "publish.managed",
    "queue",
    "deliver_concurrency",
    "pull",
    "deliver",
}
MATCH_DIRECTIVES = {
    "method",
    "host",
    "header",
    "header_exists",
    "query",
    "query_exists",
    "remote_ip",
}
CHANNELS = ("inbound", "outbound", "internal")


@dataclass
class RouteContext:
    """What every route compiles against."""

    defaults: Defaults
    matchers: dict[str, Matcher]
    secret_ids: set[str]
    registry: object


@dataclass
class CompiledRoute:
    """A route plus the directives the cross-route checks point at."""

    route: Route
    directive: Directive
    queue_backend: tuple[str, Directive] | None = None
    pull_path_at: Value | None = None
    label_at: Directive | None = None


# --------------------------------------------------------------------------------------
# Matchers
# --------------------------------------------------------------------------------------


def compile_matcher(directives: list[Directive], problems: Problems, where: str) -> Matcher:
    block = Block(directives, problems, where, known=MATCH_DIRECTIVES)
    parts: dict[str, list] = {name: [] for name in MATCH_DIRECTIVES}
    for directive in block.directives:
        if directive.name not in MATCH_DIRECTIVES:
            continue
        context = f"{where}.{directive.name}"
        if not directive.args:
            problems.error(directive, f"{context}: needs at least one value")
        if directive.name in ("header", "query"):
            if len(directive.args) % 2:
                problems.error(directive, f"{context}: expects <name> <value> pairs")
            for index in range(0, len(directive.args) - 1, 2):
                name, value = directive.args[index], directive.args[index + 1]
                if _match_name(problems, name, context, token=directive.name == "header"):
                    if not value.text:
                        problems.error(value, f"{context}: value must not be empty")
                    else:
                        parts[directive.name].append((name.text, value.text))
            continue
        for value in directive.args:
            entry = _match_entry(problems, directive.name, value, context)
            if entry is not None:
                parts[directive.name].append(entry)
    return Matcher(
        methods=tuple(parts["method"]),
        hosts=tuple(parts["host"]),
        headers=tuple(parts["header"]),
        header_exists=tuple(parts["header_exists"]),
        query=tuple(parts["query"]),
        query_exists=tuple(parts["query_exists"]),
        remote_ips=tuple(parts["remote_ip"]),
    )


def _match_name(problems: Problems, value: Value, context: str, token: bool) -> bool:
    if not value.text:
        problems.error(value, f"{context}: name must not be empty")
        return False
    if token and not values.is_http_token(value.text):
        problems.error(value, f"{context}: {quote(value.text)} is not a valid header name")
        return False
    return True


def _match_entry(problems: Problems, kind: str, value: Value, context: str):
    text = value.text
    if kind == "method":
        if not values.is_http_token(text):
            problems.error(value, f"{context}: {quote(text)} is not a valid HTTP method")
            return None
        return text.upper()
    if kind == "header_exists":
        return text if _match_name(problems, value, context, token=True) else None
    if kind == "query_exists":
        return text if _match_name(problems, value, context, token=False) else None
    if kind == "host":
        return parse_value(problems, value, _check_host, context)
    return parse_value(problems, value, values.parse_ip_network, context)


def _check_host(text: str) -> str:
    host = text.strip().lower().rstrip(".")
    if not host:
        raise ValueError("host must not be empty")
    if "://" in host or "/" in host:
        raise ValueError(f"host {quote(text)} must be a host name, not a URL")
    if "*" in host and not (host == "*" or (host.startswith("*.") and "*" not in host[2:])):
        raise ValueError(f"host {quote(text)}: wildcards are only * or *.suffix")
    return host


def merge_matchers(matchers: list[Matcher]) -> Matcher:
    merged = Matcher()
    for matcher in matchers:
        merged = Matcher(
            methods=merged.methods + matcher.methods,
            hosts=merged.hosts + matcher.hosts,
            headers=merged.headers + matcher.headers,
            header_exists=merged.header_exists + matcher.header_exists,
            query=merged.query + matcher.query,
            query_exists=merged.query_exists + matcher.query_exists,
            remote_ips=merged.remote_ips + matcher.remote_ips,
        )
    return merged


# --------------------------------------------------------------------------------------
# One route
# --------------------------------------------------------------------------------------


def compile_route(directive: Directive, problems: Problems, ctx: RouteContext) -> CompiledRoute:
    raw = directive.args[0].text if directive.args else ""
    path = raw
    try:
        path = values.clean_path(raw)
    except ValueError:
        at = directive.args[0] if directive.args else directive
        problems.error(at, f"route path {quote(raw)} must start with /")
    channel = directive.channel or "inbound"
    if channel not in CHANNELS:
        problems.error(directive, f"unknown channel {quote(channel)}")
        channel = "inbound"
    where = f"route {quote(path)}"
    if directive.block is None:
        problems.error(directive, f"{where}: needs a block {{ ... }}")
    block = Block(directive.block, problems, where, known=ROUTE_DIRECTIVES)

    compiled = CompiledRoute(
        Route(path=path, channel=channel, location=directive.location), directive
    )
    application, endpoint_name = _labels(block, problems, where, compiled)
    matcher = _route_matcher(block, problems, where, ctx)
    rate_limit_directive = block.one("rate_limit")
    defaults = ctx.defaults
    pull = _pull(block.one("pull"), problems, where, compiled)
    targets = compile_targets(block.all("deliver"), problems, where, ctx)
    route = Route(
        path=path,
        channel=channel,
        matcher=matcher,
        rate_limit=compile_rate_limit(rate_limit_directive, problems, where)
        if rate_limit_directive
        else None,
        auth=compile_auth(block.all("auth"), problems, where, ctx.secret_ids, ctx.registry),
        max_body=block.parsed("max_body", values.parse_size, defaults.max_body),
        max_headers=block.parsed("max_headers", values.parse_size, defaults.max_headers),
        publish=_publish(block, problems, where),
        deliver_concurrency=_concurrency(block, problems, where, targets, defaults),
        pull=pull,
        targets=targets,
        application=application,
        endpoint_name=endpoint_name,
        location=directive.location,
    )
    compiled.route = route
    compiled.queue_backend = _queue(block.one("queue"), problems, where, ctx.registry)
    _check_channel(block, route, problems, directive)
    return compiled


def _labels(block: Block, problems: Problems, where: str, compiled: CompiledRoute):
    found = {}
    for name in ("application", "endpoint_name"):
        value = block.value(name)
        if value is not None and not values.is_label(value.text):
            problems.error(
                value,
                f"{where}: invalid {name} {quote(value.text)}"
                " (expected ^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$)",
            )
        found[name] = value.text if value is not None else None
    if (found["application"] is None) != (found["endpoint_name"] is None):
        at = block.one("application") or block.one("endpoint_name")
        problems.error(at, f"{where}: application and endpoint_name must be set together")
    elif found["application"] is not None:
        compiled.label_at = block.one("application")
    return found["application"], found["endpoint_name"]


def _route_matcher(block: Block, problems: Problems, where: str, ctx: RouteContext) -> Matcher:
    parts: list[Matcher] = []
    inline = [directive for directive in block.all("match") if directive.block is not None]
    for extra in inline[1:]:
        problems.error(extra, f"{where}: only one inline match block is allowed")
    for directive in block.all("match"):
        if directive.block is not None:
            if directive is inline[0]:
                parts.append(compile_matcher(directive.block, problems, f"{where}.match"))
            continue
        if not directive.args:
            problems.error(directive, f"{where}: match needs a block or @names")
        for value in directive.args:
            name = value.text[1:] if value.text.startswith("@") else value.text
            matcher = ctx.matchers.get(name)
            if matcher is None:
                problems.error(value, f"{where}: unknown named matcher @{name}")
            else:
                parts.append(matcher)
    return merge_matchers(parts)


def _publish(block: Block, problems: Problems, where: str) -> PublishSettings:
    settings = {"enabled": True, "direct": True, "managed": True}
    publish = block.one("publish")
    dotted = [block.one("publish.direct"), block.one("publish.managed")]
    dotted = [directive for directive in dotted if directive is not None]
    if publish is not None and dotted:
        form = "block" if publish.block is not None else "shorthand"
        problems.error(dotted[0], f"{where}: publish {form} cannot be mixed with {dotted[0].name}")
    if publish is not None and publish.block is not None:
        sub = Block(publish.block, problems, f"{where}.publish", known=set(settings))
        for name in settings:
            settings[name] = sub.parsed(name, values.parse_bool, True)
    elif publish is not None:
        value = single_value(problems, publish, where)
        if value is not None:
            settings["enabled"] = parse_value(
                problems, value, values.parse_bool, f"{where}.publish", True
            )
    for directive in dotted:
        value = single_value(problems, directive, where)
        if value is not None:
            name = directive.name.split(".", 1)[1]
            settings[name] = parse_value(
                problems, value, values.parse_bool, f"{where}.{directive.name}", True
            )
    return PublishSettings(**settings)


def _queue(directive: Directive | None, problems: Problems, where: str, registry):
    if directive is None:
        return None
    if directive.block is not None:
        sub = Block(directive.block, problems, f"{where}.queue", known={"backend"})
        value = sub.value("backend")
        if value is None:
            if not sub.has("backend"):
                problems.error(directive, f"{where}: queue block needs backend <name>")
            return None
    else:
        value = single_value(problems, directive, where)
        if value is None:
            return None
    name = value.text.lower()
    if name == "postgres":
        problems.error(value, f'{where}: queue backend "postgres" is not available')
        return None
    message = missing_plugin("backend", name, registry)
    if message is not None:
        problems.error(value, f"{where}: queue {name}: {message}")
        return None
    return name, directive


def _pull(
    directive: Directive | None, problems: Problems, where: str, compiled
) -> PullConfig | None:
    if directive is None:
        return None
    sub = Block(directive.block, problems, f"{where}.pull", known={"path", "auth"})
    value = sub.value("path")
    path = ""
    if value is None:
        if not sub.has("path"):
            problems.error(directive, f"{where}: pull.path is required")
    else:
        path = parse_value(problems, value, values.clean_path, f"{where}.pull.path", "")
        compiled.pull_path_at = value
    tokens = compile_tokens(sub.all("auth"), problems, f"{where}.pull")
    return PullConfig(path=path, tokens=tokens)


MAX_DELIVER_CONCURRENCY = 10000


def _concurrency(block: Block, problems: Problems, where: str, targets, defaults) -> int:
    # A default may be larger than any route may be; a route taking it gets the most it may.
    inherited = min(defaults.concurrency, MAX_DELIVER_CONCURRENCY)
    directive = block.one("deliver_concurrency")
    if directive is None:
        return inherited
    concurrency = block.parsed(
        "deliver_concurrency",
        lambda text: values.parse_int(text, 1, MAX_DELIVER_CONCURRENCY),
        inherited,
    )
    if not block.has("deliver"):
        problems.error(directive, f"{where}: deliver_concurrency requires a deliver target")
    return concurrency


def _check_channel(block: Block, route: Route, problems: Problems, directive: Directive) -> None:
    where = f"route {quote(route.path)}"
    label = f"{route.channel} route {quote(route.path)}"
    has_pull, has_deliver = block.has("pull"), block.has("deliver")
    covered = False
    if route.channel in ("outbound", "internal"):
        for name in ("match", "auth", "rate_limit"):
            if block.has(name):
                problems.error(block.all(name)[0], f"{label}: {name} is forbidden")
        required, forbidden = (
            ("deliver", "pull") if route.channel == "outbound" else ("pull", "deliver")
        )
        if not block.has(required):
            problems.error(directive, f"{label}: {required} is required")
            covered = True
        if block.has(forbidden):
            problems.error(block.all(forbidden)[0], f"{label}: {forbidden} is forbidden")
            covered = True
    if covered:
        return
    if has_pull and has_deliver:
        problems.error(directive, f"{where}: pull and deliver are mutually exclusive")
    elif not has_pull and not has_deliver:
        problems.error(directive, f"{where}: missing pull or deliver block")


# --------------------------------------------------------------------------------------
# Rules across routes
# --------------------------------------------------------------------------------------


def check_routes(compiled: list[CompiledRoute], problems: Problems, pull_prefix: str) -> str:
    """Cross-route rules. Returns the process-wide backend name."""
    _check_paths(compiled, problems)
    _check_labels(compiled, problems)
    _check_pull_paths(compiled, problems, pull_prefix)
    return _check_backends(compiled, problems)


def _check_paths(compiled: list[CompiledRoute], problems: Problems) -> None:
    seen: dict[str, CompiledRoute] = {}
    for index, item in enumerate(compiled):
        path = item.route.path
        if path in seen:
            problems.error(item.directive, f"duplicate route path {quote(path)}")
            continue
        seen[path] = item
        for earlier in compiled[:index]:
            if earlier.route.matcher.empty and values.path_within(path, earlier.route.path):
                if earlier.route.path == path:
                    continue
                line = earlier.directive.location.line if earlier.directive.location else "?"
                problems.error(
                    item.directive,
                    f"route {quote(path)} is shadowed by route {quote(earlier.route.path)}"
                    f" (line {line}), which has no match constraints",
                )
                break


def _check_labels(compiled: list[CompiledRoute], problems: Problems) -> None:
    seen: dict[tuple[str, str], str] = {}
    for item in compiled:
        route = item.route
        if route.application is None or route.endpoint_name is None:
            continue
        pair = (route.application, route.endpoint_name)
        if pair in seen:
            problems.error(
                item.label_at or item.directive,
                f"route {quote(route.path)}: application {quote(pair[0])} endpoint_name"
                f" {quote(pair[1])} is already used by route {quote(seen[pair])}",
            )
        else:
            seen[pair] = route.path


def _check_pull_paths(compiled: list[CompiledRoute], problems: Problems, prefix: str) -> None:
    seen: dict[str, str] = {}
    for item in compiled:
        pull = item.route.pull
        if pull is None or not pull.path:
            continue
        at = item.pull_path_at or item.directive
        where = f"route {quote(item.route.path)}"
        if prefix and values.path_within(pull.path, prefix):
            problems.error(
                at,
                f"{where}: pull.path {quote(pull.path)} starts with pull_api.prefix"
                f" {quote(prefix)}; give it relative to the prefix",
            )
        if pull.path in seen:
            problems.error(
                at,
                f"{where}: duplicate pull path {quote(pull.path)}"
                f" (also route {quote(seen[pull.path])})",
            )
        else:
            seen[pull.path] = item.route.path


def _check_backends(compiled: list[CompiledRoute], problems: Problems) -> str:
    chosen: list[tuple[str, CompiledRoute]] = [
        (item.queue_backend[0], item) for item in compiled if item.queue_backend is not None
    ]
    if not chosen:
        backend = "sqlite"
    else:
        backend, first = chosen[0]
        for name, item in chosen[1:]:
            if name != backend:
                problems.error(
                    item.queue_backend[1],
                    f"mixed queue backends: route {quote(item.route.path)} uses {name} but route"
                    f" {quote(first.route.path)} uses {backend}; all routes must use one backend",
                )
    for item in compiled:
        item.route = replace(item.route, backend=backend)
    return backend
