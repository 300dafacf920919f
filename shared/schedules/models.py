"""Window and batch declarations of a hosted model, as the hosted-models file states them.

```toml
[[models.contracts.windows]]            # one or more business-hours windows
name = "office"                         # optional; default window-1, window-2, ...
time_zone = "Europe/Berlin"             # IANA name (zoneinfo, with tzdata)
weekdays = ["mon", "tue", "wed", "thu", "fri"]   # of the opening day
opens = "08:00"                         # local wall-clock time
closes = "18:00"                        # earlier than opens: closes the next day
holiday_country = "DE"                  # optional: public holidays close the window
holiday_subdivision = "BY"              # optional: the state/province's holidays too
closed_dates = [2026-12-24, 2026-12-31] # optional: extra closed opening days
lead_seconds = 900                      # provisioning starts this long before opening

[[models.contracts.batches]]            # scheduled batch runs
name = "nightly"
time_zone = "Europe/Berlin"
weekdays = ["mon", "tue", "wed", "thu", "fri"]
starts = "02:00"
deadline = "PT4H"                       # a duration after the start (ISO 8601 or seconds)
input_prefix = "contracts/nightly/"     # in BATCH_CONTAINER
output_prefix = "contracts/nightly/"    # in BATCH_OUTPUT_CONTAINER
```

The deadline is a duration after the start, not a local time: a duration means the same
thing across midnight and daylight-saving changes, and a run can never end before it starts.
Everything is validated when the settings load (see `shared/catalog.py`): an unknown time
zone, country or subdivision, no weekday, opening equal to closing or a bad date is reported
with the model, the window and the field. Pure: no I/O.
"""

from __future__ import annotations

import re
from datetime import date, time, timedelta
from functools import cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import holidays
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shared.names import output_prefix_problem, prefix_problem

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Names go into hold ids and batch run ids (blob names, queue messages): keep them plain.
_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")
# A lead or a batch deadline longer than a week is a mistake, not a schedule.
LONGEST_SPAN = timedelta(days=7)


@cache
def supported_holiday_calendars() -> dict[str, tuple[str, ...]]:
    """Countries the holidays package knows (ISO 3166-1 alpha-2) and their subdivisions."""
    return {
        country: tuple(subdivisions)
        for country, subdivisions in holidays.list_supported_countries().items()
    }


