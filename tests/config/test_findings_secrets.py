"""New-user findings 1 and 10: a placeholder where a secret reference belongs never shows the
secret, and a refused value does not bring follow-on errors."""

import os
import subprocess
import sys

LEAK = """\
ingress { listen 127.0.0.1:18880 }
admin_api { listen 127.0.0.1:18819 }
pull_api { listen 127.0.0.1:18843
 auth token {env.PULL_TOKEN} }
/a { auth hmac {env.HMAC_KEY}
 pull { path /a } }
/b { deliver "https://x.example/y" { sign hmac {env.SIGN_KEY} } }
/c { pull { path /c } }
"""

FORMS = "env:NAME, file:/path, vault:path[#field] or raw:value"


def validate(tmp_path, text, *extra, env=None):
    path = tmp_path / "leak.hf"
    path.write_text(text)
    environ = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "hookaido", "config", "validate", "--config", "leak.hf"]
        + ["--format", "text", *extra],
        capture_output=True,
        text=True,
        timeout=30,
        env=environ,
        cwd=tmp_path,
    )


def expected_ref(place, written):
    return (
        f"{place}: expected a secret reference ({FORMS}); a placeholder was written here"
        f' ("{written}"), which fills in the secret itself; write env:NAME or file:/path instead'
    )


def test_env_placeholders_in_secret_refs_name_the_place_but_never_the_secret(tmp_path):
    secrets = {
        "PULL_TOKEN": "supersecret-pull",
        "HMAC_KEY": "supersecret-hmac",
        "SIGN_KEY": "supersecret-sign",
    }
    result = validate(tmp_path, LEAK, env=secrets)
    assert result.returncode == 1
    assert "supersecret" not in result.stdout + result.stderr
    errors = [line[len("leak.hf") :] for line in result.stderr.splitlines() if "leak.hf:" in line]
    assert errors == [
        expected_ref(":4:13: pull_api.auth token", "{env.PULL_TOKEN}"),
        expected_ref(':5:16: route "/a": auth hmac', "{env.HMAC_KEY}"),
        expected_ref(
            ':7:48: route "/b": deliver "https://x.example/y": sign hmac', "{env.SIGN_KEY}"
        ),
    ]


def test_a_file_placeholder_never_prints_the_file_content(tmp_path):
    secret_file = tmp_path / "token"
    secret_file.write_text("file-held-secret")
    text = LEAK.replace("{env.PULL_TOKEN}", f'"{{file.{secret_file}}}"')
    result = validate(tmp_path, text, env={"HMAC_KEY": "k1", "SIGN_KEY": "k2"})
    assert result.returncode == 1
    assert "file-held-secret" not in result.stdout + result.stderr
    assert expected_ref(":4:13: pull_api.auth token", f"{{file.{secret_file}}}") in result.stderr


def test_a_refused_pull_api_token_does_not_add_one_error_per_pull_route(tmp_path):
    result = validate(tmp_path, LEAK, env={"PULL_TOKEN": "x", "HMAC_KEY": "y", "SIGN_KEY": "z"})
    assert "pull needs auth token" not in result.stderr
    assert "needs at least one secret" not in result.stderr


def test_a_missing_pull_api_token_is_still_reported_per_route(tmp_path):
    text = LEAK.replace(" auth token {env.PULL_TOKEN} }", "}").replace("{env.", "env:")
    text = text.replace("HMAC_KEY}", "HMAC_KEY").replace("SIGN_KEY}", "SIGN_KEY")
    result = validate(tmp_path, text)
    assert 'leak.hf:5:1: route "/a": pull needs auth token' in result.stderr
    assert 'leak.hf:8:1: route "/c": pull needs auth token' in result.stderr


def test_a_refused_retry_base_is_not_compared_with_the_cap(tmp_path):
    text = (
        '/a { deliver "https://x.example/y"'
        " { retry exponential max -1 base 0s cap 1s jitter 2 } }\n"
    )
    result = validate(tmp_path, text)
    assert result.returncode == 1
    assert "base must not be greater than cap" not in result.stderr
    assert (
        'leak.hf:1:68: route "/a": deliver "https://x.example/y".retry base:'
        ' invalid duration "0s": must be a positive duration'
    ) in result.stderr


def test_a_written_base_greater_than_the_cap_is_still_an_error(tmp_path):
    text = '/a { deliver "https://x.example/y" { retry exponential base 5s cap 1s } }\n'
    result = validate(tmp_path, text)
    assert "retry: base must not be greater than cap" in result.stderr


def test_any_message_about_a_filled_in_value_quotes_it_as_written(tmp_path):
    text = (
        "pull_api { listen 127.0.0.1:18843; auth token env:T }\n"
        "/a { auth hmac { provider {env.PROVIDER}; secret env:K }\n pull { path /a } }\n"
    )
    result = validate(tmp_path, text, env={"PROVIDER": "hidden-value"})
    assert result.returncode == 1
    assert "hidden-value" not in result.stderr
    assert '"{env.PROVIDER}"' in result.stderr
