"""Hook implementations of the backend_memory plugin."""

from hookaido.hookspecs import hookimpl  # noqa: F401
