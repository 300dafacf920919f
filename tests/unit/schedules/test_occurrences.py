"""Occurrence math: local calendars to UTC across daylight saving, midnight and holidays.

Dates are chosen for the clock changes of 2026: Europe/Berlin springs forward on Sunday
29 March (02:00 -> 03:00) and falls back on Sunday 25 October (03:00 -> 02:00);
America/New_York springs forward on Sunday 8 March (02:00 -> 03:00) and falls back on Sunday
1 November (02:00 -> 01:00).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from shared.schedules.models import WEEKDAYS, BatchSchedule, WindowSettings
from shared.schedules.occurrences import (
    batch_on,
    current_window,
    is_open_day,
    next_occurrences,
    utc,
    window_on,
)

WORKDAYS = ("mon", "tue", "wed", "thu", "fri")


def window(opens: str, closes: str, zone: str = "Europe/Berlin", **fields: Any) -> WindowSettings:
    values: dict[str, Any] = {
        "name": "office",
        "time_zone": zone,
        "weekdays": WEEKDAYS,
        "opens": opens,
        "closes": closes,
        **fields,
    }
    return WindowSettings.model_validate(values)


def z(text: str) -> datetime:
    """A UTC instant from 'YYYY-MM-DD HH:MM[:SS]'."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def span(found: Any) -> tuple[datetime, datetime]:
    assert found is not None
    return found.opens, found.closes


# --- Europe/Berlin ---------------------------------------------------------------------------


def test_berlin_business_hours_move_by_an_hour_in_utc_over_the_spring_weekend() -> None:
    office = window("08:00", "18:00", weekdays=WORKDAYS)
    found = next_occurrences(office, z("2026-03-27 12:00"), 2)
    assert [span(o) for o in found] == [
        (z("2026-03-27 07:00"), z("2026-03-27 17:00")),  # Friday, CET (+1), under way
        (z("2026-03-30 06:00"), z("2026-03-30 16:00")),  # Monday, CEST (+2)
    ]


def test_berlin_business_hours_over_the_autumn_weekend() -> None:
    office = window("08:00", "18:00", weekdays=WORKDAYS)
    # Friday's window (CEST) closed at 16:00Z; the next ones are on CET.
    found = next_occurrences(office, z("2026-10-23 17:00"), 2)
    assert [span(o) for o in found] == [
        (z("2026-10-26 07:00"), z("2026-10-26 17:00")),
        (z("2026-10-27 07:00"), z("2026-10-27 17:00")),
    ]
    assert span(window_on(office, date(2026, 10, 23))) == (
        z("2026-10-23 06:00"),
        z("2026-10-23 16:00"),
    )


def test_an_opening_in_the_skipped_hour_happens_when_the_clocks_jump() -> None:
    early = window("02:30", "06:00")
    # 02:30 does not exist on 29 March: the first instant after it is the jump, 03:00 CEST.
    assert span(window_on(early, date(2026, 3, 29))) == (
        z("2026-03-29 01:00"),
        z("2026-03-29 04:00"),
    )
    assert span(window_on(early, date(2026, 3, 28))) == (
        z("2026-03-28 01:30"),
        z("2026-03-28 05:00"),
    )


def test_a_closing_in_the_skipped_hour_closes_when_the_clocks_jump() -> None:
    night = window("22:00", "02:30")
    assert span(window_on(night, date(2026, 3, 28))) == (
        z("2026-03-28 21:00"),
        z("2026-03-29 01:00"),
    )


def test_a_window_entirely_inside_the_skipped_hour_does_not_happen_that_day() -> None:
    gap = window("02:10", "02:50")
    assert window_on(gap, date(2026, 3, 29)) is None
    found = next_occurrences(gap, z("2026-03-28 12:00"), 1)
    assert span(found[0]) == (z("2026-03-30 00:10"), z("2026-03-30 00:50"))


def test_a_time_in_the_repeated_hour_means_its_first_occurrence() -> None:
    repeated = window("02:30", "03:30")
    # 02:30 happens at 00:30Z (CEST) and again at 01:30Z (CET): the first counts. 03:30 CET.
    opens, closes = span(window_on(repeated, date(2026, 10, 25)))
    assert (opens, closes) == (z("2026-10-25 00:30"), z("2026-10-25 02:30"))
    assert closes - opens == timedelta(hours=2), "the repeated hour is inside the window"


# --- America/New_York ------------------------------------------------------------------------


def test_new_york_night_window_is_an_hour_shorter_over_spring_forward() -> None:
    night = window("22:00", "06:00", "America/New_York")
    opens, closes = span(window_on(night, date(2026, 3, 7)))
    assert (opens, closes) == (z("2026-03-08 03:00"), z("2026-03-08 10:00"))
    assert closes - opens == timedelta(hours=7)


