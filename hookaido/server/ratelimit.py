"""Token buckets for ingress rate limits: one per route with its own ``rate_limit``, one shared.

Buckets outlive a reload when their ``(rps, burst)`` did not change, so a reload never
hands a flood a fresh burst.
"""

import math
import threading
import time

from hookaido.config.model import Config, RateLimit

GLOBAL = ""  # bucket key of ingress.rate_limit; route buckets are keyed by route path


class TokenBucket:
    """Holds up to ``burst`` tokens, refilled continuously at ``rps``; starts full."""

    def __init__(self, rps: float, burst: int, clock=time.monotonic):
        self.rps = rps
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Take one token. Returns 0 when granted, else the seconds until one is available."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rps)
            self._stamp = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rps


def retry_after_seconds(wait: float) -> int:
    """A ``Retry-After`` value: whole seconds, at least 1."""
    return max(1, math.ceil(wait))


class RateLimiters:
    """The buckets of one config generation."""

    def __init__(self, buckets: dict[str, TokenBucket]):
        self._buckets = buckets

    @classmethod
    def build(cls, config: Config, previous: "RateLimiters | None" = None) -> "RateLimiters":
        wanted: dict[str, RateLimit] = {}
        if config.ingress.rate_limit is not None:
            wanted[GLOBAL] = config.ingress.rate_limit
        for route in config.routes:
            if route.channel == "inbound" and route.rate_limit is not None:
                wanted[route.path] = route.rate_limit
        old = previous._buckets if previous is not None else {}
        buckets = {}
        for key, limit in wanted.items():
            kept = old.get(key)
            if kept is not None and (kept.rps, kept.burst) == (limit.rps, limit.burst):
                buckets[key] = kept
            else:
                buckets[key] = TokenBucket(limit.rps, limit.burst)
        return cls(buckets)

    def bucket_for(self, route_path: str) -> TokenBucket | None:
        """The route's own bucket, else the shared one, else ``None`` (no limit)."""
        bucket = self._buckets.get(route_path)
        if bucket is None:
            bucket = self._buckets.get(GLOBAL)
        return bucket
