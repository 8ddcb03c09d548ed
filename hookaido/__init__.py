"""Hookaido: a webhook gateway that verifies, stores durably and hands on webhooks."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hookaido")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
