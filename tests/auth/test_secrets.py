"""Secret references: how ``env:``, ``file:`` and ``raw:`` load, and how a whole config's
references load at start-up with every failure reported at once."""

from datetime import UTC, datetime

import pytest

from hookaido.config.model import (
    AdminAPIConfig,
    AuthConfig,
    Config,
    DeliverTarget,
    PullAPIConfig,
    PullConfig,
    Route,
    SecretRef,
    SecretVersion,
    SignConfig,
)
from hookaido.errors import ConfigError, Location
from hookaido.secrets import SecretError, load_all, refs_of, resolve


def at(line: int, column: int = 5) -> Location:
    return Location("Hookaidofile", line, column)


def test_env_reference_reads_the_variable():
    assert resolve(SecretRef("env", "HMAC_IN"), {"HMAC_IN": " spaced "}) == b" spaced "


@pytest.mark.parametrize(
    ("environ", "message"),
    [({}, "HMAC_IN is not set"), ({"HMAC_IN": ""}, "HMAC_IN is empty")],
)
def test_env_reference_to_unset_or_empty_variable_fails(environ, message):
    with pytest.raises(SecretError, match=message):
        resolve(SecretRef("env", "HMAC_IN"), environ)


def test_env_reference_without_a_name_fails():
    with pytest.raises(SecretError, match="name is empty"):
        resolve(SecretRef("env", ""), {})


def test_file_reference_is_trimmed(tmp_path):
    secret_file = tmp_path / "hmac.key"
    secret_file.write_bytes(b"\n  s3cr3t \n")

    assert resolve(SecretRef("file", str(secret_file))) == b"s3cr3t"


def test_file_reference_that_is_blank_fails(tmp_path):
    secret_file = tmp_path / "hmac.key"
    secret_file.write_text(" \n\t\n")

    with pytest.raises(SecretError, match="file is empty"):
        resolve(SecretRef("file", str(secret_file)))


def test_file_reference_that_cannot_be_read_fails(tmp_path):
    with pytest.raises(SecretError, match="cannot read file"):
        resolve(SecretRef("file", str(tmp_path / "missing.key")))


def test_raw_reference_is_the_value_itself():
    assert resolve(SecretRef("raw", "dev-only")) == b"dev-only"


def test_empty_raw_reference_fails_without_echoing_anything():
    with pytest.raises(SecretError) as failure:
        resolve(SecretRef("raw", ""))

    assert "raw:<redacted>" in str(failure.value)


def test_secret_error_is_a_located_config_error():
    ref = SecretRef("env", "MISSING", at(7, 14))

    with pytest.raises(ConfigError) as failure:
        resolve(ref, {})

    assert str(failure.value) == (
        "Hookaidofile:7:14: secret env:MISSING: environment variable MISSING is not set"
    )


def full_config(tmp_path) -> Config:
    key_file = tmp_path / "sign.key"
    key_file.write_text("signing")
    return Config(
        routes=(
            Route(
                "/in",
                auth=AuthConfig("hmac", {"secrets": [SecretRef("env", "IN_SECRET", at(3))]}),
                pull=PullConfig("/in", tokens=(SecretRef("raw", "route-token", at(4)),)),
            ),
            Route(
                "/out",
                auth=AuthConfig("basic", {"users": [["u", "p"]]}),
                targets=(
                    DeliverTarget(
                        "https://t.example/h",
                        "https",
                        sign=SignConfig(secrets=(SecretRef("file", str(key_file), at(9)),)),
                    ),
                ),
            ),
        ),
        pull_api=PullAPIConfig(tokens=(SecretRef("env", "PULL_TOKEN", at(1)),)),
        admin_api=AdminAPIConfig(tokens=(SecretRef("env", "ADMIN_TOKEN", at(2)),)),
        secrets=(
            SecretVersion(
                "v1", SecretRef("env", "V1_SECRET", at(12)), datetime(2026, 1, 1, tzinfo=UTC)
            ),
        ),
    )


def test_load_all_loads_every_reference_of_the_config(tmp_path):
    config = full_config(tmp_path)
    environ = {"IN_SECRET": "in", "PULL_TOKEN": "pull", "ADMIN_TOKEN": "admin", "V1_SECRET": "v1"}

    loaded = load_all(config, environ)

    assert sorted(loaded.values()) == [b"admin", b"in", b"pull", b"route-token", b"signing", b"v1"]
    assert loaded[config.routes[0].auth.options["secrets"][0]] == b"in"


def test_load_all_reports_every_failure_with_its_place(tmp_path):
    config = full_config(tmp_path)

    with pytest.raises(ConfigError) as failure:
        load_all(config, {"IN_SECRET": "in"})

    assert failure.value.problems == [
        "Hookaidofile:1:5: secret env:PULL_TOKEN: environment variable PULL_TOKEN is not set",
        "Hookaidofile:2:5: secret env:ADMIN_TOKEN: environment variable ADMIN_TOKEN is not set",
        "Hookaidofile:12:5: secret env:V1_SECRET: environment variable V1_SECRET is not set",
    ]


def test_each_reference_is_listed_once():
    ref = SecretRef("env", "SHARED", at(1))
    config = Config(routes=(), pull_api=PullAPIConfig(tokens=(ref, ref)))

    assert list(refs_of(config)) == [ref]
