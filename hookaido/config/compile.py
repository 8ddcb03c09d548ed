"""Compile a parsed Hookaidofile into the immutable runtime ``Config``.

Applies every default and checks every rule, collecting all errors (each with its
``file:line:col``) before failing once. It never loads secrets and never opens sockets.
"""

from hookaido.config.ast import Directive, Document
from hookaido.config.compile_defaults import compile_defaults
from hookaido.config.compile_globals import (
    check_vars,
    compile_admin_api,
    compile_ingress,
    compile_pull_api,
    compile_queue_limits,
    compile_retention,
    compile_secrets,
    declared_secret_ids,
)
from hookaido.config.compile_listeners import Listener, check_listeners
from hookaido.config.compile_observability import compile_observability
from hookaido.config.compile_reader import Problems
from hookaido.config.compile_routes import (
    RouteContext,
    check_routes,
    compile_matcher,
    compile_route,
)
from hookaido.config.model import Config, Matcher
from hookaido.errors import ConfigError, Location

GLOBAL_BLOCKS = (
    "ingress",
    "pull_api",
    "admin_api",
    "observability",
    "queue_retention",
    "delivered_retention",
    "dlq_retention",
    "attempts_retention",
    "queue_limits",
    "defaults",
    "vars",
    "secrets",
)


class CompileError(ConfigError):
    """A document that does not compile: every error, and the warnings found on the way."""

    def __init__(self, errors: list[str], warnings: list[str]):
        super().__init__(errors[0], problems=errors)
        self.warnings = list(warnings)


def compile_document(doc: Document, registry=None) -> Config:
    """Build the runtime config or raise ``CompileError`` listing every problem."""
    if registry is None:
        from hookaido.plugins import registry as process_registry

        registry = process_registry()
    problems = Problems()
    blocks, matcher_directives, route_directives = _split(doc, problems)

    ingress = compile_ingress(blocks.get("ingress"), problems)
    pull_api = compile_pull_api(blocks.get("pull_api"), problems)
    admin_api = compile_admin_api(blocks.get("admin_api"), problems)
    observability = compile_observability(blocks.get("observability"), problems)
    retention = compile_retention(blocks, problems)
    queue_limits = compile_queue_limits(blocks.get("queue_limits"), problems)
    defaults = compile_defaults(blocks.get("defaults"), problems)
    if "vars" in blocks:
        check_vars(blocks["vars"], problems)
    secrets = compile_secrets(blocks.get("secrets"), problems)

    ctx = RouteContext(
        defaults=defaults,
        matchers=_matchers(matcher_directives, problems),
        secret_ids=declared_secret_ids(blocks.get("secrets")),
        registry=registry,
    )
    compiled = [compile_route(directive, problems, ctx) for directive in route_directives]
    if not route_directives:
        problems.error(None, "no routes defined")
    backend = check_routes(compiled, problems, pull_api.prefix)
    routes = tuple(item.route for item in compiled)

    _listen_warnings(blocks, routes, problems)
    _egress_warnings(routes, defaults.egress, problems)
    listeners = _listeners(blocks, ingress, pull_api, admin_api, observability)
    pull_api_at = blocks["pull_api"].location if "pull_api" in blocks else None
    check_listeners(listeners, routes, pull_api, admin_api, pull_api_at, problems)

    if problems.errors:
        raise CompileError(problems.errors, problems.warnings)
    return Config(
        routes=routes,
        ingress=ingress,
        pull_api=pull_api,
        admin_api=admin_api,
        observability=observability,
        retention=retention,
        queue_limits=queue_limits,
        defaults=defaults,
        secrets=secrets,
        backend=backend,
        source=doc.file,
        warnings=tuple(problems.warnings),
    )


def _split(doc: Document, problems: Problems):
    blocks: dict[str, Directive] = {}
    matchers: list[Directive] = []
    routes: list[Directive] = []
    for item in doc.items:
        if item.name == "route":
            routes.append(item)
        elif item.name == "matcher":
            matchers.append(item)
        elif item.name in GLOBAL_BLOCKS:
            if item.name in blocks:
                problems.error(item, f"duplicate {item.name} block")
            else:
                blocks[item.name] = item
        else:
            problems.error(item, f'unknown top-level item "{item.name}"')
    return blocks, matchers, routes


def _matchers(directives: list[Directive], problems: Problems) -> dict[str, Matcher]:
    matchers: dict[str, Matcher] = {}
    for directive in directives:
        name = directive.args[0].text.lstrip("@") if directive.args else ""
        if not name:
            problems.error(directive, "named matcher needs a name (@name { ... })")
            continue
        if name in matchers:
            problems.error(directive, f"duplicate named matcher @{name}")
            continue
        matchers[name] = compile_matcher(directive.block or [], problems, f"matcher @{name}")
    return matchers


def _listen_at(directive: Directive | None) -> Location | None:
    """Where a block's ``listen`` value is written, else the block itself."""
    if directive is None:
        return None
    for entry in directive.block or []:
        if entry.name == "listen":
            return entry.args[0].location if entry.args else entry.location
    return directive.location


def _egress_warnings(routes, egress, problems: Problems) -> None:
    """An ``http://`` target that ``https_only`` refuses can never be delivered."""
    if not egress.https_only:
        return
    for route in routes:
        for target in route.targets:
            if target.target.lower().startswith("http://"):
                problems.warning(
                    target.location,
                    f'deliver "{target.target}" is refused by defaults.egress (https_only on);'
                    " every message for it will be dead-lettered as policy_denied",
                )


def _listen_warnings(blocks, routes, problems: Problems) -> None:
    has_listen = {
        name: any(entry.name == "listen" for entry in (blocks[name].block or []))
        for name in ("pull_api", "admin_api")
        if name in blocks
    }
    if any(route.pull is not None for route in routes) and not has_listen.get("pull_api"):
        problems.warning(blocks.get("pull_api"), 'pull_api.listen not set; using default ":9443"')
    if not has_listen.get("admin_api"):
        problems.warning(
            blocks.get("admin_api"), 'admin_api.listen not set; using default "127.0.0.1:2019"'
        )


def _listeners(blocks, ingress, pull_api, admin_api, observability) -> dict[str, Listener]:
    listeners = {
        "ingress": Listener(
            "ingress", ingress.listen, _listen_at(blocks.get("ingress")), "", ingress.tls
        ),
        "pull_api": Listener(
            "pull_api",
            pull_api.listen,
            _listen_at(blocks.get("pull_api")),
            pull_api.prefix,
            pull_api.tls,
        ),
        "admin_api": Listener(
            "admin_api",
            admin_api.listen,
            _listen_at(blocks.get("admin_api")),
            admin_api.prefix,
            admin_api.tls,
        ),
    }
    if pull_api.grpc_listen is not None:
        at = None
        for entry in blocks["pull_api"].block or []:
            if entry.name == "grpc_listen" and entry.args:
                at = entry.args[0].location
        listeners["grpc"] = Listener("grpc", pull_api.grpc_listen, at)
    if observability.metrics.enabled:
        listeners["metrics"] = Listener(
            "metrics", observability.metrics.listen, _metrics_at(blocks.get("observability"))
        )
    return listeners


def _metrics_at(directive: Directive | None) -> Location | None:
    if directive is None:
        return None
    for entry in directive.block or []:
        if entry.name == "metrics":
            return _listen_at(entry) if entry.block is not None else entry.location
    return directive.location
