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


# deployment-modes.md: the push, hybrid and outbound examples are complete configs that
# real users copy; they must validate as written (secrets given through the environment).
DEPLOYMENT_EXAMPLES = {
    "push": """
/webhooks/github {
  deliver "https://ci.internal/build" {
    retry exponential max 8 base 2s cap 2m jitter 0.2
    timeout 10s
  }
}
""",
    "hybrid": """
pull_api {
  auth token env:HOOKAIDO_PULL_TOKEN
}

# Pull mode: workers consume at their own pace
/webhooks/github {
  pull { path /pull/github }
}

# Push mode: deliver immediately with retry
/webhooks/stripe {
  deliver "https://billing.internal/stripe" {
    timeout 10s
  }
}
""",
    "outbound": """
outbound /notifications/slack {
  deliver "https://hooks.slack.com/services/..." {
    timeout 5s
    sign hmac env:SLACK_SIGNING_SECRET
  }
}
""",
}


@pytest.mark.parametrize("name", sorted(DEPLOYMENT_EXAMPLES))
def test_deployment_mode_examples_validate_as_written(tmp_path, name):
    from hookaido.config.cli import validate_file

    path = tmp_path / "Hookaidofile"
    path.write_text(DEPLOYMENT_EXAMPLES[name], encoding="utf-8")
    environ = {"HOOKAIDO_PULL_TOKEN": "t", "SLACK_SIGNING_SECRET": "s"}
    errors, _warnings = validate_file(str(path), strict_secrets=True, environ=environ)
    assert errors == []
