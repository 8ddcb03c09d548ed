"""New-user finding 8: a log file that cannot be created stops ``hookaido run`` with a config
error naming the setting, its place and the path (not "cannot start listeners")."""

import os
import subprocess
import sys

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
