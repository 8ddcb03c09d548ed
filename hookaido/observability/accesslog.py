"""Access log: a WSGI middleware writing one JSON line per request once the response is done.

It measures and records; it never changes a status, a header or a body byte.
"""

import sys
import threading
import time
from datetime import UTC, datetime

from hookaido.config.model import LogConfig
from hookaido.observability.log import json_line, open_append

COMPONENT_KEY = "hookaido.component"  # set by the prefix router on a shared listener

# Limitation: on a TLS listener, requests the HTTP server answers itself, before any app is
# called (a malformed request line, plain HTTP on the TLS port), get no line here; on a plain
# listener they are logged through ``AccessLog.record_refused``.


class LineSink:
    """Writes whole lines to stdout, stderr or an append-only file, one writer at a time.

    A closed file sink reopens its path on the next line, so ``close_sinks()`` after a log
    rotation moves writing to the new file.
    """

    def __init__(self, output: str = "stderr", path: str | None = None):
        if output == "file" and not path:
            raise ValueError("access log output file needs a path")
        self.output = output
        self.path = path
        self._lock = threading.Lock()
        self._file = open_append(path) if output == "file" else None

    def write(self, line: str) -> None:
        with self._lock:
            if self.output == "file":
                if self._file is None:
                    self._file = open_append(self.path)
                stream = self._file
            else:
                stream = sys.stdout if self.output == "stdout" else sys.stderr
            stream.write(line + "\n")
            stream.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


_sinks: dict[tuple[str, str | None], LineSink] = {}
_sinks_lock = threading.Lock()


def sink_for(config: LogConfig) -> LineSink:
    """The shared sink of an output: every listener logging to one file shares one handle."""
    key = (config.output, config.path if config.output == "file" else None)
    with _sinks_lock:
        sink = _sinks.get(key)
        if sink is None:
            sink = _sinks[key] = LineSink(config.output, config.path)
        return sink


def close_sinks() -> None:
    """Close every access-log file (at shutdown, or after rotation); a later line reopens it."""
    with _sinks_lock:
        for sink in _sinks.values():
            sink.close()


def _received_path(environ) -> str:
    raw = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    # WSGI hands paths over as latin-1 text holding the raw bytes; undo that for the log.
    try:
        return raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return raw


def _remote_addr(environ) -> str:
    host = environ.get("REMOTE_ADDR", "")
    port = environ.get("REMOTE_PORT", "")
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}" if port else host


class _Exchange:
    """What is known about one request while its response is being produced."""

    __slots__ = ("started", "method", "path", "remote", "status", "bytes", "logged")

    def __init__(self, environ):
        self.started = time.perf_counter_ns()
        self.method = environ.get("REQUEST_METHOD", "")
        self.path = _received_path(environ)
        self.remote = _remote_addr(environ)
        self.status: int | None = None
        self.bytes = 0
        self.logged = False


class AccessLog:
    """WSGI middleware: ``AccessLog(app, "ingress", sink)``."""

    def __init__(self, app, component: str, sink: LineSink):
        self.app = app
        self.component = component
        self.sink = sink

    def __call__(self, environ, start_response):
        exchange = _Exchange(environ)

        def recording_start_response(status, headers, exc_info=None):
            exchange.status = int(status.split(" ", 1)[0])
            write = start_response(status, headers, exc_info)

            def counting_write(data):
                exchange.bytes += len(data)
                return write(data)

            return counting_write

        try:
            body = self.app(environ, recording_start_response)
        except BaseException:
            # The server answers 500 for an app that raised; log what the client will see.
            exchange.status = 500
            self._record(environ, exchange)
            raise
        return _LoggedBody(body, lambda: self._record(environ, exchange), exchange)

    def record_refused(self, method: str, path: str, status: int, size: int, peer) -> None:
        """Log a request the HTTP server answered itself, before the app could see it."""
        environ = {"REQUEST_METHOD": method, "PATH_INFO": path}
        if isinstance(peer, tuple) and len(peer) >= 2:
            environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = str(peer[0]), str(peer[1])
        exchange = _Exchange(environ)
        exchange.status, exchange.bytes = status, size
        self._record(environ, exchange)

    def _record(self, environ, exchange: _Exchange) -> None:
        if exchange.logged:
            return
        exchange.logged = True
        fields = {
            "component": environ.get(COMPONENT_KEY) or self.component,
            "method": exchange.method,
            "path": exchange.path,
            "status": exchange.status if exchange.status is not None else 200,
            "bytes": exchange.bytes,
            "duration": time.perf_counter_ns() - exchange.started,
            "remote_addr": exchange.remote,
        }
        self.sink.write(json_line(datetime.now(UTC), "INFO", "http_request", fields))


class _LoggedBody:
    """The app's response body, counted as it is sent and logged when the server closes it."""

    def __init__(self, body, on_close, exchange: _Exchange):
        self._body = body
        self._on_close = on_close
        self._exchange = exchange

    def __iter__(self):
        for chunk in self._body:
            self._exchange.bytes += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._on_close()


def wrap_access_log(app, listener_name: str, config: LogConfig | None = None):
    """``app`` with an access log for ``listener_name`` (``ingress``, ``pull_api``, ...).

    On a shared listener the prefix router's ``hookaido.component`` environ key names the
    component instead. Returns ``app`` untouched when the access log is disabled.
    """
    config = config or LogConfig()
    if not config.enabled:
        return app
    return AccessLog(app, listener_name, sink_for(config))
