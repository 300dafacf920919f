"""Durations and moments given on the operator's command line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import typer

from shared.console.parsing import parse_duration, parse_moment

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT30M", timedelta(minutes=30)),
        ("PT2H", timedelta(hours=2)),
        ("P1D", timedelta(days=1)),
        ("01:30:00", timedelta(hours=1, minutes=30)),
        ("1800", timedelta(minutes=30)),
        (" 90.5 ", timedelta(seconds=90.5)),
    ],
)
def test_durations_in_iso_8601_clock_or_seconds(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["soon", "30 minutes", "", "nan", "0", "-PT5M", "PT0S"])
def test_anything_else_is_a_bad_parameter_naming_the_forms(text: str) -> None:
    with pytest.raises(typer.BadParameter) as raised:
        parse_duration(text)
    assert repr(text) in raised.value.message


def test_the_default_passes_through_the_parser_unchanged() -> None:
    assert parse_duration(timedelta(hours=1)) == timedelta(hours=1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT2H", datetime(2026, 11, 23, 10, 0, tzinfo=UTC)),
        ("3600", datetime(2026, 11, 23, 11, 0, tzinfo=UTC)),  # seconds ago, not a timestamp
        ("2026-11-20", datetime(2026, 11, 20, tzinfo=UTC)),
        ("2026-11-20T08:15", datetime(2026, 11, 20, 8, 15, tzinfo=UTC)),
        ("2026-11-20T08:15:00+01:00", datetime(2026, 11, 20, 7, 15, tzinfo=UTC)),
    ],
)
def test_moments_are_a_duration_ago_or_a_date_time_in_utc(text: str, expected: datetime) -> None:
    assert parse_moment(text, now=NOW) == expected


def test_a_moment_that_is_neither_says_both_forms() -> None:
    with pytest.raises(typer.BadParameter) as raised:
        parse_moment("last tuesday", now=NOW)
    assert "date/time" in raised.value.message and "duration" in raised.value.message
