"""The runtime log: JSON event lines, level filtering, and stdout, stderr or file output."""

import json
import os
import re
import stat
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from hookaido.observability import log
from hookaido.server.listeners import make_server


def parse(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_an_event_is_one_json_line_with_time_level_msg_and_fields(capsys):
    log.configure("info", "stderr")

    log.event("webhook_enqueued", route="/webhooks/github", id="evt_0123456789abcdef")
    (line,) = parse(capsys.readouterr().err)

    assert line["level"] == "INFO"
    assert line["msg"] == "webhook_enqueued"
    assert line["route"] == "/webhooks/github"
    assert line["id"] == "evt_0123456789abcdef"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", line["time"])


def test_stdout_output_writes_nothing_to_stderr(capsys):
    log.configure("info", "stdout")

    log.event("config_ok")
    captured = capsys.readouterr()

    assert [line["msg"] for line in parse(captured.out)] == ["config_ok"]
    assert captured.err == ""


@pytest.mark.parametrize(
    "level, written",
    [
        ("debug", ["exec_stderr", "config_ok", "delivery_dead", "http_server_error"]),
        ("info", ["config_ok", "delivery_dead", "http_server_error"]),
        ("warn", ["delivery_dead", "http_server_error"]),
        ("warning", ["delivery_dead", "http_server_error"]),
        ("error", ["http_server_error"]),
        ("off", []),
    ],
)
def test_level_filters_events_below_it(level, written, capsys):
    log.configure(level, "stdout")

    log.event("exec_stderr", level="debug", command="notify")
    log.event("config_ok", level="info")
    log.event("delivery_dead", level="warn", reason="max_retries")
    log.event("http_server_error", level="error", error="bind")
    lines = parse(capsys.readouterr().out)

    assert [line["msg"] for line in lines] == written
    assert {line["level"] for line in lines} <= {"DEBUG", "INFO", "WARN", "ERROR"}


def test_file_output_appends_json_lines_to_a_0644_file(tmp_path):
    path = tmp_path / "var" / "runtime.log"
    old_umask = os.umask(0o022)
    try:
        log.configure("info", "file", str(path))
    finally:
        os.umask(old_umask)

    log.event("config_ok")
    log.event("queue_backend_selected", backend="sqlite")
    log.configure("info", "file", str(path))
    log.event("config_reloaded_ok", trigger="signal_sighup")
    log.configure("info", "stderr")
    lines = parse(path.read_text(encoding="utf-8"))

    assert [line["msg"] for line in lines] == [
        "config_ok",
        "queue_backend_selected",
        "config_reloaded_ok",
    ]
    assert lines[1]["backend"] == "sqlite"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_fields_never_replace_time_level_or_msg(capsys):
    log.configure("info", "stdout")

    log.event("delivery_retry", msg="sneaky", time="yesterday")
    (line,) = parse(capsys.readouterr().out)

    assert line["msg"] == "delivery_retry"
    assert line["field_msg"] == "sneaky"
    assert line["field_time"] == "yesterday"


def test_datetimes_and_durations_are_rendered_as_json_values(capsys):
    log.configure("info", "stdout")
    moment = datetime(2026, 2, 9, 10, 0, tzinfo=UTC)

    log.event("lease_expired", at=moment, after=timedelta(seconds=30))
    (line,) = parse(capsys.readouterr().out)

    assert line["at"] == "2026-02-09T10:00:00.000000Z"
    assert line["after"] == 30.0


def test_a_busy_listener_does_not_flood_the_runtime_log(tmp_path, capfd):
    path = tmp_path / "runtime.log"
    log.configure("debug", "file", str(path))
    release = threading.Event()

    def slow(environ, start_response):
        release.wait(5)
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    listener = make_server(slow, "127.0.0.1:0", threads=1)
    listener.start()
    port = listener.address[1]
    statuses = []

    def call():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            statuses.append(response.status)

    callers = [threading.Thread(target=call) for _ in range(8)]
    for caller in callers:
        caller.start()
    time.sleep(0.3)  # every request is now queued behind the single worker thread
    release.set()
    for caller in callers:
        caller.join(timeout=10)
    listener.stop(timeout=2)
    log.configure("info", "stderr")

    assert statuses == [200] * 8
    assert "queue depth" not in path.read_text(encoding="utf-8").lower()
    assert "queue depth" not in capfd.readouterr().err.lower()
