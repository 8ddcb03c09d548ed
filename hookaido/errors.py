"""Errors a user can cause, carrying where and what was expected. Never shown as tracebacks."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """A place in a config file (1-based line and column)."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class HookaidoError(Exception):
    """Base class of every error Hookaido reports to a user."""


class ConfigError(HookaidoError):
    """A config that cannot be used. ``problems`` lists every message, located ones first."""

    def __init__(self, message: str, location: Location | None = None, problems=None):
        self.message = message
        self.location = location
        text = f"{location}: {message}" if location else message
        self.problems = list(problems) if problems else [text]
        super().__init__("\n".join(self.problems))


class PluginError(HookaidoError):
    """A plugin that cannot be loaded or that registers a name already taken."""
