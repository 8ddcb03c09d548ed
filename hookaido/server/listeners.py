"""Listeners: one socket per distinct ``listen`` string, served by threaded waitress.

A ``PrefixRouter`` sends requests at or below an API prefix to that API (prefix stripped) and
everything else to ingress when it shares the socket. ``make_server`` picks plain waitress or,
for ``tls { ... }``, the TLS-capable server of ``hookaido.server.tls``.
"""

import json
import logging
import re
import threading
import time
from dataclasses import dataclass

import waitress.server
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.parser import HEADER_FIELD_RE, HTTPRequestParser, ParsingError, get_header_lines
from waitress.task import ErrorTask, WSGITask

from hookaido.config import values
from hookaido.errors import HookaidoError
from hookaido.observability.log import event

STOP_GRACE = 5.0
DEFAULT_THREADS = 16
CONNECTION_LIMIT = 1000
MAX_REQUEST_BODY = 64 * 1024 * 1024  # used when the caller does not size it from the config
# The HTTP server's own body cap sits far above every configured max_body, so the apps answer
# an oversized body with their JSON error and the configured limit. The read stays bounded.
SERVER_BODY_FLOOR = 256 * 1024 * 1024


def server_body_cap(max_body: int) -> int:
    """The body size the HTTP server itself refuses, given the largest body the apps accept."""
    return max(SERVER_BODY_FLOOR, 4 * max_body)


class _JSONErrorTask(ErrorTask):
    """A request the HTTP server refuses before any app sees it (a malformed request line or
    Content-Length, a bad chunk, headers or a body over the server's own caps), answered
    with the same JSON error body as every other refusal."""

    CODES = {413: "payload_too_large", 431: "headers_too_large", 500: "internal_error"}

    def execute(self):
        error = self.request.error
        detail = str(error.body or error.reason).strip() or error.reason
        body = json.dumps({"code": self.CODES.get(error.code, "invalid_request"), "detail": detail})
        data = (body + "\n").encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(data)
        self.write(data)
        log_refused = getattr(self.channel.server.application, "record_refused", None)
        if log_refused is not None:
            log_refused(
                getattr(self.request, "command", None) or "",
                getattr(self.request, "path", None) or "",
                error.code,
                len(data),
                self.channel.addr,
            )


class _Task(WSGITask):
    """waitress's task, except that an HTTP/1.1 answer without a body (204, 304) keeps the
    connection open: waitress closes every answer that has no Content-Length, so a worker
    acking leases one at a time had to reconnect after each ``204``."""

    _bodyless_keep_alive = False

    def build_response_header(self):
        self._bodyless_keep_alive = (
            not self.has_body
            and self.version == "1.1"
            and not self.close_on_finish
            and self.request.headers.get("CONNECTION", "").lower() != "close"
        )
        try:
            return super().build_response_header()
        finally:
            self._bodyless_keep_alive = False

    def set_close_on_finish(self) -> None:
        if not self._bodyless_keep_alive:
            super().set_close_on_finish()

    def write(self, data: bytes) -> None:
        # waitress sends the head and the body with two send() calls, and on loopback each
        # wakes the client up once more; an answer handed over whole (every falcon answer
        # with a Content-Length) goes out in one.
        if not self.complete or self.wrote_header or not data or not self.has_body:
            super().write(data)
            return
        head = self.build_response_header()
        self.wrote_header = True
        if self.chunked_response or self.content_length != len(data):
            self.channel.write_soon(head)
            super().write(data)
            return
        self.content_bytes_written += len(data)
        self.channel.write_soon(head + data)


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:", re.IGNORECASE)
_TRANSFER_ENCODING = re.compile(rb"\r\ntransfer-encoding[ \t]*:", re.IGNORECASE)


