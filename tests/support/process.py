"""``HookaidoProcess``: ``python -m hookaido run`` on a Hookaidofile in its own folder.

It waits for the ``server_started`` log event (or for a port to listen) and stops the process
again with SIGTERM, then SIGKILL.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


class HookaidoProcess:
    """A ``hookaido run`` subprocess in ``workdir``; its stdout and stderr go to ``log_path``.

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
        """Start the process; with ``wait``, return once it logged ``server_started``."""
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
            self._assert_running()
            if any(e.get("msg") == "server_started" for e in self.events(since_start=True)):
                return
            time.sleep(0.05)
        raise AssertionError(f"hookaido did not start within {timeout}s:\n{self.output()}")

    def wait_listening(self, port: int, timeout: float = START_TIMEOUT) -> "HookaidoProcess":
        """Wait until 127.0.0.1:``port`` accepts connections (for a runtime log kept elsewhere)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._assert_running()
            with socket.socket() as probe:
                probe.settimeout(0.2)
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    return self
            time.sleep(0.05)
        raise AssertionError(f"hookaido did not listen within {timeout}s:\n{self.output()}")

    def wait_exit(self, timeout: float = START_TIMEOUT) -> int:
        """The exit code of a process expected to end by itself."""
        return self.process.wait(timeout=timeout)

    def _assert_running(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(
                f"hookaido exited with {self.process.returncode}:\n{self.output()}"
            )

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


class HookaidoProcesses:
    """Makes ``HookaidoProcess`` objects, each in the folder ``workdir_for(name)``.

    Call it as ``processes(config_text, args=(), env=None, name="node")``; ``stop_all()``.
    """

    def __init__(self, workdir_for):
        self.workdir_for = workdir_for
        self.started: list[HookaidoProcess] = []

    def __call__(self, config_text: str, args=(), env=None, name: str = "node"):
        process = HookaidoProcess(self.workdir_for(name), config_text, args=args, env=env)
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.started:
            process.stop()
