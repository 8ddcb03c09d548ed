"""The checks ``hookaido run`` makes before it opens anything, as located config problems,
so that ``config validate`` can tell beforehand what would stop the process from starting."""

import os

from hookaido.config.ast import Document
from hookaido.errors import ConfigError

TLS_BLOCKS = ("ingress", "pull_api", "admin_api")


def _tls_location(document: Document | None, component: str):
    for item in document.items if document is not None else ():
        if item.name == component:
            for child in item.block or ():
                if child.name == "tls":
                    return child.location
    return None


def tls_problems(config, document: Document | None = None) -> list[str]:
    """Each TLS listener's cert, key and CA checked exactly as start-up checks them."""
    from hookaido.server.tls import check_tls_files

    problems = []
    for component in TLS_BLOCKS:
        settings = getattr(config, component, None)
        tls = getattr(settings, "tls", None)
        if tls is None:
            continue
        try:
            check_tls_files(tls)
        except ConfigError as exc:
            location = _tls_location(document, component)
            prefix = f"{location}: " if location else ""
            problems.extend(f"{prefix}{component}.tls: {problem}" for problem in exc.problems)
    return problems


def backend_problems(config, registry) -> list[str]:
    """The selected queue backend (written or the default) must be installed."""
    if registry.get("backend", config.backend) is not None:
        return []
    installed = ", ".join(registry.names("backend")) or "none"
    return [f"queue backend {config.backend!r} is not installed (installed: {installed})"]


def _path_location(document: Document | None, setting: str):
    for item in document.items if document is not None else ():
        if item.name != "observability":
            continue
        for child in item.block or ():
            if child.name == setting:
                for entry in child.block or ():
                    if entry.name == "path":
                        return entry.location
                return child.location
    return None


def _unwritable(path: str) -> str | None:
    """Why a log file at ``path`` cannot be opened for appending, or ``None`` (no side effects)."""
    target = os.path.abspath(path)
    if os.path.isdir(target):
        return "it is a directory"
    if os.path.exists(target):
        return None if os.access(target, os.W_OK) else "the file is not writable"
    folder = os.path.dirname(target)
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        return f"cannot create directory {folder} (a file of that name exists)"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"cannot create files in directory {folder} (not writable)"
    return None


def log_file_problems(config, document: Document | None = None) -> list[str]:
    """Each ``output file`` log (access and runtime) must be a file that can be created."""
    problems = []
    observability = config.observability
    for setting, log in (
        ("access_log", observability.access_log),
        ("runtime_log", observability.runtime_log),
    ):
        if not log.enabled or log.output != "file" or not log.path:
            continue
        reason = _unwritable(log.path)
        if reason is None:
            continue
        location = _path_location(document, setting)
        prefix = f"{location}: " if location else ""
        problems.append(f'{prefix}observability.{setting}.path "{log.path}": {reason}')
    return problems


def environment_problems(config, document: Document | None = None) -> list[str]:
    """What start-up reads from the machine beyond the config file: the TLS files and the
    log files. ``config validate`` reports these as warnings (errors with
    ``--strict-secrets``), since the file may be checked on another machine than it runs on."""
    return tls_problems(config, document) + log_file_problems(config, document)
