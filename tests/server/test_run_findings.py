"""New-user finding 8: a log file that cannot be created stops ``hookaido run`` with a config
error naming the setting, its place and the path (not "cannot start listeners")."""

import json
import os
import signal
import subprocess
import sys
import time

from ..support.loopback import free_port


def test_an_access_log_under_a_file_is_a_located_config_error_at_start_up(tmp_path):
    (tmp_path / "taken").write_text("a file, not a directory")
    log_path = tmp_path / "taken" / "access.log"
    (tmp_path / "Hookaidofile").write_text(
        f"ingress {{ listen 127.0.0.1:{free_port()} }}\n"
        f"admin_api {{ listen 127.0.0.1:{free_port()} }}\n"
        f"pull_api {{ listen 127.0.0.1:{free_port()}; auth token env:T }}\n"
        "observability {\n"
        f"  access_log {{ output file; path {log_path} }}\n"
        "}\n"
        "/a { queue memory\n pull { path /a } }\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "hookaido", "run", "--config", "Hookaidofile"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "T": "pull-token"},
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert (
        f'Hookaidofile:5:29: observability.access_log.path "{log_path}": cannot create'
        f" directory {tmp_path / 'taken'} (a file of that name exists)"
    ) in result.stderr
    assert "cannot start listeners" not in result.stderr
    assert "Errno" not in result.stderr


def test_a_plugin_named_in_hookaido_load_plugins_but_not_installed_is_logged(tmp_path):
    """Finding 12: a typo in HOOKAIDO_LOAD_PLUGINS is a runtime-log warning, not silence."""
    (tmp_path / "Hookaidofile").write_text(
        f"ingress {{ listen 127.0.0.1:{free_port()} }}\n"
        f"admin_api {{ listen 127.0.0.1:{free_port()} }}\n"
        f"pull_api {{ listen 127.0.0.1:{free_port()}; auth token env:T }}\n"
        "/a { queue memory\n pull { path /a } }\n"
    )
    env = {**os.environ, "T": "pull-token", "HOOKAIDO_LOAD_PLUGINS": "nonexistent,backend_memory"}
    process = subprocess.Popen(
        [sys.executable, "-m", "hookaido", "run", "--config", "Hookaidofile"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        events = {}
        deadline = time.monotonic() + 20
        while "server_started" not in events and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            record = json.loads(line)
            events[record["msg"]] = record
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate(timeout=5)
    assert "server_started" in events
    warning = events["plugin_not_found"]
    assert warning["level"] == "WARN"
    assert warning["plugin"] == "nonexistent"
    assert warning["detail"].startswith(
        "HOOKAIDO_LOAD_PLUGINS names plugin 'nonexistent', which is not installed (installed: "
    )


def test_hookaido_plugins_warns_about_a_name_that_is_not_installed(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "hookaido", "plugins", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "HOOKAIDO_LOAD_PLUGINS": "nonexistent,auth_hmac"},
        cwd=tmp_path,
    )
    assert result.returncode == 0
    assert result.stderr.startswith(
        "warning: HOOKAIDO_LOAD_PLUGINS names plugin 'nonexistent', which is not installed"
    )
    assert "auth_hmac" in {row["name"] for row in json.loads(result.stdout)}


def test_missing_tls_files_stop_run_with_the_place_of_the_tls_block(tmp_path):
    """Finding 6: start-up's TLS error carries file:line:col like every other config error."""
    (tmp_path / "Hookaidofile").write_text(
        f"ingress {{ listen 127.0.0.1:{free_port()}\n"
        " tls { cert_file /nope.pem; key_file /nope.key } }\n"
        f"admin_api {{ listen 127.0.0.1:{free_port()} }}\n"
        f"pull_api {{ listen 127.0.0.1:{free_port()}; auth token env:T }}\n"
        "/a { queue memory\n pull { path /a } }\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "hookaido", "run", "--config", "Hookaidofile"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "T": "pull-token"},
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert (
        "Hookaidofile:2:2: ingress.tls: tls cert_file '/nope.pem': cannot read"
        " (No such file or directory)"
    ) in result.stderr
