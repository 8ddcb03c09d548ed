"""Failures a backend reports; the APIs map each to its documented status and code."""


class QueueError(Exception):
    """Base class of backend failures."""


class QueueFull(QueueError):
    """``queue_limits.max_depth`` reached and nothing could be evicted."""


class MemoryPressure(QueueError):
    """The memory backend's guard refused an enqueue; ``reason`` says which limit."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(f"memory pressure: {reason}")


class MessageExists(QueueError):
    """An enqueue named an ``id`` that is already stored; nothing was written."""

    def __init__(self, message_id: str):
        self.message_id = message_id
        super().__init__(f"message {message_id!r} already exists")


class LeaseConflict(QueueError):
    """A lease operation found no live lease. ``reason``: lease_not_found | lease_expired."""

    def __init__(self, lease_id: str, reason: str):
        self.lease_id = lease_id
        self.reason = reason
        super().__init__(f"{reason}: {lease_id}")


class StoreUnavailable(QueueError):
    """The store could not be reached (I/O error, locked database beyond the busy timeout)."""


class SchemaTooNew(QueueError):
    """The store was written by a newer Hookaido; opening it could damage it."""

    def __init__(self, path: str, found: int, supported: int):
        self.path = path
        self.found = found
        self.supported = supported
        super().__init__(
            f"{path}: database schema version {found} is newer than this Hookaido supports"
            f" (version {supported}); upgrade Hookaido or point --db at another file"
        )
