"""Built-in ``auth forward``: ask an HTTP service whether to accept each webhook.

A 2xx answer allows, 401/403 is passed back to the sender, and anything else (another
status, a refused connection, a timeout) refuses with 503: it never fails open. The timeout
bounds the whole call, so a service that trickles its answer is cut off like a silent one.
"""

import socket
import threading
from datetime import timedelta

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection

from hookaido.auth import InboundRequest, Verdict, path_bytes
from hookaido.errors import ConfigError
from hookaido.hookspecs import hookimpl
from hookaido.observability.log import event

DEFAULT_TIMEOUT = timedelta(seconds=2)
RESPONSE_READ_LIMIT = 64 * 1024
# Framing and hop-by-hop headers describe the inbound connection, not the call-out.
NOT_FORWARDED = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "expect",
    }
)
HTTP_TOKEN = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"

SCHEMA = {
    "type": "object",
    "description": "auth forward <url> { timeout; copy_headers <name>...; body_limit }",
    "properties": {
        "args": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 1},
        "timeout": {"type": "string", "minLength": 1},
        "copy_headers": {"type": "array", "items": {"type": "string", "pattern": HTTP_TOKEN}},
        "body_limit": {"type": "string", "minLength": 1},
    },
    "additionalProperties": False,
}


@hookimpl
def register_auth(register):
    register("forward", ForwardVerifier.from_options, schema=SCHEMA)


class Deadline:
    """The end of one call: once it passes, the socket the call uses is shut down, which ends
    any read still waiting on the service. ``stop()`` says whether the call made it in time;
    after it, the deadline touches nothing, so the connection can go back to the pool."""

    def __init__(self, seconds: float):
        self._lock = threading.Lock()
        self._sock = None
        self._stopped = False
        self.passed = False
        self._timer = threading.Timer(seconds, self._pass)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock) -> None:
        with self._lock:
            self._sock = sock
            if self.passed:
                _shut(sock)

    def stop(self) -> bool:
        self._timer.cancel()
        with self._lock:
            self._stopped = True
            return not self.passed

    def _pass(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self.passed = True
            if self._sock is not None:
                _shut(self._sock)


def _shut(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


_call = threading.local()  # the Deadline of the call this thread is making, if any


def _watch(sock) -> None:
    deadline = getattr(_call, "deadline", None)
    if deadline is not None and sock is not None:
        deadline.watch(sock)


class _WatchedConnection:
    """Hands its socket to the calling thread's ``Deadline``: a new one once connected, a
    pooled one when a request starts on it. The socket is held, not the connection, because
    an answer with ``Connection: close`` detaches it from the connection while it is read."""

    def connect(self):
        super().connect()
        _watch(self.sock)

    def request(self, *args, **kwargs):
        _watch(self.sock)
        return super().request(*args, **kwargs)


class _WatchedHTTPConnection(_WatchedConnection, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchedConnection, HTTPSConnection):
    pass


class _WatchedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def _clean_path(raw: str) -> str:
    segments: list[str] = []
    for segment in raw.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment not in ("", "."):
            segments.append(segment)
    return "/" + "/".join(segments)


def _canonical(name: str) -> str:
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


class ForwardVerifier:
    """Calls ``url`` with the inbound method, headers and (possibly truncated) body."""

    def __init__(
        self,
        route: str,
        url: str,
        timeout: timedelta = DEFAULT_TIMEOUT,
        copy_headers=(),
        body_limit: int | None = None,
    ):
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"auth forward URL {url!r} must be http:// or https://")
        if timeout <= timedelta(0):
            raise ConfigError("auth forward timeout must be positive")
        self.route = route
        self.url = url
        self.copy_headers = tuple(copy_headers)
        self.body_limit = body_limit or None  # 0 and off both mean the whole body
        self.timeout = timeout.total_seconds()
        self.pool = urllib3.PoolManager(
            timeout=urllib3.Timeout(total=self.timeout),
            retries=False,
            maxsize=8,
            block=False,
        )
        self.pool.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}

    @classmethod
    def from_options(cls, options: dict, context) -> "ForwardVerifier":
        url = options.get("url")
        if not url and options.get("args"):
            url = options["args"][0]
        if not url:
            raise ConfigError("auth forward needs a URL")
        return cls(
            context.route,
            url,
            options.get("timeout") or DEFAULT_TIMEOUT,
            options.get("copy_headers") or (),
            options.get("body_limit"),
        )

    def verify(self, request: InboundRequest) -> Verdict:
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() not in NOT_FORWARDED
        }
        headers["X-Hookaido-Original-Path"] = path_bytes(_clean_path(request.path))
        headers["X-Hookaido-Original-Method"] = request.method
        body = request.body
        if self.body_limit is not None:
            body = body[: self.body_limit]

        deadline = Deadline(self.timeout)
        _call.deadline = deadline
        try:
            response, whole, failure = self._call(request.method, body, headers)
        finally:
            _call.deadline = None
            in_time = deadline.stop()
        if response is not None:
            if in_time and whole:
                response.release_conn()
            else:
                response.close()  # cut by the deadline, or a long body not worth reading
        if not in_time:
            return self._unavailable(f"timeout after {self.timeout:g}s")
        if failure is not None:
            return self._unavailable(f"transport: {failure}")

        status = response.status
        if 200 <= status < 300:
            return Verdict.allow(headers=self._copied(response))
        if status == 401:
            return Verdict.deny("the authorization service refused the request")
        if status == 403:
            return Verdict.deny(
                "the authorization service forbids the request", status=403, code="forbidden"
            )
        return self._unavailable(f"status {status}")

    def _call(self, method: str, body: bytes, headers: dict):
        """``(response, whole, None)`` once at most 64 KiB of the answer's body are read
        (``whole``: nothing was left), or ``(None, False, error name)``."""
        try:
            response = self.pool.request(
                method,
                self.url,
                body=body,
                headers=headers,
                redirect=False,
                preload_content=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            return None, False, type(exc).__name__
        try:
            response.read(RESPONSE_READ_LIMIT)
            whole = not response.read(1)
        except urllib3.exceptions.HTTPError as exc:
            response.close()
            return None, False, type(exc).__name__
        return response, whole, None

    def _copied(self, response) -> dict[str, str]:
        copied = {}
        for name in self.copy_headers:
            values = response.headers.getlist(name)
            if values:
                copied[_canonical(name)] = ",".join(values)
        return copied

    def _unavailable(self, reason: str) -> Verdict:
        event("forward_auth_unavailable", level="warn", route=self.route, reason=reason)
        return Verdict.deny(
            "the authorization service is unavailable", status=503, code="auth_unavailable"
        )

    def close(self) -> None:
        self.pool.clear()
