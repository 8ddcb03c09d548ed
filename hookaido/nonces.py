"""The process-wide replay store of inbound HMAC nonces, keyed by route path.

It lives on ``Runtime.nonces`` so that claims outlive config reloads. A claim is provisional
until committed (webhook stored) and disappears when released (webhook refused).
"""

import heapq
import itertools
import threading
import time
from datetime import timedelta

MAX_ENTRIES = 100_000
SWEEP_INTERVAL = 30.0


class NonceClaim:
    """A nonce held for one request. ``commit()`` keeps it until expiry; ``release()`` frees
    it so an identical retry is accepted. Only the first of the two calls has an effect."""

    __slots__ = ("_store", "route", "nonce", "expires_at", "_settled")

    def __init__(self, store: "NonceStore", route: str, nonce: str, expires_at: float):
        self._store = store
        self.route = route
        self.nonce = nonce
        self.expires_at = expires_at
        self._settled = False

    def commit(self) -> None:
        self._settled = True

    def release(self) -> None:
        if not self._settled:
            self._settled = True
            self._store._forget(self)


class _RouteCache:
    def __init__(self):
        self.entries: dict[str, NonceClaim] = {}
        self.by_expiry: list[tuple[float, int, str]] = []  # may hold stale rows
        self.last_sweep = 0.0


class NonceStore:
    """Per-route nonce caches with at most ``max_entries`` live nonces per route.

    Expired entries are swept at most every ``sweep_interval`` seconds; when a cache is still
    full, the entry closest to expiry is evicted to make room.
    """

    def __init__(self, max_entries: int = MAX_ENTRIES, sweep_interval: float = SWEEP_INTERVAL):
        self.max_entries = max_entries
        self.sweep_interval = sweep_interval
        self._routes: dict[str, _RouteCache] = {}
        self._lock = threading.Lock()
        self._sequence = itertools.count()

    def claim(
        self, route: str, nonce: str, ttl: float | timedelta, now: float | None = None
    ) -> NonceClaim | None:
        """Hold ``nonce`` on ``route`` for ``ttl`` (seconds or timedelta) from ``now``.

        Returns ``None`` when the nonce is already held and not expired (a replay, or a
        duplicate still in flight).
        """
        now = time.time() if now is None else now
        seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else float(ttl)
        expires_at = now + seconds
        with self._lock:
            cache = self._routes.setdefault(route, _RouteCache())
            held = cache.entries.get(nonce)
            if held is not None and held.expires_at >= now:
                return None
            if held is None and len(cache.entries) >= self.max_entries:
                self._make_room(cache, now)
            claim = NonceClaim(self, route, nonce, expires_at)
            cache.entries[nonce] = claim
            heapq.heappush(cache.by_expiry, (expires_at, next(self._sequence), nonce))
            return claim

    def held(self, route: str, nonce: str, now: float | None = None) -> bool:
        """Whether ``nonce`` is currently claimed (provisionally or for good) on ``route``."""
        now = time.time() if now is None else now
        with self._lock:
            cache = self._routes.get(route)
            claim = cache.entries.get(nonce) if cache else None
            return claim is not None and claim.expires_at >= now

    def __len__(self) -> int:
        with self._lock:
            return sum(len(cache.entries) for cache in self._routes.values())

    def count(self, route: str) -> int:
        with self._lock:
            cache = self._routes.get(route)
            return len(cache.entries) if cache else 0

    def _forget(self, claim: NonceClaim) -> None:
        with self._lock:
            cache = self._routes.get(claim.route)
            # A later claim may have replaced this one after expiry; leave that one alone.
            if cache is not None and cache.entries.get(claim.nonce) is claim:
                del cache.entries[claim.nonce]
                self._compact(cache)

    def _make_room(self, cache: _RouteCache, now: float) -> None:
        if now - cache.last_sweep >= self.sweep_interval:
            cache.last_sweep = now
            self._evict_while(cache, lambda expires_at: expires_at < now)
        if len(cache.entries) >= self.max_entries:
            self._evict_while(cache, lambda _: len(cache.entries) >= self.max_entries)

    def _evict_while(self, cache: _RouteCache, should_evict) -> None:
        heap = cache.by_expiry
        while heap:
            expires_at, _, nonce = heap[0]
            held = cache.entries.get(nonce)
            if held is None or held.expires_at != expires_at:
                heapq.heappop(heap)  # stale row: released or re-claimed since
                continue
            if not should_evict(expires_at):
                return
            heapq.heappop(heap)
            del cache.entries[nonce]

    def _compact(self, cache: _RouteCache) -> None:
        if len(cache.by_expiry) > 2 * len(cache.entries) + 1024:
            cache.by_expiry = [
                (claim.expires_at, next(self._sequence), nonce)
                for nonce, claim in cache.entries.items()
            ]
            heapq.heapify(cache.by_expiry)


_process_store: NonceStore | None = None
_process_lock = threading.Lock()


def process_store() -> NonceStore:
    """The store used when a runtime did not provide one: one per process."""
    global _process_store
    with _process_lock:
        if _process_store is None:
            _process_store = NonceStore()
        return _process_store