class _Parser(HTTPRequestParser):
    """waitress's request parser, except that the values of a repeated header are joined
    with ``,`` (no space), as Hookaido stores and matches them; waitress joins with ``, ``,
    and that a request framed both by Content-Length and by Transfer-Encoding is refused:
    a proxy in front that reads the other header would see a different request."""

    def parse_header(self, header_plus: bytes) -> None:
        if _CONTENT_LENGTH.search(header_plus) and _TRANSFER_ENCODING.search(header_plus):
            raise ParsingError("a request may not carry both Content-Length and Transfer-Encoding")
        super().parse_header(header_plus)
        # One line per header plus the request line and the blank line: more lines than
        # names means a name came twice (or waitress took one out, such as Transfer-Encoding).
        if header_plus.count(b"\n") <= len(self.headers) + 2:
            return
        for key, parts in _repeated_headers(header_plus).items():
            if key in self.headers:
                self.headers[key] = ",".join(parts)


def _repeated_headers(header_plus: bytes) -> dict[str, list[str]]:
    """The values of each header name given more than once, keyed as waitress keys them."""
    seen: dict[str, list[str]] = {}
    for line in get_header_lines(header_plus.split(b"\r\n", 1)[1]):
        field = HEADER_FIELD_RE.match(line)
        if field is None or b"_" in field.group("name"):
            continue
        key = field.group("name").upper().replace(b"-", b"_").decode("latin-1")
        seen.setdefault(key, []).append(field.group("value").strip(b" \t").decode("latin-1"))
    return {key: values for key, values in seen.items() if len(values) > 1}


class _Channel(HTTPChannel):
    parser_class = _Parser
    task_class = _Task
    error_task_class = _JSONErrorTask


class ListenError(HookaidoError):
    """A listen address that cannot be parsed or bound."""


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port``, ``:port`` (every interface) or ``[v6]:port`` -> ``(host, port)``.

    The host is ``""`` for every interface.
    """
    text = listen.strip()
    if text.startswith("["):
        end = text.find("]")
        if end == -1 or not text[end + 1 :].startswith(":"):
            raise ListenError(f"listen {listen!r}: expected [v6]:port")
        host, port_text = text[1:end], text[end + 2 :]
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon:
            raise ListenError(f"listen {listen!r}: expected host:port or :port")
    try:
        port = int(port_text)
    except ValueError:
        raise ListenError(f"listen {listen!r}: port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ListenError(f"listen {listen!r}: port {port} is out of range")
    return host, port


@dataclass(frozen=True)
class Mount:
    """An app answering below ``prefix`` (``""`` = at the root) on a shared socket."""

    prefix: str
    app: object
    component: str


def _bare_not_found(environ, start_response):
    start_response("404 Not Found", [("Content-Length", "0")])
    return [b""]


class PrefixRouter:
    """WSGI app dispatching on segment-boundary path prefixes; the first match wins."""

    def __init__(self, mounts: list[Mount], fallback=None, fallback_component="ingress"):
        # Longer prefixes first so a root mount never hides a prefixed one.
        self.mounts = sorted(mounts, key=lambda mount: len(mount.prefix), reverse=True)
        self.fallback = fallback
        self.fallback_component = fallback_component

    def __call__(self, environ, start_response):
        # The path is cleaned before the prefix is matched, so ``/pull/../admin/x`` is an
        # admin path on every layer (config.md §9, pull-api.md §1).
        path = values.clean_path("/" + (environ.get("PATH_INFO", "") or "/").lstrip("/"))
        for mount in self.mounts:
            prefix = mount.prefix
            if not prefix:
                environ["hookaido.component"] = mount.component
                return mount.app(environ, start_response)
            if path == prefix or path.startswith(prefix + "/"):
                environ["hookaido.component"] = mount.component
                environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
                environ["PATH_INFO"] = path[len(prefix) :] or "/"
                return mount.app(environ, start_response)
        if self.fallback is not None:
            environ["hookaido.component"] = self.fallback_component
            return self.fallback(environ, start_response)
        return _bare_not_found(environ, start_response)


class _WaitressLogBridge(logging.Handler):
    """waitress's own log lines become runtime-log events; queue-depth chatter is dropped."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "waitress.queue":
            return
        level = "error" if record.levelno >= logging.ERROR else "warn"
        event("http_server_warning", level=level, message=record.getMessage())


def quiet_waitress() -> None:
    logger = logging.getLogger("waitress")
    if not any(isinstance(h, _WaitressLogBridge) for h in logger.handlers):
        logger.addHandler(_WaitressLogBridge())
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)


