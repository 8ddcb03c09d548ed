"""Registers the ``sqlite`` queue backend, Hookaido's durable default."""

from hookaido.hookspecs import hookimpl
from hookaido.queue.backend import BackendSettings
from hookaido_backend_sqlite.store import SQLiteBackend


@hookimpl
def register_backends(register):
    register("sqlite", _build, schema=None)


def _build(settings: BackendSettings) -> SQLiteBackend:
    return SQLiteBackend(settings)
