"""New-user finding 6: ``config validate`` tells what ``hookaido run`` would refuse at start-up
(whsec_ keys, an uninstalled default backend, localhost next to 127.0.0.1 are errors; TLS and log
files, which belong to the machine the config runs on, are warnings unless --strict-secrets)."""

import json
import os
import subprocess
import sys

import trustme

PULL = "pull_api { listen 127.0.0.1:18843; auth token env:T }\n/a { pull { path /a } }\n"


def validate(tmp_path, text, *extra, env=None):
    (tmp_path / "v.hf").write_text(text)
    options = list(extra) if "--format" in extra else ["--format", "text", *extra]
    return subprocess.run(
        [sys.executable, "-m", "hookaido", "config", "validate", "--config", "v.hf", *options],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "T": "pull-token", **(env or {})},
        cwd=tmp_path,
    )


def test_a_literal_whsec_secret_that_is_not_base64_is_a_located_error(tmp_path):
    text = (
        "pull_api { listen 127.0.0.1:18843; auth token env:T }\n"
        "/a { auth hmac { provider standard-webhooks; secret raw:whsec_!!!! }\n"
        " pull { path /a } }\n"
    )
    result = validate(tmp_path, text)
    assert result.returncode == 1
    assert result.stderr.splitlines()[1:] == [
        'v.hf:2:53: route "/a": auth hmac: a whsec_ secret must carry a non-empty'
        " standard base64 key"
    ]


def test_a_valid_whsec_secret_passes(tmp_path):
    text = (
        "pull_api { listen 127.0.0.1:18843; auth token env:T }\n"
        "/a { auth hmac { provider standard-webhooks; secret raw:whsec_c2VjcmV0 }\n"
        " pull { path /a } }\n"
    )
    assert validate(tmp_path, text).returncode == 0


def test_strict_secrets_checks_a_loaded_whsec_secret_like_start_up(tmp_path):
    text = (
        "pull_api { listen 127.0.0.1:18843; auth token env:T }\n"
        "/a { auth hmac { provider standard-webhooks; secret env:WH }\n"
        " pull { path /a } }\n"
    )
    env = {"WH": "whsec_!!!!"}
    assert validate(tmp_path, text, env=env).returncode == 0
    strict = validate(tmp_path, text, "--strict-secrets", env=env)
    assert strict.returncode == 1
    assert strict.stderr.splitlines()[1:] == [
        "v.hf:2:53: route /a: auth hmac provider standard-webhooks: a whsec_ secret must carry"
        " a non-empty standard base64 key"
    ]
    assert "!!!!" not in strict.stderr


MISSING_TLS = (
    "v.hf:2:2: ingress.tls: tls cert_file '/nope.pem': cannot read (No such file or directory)"
)


def test_missing_tls_files_are_a_warning_with_the_tls_block_place(tmp_path):
    text = (
        "ingress { listen 127.0.0.1:18880\n"
        " tls { cert_file /nope.pem; key_file /nope.key } }\n" + PULL
    )
    result = validate(tmp_path, text, "--format", "json")
    assert result.returncode == 0
    assert f"{MISSING_TLS} (hookaido run would not start)" in json.loads(result.stdout)["warnings"]


def test_missing_tls_files_are_refused_with_strict_secrets(tmp_path):
    text = (
        "ingress { listen 127.0.0.1:18880\n"
        " tls { cert_file /nope.pem; key_file /nope.key } }\n" + PULL
    )
    result = validate(tmp_path, text, "--strict-secrets")
    assert result.returncode == 1
    assert result.stderr.splitlines()[1:] == [MISSING_TLS]


def test_a_key_that_does_not_match_the_certificate_is_refused(tmp_path):
    ca = trustme.CA()
    one = ca.issue_cert("localhost")
    other = ca.issue_cert("localhost")
    one.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    other.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    text = (
        "ingress { listen 127.0.0.1:18880\n"
        f" tls {{ cert_file {tmp_path}/cert.pem; key_file {tmp_path}/key.pem }} }}\n" + PULL
    )
    result = validate(tmp_path, text, "--strict-secrets")
    assert result.returncode == 1
    assert result.stderr.splitlines()[1:] == [
        f"v.hf:2:2: ingress.tls: tls key_file '{tmp_path}/key.pem' does not match the"
        f" certificate in cert_file '{tmp_path}/cert.pem'"
    ]
    one.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    assert validate(tmp_path, text, "--strict-secrets").returncode == 0


def test_the_default_backend_must_be_installed(tmp_path):
    result = validate(tmp_path, PULL, env={"HOOKAIDO_LOAD_PLUGINS": ""})
    assert result.returncode == 1
    assert "queue backend 'sqlite' is not installed (installed: none)" in result.stderr


def test_localhost_and_127_0_0_1_on_one_port_are_the_same_bind_target(tmp_path):
    text = (
        "pull_api { listen 127.0.0.1:18843\n prefix /pull\n auth token env:T }\n"
        "admin_api { listen localhost:18843\n prefix /admin }\n/a { pull { path /a } }\n"
    )
    result = validate(tmp_path, text)
    assert result.returncode == 1
    assert result.stderr.splitlines()[1:] == [
        'v.hf:4:20: admin_api.listen "localhost:18843" and pull_api.listen "127.0.0.1:18843"'
        " name the same address; write it identically to share the listener"
    ]


def test_an_http_target_under_https_only_is_a_located_warning(tmp_path):
    text = 'outbound /notify { deliver "http://127.0.0.1:18150/x" {} }\n'
    result = validate(tmp_path, text, "--format", "json")
    assert result.returncode == 0
    assert (
        'v.hf:1:20: deliver "http://127.0.0.1:18150/x" is refused by defaults.egress'
        " (https_only on); every message for it will be dead-lettered as policy_denied"
    ) in json.loads(result.stdout)["warnings"]


def test_no_egress_warning_when_https_only_is_off(tmp_path):
    text = (
        "defaults { egress { https_only off } }\n"
        'outbound /notify { deliver "http://127.0.0.1:18150/x" {} }\n'
    )
    result = validate(tmp_path, text, "--format", "json")
    assert result.returncode == 0
    assert "https_only" not in result.stdout


def test_a_runtime_log_that_is_a_directory_is_a_warning_and_refused_with_strict_secrets(
    tmp_path,
):
    text = f"observability {{\n  runtime_log {{ output file; path {tmp_path} }}\n}}\n" + PULL
    problem = f'v.hf:2:30: observability.runtime_log.path "{tmp_path}": it is a directory'

    plain = validate(tmp_path, text, "--format", "json")
    strict = validate(tmp_path, text, "--strict-secrets")

    assert plain.returncode == 0
    assert f"{problem} (hookaido run would not start)" in json.loads(plain.stdout)["warnings"]
    assert strict.returncode == 1
    assert strict.stderr.splitlines()[1:] == [problem]
