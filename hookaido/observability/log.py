"""Structured runtime log: one JSON object per line with ``time``, ``level``, ``msg`` and fields.

Call ``event("webhook_enqueued", route=..., id=...)``. Event names are stable; never build
prose with f-strings. ``configure`` chooses level and output.
"""

import json
import logging
import os
import sys
import threading
from datetime import UTC, date, datetime, timedelta

LEVELS = {"debug": 10, "info": 20, "warn": 30, "warning": 30, "error": 40, "off": 100}
LEVEL_NAMES = {10: "DEBUG", 20: "INFO", 30: "WARN", 40: "ERROR"}
RESERVED_KEYS = ("time", "level", "msg")
_logger = logging.getLogger("hookaido.runtime")
_logger.propagate = False


def rfc3339(moment: datetime) -> str:
    """``2026-02-09T10:00:00.123456Z``: UTC, always with a fraction."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json_value(value):
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def json_line(moment: datetime, level: str, msg: str, fields: dict) -> str:
    """One log record as a JSON object; fields never replace ``time``, ``level`` or ``msg``."""
    line = {"time": rfc3339(moment), "level": level, "msg": msg}
    for key, value in fields.items():
        line[f"field_{key}" if key in RESERVED_KEYS else key] = value
    return json.dumps(line, default=_json_value, ensure_ascii=False, separators=(",", ":"))


class JSONLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        level = LEVEL_NAMES.get(record.levelno, record.levelname)
        moment = datetime.fromtimestamp(record.created, UTC)
        return json_line(moment, level, record.getMessage(), getattr(record, "fields", {}))


class StreamHandlerByName(logging.StreamHandler):
    """Writes to ``sys.stdout`` or ``sys.stderr`` as they are at each write, not at setup."""

    def __init__(self, name: str):
        super().__init__(getattr(sys, name))
        self._name = name

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = getattr(sys, self._name)
        super().emit(record)


def open_append(path: str):
    """A log file opened for appending, created with mode 0644 when it does not exist."""
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    return os.fdopen(descriptor, "a", encoding="utf-8", buffering=1)


class AppendFileHandler(logging.StreamHandler):
    def __init__(self, path: str):
        super().__init__(open_append(path))
        self.path = path

    def reopen(self) -> None:
        """Continue in a fresh file at ``path`` (after the old one was rotated away)."""
        self.acquire()
        try:
            fresh = open_append(self.path)
            old, self.stream = self.stream, fresh
            old.close()
        finally:
            self.release()

    def close(self) -> None:
        try:
            self.flush()
            self.stream.close()
        finally:
            super().close()


_configure_lock = threading.Lock()


def configure(level: str = "info", output: str = "stderr", path: str | None = None) -> None:
    """Send the runtime log to stdout, stderr or a file at the given level.

    ``level`` is ``debug``, ``info``, ``warn`` (``warning``), ``error`` or ``off``. Raises
    ``OSError`` when the file cannot be opened; the previous setup then stays in place.
    """
    if output == "file":
        if not path:
            raise ValueError("runtime log output file needs a path")
        handler = AppendFileHandler(path)
    else:
        handler = StreamHandlerByName("stdout" if output == "stdout" else "stderr")
    handler.setFormatter(JSONLineFormatter())

    with _configure_lock:
        for old in list(_logger.handlers):
            _logger.removeHandler(old)
            old.close()
        _logger.addHandler(handler)
        _logger.setLevel(LEVELS.get(level.lower(), 20))


def reopen_files() -> None:
    """Reopen the runtime log file, if the log goes to one (log rotation)."""
    with _configure_lock:
        for handler in _logger.handlers:
            if isinstance(handler, AppendFileHandler):
                handler.reopen()


def enabled(level: str) -> bool:
    """Whether an event at ``level`` would be written (to skip building costly fields)."""
    return _logger.isEnabledFor(LEVELS.get(level, 20))


def event(name: str, level: str = "info", **fields) -> None:
    """Log one event with its fields at ``level`` (debug, info, warn, error)."""
    levelno = LEVELS.get(level, 20)
    if _logger.isEnabledFor(levelno):
        _logger.log(levelno, name, extra={"fields": fields})


if not _logger.handlers:
    configure()
