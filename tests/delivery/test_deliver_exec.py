"""``deliver exec``: a local command per message, its exit status deciding ack, retry or DLQ."""

import os
import stat
import time
from datetime import timedelta

from hookaido.builtin.deliver_exec import ExecDeliverer
from hookaido.config.model import DeliverTarget, EgressPolicy
from hookaido.delivery import DeliveryContext

from .conftest import make_envelope


def script(tmp_path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def deliverer(command: str, timeout: float = 5.0, env=()) -> ExecDeliverer:
    target = DeliverTarget(
        target=command, kind="exec", timeout=timedelta(seconds=timeout), env=tuple(env)
    )
    return ExecDeliverer(target, DeliveryContext(egress=EgressPolicy()))


def test_exit_zero_acks_and_the_command_reads_the_payload_on_stdin(tmp_path):
    out = tmp_path / "got"
    command = script(tmp_path, "ok.sh", f'cat > "{out}"\n')

    outcome = deliverer(command).deliver(make_envelope(payload=b'{"order":42}'))

    assert (outcome.result, outcome.status_code) == ("acked", 200)
    assert out.read_bytes() == b'{"order":42}'


def test_environment_is_path_plus_hookaido_variables_and_env_directives(tmp_path, monkeypatch):
    monkeypatch.setenv("HOOKAIDO_TEST_LEAK", "must-not-appear")
    out = tmp_path / "env"
    command = script(tmp_path, "env.sh", f'env > "{out}"\n')
    envelope = make_envelope(
        route="/hooks/github",
        headers={"Content-Type": "application/json", "X-GitHub-Event": "push"},
        attempt=3,
    )

    outcome = deliverer(
        command, env=[("DEPLOY_ENV", "staging"), ("HOOKAIDO_ATTEMPT", "9")]
    ).deliver(envelope)

    assert outcome.result == "acked"
    env = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    for added_by_sh in ("PWD", "SHLVL", "_"):
        env.pop(added_by_sh, None)
    assert env == {
        "PATH": os.environ["PATH"],
        "HOOKAIDO_ROUTE": "/hooks/github",
        "HOOKAIDO_EVENT_ID": envelope.id,
        "HOOKAIDO_ATTEMPT": "9",
        "HOOKAIDO_CONTENT_TYPE": "application/json",
        "HOOKAIDO_HEADER_CONTENT_TYPE": "application/json",
        "HOOKAIDO_HEADER_X_GITHUB_EVENT": "push",
        "DEPLOY_ENV": "staging",
    }


def test_command_is_split_shell_style_without_a_shell(tmp_path):
    out = tmp_path / "args"
    command = script(tmp_path, "args.sh", f'printf "%s|" "$@" > "{out}"\n')

    outcome = deliverer(f"{command} 'two words' \"$HOME\" ;").deliver(make_envelope())

    assert outcome.result == "acked"
    assert out.read_text() == "two words|$HOME|;|"


def test_exit_75_is_a_temporary_failure_recorded_as_503(tmp_path):
    command = script(tmp_path, "tempfail.sh", "exit 75\n")

    outcome = deliverer(command).deliver(make_envelope())

    assert (outcome.result, outcome.status_code, outcome.error) == ("retry", 503, "exit status 75")


def test_other_non_zero_exits_retry_as_500(tmp_path):
    for code in (1, 2, 126, 127):
        command = script(tmp_path, f"exit{code}.sh", f"exit {code}\n")

        outcome = deliverer(command).deliver(make_envelope())

        assert (outcome.result, outcome.status_code) == ("retry", 500)
        assert outcome.error == f"exit status {code}"


def test_a_command_killed_by_a_signal_retries_as_502(tmp_path):
    command = script(tmp_path, "selfkill.sh", "kill -TERM $$\n")

    outcome = deliverer(command).deliver(make_envelope())

    assert (outcome.result, outcome.status_code, outcome.error) == (
        "retry",
        502,
        "killed by signal 15",
    )


def test_timeout_kills_the_process_group_and_retries_as_408(tmp_path):
    marker = tmp_path / "child-survived"
    command = script(tmp_path, "slow.sh", f'(sleep 1; touch "{marker}") &\nsleep 30\n')

    started = time.monotonic()
    outcome = deliverer(command, timeout=0.3).deliver(make_envelope())
    elapsed = time.monotonic() - started

    assert (outcome.result, outcome.status_code) == ("retry", 408)
    assert elapsed < 2.0
    time.sleep(1.2)
    assert not marker.exists()


def test_a_command_that_cannot_start_goes_straight_to_the_dlq(tmp_path):
    not_executable = tmp_path / "plain.sh"
    not_executable.write_text("#!/bin/sh\nexit 0\n")

    missing = deliverer(str(tmp_path / "missing")).deliver(make_envelope())
    denied = deliverer(str(not_executable)).deliver(make_envelope())
    unknown = deliverer("hookaido-no-such-command-anywhere").deliver(make_envelope())

    for outcome in (missing, denied, unknown):
        assert (outcome.result, outcome.dead_reason) == ("dead", "policy_denied")
        assert outcome.error.startswith("cannot start command")


def test_stderr_is_logged_at_debug_and_bounded_to_4_kib(tmp_path, events):
    command = script(tmp_path, "noisy.sh", "head -c 10000 /dev/zero | tr '\\0' e >&2\nexit 1\n")
    envelope = make_envelope()

    outcome = deliverer(command).deliver(envelope)

    assert outcome.result == "retry"
    logged = [fields for name, fields in events if name == "exec_stderr"]
    assert logged == [{"command": command, "event_id": envelope.id, "stderr": "e" * 4096}]


def test_exit_zero_with_a_pipe_held_open_acks_after_the_grace_and_warns(tmp_path, events):
    command = script(tmp_path, "linger.sh", "sleep 4 >&2 &\nexit 0\n")

    started = time.monotonic()
    outcome = deliverer(command).deliver(make_envelope())
    elapsed = time.monotonic() - started

    assert outcome.result == "acked"
    assert 1.9 < elapsed < 3.5
    assert "exec_lingering_output" in [name for name, _ in events]


def test_a_command_that_ignores_stdin_still_acks_with_a_large_payload(tmp_path):
    command = script(tmp_path, "ignore.sh", "exit 0\n")

    outcome = deliverer(command).deliver(make_envelope(payload=b"x" * (4 * 1024 * 1024)))

    assert outcome.result == "acked"
