"""Group commit for ingress: webhooks arriving together share one durable backend transaction.

Each request still waits until its own envelopes are committed before it is answered, so a
``202`` means exactly what it meant without grouping; only the number of syncs drops.
"""

import threading

MAX_GROUP = 256


class _Pending:
    __slots__ = ("envelopes", "error", "signal", "lead")

    def __init__(self, envelopes: list):
        self.envelopes = envelopes
        self.error: BaseException | None = None
        # A held lock is the cheapest one-shot signal: released once when the request is
        # committed or chosen to lead; the waiting thread acquires it.
        self.signal = threading.Lock()
        self.signal.acquire()
        self.lead = False


class GroupCommitter:
    """``enqueue(envelopes)`` with the backend's meaning, merged with concurrent callers.

    One caller at a time is the leader: it takes everything waiting (up to ``MAX_GROUP``
    requests), commits it in one ``backend.enqueue`` call and hands leadership to the next
    waiter. When a merged commit fails, each request of that group is retried on its own,
    envelope by envelope, so a full queue refuses only the requests that do not fit.
    """

    def __init__(self, backend, max_group: int = MAX_GROUP):
        self.backend = backend
        self.max_group = max_group
        self._lock = threading.Lock()
        self._waiting: list[_Pending] = []
        self._busy = False

    def enqueue(self, envelopes: list) -> None:
        pending = _Pending(envelopes)
        with self._lock:
            self._waiting.append(pending)
            leader = not self._busy
            self._busy = True
        if not leader:
            pending.signal.acquire()
            if not pending.lead:
                if pending.error is not None:
                    raise pending.error
                return
        self._lead()
        if pending.error is not None:
            raise pending.error

    def _lead(self) -> None:
        with self._lock:
            group = self._waiting[: self.max_group]
            del self._waiting[: self.max_group]
        try:
            self._commit(group)
        finally:
            with self._lock:
                if self._waiting:
                    successor = self._waiting[0]
                    successor.lead = True
                    successor.signal.release()
                else:
                    self._busy = False
            for pending in group:
                if not pending.lead:
                    pending.signal.release()

    def _commit(self, group: list[_Pending]) -> None:
        if len(group) == 1:
            self._commit_alone(group[0])
            return
        try:
            self.backend.enqueue([e for pending in group for e in pending.envelopes])
        except Exception:
            for pending in group:
                self._commit_alone(pending)

    def _commit_alone(self, pending: _Pending) -> None:
        """Envelope by envelope, so earlier fan-out targets stay stored when a later fails."""
        try:
            for envelope in pending.envelopes:
                self.backend.enqueue([envelope])
        except BaseException as exc:
            pending.error = exc
