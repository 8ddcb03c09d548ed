"""Built-in ``deliver exec "command"``: run a local command per message, payload on stdin.

The command is split shell-style and run without a shell, in its own process group, with a
clean environment; its exit status decides ack, retry or dead letter.
"""

import os
import selectors
import shlex
import signal
import subprocess
import time

from hookaido.config.model import DeliverTarget
from hookaido.delivery import DeliveryContext, Outcome, header_bytes
from hookaido.errors import ConfigError
from hookaido.hookspecs import hookimpl
from hookaido.observability.log import event

STDERR_LIMIT = 4096
PIPE_GRACE_SECONDS = 2.0
EX_TEMPFAIL = 75
EXIT_POLL_SECONDS = 0.1


@hookimpl
def register_deliverers(register):
    register("exec", ExecDeliverer)


def environment(envelope, extra: tuple[tuple[str, str], ...]) -> dict[str, str | bytes]:
    """The command's whole environment: PATH, the HOOKAIDO_* variables, then ``env`` values.

    Header values are the bytes the webhook carried (see ``header_bytes``).
    """
    env: dict[str, str | bytes] = {"PATH": os.environ.get("PATH", os.defpath)}
    env["HOOKAIDO_ROUTE"] = envelope.route
    env["HOOKAIDO_EVENT_ID"] = envelope.id
    env["HOOKAIDO_ATTEMPT"] = str(envelope.attempt)
    for name, value in envelope.headers.items():
        if name.lower() == "content-type":
            env["HOOKAIDO_CONTENT_TYPE"] = header_bytes(value)
        env["HOOKAIDO_HEADER_" + name.upper().replace("-", "_")] = header_bytes(value)
    env.update(extra)
    return env


class _Run:
    """One child process: feeds stdin, keeps the head of stderr, notices exit and lingering."""

    def __init__(self, process: subprocess.Popen, payload: bytes):
        self.process = process
        self.stderr = bytearray()
        self.stderr_open = True
        self.pending = memoryview(payload)
        self.selector = selectors.DefaultSelector()
        self.stdin_open = True
        os.set_blocking(process.stdin.fileno(), False)
        self.selector.register(process.stdin, selectors.EVENT_WRITE)
        self.selector.register(process.stderr, selectors.EVENT_READ)

    def pump_until(self, deadline: float) -> bool:
        """Move pipe data until the process exits (True) or ``deadline`` passes (False)."""
        while self.process.poll() is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._pump(min(remaining, EXIT_POLL_SECONDS))
        return True

    def drain_stderr(self, deadline: float) -> bool:
        """Read stderr until it closes (True) or ``deadline`` passes (False)."""
        self._close_stdin()
        while self.stderr_open:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._pump(remaining)
        return True

    def close(self) -> None:
        self._close_stdin()
        if self.stderr_open:
            self.selector.unregister(self.process.stderr)
            self.stderr_open = False
        self.process.stderr.close()
        self.selector.close()

    def _pump(self, timeout: float) -> None:
        if not self.selector.get_map():
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
            return
        for key, _mask in self.selector.select(timeout):
            if key.fileobj is self.process.stdin:
                self._write()
            else:
                self._read()

    def _write(self) -> None:
        try:
            written = os.write(self.process.stdin.fileno(), self.pending[:65536])
        except BlockingIOError:
            return
        except OSError:
            written = len(self.pending)  # the command stopped reading: the rest is not wanted
        self.pending = self.pending[written:]
        if not self.pending:
            self._close_stdin()

    def _read(self) -> None:
        chunk = os.read(self.process.stderr.fileno(), 65536)
        if not chunk:
            self.selector.unregister(self.process.stderr)
            self.stderr_open = False
            return
        room = STDERR_LIMIT - len(self.stderr)
        if room > 0:
            self.stderr += chunk[:room]

    def _close_stdin(self) -> None:
        if not self.stdin_open:
            return
        self.stdin_open = False
        self.selector.unregister(self.process.stdin)
        try:
            self.process.stdin.close()
        except OSError:
            pass  # a broken pipe on the final flush: the command stopped reading


class ExecDeliverer:
    """Runs one configured command per delivery attempt."""

    def __init__(self, target: DeliverTarget, context: DeliveryContext):
        try:
            self.argv = shlex.split(target.target)
        except ValueError as exc:
            raise ConfigError(
                f"deliver exec: cannot split command: {exc}", target.location
            ) from exc
        if not self.argv:
            raise ConfigError("deliver exec: the command is empty", target.location)
        self.command = target.target
        self.timeout = target.timeout.total_seconds()
        self.env = target.env

    def deliver(self, envelope) -> Outcome:
        try:
            process = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=environment(envelope, self.env),
                start_new_session=True,
            )
        except (OSError, ValueError) as exc:
            return Outcome(
                "dead", error=f"cannot start command: {exc}", dead_reason="policy_denied"
            )

        run = _Run(process, envelope.payload)
        try:
            exited = run.pump_until(time.monotonic() + self.timeout)
            if not exited:
                self._kill(process)
            pipes_closed = run.drain_stderr(time.monotonic() + PIPE_GRACE_SECONDS)
        finally:
            run.close()
        self._log_stderr(envelope, bytes(run.stderr))

        if not exited:
            return Outcome("retry", status_code=408, error=f"timeout after {self.timeout:g}s")
        code = process.returncode
        if code == 0:
            if not pipes_closed:
                event("exec_lingering_output", "warn", command=self.command, event_id=envelope.id)
            return Outcome("acked", status_code=200)
        if code < 0:
            return Outcome("retry", status_code=502, error=f"killed by signal {-code}")
        status = 503 if code == EX_TEMPFAIL else 500
        return Outcome("retry", status_code=status, error=f"exit status {code}")

    def close(self) -> None:
        """Nothing is pooled: every attempt starts and reaps its own process."""

    @staticmethod
    def _kill(process: subprocess.Popen) -> None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()

    def _log_stderr(self, envelope, stderr: bytes) -> None:
        if stderr:
            text = stderr.decode("utf-8", errors="replace")
            event("exec_stderr", "debug", command=self.command, event_id=envelope.id, stderr=text)
