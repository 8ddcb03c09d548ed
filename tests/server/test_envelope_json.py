"""How times leave the Pull and Admin APIs: UTC, a ``Z``, and a fraction without trailing
zeros (none when it is zero)."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from hookaido.server.envelope_json import EARLIEST_TIME, LATEST_TIME, parse_time, render_time


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 2, 9, 10, 0, 0, tzinfo=UTC), "2026-02-09T10:00:00Z"),
        (datetime(2026, 2, 9, 10, 0, 0, 120000, tzinfo=UTC), "2026-02-09T10:00:00.12Z"),
        (datetime(2026, 2, 9, 10, 0, 0, 1, tzinfo=UTC), "2026-02-09T10:00:00.000001Z"),
        (datetime(2026, 2, 9, 10, 0, 0, 999999, tzinfo=UTC), "2026-02-09T10:00:00.999999Z"),
        (datetime(2026, 2, 9, 10, 0, 0, 500000), "2026-02-09T10:00:00.5Z"),  # naive is UTC
        (
            datetime(2026, 2, 9, 12, 30, 0, 100, tzinfo=timezone(timedelta(hours=2, minutes=30))),
            "2026-02-09T10:00:00.0001Z",
        ),
        (EARLIEST_TIME, "1678-01-01T00:00:00Z"),
        (LATEST_TIME, "2261-12-31T23:59:59.999999Z"),
    ],
)
def test_times_render_in_utc_with_a_trimmed_fraction(moment, text):
    assert render_time(moment) == text


def test_a_rendered_time_parses_back_to_the_same_moment():
    moment = datetime(2031, 7, 4, 23, 59, 58, 10, tzinfo=UTC)

    assert parse_time(render_time(moment)) == moment
