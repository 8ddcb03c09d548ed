"""Finds plugins (built-in and installed) and keeps what each registered, by kind and name.

Built-in plugins load through the same hooks as entry-point plugins. Set
``HOOKAIDO_LOAD_PLUGINS`` to a comma-separated list of entry-point names to load only those
(an empty value loads none); built-in plugins always load.
"""

import os
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import pluggy

from hookaido import hookspecs
from hookaido.errors import PluginError

ENTRY_POINT_GROUP = "hookaido"
KINDS = ("auth", "backend", "deliverer", "signer")
BUILTIN_MODULES = (
    "hookaido.builtin.auth_basic",
    "hookaido.builtin.auth_forward",
    "hookaido.builtin.deliver_exec",
)


@dataclass(frozen=True)
class Registration:
    kind: str
    name: str
    factory: Any
    schema: dict | None
    plugin: str


@dataclass
class PluginInfo:
    name: str
    version: str
    source: str  # "builtin" or the distribution name
    registrations: list[Registration] = field(default_factory=list)


class Registry:
    """Everything the loaded plugins registered, looked up by ``(kind, name)``."""

    def __init__(self):
        self.plugins: dict[str, PluginInfo] = {}
        # names in HOOKAIDO_LOAD_PLUGINS that no installed entry point carries
        self.missing: list[str] = []
        self._by_kind: dict[str, dict[str, Registration]] = {kind: {} for kind in KINDS}

    def add(self, info: PluginInfo, kind: str, name: str, factory, schema=None):
        taken = self._by_kind[kind].get(name)
        if taken is not None:
            raise PluginError(
                f"{kind} {name!r} is registered by both {taken.plugin!r} and {info.name!r}"
            )
        registration = Registration(kind, name, factory, schema, info.name)
        self._by_kind[kind][name] = registration
        info.registrations.append(registration)

    def get(self, kind: str, name: str) -> Registration | None:
        return self._by_kind[kind].get(name)

    def names(self, kind: str) -> list[str]:
        return sorted(self._by_kind[kind])

    def registrations(self, kind: str) -> list[Registration]:
        return [self._by_kind[kind][name] for name in self.names(kind)]


def _selected_entry_points() -> tuple[list, list[str]]:
    """The entry points to load, and the requested names that none of them carries."""
    found = list(entry_points(group=ENTRY_POINT_GROUP))
    wanted = os.environ.get("HOOKAIDO_LOAD_PLUGINS")
    if wanted is None:
        return found, []
    names = list(dict.fromkeys(name.strip() for name in wanted.split(",") if name.strip()))
    available = {ep.name for ep in found}
    missing = [name for name in names if name not in available]
    return [ep for ep in found if ep.name in names], missing


def missing_message(name: str) -> str:
    """The warning for a name in ``HOOKAIDO_LOAD_PLUGINS`` that is not installed."""
    installed = ", ".join(sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)))
    return (
        f"HOOKAIDO_LOAD_PLUGINS names plugin {name!r}, which is not installed"
        f" (installed: {installed or 'none'})"
    )


def _collect(registry: Registry, info: PluginInfo, plugin_module):
    pm = pluggy.PluginManager("hookaido")
    pm.add_hookspecs(hookspecs)
    pm.register(plugin_module)
    hooks = {
        "auth": pm.hook.register_auth,
        "backend": pm.hook.register_backends,
        "deliverer": pm.hook.register_deliverers,
        "signer": pm.hook.register_signers,
    }
    for kind, hook in hooks.items():

        def register(name, factory, schema=None, _kind=kind):
            registry.add(info, _kind, name, factory, schema)

        hook(register=register)


def load_registry() -> Registry:
    """Load built-in and installed plugins and return what they registered."""
    import importlib

    from hookaido import __version__

    registry = Registry()
    for module_name in BUILTIN_MODULES:
        module = importlib.import_module(module_name)
        info = PluginInfo(module_name.rsplit(".", 1)[-1], __version__, "builtin")
        registry.plugins[info.name] = info
        _collect(registry, info, module)

    selected, registry.missing = _selected_entry_points()
    for ep in selected:
        try:
            module = ep.load()
        except Exception as exc:  # a broken third-party plugin must not hide the others
            raise PluginError(f"plugin {ep.name!r} failed to load: {exc}") from exc
        dist = ep.dist
        info = PluginInfo(
            ep.name,
            dist.version if dist else "unknown",
            dist.metadata["Name"] if dist else ep.value,
        )
        registry.plugins[info.name] = info
        _collect(registry, info, module)
    return registry


_cached: Registry | None = None


def registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _cached
    if _cached is None:
        _cached = load_registry()
    return _cached
