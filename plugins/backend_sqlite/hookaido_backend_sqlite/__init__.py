"""Durable Hookaido queue backend on one SQLite file in WAL mode."""

from hookaido_backend_sqlite.schema import LATEST_VERSION
from hookaido_backend_sqlite.store import SQLiteBackend

__all__ = ["LATEST_VERSION", "SQLiteBackend"]
