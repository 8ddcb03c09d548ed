"""Loopback fixtures: a throwaway waitress listener, a ``hookaido run`` process, free ports;
the runtime log is restored after each test."""

import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import waitress.server
from waitress import wasyncore

from hookaido.observability import log


@pytest.fixture
def serve():
    """Serve a WSGI app on 127.0.0.1:<free port>; returns its base URL. Stopped after the test."""
    servers = []

    def start(app) -> str:
        server = waitress.server.create_server(app, host="127.0.0.1", port=0, threads=2)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.effective_port}"

    yield start
    for server, thread in servers:
        server.trigger.pull_trigger(lambda server=server: wasyncore.close_all(server._map))
        thread.join(timeout=5)
        server.task_dispatcher.shutdown(timeout=1)


def http(method: str, url: str, body: bytes | None = None):
    """(status, headers, body) of one request; HTTP errors are answers, not exceptions."""
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@pytest.fixture
def fetch():
    return http


@pytest.fixture(autouse=True)
def default_runtime_log():
    yield
    log.configure("info", "stderr")


class HookaidoRun:
    """``python -m hookaido run`` on a Hookaidofile in ``workdir``; stderr kept in a file."""

    def __init__(self, workdir: Path, config_text: str):
        self.workdir = workdir
        (workdir / "Hookaidofile").write_text(config_text, encoding="utf-8")
        self.stderr_path = workdir / "stderr.log"
        self.process: subprocess.Popen | None = None

    def start(self, ready_port: int, timeout: float = 15.0) -> "HookaidoRun":
        with open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hookaido", "run", "--config", "Hookaidofile"]
                + ["--db", str(self.workdir / "hookaido.db")],
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"hookaido run exited early:\n{self.stderr()}")
            with socket.socket() as probe:
                probe.settimeout(0.2)
                if probe.connect_ex(("127.0.0.1", ready_port)) == 0:
                    return self
            time.sleep(0.05)
        raise AssertionError(f"hookaido run did not listen in {timeout}s:\n{self.stderr()}")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        code, self.process = self.process.returncode, None
        return code


@pytest.fixture
def hookaido_run(tmp_path):
    """Factory ``hookaido_run(config_text)``; every process is stopped after the test."""
    runs = []

    def make(config_text: str) -> HookaidoRun:
        run = HookaidoRun(tmp_path, config_text)
        runs.append(run)
        return run

    yield make
    for run in runs:
        run.stop()


@pytest.fixture
def free_ports():
    """``free_ports(n)``: n distinct TCP ports on 127.0.0.1 that nothing listens on now."""

    def allocate(count: int) -> list[int]:
        probes = [socket.socket() for _ in range(count)]
        try:
            for probe in probes:
                probe.bind(("127.0.0.1", 0))
            return [probe.getsockname()[1] for probe in probes]
        finally:
            for probe in probes:
                probe.close()

    return allocate