class CalendarRule(BaseModel):
    """On which local days something happens: weekdays, minus public holidays and closed dates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    time_zone: str
    weekdays: tuple[Weekday, ...]
    holiday_country: str | None = None
    holiday_subdivision: str | None = None
    closed_dates: tuple[date, ...] = ()

    @field_validator("name")
    @classmethod
    def _name_is_plain(cls, name: str) -> str:
        if not _NAME.fullmatch(name):
            raise ValueError(f"{name!r} must be 1-40 letters, digits, '_' or '-'")
        return name

    @field_validator("time_zone")
    @classmethod
    def _time_zone_is_known(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            close = sorted(z for z in available_timezones() if z.lower() == name.lower())
            hint = f"; did you mean {close[0]!r}?" if close else " (e.g. 'Europe/Berlin')"
            raise ValueError(f"{name!r} is not an IANA time zone{hint}") from None
        return name

    @field_validator("weekdays", mode="before")
    @classmethod
    def _weekdays_lowercase(cls, value: object) -> object:
        if isinstance(value, list | tuple) and not value:
            raise ValueError(f"no weekday given: list at least one of {', '.join(WEEKDAYS)}")
        if isinstance(value, list | tuple):
            return tuple(v.lower() if isinstance(v, str) else v for v in value)
        return value

    @field_validator("holiday_country")
    @classmethod
    def _country_is_known(cls, country: str | None) -> str | None:
        if country is not None and country.upper() not in supported_holiday_calendars():
            raise ValueError(
                f"{country!r} is not a country the holidays package knows; use an ISO 3166-1 "
                "alpha-2 code such as 'DE', 'US' or 'GB'"
            )
        return country.upper() if country is not None else None

    @field_validator("holiday_subdivision")
    @classmethod
    def _subdivision_is_known(cls, subdivision: str | None, info: ValidationInfo) -> str | None:
        country = info.data.get("holiday_country")
        if subdivision is None or country is None:
            return subdivision  # without a (valid) country, the rule below or its own says why
        known = supported_holiday_calendars()[country]
        spelled = {s.upper(): s for s in known}.get(subdivision.upper())
        if spelled is None:
            listed = ", ".join(known) or "(none)"
            raise ValueError(
                f"holiday_subdivision {subdivision!r} is not a subdivision of {country}; "
                f"they are: {listed}"
            )
        # The holidays package knows a subdivision by its own spelling only ('BY', not 'by'):
        # keep that one, so the calendar never meets a name it refuses.
        return spelled

    @model_validator(mode="after")
    def _subdivision_has_country(self) -> CalendarRule:
        if self.holiday_subdivision is not None and self.holiday_country is None:
            raise ValueError("holiday_subdivision needs holiday_country too")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def weekday_numbers(self) -> frozenset[int]:
        """The weekdays as `date.weekday()` numbers (Monday is 0)."""
        return frozenset(WEEKDAYS.index(day) for day in self.weekdays)


def _local_time(value: time, field: str) -> time:
    if value.tzinfo is not None:
        raise ValueError(f"{field} is a local wall-clock time; leave out the UTC offset")
    return value


class WindowSettings(CalendarRule):
    """A business-hours window: the deployment serves from `opens` to `closes`, local time."""

    opens: time
    closes: time
    lead_seconds: float = Field(600, ge=0, le=LONGEST_SPAN.total_seconds())

    @field_validator("opens", "closes")
    @classmethod
    def _is_local(cls, value: time) -> time:
        return _local_time(value, "a window's opens and closes")

    @model_validator(mode="after")
    def _has_length(self) -> WindowSettings:
        if self.opens == self.closes:
            raise ValueError(
                f"opens and closes are both {self.opens:%H:%M}: a window needs a length (a "
                "closing time earlier than the opening time closes the next day)"
            )
        return self

    @property
    def lead(self) -> timedelta:
        return timedelta(seconds=self.lead_seconds)

    @property
    def nominal_length(self) -> timedelta:
        """Opening to closing on a day without a clock change."""
        day = date(2000, 1, 3)
        opened = _on(day, self.opens)
        closed = _on(day if self.closes > self.opens else day + timedelta(days=1), self.closes)
        return closed - opened


class BatchSchedule(CalendarRule):
    """A scheduled batch run: starts at `starts` local time, must end `deadline` later."""

    starts: time
    deadline: timedelta
    input_prefix: str = Field(min_length=1)
    output_prefix: str = Field(min_length=1)

    @field_validator("starts")
    @classmethod
    def _is_local(cls, value: time) -> time:
        return _local_time(value, "a batch's starts")

    @field_validator("input_prefix", "output_prefix")
    @classmethod
    def _usable_prefix(cls, prefix: str, info: ValidationInfo) -> str:
        # The same rules as a batch started over HTTP: a declared run must be startable.
        problem = prefix_problem(str(info.field_name), prefix)
        if problem is None and info.field_name == "output_prefix":
            problem = output_prefix_problem(prefix)
        if problem is not None:
            raise ValueError(problem)
        return prefix

    @field_validator("deadline")
    @classmethod
    def _deadline_in_range(cls, deadline: timedelta) -> timedelta:
        if not timedelta(0) < deadline <= LONGEST_SPAN:
            raise ValueError(
                "the deadline is a duration after the start, more than 0 and at most 7 days "
                "(e.g. 'PT4H' or 14400)"
            )
        return deadline


def _on(day: date, at: time) -> timedelta:
    return timedelta(days=day.toordinal(), hours=at.hour, minutes=at.minute, seconds=at.second)
