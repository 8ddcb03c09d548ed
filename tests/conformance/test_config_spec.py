"""Conformance checks of the Hookaidofile language, driven through the real command line."""

import json
import os
import subprocess
import sys

import pytest


def hookaido(tmp_path, text, *argv, env=None):
    """Write ``text`` as the Hookaidofile and run ``hookaido <argv> --config <file>``."""
    path = tmp_path / "Hookaidofile"
    path.write_text(text, encoding="utf-8")
    environ = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "hookaido", *argv, "--config", path.name],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environ,
        timeout=60,
    )


def validate(tmp_path, text, env=None):
    """The exit code and the JSON report of ``config validate``."""
    done = hookaido(tmp_path, text, "config", "validate", env=env)
    return done.returncode, json.loads(done.stdout or done.stderr)


def fmt(tmp_path, text):
    done = hookaido(tmp_path, text, "config", "fmt")
    assert done.returncode == 0, done.stderr
    return done.stdout


# --------------------------------------------------------------------------------------
# config fmt
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "written, secret",
    [
        ("auth hmac env:IN { tolerance 1m }", "secret env:IN"),
        ('auth hmac secret_ref "v1" { tolerance 1m }', 'secret_ref "v1"'),
    ],
)
def test_fmt_writes_auth_hmac_with_options_as_the_block_form(tmp_path, written, secret):
    text = f"/a {{\n  {written}\n  pull {{ path /a }}\n}}\n"

    out = fmt(tmp_path, text)

    assert out == (
        "/a {\n"
        "  auth hmac {\n"
        f"    {secret}\n"
        "    tolerance 1m\n"
        "  }\n"
        "  pull {\n"
        "    path /a\n"
        "  }\n"
        "}\n"
    )
    assert fmt(tmp_path, out) == out


def test_fmt_keeps_the_auth_hmac_shorthand_without_options(tmp_path):
    text = "/a {\n  auth hmac env:IN\n  pull {\n    path /a\n  }\n}\n"

    assert fmt(tmp_path, text) == text


# --------------------------------------------------------------------------------------
# config validate
# --------------------------------------------------------------------------------------


def test_a_secret_with_a_mistake_is_reported_once_at_the_secret_not_as_undeclared(tmp_path):
    text = (
        'secrets { secret "v1" { value raw:in } }\n'
        "/a { auth hmac secret_ref v1\n"
        '  deliver "https://x.example" { sign hmac secret_ref v1 } }\n'
    )

    code, report = validate(tmp_path, text)

    assert code == 1
    assert report["errors"] == ['Hookaidofile:1:11: secrets.secret "v1": valid_from is required']


def test_an_empty_channel_wrapper_is_valid_beside_other_routes(tmp_path):
    text = 'internal {\n  # none yet\n}\n/a { deliver "https://x.example" {} }\n'

    code, report = validate(tmp_path, text)

    assert code == 0 and report["ok"] is True


def test_a_file_whose_only_wrapper_is_empty_has_no_routes(tmp_path):
    code, report = validate(tmp_path, "outbound { }\n")

    assert (code, report["errors"]) == (1, ["no routes defined"])


def test_an_invalid_config_still_lists_its_warnings(tmp_path):
    text = (
        'admin_api { listen "127.0.0.1:2019" }\n'
        '/webhooks/a { deliver "https://a.example" {} }\n'
        '/webhooks/a { deliver "https://b.example" {} }\n'
    )

    code, report = validate(tmp_path, text)

    assert code == 1
    assert report == {
        "ok": False,
        "errors": ['Hookaidofile:3:1: duplicate route path "/webhooks/a"'],
        "warnings": ['ingress.listen not set; using default ":8080"'],
    }


def test_a_placeholder_error_does_not_hide_the_other_problems_of_the_file(tmp_path):
    text = (
        "pull_api { auth token {vars.MISSING} }\n/a { pull { path /a } }\n/a { pull { path /b } }\n"
    )

    code, report = validate(tmp_path, text)

    assert code == 1
    assert report["errors"] == [
        'Hookaidofile:1:23: unknown variable "MISSING" in "{vars.MISSING}"',
        'Hookaidofile:3:1: duplicate route path "/a"',
    ]


def test_a_default_deliver_concurrency_above_a_routes_limit_is_valid_and_routes_take_the_limit(
    tmp_path,
):
    from hookaido.config.loader import load_config

    text = (
        "defaults { deliver { concurrency 20000 } }\n"
        '/a { deliver "https://a.example" {} }\n'
        '/b {\n  deliver_concurrency 7\n  deliver "https://b.example" {}\n}\n'
    )

    code, report = validate(tmp_path, text)
    routes = {route.path: route for route in load_config(tmp_path / "Hookaidofile").routes}

    assert (code, report["ok"], report.get("errors")) == (0, True, None)
    assert (routes["/a"].deliver_concurrency, routes["/b"].deliver_concurrency) == (10000, 7)