class Listener:
    """One plain-HTTP socket served by waitress on its own thread.

    ``start()`` binds (raising ``ListenError``) and serves; ``stop(timeout)`` stops accepting,
    lets in-flight requests finish for up to ``timeout`` seconds, then closes every connection.
    """

    def __init__(
        self, app, listen: str, threads: int = DEFAULT_THREADS, max_body: int = MAX_REQUEST_BODY
    ):
        self.app = app
        self.listen = listen
        self.threads = threads
        self.max_body = max_body
        self.server = None
        self._thread: threading.Thread | None = None
        self.address: tuple[str, int] | None = None

    def start(self) -> None:
        host, port = parse_listen(self.listen)
        quiet_waitress()
        try:
            self.server = waitress.server.create_server(
                self.app,
                host=host or "0.0.0.0",
                port=port,
                threads=self.threads,
                ident="hookaido",
                # Limitation: waitress has no separate read-header timeout; a connection that
                # sends nothing (headers included) is closed after this 120 s idle timeout.
                channel_timeout=120,
                max_request_body_size=server_body_cap(self.max_body),
                clear_untrusted_proxy_headers=False,
                expose_tracebacks=False,
                # poll() instead of select(): no 1024-descriptor ceiling on open connections.
                asyncore_use_poll=True,
                connection_limit=CONNECTION_LIMIT,
                # lets a long-poll notice a client that hung up (waitress.client_disconnected)
                channel_request_lookahead=1,
            )
        except OSError as exc:
            raise ListenError(f"listen {self.listen!r}: {exc.strerror or exc}") from exc
        self.server.channel_class = _Channel
        self.address = (self.server.effective_host, int(self.server.effective_port))
        self._thread = threading.Thread(
            target=self._serve, name=f"listener {self.listen}", daemon=True
        )
        self._thread.start()

    def _serve(self) -> None:
        try:
            self.server.run()
        except Exception as exc:
            event("http_server_error", level="error", listen=self.listen, error=str(exc))

    def set_max_body(self, max_body: int) -> None:
        """Resize the body cap of the running server; requests already being read keep theirs."""
        self.max_body = max_body
        if self.server is not None:
            self.server.adj.max_request_body_size = server_body_cap(max_body)

    def stop(self, timeout: float = STOP_GRACE) -> None:
        server = self.server
        if server is None:
            return
        deadline = time.monotonic() + timeout
        done = threading.Event()

        def stop_accepting():
            server.accepting = False
            wasyncore.dispatcher.close(server)
            done.set()

        server.trigger.pull_trigger(stop_accepting)
        done.wait(timeout=1.0)
        while time.monotonic() < deadline and self._busy(server):
            time.sleep(0.02)

        def close_all():
            for channel in list(server._map.values()):
                try:
                    channel.close()
                except OSError:
                    pass

        server.trigger.pull_trigger(close_all)
        if self._thread is not None:
            self._thread.join(timeout=max(0.5, deadline - time.monotonic() + 1.0))
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=1.0)
        self.server = None

    @staticmethod
    def _busy(server) -> bool:
        dispatcher = server.task_dispatcher
        if dispatcher.queue or dispatcher.active_count > 0:
            return True
        # A request whose bytes have begun to arrive counts as in flight, not only the parsed
        # ones: a webhook whose body is still on the wire is answered, not cut off.
        return any(
            channel.requests or channel.request is not None
            for channel in list(server.active_channels.values())
        )


def make_server(
    app,
    listen: str,
    tls=None,
    threads: int = DEFAULT_THREADS,
    name: str = "",
    max_body: int = MAX_REQUEST_BODY,
):
    """A listener for ``app`` on ``listen``: plain waitress, or TLS when ``tls`` is given.

    The result has ``start()`` (binds; raises ``ListenError`` or ``OSError``),
    ``set_max_body(n)`` (resizes a running server) and ``stop(timeout)``. Nothing listens
    before ``start()``. ``max_body`` is the largest request body the HTTP server reads at
    all; the apps apply their own, smaller limits.
    """
    if tls is None:
        return Listener(app, listen, threads, max_body)
    from hookaido.server.tls import make_tls_server

    host, port = parse_listen(listen)
    return make_tls_server(
        app, host or "0.0.0.0", port, tls, name=name or listen, threads=threads, max_body=max_body
    )
