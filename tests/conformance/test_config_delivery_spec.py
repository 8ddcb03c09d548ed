"""Conformance checks of config.md and delivery.md found by the spec audit."""

from datetime import UTC, datetime, timedelta

import pytest
from hookaido_deliver_http.deliverer import parse_retry_after

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("value", ["99999999999999999", "9" * 5000])
def test_an_absurdly_long_retry_after_is_a_long_hint_not_a_crash(value):
    # delivery.md §3: the hint is capped at 1 hour, so any huge value still waits >= 1 hour.
    wait = parse_retry_after(value, NOW)
    assert wait is not None and wait >= timedelta(hours=1)


@pytest.mark.parametrize("value", ["\u0663", "\uff15", "0", "000"])
def test_retry_after_delta_seconds_are_ascii_digits_greater_than_zero(value):
    assert parse_retry_after(value, NOW) is None


def test_retry_after_delta_seconds_with_leading_zeros_are_still_seconds():
    assert parse_retry_after("007", NOW) == timedelta(seconds=7)


def test_an_unrepresentable_retry_after_date_is_ignored():
    assert parse_retry_after("Mon, 01 Jan 99999 00:00:00 GMT", NOW) is None
