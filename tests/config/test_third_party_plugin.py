"""A third-party plugin installed with pip: listed by ``hookaido plugins`` and its JSON
Schema fragment enforced by ``config validate`` with a located error."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

PIP = [sys.executable, "-m", "pip"]
DISTRIBUTION = "hookaido-apikey-example"

PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "hookaido-apikey-example"
version = "0.3.1"
description = "API-key header auth for Hookaido"

[project.entry-points.hookaido]
apikey = "hookaido_apikey_example"
"""

PLUGIN = '''\
"""API-key auth: the webhook must carry one of the configured keys in a header."""

import hmac

from hookaido.auth import Verdict
from hookaido.hookspecs import hookimpl

SCHEMA = {
    "type": "object",
    "properties": {
        "header": {"type": "string", "minLength": 1},
        "keys": {"type": "array", "items": {"type": "string", "minLength": 1}},
    },
    "required": ["header"],
    "additionalProperties": False,
}


@hookimpl
def register_auth(register):
    register("apikey", ApiKeyVerifier.from_options, schema=SCHEMA)


class ApiKeyVerifier:
    def __init__(self, header, keys):
        self.header = header
        self.keys = [key.encode() for key in keys]

    @classmethod
    def from_options(cls, options, context):
        return cls(options["header"], options.get("keys", []))

    def verify(self, request):
        sent = (request.header(self.header) or "").encode()
        if any(hmac.compare_digest(sent, key) for key in self.keys):
            return Verdict(allowed=True)
        return Verdict(allowed=False, status=401, code="unauthorized")
'''

CONFIG = """\
ingress { listen 127.0.0.1:18080 }
admin_api { listen 127.0.0.1:12019 }
/webhooks/partner {
  auth apikey {
    %s
    keys k-1 k-2
  }
  deliver "https://partner.example/hook" {}
}
"""


def hookaido(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "hookaido", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def write_plugin(root: Path) -> Path:
    project = root / "apikey-plugin"
    package = project / "hookaido_apikey_example"
    package.mkdir(parents=True)
    (project / "pyproject.toml").write_text(PYPROJECT)
    (package / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    return project


def test_an_installed_plugin_is_listed_and_its_schema_is_enforced(tmp_path):
    project = write_plugin(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    try:
        subprocess.run(
            [*PIP, "install", "--quiet", "--no-deps", str(project)],
            check=True,
            capture_output=True,
            timeout=120,
        )

        listed = hookaido("plugins", "--format", "json", cwd=work)
        (work / "Hookaidofile").write_text(CONFIG % "header X-Api-Key")
        valid = hookaido("config", "validate", cwd=work)
        (work / "Hookaidofile").write_text(CONFIG % "# no header yet")
        missing = hookaido("config", "validate", "--format", "text", cwd=work)
        (work / "Hookaidofile").write_text(CONFIG % "header X-Api-Key\n    expiry 5m")
        unknown = hookaido("config", "validate", cwd=work)
    finally:
        subprocess.run(
            [*PIP, "uninstall", "--yes", "--quiet", DISTRIBUTION], capture_output=True, timeout=120
        )

    plugins = {row["name"]: row for row in json.loads(listed.stdout)}
    assert plugins["apikey"]["source"] == DISTRIBUTION
    assert plugins["apikey"]["version"] == "0.3.1"
    assert plugins["apikey"]["registers"] == ["auth:apikey"]

    assert (valid.returncode, valid.stdout) == (0, '{\n  "ok": true\n}\n'), valid.stderr

    assert missing.returncode == 1
    assert missing.stderr.splitlines()[:2] == [
        "config invalid:",
        'Hookaidofile:4:3: auth apikey: missing required option "header"',
    ]

    assert unknown.returncode == 1
    assert json.loads(unknown.stderr)["errors"][0] == (
        'Hookaidofile:6:5: unknown directive "expiry" in auth apikey block; expected one of: '
        "header, keys"
    )
