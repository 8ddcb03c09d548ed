"""Registers the ``memory`` queue backend: same semantics as ``sqlite``, nothing durable."""

from hookaido.hookspecs import hookimpl
from hookaido.queue.backend import BackendSettings
from hookaido_backend_memory.store import MemoryBackend


@hookimpl
def register_backends(register):
    register("memory", _build, schema=None)


def _build(settings: BackendSettings) -> MemoryBackend:
    return MemoryBackend(settings)
