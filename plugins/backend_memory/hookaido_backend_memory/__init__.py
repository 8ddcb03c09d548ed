"""In-memory Hookaido queue backend for development and tests; ``--db`` is ignored."""

from hookaido_backend_memory.store import MemoryBackend

__all__ = ["MemoryBackend"]