def test_new_york_night_window_is_an_hour_longer_over_fall_back() -> None:
    night = window("22:00", "06:00", "America/New_York")
    opens, closes = span(window_on(night, date(2026, 10, 31)))
    assert (opens, closes) == (z("2026-11-01 02:00"), z("2026-11-01 11:00"))
    assert closes - opens == timedelta(hours=9)


def test_new_york_opening_at_the_skipped_two_oclock_and_closing_in_the_repeated_hour() -> None:
    skipped = window("02:15", "08:00", "America/New_York")
    assert span(window_on(skipped, date(2026, 3, 8)))[0] == z("2026-03-08 07:00")  # 03:00 EDT
    evening = window("20:00", "01:30", "America/New_York")
    # 01:30 on 1 November happens twice: the first, still EDT (-4), is 05:30Z.
    assert span(window_on(evening, date(2026, 10, 31))) == (
        z("2026-11-01 00:00"),
        z("2026-11-01 05:30"),
    )


# --- midnight, weekdays, holidays, closed dates ---------------------------------------------


def test_a_window_crossing_midnight_belongs_to_its_opening_day() -> None:
    friday_night = window("22:00", "06:00", weekdays=("fri",))
    # Saturday 03:00 in Berlin is inside Friday's window; Saturday evening opens nothing.
    current = current_window(friday_night, z("2026-06-13 01:00"))
    assert current is not None and current.local_day == date(2026, 6, 12)
    assert current_window(friday_night, z("2026-06-13 21:00")) is None
    assert span(current) == (z("2026-06-12 20:00"), z("2026-06-13 04:00"))


def test_public_holidays_follow_the_subdivision() -> None:
    bavaria = window(
        "08:00", "18:00", weekdays=WORKDAYS, holiday_country="DE", holiday_subdivision="BY"
    )
    berlin = window(
        "08:00", "18:00", weekdays=WORKDAYS, holiday_country="DE", holiday_subdivision="BE"
    )
    epiphany = date(2027, 1, 6)  # a Wednesday: a holiday in Bavaria, not in Berlin
    assert window_on(bavaria, epiphany) is None
    assert window_on(berlin, epiphany) is not None
    womens_day = date(2027, 3, 8)  # a Monday: a holiday in Berlin only
    assert window_on(berlin, womens_day) is None and window_on(bavaria, womens_day) is not None
    after_tuesday = next_occurrences(bavaria, z("2027-01-05 18:00"), 1)[0]
    assert after_tuesday.local_day == date(2027, 1, 7), "Epiphany skipped"


def test_a_subdivision_written_in_lower_case_follows_its_calendar() -> None:
    # As written in a hosted-models file: validated, then asked about Epiphany, which once
    # ended in the holidays package's NotImplementedError ('DE' has no subdivision 'by').
    bavaria = window(
        "08:00", "18:00", weekdays=WORKDAYS, holiday_country="de", holiday_subdivision="by"
    )
    assert window_on(bavaria, date(2026, 1, 6)) is None
    assert window_on(bavaria, date(2026, 1, 7)) is not None


def test_us_state_holidays() -> None:
    boston = window(
        "09:00",
        "17:00",
        "America/New_York",
        weekdays=WORKDAYS,
        holiday_country="US",
        holiday_subdivision="MA",
    )
    new_york = boston.model_copy(update={"holiday_subdivision": "NY"})
    patriots_day = date(2027, 4, 19)
    assert not is_open_day(boston, patriots_day)
    assert is_open_day(new_york, patriots_day)
    assert not is_open_day(new_york, date(2027, 7, 5)), "Independence Day observed, everywhere"


def test_closed_dates_skip_the_opening_day_only() -> None:
    night = window("22:00", "06:00", closed_dates=[date(2026, 12, 24)])
    assert window_on(night, date(2026, 12, 24)) is None
    # The 23rd's window runs into the 24th: the closed date does not cut it short.
    assert span(window_on(night, date(2026, 12, 23)))[1] == z("2026-12-24 05:00")


def test_batch_runs_start_in_local_time_and_end_a_duration_later() -> None:
    batch = BatchSchedule.model_validate(
        {
            "name": "nightly",
            "time_zone": "Europe/Berlin",
            "weekdays": WEEKDAYS,
            "starts": "02:30",
            "deadline": "PT4H",
            "input_prefix": "in/",
            "output_prefix": "out/",
        }
    )
    # On the spring-forward night the start moves to the jump; the deadline stays 4 h after.
    assert span(batch_on(batch, date(2026, 3, 29))) == (
        z("2026-03-29 01:00"),
        z("2026-03-29 05:00"),
    )
    assert span(batch_on(batch, date(2026, 10, 25))) == (
        z("2026-10-25 00:30"),
        z("2026-10-25 04:30"),
    )


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        utc(datetime(2026, 1, 1, 8, 0))
    assert utc(datetime(2026, 1, 1, 9, 0, tzinfo=window("08:00", "09:00").zone)) == z(
        "2026-01-01 08:00"
    )
    assert time(8) == window("08:00", "09:00").opens
