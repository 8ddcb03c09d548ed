import json
import subprocess
import sys


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "hookaido", *args], capture_output=True, text=True, timeout=60
    )


def test_version_prints_the_installed_version():
    result = run_cli("version")

    assert result.returncode == 0
    assert result.stdout.startswith("hookaido ")


def test_plugins_lists_the_four_packaged_plugins_as_json():
    result = run_cli("plugins", "--format", "json")

    assert result.returncode == 0
    names = {row["name"] for row in json.loads(result.stdout)}
    assert {"auth_hmac", "backend_sqlite", "backend_memory", "deliver_http"} <= names


def test_unknown_command_exits_2():
    result = run_cli("frobnicate")

    assert result.returncode == 2
