"""When windows and batches happen: local calendars turned into UTC instants. Pure.

Every function takes the instant it is asked about (aware, any zone) and answers in aware UTC
datetimes; nothing here reads the clock.

Rules, all applied to the *opening* (or starting) day in the rule's time zone:

- the day's weekday must be one of `weekdays`, and the day must be neither a public holiday
  of `holiday_country` / `holiday_subdivision` nor one of `closed_dates`. A window crossing
  midnight (closing earlier than opening) belongs to the day it opens: a Friday 22:00-06:00
  window runs into Saturday, and a holiday on that Saturday does not cut it short.
- A local time that does not exist (the hour skipped when clocks go forward, e.g. 02:30 in
  Berlin on the last Sunday of March) happens at the first instant that exists after it: the
  moment the clocks jump (03:00 local). A window opening then opens at 03:00; a window
  opening and closing inside the skipped hour has no length that day and does not happen.
- A local time that happens twice (the hour repeated when clocks go back) means its first
  occurrence (`fold=0`, still on summer time).
- A window's length in hours follows the wall clock: 08:00-18:00 lasts 10 hours every day, and
  a 22:00-06:00 window over a clock change lasts 7 or 9 hours.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from shared.schedules.models import BatchSchedule, CalendarRule, WindowSettings

# How far ahead `next_*` look for a day the rule allows before giving up (a rule whose every
# weekday is closed, e.g. only Christmas Day as weekday and date).
SEARCH_DAYS = 400


@dataclass(frozen=True)
class Occurrence:
    """One occurrence of a window (open to close) or a batch (start to deadline), in UTC."""

    name: str
    local_day: date  # the opening (starting) day in the rule's time zone
    opens: datetime
    closes: datetime

    def covers(self, now: datetime) -> bool:
        return self.opens <= now < self.closes


@lru_cache(maxsize=256)
def _holiday_dates(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    # One year at a time, cached: the holidays object fills itself lazily on lookup, which is
    # not safe to share between the function host's threads.
    calendar = holidays.country_holidays(country, subdiv=subdivision, years=year)
    return frozenset(calendar.keys())


def is_open_day(rule: CalendarRule, day: date) -> bool:
    """Whether the rule allows something to open (start) on this local day."""
    if day.weekday() not in rule.weekday_numbers() or day in rule.closed_dates:
        return False
    if rule.holiday_country is not None:
        return day not in _holiday_dates(rule.holiday_country, rule.holiday_subdivision, day.year)
    return True


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a local wall-clock time (see the module's rules for DST)."""
    wall = datetime.combine(day, at)
    first = wall.replace(tzinfo=zone, fold=0)
    as_utc = first.astimezone(UTC)
    if as_utc.astimezone(zone).replace(tzinfo=None) == wall:
        return as_utc  # exists (the first of two, when repeated)
    # Skipped by a clock going forward. fold=1 reads it with the offset after the jump (an
    # instant before the jump) and fold=0 with the one before it (after the jump): the jump
    # lies between them. Find it to the second; a jump's instant is the first that exists.
    before = int(wall.replace(tzinfo=zone, fold=1).timestamp())
    after = int(as_utc.timestamp())
    offset_before = datetime.fromtimestamp(before, zone).utcoffset()
    while after - before > 1:  # clock changes happen on whole seconds
        middle = (before + after) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == offset_before:
            before = middle
        else:
            after = middle
    return datetime.fromtimestamp(after, UTC)


# Pure and asked again on every reconciler tick for the same days: cached (a year of days
# for a few windows; settings objects are frozen and hashable).
@lru_cache(maxsize=4096)
def window_on(window: WindowSettings, day: date) -> Occurrence | None:
    """The window's occurrence opening on local `day`, or None if it does not open then."""
    if not is_open_day(window, day):
        return None
    zone = window.zone
    closing_day = day if window.closes > window.opens else day + timedelta(days=1)
    opens = local_instant(day, window.opens, zone)
    closes = local_instant(closing_day, window.closes, zone)
    if closes <= opens:
        return None  # both ends in a skipped hour: nothing left of it that day
    return Occurrence(window.name, day, opens, closes)


# The years a window's longest real length is measured over: four, a leap year among them,
# under the time-zone rules tzdata states for them (fixed, so loading the settings stays pure).
_LENGTH_YEARS = (2024, 2028)


@lru_cache(maxsize=256)
def longest_length(window: WindowSettings) -> timedelta:
    """The longest real time from opening to closing on any day: the wall-clock length, an
    hour (or the zone's change) longer only when a clock change falls inside the window."""
    zone = window.zone
    day = date(_LENGTH_YEARS[0], 1, 1)
    last = date(_LENGTH_YEARS[1], 1, 1)
    crosses = window.closes <= window.opens
    longest = timedelta(0)
    while day < last:
        opens = local_instant(day, window.opens, zone)
        closes = local_instant(day + timedelta(days=1) if crosses else day, window.closes, zone)
        longest = max(longest, closes - opens)
        day += timedelta(days=1)
    return longest


@lru_cache(maxsize=4096)
def batch_on(batch: BatchSchedule, day: date) -> Occurrence | None:
    """The batch's run starting on local `day` (start to deadline), or None."""
    if not is_open_day(batch, day):
        return None
    starts = local_instant(day, batch.starts, batch.zone)
    return Occurrence(batch.name, day, starts, starts + batch.deadline)


def _local_day(rule: CalendarRule, now: datetime) -> date:
    return now.astimezone(rule.zone).date()


def _occurrences_from(
    rule: WindowSettings | BatchSchedule, first_day: date, days: int
) -> Iterator[Occurrence]:
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        found = window_on(rule, day) if isinstance(rule, WindowSettings) else batch_on(rule, day)
        if found is not None:
            yield found


def occurrences_around(
    rule: WindowSettings | BatchSchedule, now: datetime, *, reach: timedelta
) -> list[Occurrence]:
    """Every occurrence that may be relevant within `reach` of `now`, either side.

    Opening days from `reach` (plus the longest occurrence, a week) before to `reach` after
    now: enough to find one that opened days ago and is still open, or one whose lead time
    has begun.
    """
    longest = timedelta(days=8)
    first = _local_day(rule, now - reach - longest)
    last = _local_day(rule, now + reach) + timedelta(days=1)
    return list(_occurrences_between(rule, first, (last - first).days + 1))


@lru_cache(maxsize=1024)
def _occurrences_between(
    rule: WindowSettings | BatchSchedule, first_day: date, days: int
) -> tuple[Occurrence, ...]:
    # The same days for every tick of a day (the reconciler's every minute): cached.
    return tuple(_occurrences_from(rule, first_day, days))


def current_window(window: WindowSettings, now: datetime) -> Occurrence | None:
    """The occurrence open at `now`, if any (the earliest, should two overlap)."""
    return next(
        (o for o in occurrences_around(window, now, reach=timedelta(0)) if o.covers(now)), None
    )


def next_occurrences(
    rule: WindowSettings | BatchSchedule, now: datetime, count: int
) -> list[Occurrence]:
    """The occurrence under way at `now` (if any) and the following ones, `count` in all."""
    first = _local_day(rule, now) - timedelta(days=8)
    found: list[Occurrence] = []
    for occurrence in _occurrences_from(rule, first, SEARCH_DAYS + 8):
        if occurrence.closes > now:
            found.append(occurrence)
            if len(found) == count:
                break
    return found


def utc(moment: datetime) -> datetime:
    """An aware instant in UTC; a naive one is refused (it would silently mean local time)."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment.isoformat()} has no time zone; schedules need aware instants")
    return moment.astimezone(UTC)
