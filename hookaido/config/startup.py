"""The checks ``hookaido run`` makes before it opens anything, as located config problems,
so that ``config validate`` saying ok means the process will start."""

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


def startup_problems(config, registry, document: Document | None = None) -> list[str]:
    return tls_problems(config, document) + backend_problems(config, registry)
