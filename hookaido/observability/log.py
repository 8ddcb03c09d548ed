"""Structured runtime log: one JSON object per line with ``time``, ``level``, ``msg`` and fields.

Call ``event("webhook_enqueued", route=..., id=...)``. Event names are stable; never build
prose with f-strings. ``configure`` chooses level and output.
"""

import json
import logging
import sys
from datetime import UTC, datetime

LEVELS = {"debug": 10, "info": 20, "warn": 30, "warning": 30, "error": 40, "off": 100}
_logger = logging.getLogger("hookaido.runtime")
_logger.propagate = False


class JSONLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": {10: "DEBUG", 20: "INFO", 30: "WARN", 40: "ERROR"}.get(
                record.levelno, record.levelname
            ),
            "msg": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        return json.dumps(line, default=str)


def configure(level: str = "info", output: str = "stderr", path: str | None = None) -> None:
    """Send the runtime log to stdout, stderr or a file at the given level."""
    for handler in list(_logger.handlers):
        _logger.removeHandler(handler)
        handler.close()
    if output == "file":
        handler = logging.FileHandler(path, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stdout if output == "stdout" else sys.stderr)
    handler.setFormatter(JSONLineFormatter())
    _logger.addHandler(handler)
    _logger.setLevel(LEVELS.get(level.lower(), 20))


def event(name: str, level: str = "info", **fields) -> None:
    """Log one event with its fields at ``level`` (debug, info, warn, error)."""
    levelno = LEVELS.get(level, 20)
    if _logger.isEnabledFor(levelno):
        _logger.log(levelno, name, extra={"fields": fields})


if not _logger.handlers:
    configure()
