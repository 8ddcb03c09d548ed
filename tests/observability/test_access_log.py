"""The access log: one JSON line per request, written once the response is complete."""

import json
import os
import re
import stat
import time

import pytest

from hookaido.config.model import LogConfig
from hookaido.observability.accesslog import close_sinks, wrap_access_log

FIELDS = {
    "time",
    "level",
    "msg",
    "component",
    "method",
    "path",
    "status",
    "bytes",
    "duration",
    "remote_addr",
}


def read_lines(path, expected: int = 1) -> list[dict]:
    """Every line of the file, each parsed as JSON (a line that is not JSON fails the test).

    The record is written when the server closes the response, which may be just after the
    client has read it: wait (briefly) for ``expected`` lines.
    """
    deadline = time.monotonic() + 5
    while True:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        if len(text.splitlines()) >= expected or time.monotonic() > deadline:
            return [json.loads(line) for line in text.splitlines()]
        time.sleep(0.01)


@pytest.fixture(autouse=True)
def closed_sinks_after_test():
    yield
    close_sinks()


def little_api(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/webhooks/github":
        start_response("202 Accepted", [("Content-Type", "application/json")])
        return [b'{"status":"accepted"}']
    if path == "/slow":
        time.sleep(0.02)
        start_response("200 OK", [])
        return [b"slow"]
    if path == "/chunks":
        start_response("200 OK", [])
        return iter([b"abc", b"", b"defg"])
    start_response("404 Not Found", [("Content-Type", "application/json")])
    return [b'{"code":"not_found","detail":"no route"}']


def test_every_request_is_one_json_line_with_the_listed_fields(serve, fetch, tmp_path):
    log_file = tmp_path / "access.log"
    config = LogConfig(output="file", path=str(log_file))
    base = serve(wrap_access_log(little_api, "ingress", config))

    fetch("POST", base + "/webhooks/github?x=1", body=b'{"zen":"hi"}')
    fetch("GET", base + "/nowhere")
    fetch("GET", base + "/chunks")
    lines = read_lines(log_file, expected=3)

    assert len(lines) == 3
    for line in lines:
        assert set(line) == FIELDS
        assert line["level"] == "INFO"
        assert line["msg"] == "http_request"
        assert line["component"] == "ingress"
        assert re.fullmatch(r"127\.0\.0\.1:\d+", line["remote_addr"])
        assert isinstance(line["duration"], int) and line["duration"] > 0
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", line["time"])
    first, second, third = lines
    assert (first["method"], first["path"], first["status"]) == ("POST", "/webhooks/github", 202)
    assert first["bytes"] == len(b'{"status":"accepted"}')
    assert (second["method"], second["path"], second["status"]) == ("GET", "/nowhere", 404)
    assert third["bytes"] == 7


def test_duration_is_in_nanoseconds(serve, fetch, tmp_path):
    log_file = tmp_path / "access.log"
    base = serve(
        wrap_access_log(little_api, "admin_api", LogConfig(output="file", path=str(log_file)))
    )

    fetch("GET", base + "/slow")
    (line,) = read_lines(log_file)

    assert 20_000_000 <= line["duration"] < 5_000_000_000
    assert line["component"] == "admin_api"


def test_a_shared_listener_logs_the_component_and_the_path_before_prefix_stripping(
    serve, fetch, tmp_path
):
    def router(environ, start_response):
        # What the prefix router does for a request below the Pull API prefix.
        environ["hookaido.component"] = "pull_api"
        environ["SCRIPT_NAME"] = "/pull"
        environ["PATH_INFO"] = environ["PATH_INFO"][len("/pull") :]
        start_response("204 No Content", [])
        return [b""]

    log_file = tmp_path / "access.log"
    base = serve(wrap_access_log(router, "ingress", LogConfig(output="file", path=str(log_file))))

    fetch("POST", base + "/pull/webhooks/github/dequeue", body=b"{}")
    (line,) = read_lines(log_file)

    assert line["component"] == "pull_api"
    assert line["path"] == "/pull/webhooks/github/dequeue"
    assert line["status"] == 204
    assert line["bytes"] == 0


def test_an_app_that_raises_is_logged_as_500(serve, fetch, tmp_path):
    def broken(environ, start_response):
        raise RuntimeError("boom")

    log_file = tmp_path / "access.log"
    base = serve(wrap_access_log(broken, "ingress", LogConfig(output="file", path=str(log_file))))

    status, _, _ = fetch("GET", base + "/x")
    (line,) = read_lines(log_file)

    assert status == 500
    assert line["status"] == 500


def test_stdout_and_stderr_outputs(serve, fetch, capsys):
    to_stdout = serve(wrap_access_log(little_api, "ingress", LogConfig(output="stdout")))
    to_stderr = serve(wrap_access_log(little_api, "metrics", LogConfig(output="stderr")))

    fetch("GET", to_stdout + "/a")
    fetch("GET", to_stderr + "/b")
    out, err = "", ""
    deadline = time.monotonic() + 5
    while (not out or not err) and time.monotonic() < deadline:
        captured = capsys.readouterr()
        out, err = out + captured.out, err + captured.err
        time.sleep(0.01)

    (out_line,) = [json.loads(line) for line in out.splitlines()]
    (err_line,) = [json.loads(line) for line in err.splitlines()]
    assert (out_line["component"], out_line["path"]) == ("ingress", "/a")
    assert (err_line["component"], err_line["path"]) == ("metrics", "/b")


def test_a_disabled_access_log_leaves_the_app_untouched():
    assert wrap_access_log(little_api, "ingress", LogConfig(enabled=False)) is little_api


def test_the_log_file_is_created_with_mode_0644_and_appended_to(serve, fetch, tmp_path):
    log_file = tmp_path / "logs" / "access.log"
    config = LogConfig(output="file", path=str(log_file))
    old_umask = os.umask(0o022)
    try:
        base = serve(wrap_access_log(little_api, "ingress", config))
    finally:
        os.umask(old_umask)

    fetch("GET", base + "/one")
    read_lines(log_file, expected=1)
    close_sinks()
    fetch("GET", base + "/two")
    lines = read_lines(log_file, expected=2)

    assert stat.S_IMODE(os.stat(log_file).st_mode) == 0o644
    assert [line["path"] for line in lines] == ["/one", "/two"]


def test_closing_the_sinks_after_rotation_moves_writing_to_a_new_file(serve, fetch, tmp_path):
    log_file = tmp_path / "access.log"
    base = serve(
        wrap_access_log(little_api, "ingress", LogConfig(output="file", path=str(log_file)))
    )
    fetch("GET", base + "/before")
    read_lines(log_file, expected=1)

    log_file.rename(tmp_path / "access.log.1")
    close_sinks()
    fetch("GET", base + "/after")

    assert [line["path"] for line in read_lines(log_file)] == ["/after"]
    assert [line["path"] for line in read_lines(tmp_path / "access.log.1")] == ["/before"]


def test_a_request_the_http_server_refuses_itself_is_logged_too(tmp_path):
    import socket

    from hookaido.server.listeners import Listener

    log_path = tmp_path / "access.log"
    app = wrap_access_log(little_api, "ingress", LogConfig(output="file", path=str(log_path)))
    listener = Listener(app, "127.0.0.1:0", threads=2, max_body=1024)
    listener.start()
    try:
        with socket.create_connection(("127.0.0.1", listener.address[1]), timeout=5) as conn:
            conn.sendall(b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: no\r\n\r\n")
            answer = b""
            while chunk := conn.recv(4096):  # the server closes after a refusal
                answer += chunk
        [line] = read_lines(log_path)
    finally:
        listener.stop(timeout=1.0)

    assert answer.startswith(b"HTTP/1.1 400")
    assert set(line) == FIELDS
    assert (line["msg"], line["component"], line["status"]) == ("http_request", "ingress", 400)
    assert line["method"] == "POST" and line["remote_addr"].startswith("127.0.0.1:")
    assert line["bytes"] == len(answer.partition(b"\r\n\r\n")[2])
