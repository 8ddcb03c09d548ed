"""Hook implementations of the backend_sqlite plugin."""

from hookaido.hookspecs import hookimpl  # noqa: F401
