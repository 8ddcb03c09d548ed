"""Hook implementations of the deliver_http plugin."""

from hookaido.hookspecs import hookimpl  # noqa: F401
