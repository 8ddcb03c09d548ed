"""Read, parse, resolve, lint and compile a Hookaidofile in one call; compare two configs.

Every problem of every stage after parsing ends up in one ``ConfigError``. Secrets are not
loaded here (start-up and reload do that once the config compiled).
"""

import os
import re
from dataclasses import replace

from hookaido.config.compile import compile_document
from hookaido.config.model import Config
from hookaido.config.parser import parse_file
from hookaido.config.placeholders import PlaceholderError, resolve_document
from hookaido.config.schema import lint
from hookaido.errors import ConfigError


def load_config(path, environ=None, registry=None) -> Config:
    """The compiled config of the file at ``path``; ``ConfigError`` lists every problem."""
    if environ is None:
        environ = os.environ
    if registry is None:
        from hookaido.plugins import registry as process_registry

        registry = process_registry()

    document = parse_file(path, registry=registry)
    unresolved = None
    try:
        document, warnings = resolve_document(document, environ)
    except PlaceholderError as exc:
        document, warnings, unresolved = exc.document, exc.warnings, exc
    problems = list(lint(document, registry))
    config = None
    try:
        config = compile_document(document, registry)
    except ConfigError as exc:
        problems.extend(exc.problems)
    if unresolved is not None:
        problems = unresolved.problems + [p for p in problems if not unresolved.repeats(p)]
    if config is not None and not problems:
        from hookaido.config.startup import log_file_problems, tls_problems

        problems.extend(tls_problems(config, document) + log_file_problems(config, document))
    problems = sorted(dict.fromkeys(problems), key=_place_of)
    if problems:
        raise ConfigError(problems[0], problems=problems)
    merged = tuple(dict.fromkeys([*warnings, *config.warnings]))
    return replace(config, warnings=merged)


_PLACE = re.compile(r"(.+?):(\d+):(\d+): ")


def _place_of(problem: str) -> tuple:
    """Sort key: located problems in file order first, then the others as they came."""
    found = _PLACE.match(problem)
    if found is None:
        return (1, "", 0, 0)
    return (0, found.group(1), int(found.group(2)), int(found.group(3)))


# --------------------------------------------------------------------------------------
# Hot reload: what cannot change without a restart
# --------------------------------------------------------------------------------------


def _areas(config: Config) -> dict[str, object]:
    pull = config.pull_api
    defaults = config.defaults
    return {
        "ingress.listen": config.ingress.listen,
        "ingress.tls": config.ingress.tls,
        "pull_api.listen": pull.listen,
        "pull_api.grpc_listen": pull.grpc_listen,
        "pull_api.tls": pull.tls,
        "pull_api.prefix": pull.prefix,
        "pull_api.max_batch": pull.max_batch,
        "pull_api.max_lease_batch": pull.max_lease_batch,
        "pull_api.default_lease_ttl": pull.default_lease_ttl,
        "pull_api.max_lease_ttl": pull.max_lease_ttl,
        "pull_api.default_max_wait": pull.default_max_wait,
        "pull_api.max_wait": pull.max_wait,
        "admin_api.listen": config.admin_api.listen,
        "admin_api.tls": config.admin_api.tls,
        "admin_api.prefix": config.admin_api.prefix,
        "defaults.max_body": defaults.max_body,
        "defaults.max_headers": defaults.max_headers,
        "defaults.publish_policy": defaults.publish_policy,
        "queue backend": config.backend,
        "queue_limits": config.queue_limits,
        "retention": config.retention,
        "observability": config.observability,
        "pull routes (none vs some)": bool(config.pull_routes),
        "deliver routes (none vs some)": bool(config.deliver_routes),
    }


def restart_required_changes(old: Config, new: Config) -> list[str]:
    """The restart-required areas in which ``new`` differs from ``old`` (empty: reloadable)."""
    before, after = _areas(old), _areas(new)
    return [area for area in before if before[area] != after[area]]
