"""The running process's shared state: the current config (swapped whole on reload), the
queue backend, the plugin registry, loaded secrets and metrics."""

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hookaido.config.model import Config, SecretRef


@dataclass(frozen=True)
class Generation:
    """One compiled config with everything built from it. Replaced atomically on reload.

    ``secrets`` maps each ``SecretRef`` of the config to its loaded bytes; ``parts`` holds
    what components built from this config (verifiers, deliverers), keyed by component.
    """

    config: Config
    secrets: dict[SecretRef, bytes] = field(default_factory=dict)
    parts: dict[str, Any] = field(default_factory=dict)
    number: int = 1  # 1 at start-up, +1 per successful reload
    fingerprint: str = ""  # SHA-256 hex of the config file's bytes
    loaded_at: datetime | None = None

    def secret(self, ref: SecretRef) -> bytes:
        return self.secrets[ref]


class Runtime:
    """Holds the current ``Generation``; readers take ``runtime.current`` once per request."""

    def __init__(self, generation: Generation, backend, registry, metrics=None):
        self._generation = generation
        self._lock = threading.Lock()
        self.backend = backend
        self.registry = registry
        self.metrics = metrics
        self.started_at = time.time()
        self.nonces: Any = None  # process-wide replay store; survives reloads

    @property
    def current(self) -> Generation:
        return self._generation

    @property
    def config(self) -> Config:
        return self._generation.config

    def swap(self, generation: Generation) -> Generation:
        """Install a new generation; returns the old one."""
        with self._lock:
            old, self._generation = self._generation, generation
        return old
