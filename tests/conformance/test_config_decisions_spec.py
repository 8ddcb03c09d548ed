"""The Hookaidofile decisions the spec marks as taken where the sources were silent (``;`` as a
separator, placeholders inside bare words, tracing, runtime secrets, channels that ingress
never serves), driven through ``hookaido config`` and ``hookaido run`` on loopback."""

import json
import os
import subprocess
import sys


def hookaido_config(tmp_path, text, *argv):
    """Write ``text`` as the Hookaidofile and run ``hookaido config <argv> --config <file>``."""
    path = tmp_path / "Hookaidofile"
    path.write_text(text, encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "hookaido", "config", *argv, "--config", path.name],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=dict(os.environ),
        timeout=60,
    )


def listeners(ports) -> str:
    return (
        f"ingress {{ listen 127.0.0.1:{ports.ingress} }}\n"
        f"pull_api {{ listen 127.0.0.1:{ports.pull}; auth token raw:decisions-token }}\n"
        f"admin_api {{ listen 127.0.0.1:{ports.admin} }}\n"
    )


def test_semicolons_separate_directives_and_fmt_writes_one_per_line(tmp_path):
    text = (
        "pull_api { listen 127.0.0.1:9443;auth token raw:t; };\n"
        "/a { auth hmac { provider github; secret env:X }; pull { path /a; } }\n"
    )

    validated = hookaido_config(tmp_path, text, "validate", "--format", "text")
    formatted = hookaido_config(tmp_path, text, "fmt")

    assert (validated.returncode, validated.stdout) == (0, "config ok (warnings: 2)\n")
    assert formatted.stdout == (
        "pull_api {\n"
        "  listen 127.0.0.1:9443\n"
        "  auth token raw:t\n"
        "}\n"
        "\n"
        "/a {\n"
        "  auth hmac {\n"
        "    provider github\n"
        "    secret env:X\n"
        "  }\n"
        "  pull {\n"
        "    path /a\n"
        "  }\n"
        "}\n"
    )


def test_a_semicolon_ends_a_bare_word_but_is_kept_inside_quotes(tmp_path):
    bare = "/a;b { pull { path /a } }\n"
    quoted = '"/a;b" { pull { path "/p;q" } }\n'

    split = hookaido_config(tmp_path, bare, "validate", "--format", "text")
    kept = hookaido_config(tmp_path, quoted, "fmt")

    assert split.returncode == 1
    assert split.stderr.splitlines()[1] == (
        'Hookaidofile:1:4: route /a needs a block: expected "{", found "b"'
    )
    assert kept.stdout == '"/a;b" {\n  pull {\n    path "/p;q"\n  }\n}\n'


def test_fmt_quotes_a_bare_word_that_holds_a_semicolon_in_a_placeholder(tmp_path):
    text = "/a { pull { path {$P:/x;y}/z } }\n/b { pull { path {$Q:/x;y} } }\n"

    first = hookaido_config(tmp_path, text, "fmt").stdout
    again = hookaido_config(tmp_path, first, "fmt").stdout

    assert first == (
        '/a {\n  pull {\n    path "{$P:/x;y}/z"\n  }\n}\n'
        "\n"
        "/b {\n  pull {\n    path {$Q:/x;y}\n  }\n}\n"
    )
    assert again == first


def test_a_vars_placeholder_may_start_a_bare_route_path_that_continues(
    hookaido_process, ports, http
):
    routes = "vars { BASE /hooks }\n{vars.BASE}/build { pull { path /build } }\n"
    hookaido_process(listeners(ports) + routes).start()

    served = http("POST", f"http://127.0.0.1:{ports.ingress}/hooks/build", body=b"{}")
    prefix_only = http("POST", f"http://127.0.0.1:{ports.ingress}/hooks", body=b"{}")

    assert (served.status, served.json()) == (202, {"status": "queued"})
    assert prefix_only.status == 404


def test_outbound_and_internal_routes_are_not_served_by_ingress(hookaido_process, ports, http):
    routes = (
        'outbound /out { deliver "https://example.invalid/out" {} }\n'
        "internal { /jobs/a { pull { path /a } } /jobs/b { pull { path /b } } }\n"
        "/in { pull { path /in } }\n"
    )
    hookaido_process(listeners(ports) + routes).start()

    answers = {
        path: http("POST", f"http://127.0.0.1:{ports.ingress}{path}", body=b"{}")
        for path in ("/out", "/jobs/a", "/jobs/b", "/in")
    }

    assert {path: reply.status for path, reply in answers.items()} == {
        "/out": 404,
        "/jobs/a": 404,
        "/jobs/b": 404,
        "/in": 202,
    }
    assert answers["/jobs/a"].json()["code"] == "not_found"


def test_enabled_tracing_is_a_warning_in_validate_and_in_the_run_log(
    tmp_path, hookaido_process, ports
):
    text = (
        listeners(ports)
        + 'observability { tracing { collector "http://127.0.0.1:4318"; compression gzip } }\n'
        + "/in { pull { path /in } }\n"
    )
    warning = (
        "Hookaidofile:4:17: observability.tracing: tracing is not supported; nothing is exported"
    )

    validated = hookaido_config(tmp_path, text, "validate")
    node = hookaido_process(text).start()

    assert validated.returncode == 0
    assert json.loads(validated.stdout) == {"ok": True, "warnings": [warning]}
    logged = [event["warning"] for event in node.events("config_warning")]
    assert logged == [warning.replace("Hookaidofile", str(node.config_path))]


def test_disabled_tracing_gives_no_warning(tmp_path, ports):
    text = (
        listeners(ports)
        + 'observability { tracing { enabled off; collector "http://127.0.0.1:4318" } }\n'
        + "/in { pull { path /in } }\n"
    )

    validated = hookaido_config(tmp_path, text, "validate")

    assert (validated.returncode, json.loads(validated.stdout)) == (0, {"ok": True})


def test_a_runtime_secret_is_refused_as_unsupported(tmp_path, ports):
    text = (
        listeners(ports)
        + "secrets {\n"
        + '  secret "v1" { value raw:abc; valid_from "2026-01-01T00:00:00Z"; runtime true }\n'
        + "}\n"
        + '/in { auth hmac secret_ref "v1"; pull { path /in } }\n'
    )

    validated = hookaido_config(tmp_path, text, "validate")

    assert validated.returncode == 1
    assert json.loads(validated.stderr)["errors"] == [
        'Hookaidofile:5:67: secrets.secret "v1": runtime secrets (runtime true) are not supported'
    ]
