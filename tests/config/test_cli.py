"""``hookaido config validate|fmt|schema|diff`` as an operator sees them."""

import json
import subprocess
import sys

import jsonschema
import pytest

from hookaido.cli import main

VALID = """\
ingress { listen 127.0.0.1:18080 }
pull_api {
  listen 127.0.0.1:19443
  auth token env:HK_TEST_PULL_TOKEN
}
admin_api { listen 127.0.0.1:12019 }
/webhooks/github { pull { path /pull/github } }
"""

INVALID = """\
ingress { listen 127.0.0.1:18080 }
admin_api { listen 127.0.0.1:12019 }
/webhooks/a { deliver "https://a.example" {} }
/webhooks/a { deliver "https://b.example" {} }
"""


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HK_TEST_PULL_TOKEN", raising=False)
    monkeypatch.delenv("HK_TEST_UNSET", raising=False)
    return tmp_path


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_reads_hookaidofile_and_prints_ok_as_json(workdir, capsys):
    (workdir / "Hookaidofile").write_text(VALID)

    code, out, err = run(capsys, "config", "validate")

    assert (code, out, err) == (0, '{\n  "ok": true\n}\n', "")


def test_validate_text_counts_warnings(workdir, capsys):
    (workdir / "Hookaidofile").write_text(
        VALID.replace("/github {", "/github{env.HK_TEST_UNSET} {")
    )

    code, out, _ = run(capsys, "config", "validate", "--format", "text")

    assert (code, out) == (0, "config ok (warnings: 1)\n")


def test_validate_lists_warnings_in_json(workdir, capsys):
    (workdir / "Hookaidofile").write_text(
        VALID.replace("/github {", "/github{env.HK_TEST_UNSET} {")
    )

    code, out, _ = run(capsys, "config", "validate")

    assert code == 0
    assert json.loads(out) == {
        "ok": True,
        "warnings": ['Hookaidofile:7:1: environment variable HK_TEST_UNSET is not set; using ""'],
    }


def test_an_invalid_config_reports_every_located_error_on_stderr(workdir, capsys):
    path = workdir / "edge.hk"
    path.write_text(INVALID)

    code, out, err = run(capsys, "config", "validate", "--config", str(path))

    assert (code, out) == (1, "")
    report = json.loads(err)
    assert report["ok"] is False
    assert f'{path}:4:1: duplicate route path "/webhooks/a"' in report["errors"]


def test_text_format_prints_one_error_per_line(workdir, capsys):
    (workdir / "Hookaidofile").write_text(INVALID)

    code, _, err = run(capsys, "config", "validate", "--format", "text")

    lines = err.splitlines()
    assert code == 1
    assert lines[0] == "config invalid:"
    assert 'Hookaidofile:4:1: duplicate route path "/webhooks/a"' in lines[1:]


def test_parse_and_read_failures_have_the_same_shape_with_one_error(workdir, capsys):
    (workdir / "Hookaidofile").write_text("ingress {\n  listen\n}\n")

    code, _, err = run(capsys, "config", "validate")
    missing_code, _, missing_err = run(capsys, "config", "validate", "--config", "nope")

    assert code == 1
    assert json.loads(err) == {
        "ok": False,
        "errors": ['Hookaidofile:3:1: listen expects 1 value, found "}"'],
    }
    assert missing_code == 1
    assert len(json.loads(missing_err)["errors"]) == 1
    assert "cannot read config file nope" in json.loads(missing_err)["errors"][0]


def test_strict_secrets_loads_every_reference(workdir, capsys, monkeypatch):
    (workdir / "Hookaidofile").write_text(VALID)

    code, _, err = run(capsys, "config", "validate", "--strict-secrets", "--format", "text")
    monkeypatch.setenv("HK_TEST_PULL_TOKEN", "s3cret")
    ok_code, ok_out, _ = run(capsys, "config", "validate", "--strict-secrets", "--format", "text")

    assert code == 1
    assert err.splitlines()[0] == "config invalid:"
    assert "HK_TEST_PULL_TOKEN" in err
    assert err.splitlines()[1].startswith("Hookaidofile:4:")
    assert (ok_code, ok_out) == (0, "config ok\n")


def test_fmt_prints_canonical_form_and_leaves_the_file_alone(workdir, capsys):
    original = "/b { pull { path /b } }\r\ningress {listen 127.0.0.1:1}  # edge\n"
    (workdir / "Hookaidofile").write_text(original, newline="")

    code, out, _ = run(capsys, "config", "fmt")

    assert code == 0
    assert out == (
        "ingress {\n  listen 127.0.0.1:1\n} # edge\n\n/b {\n  pull {\n    path /b\n  }\n}\n"
    )
    assert (workdir / "Hookaidofile").read_bytes() == original.encode()


def test_fmt_write_rewrites_the_file(workdir, capsys):
    (workdir / "Hookaidofile").write_text("/b {pull {path /b}}")

    code, out, _ = run(capsys, "config", "fmt", "--write")

    assert (code, out) == (0, "")
    assert (workdir / "Hookaidofile").read_text() == "/b {\n  pull {\n    path /b\n  }\n}\n"


def test_fmt_of_a_broken_file_exits_1_with_the_located_error(workdir, capsys):
    (workdir / "Hookaidofile").write_text('/b { pull { path "/b } }')

    code, out, err = run(capsys, "config", "fmt")

    assert (code, out) == (1, "")
    assert err.startswith("Hookaidofile:1:18: unterminated string")


def test_diff_compares_canonical_forms(workdir, capsys):
    (workdir / "old").write_text("/a { pull { path /a } }")
    (workdir / "same").write_text("/a {\n pull {path /a}\n}\n")
    (workdir / "new").write_text("/a { pull { path /b } }")

    same = run(capsys, "config", "diff", "old", "same")
    differ = run(capsys, "config", "diff", "--context", "0", "old", "new")
    broken = run(capsys, "config", "diff", "old", "missing")

    assert same == (0, "", "")
    assert differ[0] == 1
    assert differ[1] == "--- old\n+++ new\n@@ -3 +3 @@\n-    path /a\n+    path /b\n"
    assert broken[0] == 2
    assert "cannot read config file missing" in broken[2]


def test_schema_prints_a_valid_json_schema(capsys):
    code, out, _ = run(capsys, "config", "schema")

    assert code == 0
    jsonschema.Draft202012Validator.check_schema(json.loads(out))


def test_the_console_command_validates_in_a_real_process(workdir):
    (workdir / "Hookaidofile").write_text(INVALID)

    result = subprocess.run(
        [sys.executable, "-m", "hookaido", "config", "validate", "--format", "text"],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert result.stdout == ""
    assert 'Hookaidofile:4:1: duplicate route path "/webhooks/a"' in result.stderr


def test_a_mistake_found_by_both_schema_and_compiler_is_reported_once(workdir, capsys):
    (workdir / "Hookaidofile").write_text(
        "ingress { listen 127.0.0.1:18080 }\nadmin_api { listen 127.0.0.1:12019 }\n"
        '/a {\n  auth hmac env:X { provider gitlab }\n  deliver "https://a.example" {}\n}\n'
    )

    code, _, err = run(capsys, "config", "validate")

    errors = json.loads(err)["errors"]
    assert code == 1
    assert len(errors) == 1
    assert errors[0].startswith("Hookaidofile:4:")
    assert '"gitlab"' in errors[0]
