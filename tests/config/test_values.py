"""The Hookaidofile's value types: what each accepts, what it rejects and how it says so."""

from datetime import UTC, datetime, timedelta

import pytest

from hookaido.config.model import SecretRef
from hookaido.config.values import (
    clean_path,
    clean_prefix,
    is_http_token,
    is_secret_ref,
    parse_api_duration,
    parse_bool,
    parse_duration,
    parse_int,
    parse_ip_network,
    parse_listen,
    parse_optional_duration,
    parse_optional_int,
    parse_positive_duration,
    parse_secret_ref,
    parse_size,
    parse_timestamp,
    render_duration,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500ms", timedelta(milliseconds=500)),
        ("1.5s", timedelta(seconds=1.5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("7d", timedelta(days=7)),
        ("2m", timedelta(minutes=2)),
        ("250us", timedelta(microseconds=250)),
        ("250µs", timedelta(microseconds=250)),
        ("off", timedelta(0)),
        ("0", timedelta(0)),
    ],
)
def test_config_durations_accept_days_units_and_off(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["-1s", "5", "1.5d", "1d2h", "10 s", "abc", "", "1x"])
def test_config_durations_reject_other_forms(text):
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_optional_durations_read_off_and_zero_as_disabled():
    assert parse_optional_duration("off") is None
    assert parse_optional_duration("0") is None
    assert parse_optional_duration("30d") == timedelta(days=30)


@pytest.mark.parametrize("text", ["off", "0", "0s"])
def test_positive_durations_reject_off_and_zero(text):
    with pytest.raises(ValueError, match="must be a positive duration"):
        parse_positive_duration(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("1m30s", timedelta(seconds=90)),
        ("0", timedelta(0)),
        ("-5s", timedelta(seconds=-5)),
        ("+2h", timedelta(hours=2)),
    ],
)
def test_api_durations_are_signed_unit_groups(text, expected):
    assert parse_api_duration(text) == expected


@pytest.mark.parametrize("text", ["7d", "off", "", "10", "s", " 5s", "5s ", "\u0665s", "\uff15s"])
def test_api_durations_have_no_days_no_off_and_only_ascii_digits(text):
    with pytest.raises(ValueError, match="invalid duration"):
        parse_api_duration(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(hours=1), "1h0m0s"),
        (timedelta(minutes=5), "5m0s"),
        (timedelta(minutes=15), "15m0s"),
        (timedelta(seconds=30), "30s"),
        (timedelta(seconds=1.5), "1.5s"),
        (timedelta(milliseconds=500), "500ms"),
        (timedelta(0), "0s"),
        (timedelta(hours=168), "168h0m0s"),
        (timedelta(seconds=-90), "-1m30s"),
    ],
)
def test_durations_render_like_the_api_shows_them(value, text):
    assert render_duration(value) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2mb", 2 * 1024 * 1024),
        ("64kb", 64 * 1024),
        ("64K", 64 * 1024),
        ("1GB", 1024**3),
        ("512", 512),
        ("10b", 10),
        ("1024gb", 1024**4),
    ],
)
def test_sizes_use_powers_of_1024(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["0", "off", "1025gb", "1.5mb", "-1", "2tb", "mb"])
def test_sizes_reject_zero_overflow_and_other_forms(text):
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)


def test_sizes_may_allow_off():
    assert parse_size("off", allow_off=True) is None
    assert parse_size("0", allow_off=True) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("on", True), ("TRUE", True), ("1", True), ("Off", False), ("false", False), ("0", False)],
)
def test_bools(text, expected):
    assert parse_bool(text) is expected


def test_bool_rejects_yes():
    with pytest.raises(ValueError, match="expected on/off, true/false or 1/0"):
        parse_bool("yes")


def test_ints_check_their_range():
    assert parse_int("42", 1, 100) == 42
    with pytest.raises(ValueError, match="out of range: expected 1 to 100"):
        parse_int("0", 1, 100)
    with pytest.raises(ValueError, match="invalid integer"):
        parse_int("4.2", 1, 100)
    assert parse_optional_int("off") is None
    assert parse_optional_int("0") is None
    assert parse_optional_int("7") == 7


def test_timestamps_are_rfc3339_normalised_to_utc():
    assert parse_timestamp("2026-01-01T00:00:00Z") == datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_timestamp("2026-02-09T10:00:00.123456789Z").microsecond == 123456
    assert parse_timestamp("2026-01-01T02:00:00+02:00") == datetime(2026, 1, 1, tzinfo=UTC)
    for text in ("2026-01-01", "2026-01-01 00:00:00Z", "2026-13-01T00:00:00Z"):
        with pytest.raises(ValueError, match="invalid timestamp"):
            parse_timestamp(text)


def test_listen_addresses_and_their_bind_targets():
    assert parse_listen(":8080").bind_target == ("*", 8080)
    assert parse_listen("0.0.0.0:8080").bind_target == ("*", 8080)
    assert parse_listen("[::]:8080").bind_target == ("*", 8080)
    assert parse_listen("[::1]:9443").is_loopback
    assert parse_listen("127.0.0.2:2019").is_loopback
    assert parse_listen("localhost:2019").is_loopback
    assert not parse_listen(":2019").is_loopback
    assert not parse_listen("10.0.0.1:2019").is_loopback
    assert parse_listen("[0:0::1]:1").bind_target == ("::1", 1)
    for text in ("8080", "host:", ":99999", "::1:80", "[nothost]:80", "a b:80"):
        with pytest.raises(ValueError, match="invalid listen address"):
            parse_listen(text)


def test_secret_refs_check_syntax_only():
    assert parse_secret_ref("env:HOOK_SECRET") == SecretRef("env", "HOOK_SECRET")
    assert parse_secret_ref("vault:secret/data/hook#token").value == "secret/data/hook#token"
    assert parse_secret_ref("raw:s3cr3t").scheme == "raw"
    assert is_secret_ref("file:/run/secrets/x")
    assert not is_secret_ref("alice")
    for text in (
        "env:",
        "raw:",
        "file:",
        "vault:a/../b",
        "vault:http://x/y",
        "vault:a#",
        "token:x",
        "plain",
    ):
        with pytest.raises(ValueError, match="invalid secret reference"):
            parse_secret_ref(text)


def test_paths_are_cleaned_and_prefix_slash_means_none():
    assert clean_path("/a//b/./c/../d/") == "/a/b/d"
    assert clean_path("//x") == "/x"
    assert clean_path("/") == "/"
    assert clean_prefix("/") == ""
    assert clean_prefix("/pull/") == "/pull"
    with pytest.raises(ValueError, match="must start with '/'"):
        clean_path("webhooks")


def test_http_tokens_and_networks():
    assert is_http_token("X-Hub-Signature-256")
    assert not is_http_token("Bad Header")
    assert not is_http_token("")
    assert parse_ip_network("10.1.2.3/8") == "10.0.0.0/8"
    assert parse_ip_network("192.0.2.1") == "192.0.2.1/32"
    assert parse_ip_network("::ffff:10.0.0.1") == "10.0.0.1/32"
    with pytest.raises(ValueError, match="invalid IP or CIDR"):
        parse_ip_network("example.com")
