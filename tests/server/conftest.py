"""Fixtures for server tests: free loopback ports, HTTP calls, ``hookaido run`` processes and
an in-process ingress harness.

``HookaidoProcess`` writes a Hookaidofile, starts ``python -m hookaido run`` on it, waits for
the ``server_started`` log event, and stops the process again (SIGTERM, then SIGKILL).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import falcon.testing
import pytest
import urllib3

from hookaido.builtin.auth_basic import make_basic_verifier
from hookaido.config.model import Config, Route
from hookaido.observability.metrics import Metrics
from hookaido.plugins import PluginInfo, Registry
from hookaido.queue import Stats
from hookaido.runtime import Generation, Runtime
from hookaido.server import ingress

START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Reply:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


_pool = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2.0, read=10.0))


def http(method: str, url: str, body=None, headers=None, json_body=None, timeout=10.0) -> Reply:
    """One HTTP request to a loopback URL; never raises for an HTTP status."""
    assert url.startswith("http://127.0.0.1:"), url
    headers = dict(headers or {})
    if json_body is not None:
        body = json.dumps(json_body).encode()
        headers.setdefault("Content-Type", "application/json")
    response = _pool.request(
        method,
        url,
        body=body,
        headers=headers,
        timeout=urllib3.Timeout(connect=2.0, read=timeout),
        redirect=False,
    )
    return Reply(response.status, dict(response.headers), response.data)


@dataclass
class Ports:
    ingress: int
    pull: int
    admin: int

    @classmethod
    def allocate(cls) -> "Ports":
        return cls(free_port(), free_port(), free_port())


class HookaidoProcess:
    """A ``hookaido run`` subprocess in ``workdir``; its runtime log goes to ``log_path``.

    ``env`` is added to this process's environment; a name mapped to ``None`` is removed.
    """

    def __init__(self, workdir: Path, config_text: str, args=(), env=None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.workdir / "Hookaidofile"
        self.db_path = self.workdir / "hookaido.db"
        self.log_path = self.workdir / "hookaido.log"
        self.args = list(args)
        self.env = dict(env or {})
        self.process: subprocess.Popen | None = None
        self._log = None
        self.write_config(config_text)

    def write_config(self, text: str) -> None:
        self.config_path.write_text(text, encoding="utf-8")

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "hookaido",
            "run",
            "--config",
            str(self.config_path),
            "--db",
            str(self.db_path),
            *self.args,
        ]

    def start(self, wait: bool = True) -> "HookaidoProcess":
        env = {**os.environ, **self.env}
        env = {name: value for name, value in env.items() if value is not None}
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log_offset = self.log_path.stat().st_size
        self.process = subprocess.Popen(
            self.command(),
            cwd=self.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"hookaido exited with {self.process.returncode}:\n{self.output()}"
                )
            if any(e.get("msg") == "server_started" for e in self.events(since_start=True)):
                return
            time.sleep(0.05)
        raise AssertionError(f"hookaido did not start within {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def events(self, name: str | None = None, since_start: bool = False) -> list[dict]:
        """Runtime-log events (JSON lines) written so far, optionally only those named ``name``."""
        text = self.log_path.read_bytes()
        if since_start:
            text = text[self._log_offset :]
        found = []
        for line in text.decode("utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and (name is None or record.get("msg") == name):
                found.append(record)
        return found

    def wait_for_event(self, name: str, count: int = 1, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.events(name, since_start=True)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no {name!r} event within {timeout}s:\n{self.output()}")

    def send_signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """Stop the process; returns its exit code (SIGKILL after ``timeout``)."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        code = self.process.returncode
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a crash."""
        self.stop(signal.SIGKILL)


@pytest.fixture
def hookaido_process(tmp_path):
    """Factory: ``hookaido_process(config_text, args=(), env=None, name="node")``; stops all."""
    started: list[HookaidoProcess] = []

    def make(config_text: str, args=(), env=None, name: str = "node") -> HookaidoProcess:
        process = HookaidoProcess(tmp_path / name, config_text, args=args, env=env)
        started.append(process)
        return process

    yield make
    for process in started:
        process.stop()


@pytest.fixture(scope="module")
def module_hookaido_process(tmp_path_factory):
    """Like ``hookaido_process`` but shared by the tests of one module."""
    started: list[HookaidoProcess] = []

    def make(config_text: str, args=(), env=None, name: str = "node") -> HookaidoProcess:
        process = HookaidoProcess(tmp_path_factory.mktemp(name), config_text, args=args, env=env)
        started.append(process)
        return process

    yield make
    for process in started:
        process.stop()


@pytest.fixture(scope="module")
def module_ports() -> Ports:
    return Ports.allocate()


@pytest.fixture
def ports() -> Ports:
    return Ports.allocate()


# -- in-process ingress ----------------------------------------------------------------------


@dataclass
class RecordingQueue:
    """Keeps enqueued envelopes in a list; ``refuse`` makes the next enqueues raise it."""

    envelopes: list = field(default_factory=list)
    refuse: Exception | None = None
    refuse_after: int = 0  # enqueues that succeed before ``refuse`` applies
    by_state: dict = field(default_factory=dict)
    oldest_queued_received_at: object = None
    earliest_queued_next_run_at: object = None

    def enqueue(self, envelopes) -> None:
        if self.refuse is not None and len(self.envelopes) >= self.refuse_after:
            raise self.refuse
        self.envelopes.extend(envelopes)

    def stats(self) -> Stats:
        return Stats(
            total=sum(self.by_state.values()),
            by_state=dict(self.by_state),
            oldest_queued_received_at=self.oldest_queued_received_at,
            earliest_queued_next_run_at=self.earliest_queued_next_run_at,
        )


def make_auth_registry(**verifiers) -> Registry:
    """A registry with the built-in ``basic`` verifier plus the given factories by name."""
    registry = Registry()
    info = PluginInfo("tests", "0", "tests")
    registry.add(info, "auth", "basic", make_basic_verifier)
    for name, factory in verifiers.items():
        registry.add(info, "auth", name, factory)
    return registry


class IngressHarness:
    """An ingress app on a ``Config`` value; ``reload(config)`` swaps generations."""

    def __init__(self, routes: tuple[Route, ...], registry=None, **config_fields):
        self.queue = RecordingQueue()
        self.registry = registry or make_auth_registry()
        config = Config(routes=routes, **config_fields)
        self.runtime = Runtime(self._generation(config), self.queue, self.registry, Metrics())
        self.client = falcon.testing.TestClient(ingress.make_ingress_app(self.runtime))

    def _generation(self, config: Config, previous=None) -> Generation:
        generation = Generation(config=config)
        generation.parts[ingress.PART] = ingress.build_parts(
            config,
            self.registry,
            lambda ref: ref.value.encode(),
            None,
            previous.parts[ingress.PART] if previous else None,
        )
        return generation

    def reload(self, routes: tuple[Route, ...], **config_fields) -> None:
        config = Config(routes=routes, **config_fields)
        self.runtime.swap(self._generation(config, self.runtime.current))

    def post(self, path: str, body: bytes = b"{}", **kwargs):
        return self.client.simulate_request("POST", path, body=body, **kwargs)

    def request(self, method: str, path: str, **kwargs):
        return self.client.simulate_request(method, path, **kwargs)

    def rejected(self, reason: str, status: int) -> float:
        metric = self.runtime.metrics.ingress_rejected_by_reason
        return metric.labels(reason, str(status))._value.get()


@pytest.fixture
def ingress_harness():
    """The ``IngressHarness`` class: ``ingress_harness(routes, registry=None, **config)``."""
    return IngressHarness


@pytest.fixture(name="auth_registry")
def auth_registry_fixture():
    """``auth_registry(name=factory, ...)``: the ``basic`` verifier plus the given ones."""
    return make_auth_registry


@pytest.fixture(name="http")
def http_fixture():
    """``http(method, url, body=None, headers=None, json_body=None)`` -> ``Reply``."""
    return http


@pytest.fixture(name="free_port")
def free_port_fixture():
    """``free_port()``: a currently unused TCP port on 127.0.0.1."""
    return free_port
