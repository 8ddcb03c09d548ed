"""Hook implementations of the auth_hmac plugin."""

from hookaido.hookspecs import hookimpl  # noqa: F401