def test_a_quoted_mistyped_placeholder_is_kept_but_warned_about(tmp_path):
    text = (
        'pull_api {\n  listen 127.0.0.1:9443\n  auth token "raw:{evn.TOKEN}"\n}\n'
        "/a {\n  pull { path /a }\n}\n"
    )

    code, report = validate(tmp_path, text)

    assert (code, report["ok"]) == (0, True)
    assert report["warnings"][0] == (
        'Hookaidofile:3:14: "{evn.TOKEN}" is not a placeholder and is kept as written'
        " (placeholders are {env.NAME}, {$NAME}, {$NAME:default}, {file.PATH} and {vars.NAME})"
    )


def test_an_unquoted_mistyped_placeholder_is_an_error_that_names_it(tmp_path):
    text = "pull_api {\n  auth token raw:{ENV.TOKEN}\n}\n/a {\n  pull { path /a }\n}\n"

    code, report = validate(tmp_path, text)

    assert code == 1
    assert report["errors"] == [
        'Hookaidofile:2:18: unexpected "{" in pull_api; expected a directive name'
        ' (is "{ENV.TOKEN}" a mistyped placeholder? Placeholders are {env.NAME}, {$NAME},'
        " {$NAME:default}, {file.PATH} and {vars.NAME})"
    ]


def test_a_secret_placeholder_filled_in_empty_names_the_reason(tmp_path):
    text = (
        'pull_api {\n  listen 127.0.0.1:9443\n  auth token "raw:{$PULL_TOKEN:dev-token}"\n}\n'
        "/a {\n  pull { path /a }\n}\n"
    )

    code, report = validate(tmp_path, text, env={"PULL_TOKEN": ""})

    assert code == 1
    assert report["errors"] == [
        'Hookaidofile:3:14: pull_api.auth token: "raw:{$PULL_TOKEN:dev-token}" filled in an'
        " invalid secret reference (raw: value is empty); is the placeholder's variable set"
        " and not empty?"
    ]


@pytest.mark.parametrize(
    "block, where, message",
    [
        (
            'queue_limits { max_depth "٥" }',
            "1:26",
            'queue_limits.max_depth: invalid integer "٥": expected an integer >= 0',
        ),
        (
            'defaults { max_body "٢mb" }',
            "1:21",
            'defaults.max_body: invalid size "٢mb": expected a number of bytes optionally'
            " followed by b, kb, mb or gb (e.g. 2mb, 64kb)",
        ),
        (
            'ingress { rate_limit { rps "٣" } }',
            "1:28",
            'ingress.rate_limit.rps: invalid number "٣": expected a decimal number such as 0.5',
        ),
        (
            'secrets { secret s { value raw:x; valid_from "٢026-01-01T00:00:00Z" } }',
            "1:46",
            'secrets.secret "s".valid_from: invalid timestamp "٢026-01-01T00:00:00Z":'
            " expected RFC 3339 such as 2026-01-01T00:00:00Z",
        ),
    ],
)
def test_numbers_are_written_with_ascii_digits_only(tmp_path, block, where, message):
    text = f'{block}\n/a {{ deliver "https://a.example" {{}} }}\n'

    code, report = validate(tmp_path, text)

    assert code == 1
    assert report["errors"] == [f"Hookaidofile:{where}: {message}"]


def test_a_basic_password_from_the_environment_is_taken_literally_whatever_it_looks_like(
    tmp_path,
):
    text = '/a {\n  auth basic ops {env.OPS_PASSWORD}\n  deliver "https://a.example" {}\n}\n'

    code, report = validate(tmp_path, text, env={"OPS_PASSWORD": "raw:s3cret"})

    assert (code, report["ok"], report.get("errors")) == (0, True, None)


def test_a_basic_password_written_as_a_secret_reference_is_refused_also_through_vars(tmp_path):
    text = (
        "vars { PW env:OPS_PASSWORD }\n"
        '/a {\n  auth basic ops {vars.PW}\n  deliver "https://a.example" {}\n}\n'
    )

    code, report = validate(tmp_path, text)

    assert code == 1
    assert report["errors"] == [
        'Hookaidofile:3:18: route "/a": auth basic password "{vars.PW}" is a secret reference;'
        " basic credentials are compared literally, use {env.NAME} instead"
    ]
