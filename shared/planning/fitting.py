"""Business-hours windows fitted to a trace's weekly pattern, as TOML a user can paste. Pure.

The week is cut into hours of local time (`time_zone`). An hour is busy when, on average over
the trace's weeks, the deployment would be serving in it for at least `busy_minutes` (served
in arrival order at the token rate, as the clairvoyant bound does) or documents arrive in it
at least `busy_arrivals` times: then keeping the deployment up through that hour costs less
than creating it again and again. Busy hours of one day are joined into a window, bridging
gaps of up to `bridge_hours`; days with the same window share one declaration.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from shared.planning.baselines import finishes
from shared.planning.trace import TraceDocument
from shared.schedules.models import WEEKDAYS, WindowSettings

HOURS_PER_WEEK = 7 * 24


def busy_hours(
    documents: Sequence[TraceDocument],
    *,
    weeks: float,
    tokens_per_second: float,
    time_zone: ZoneInfo,
    busy_minutes: float = 20.0,
    busy_arrivals: float = 3.0,
) -> list[bool]:
    """For each hour of the local week (Monday 00:00 first), whether it is busy."""
    serving = [0.0] * HOURS_PER_WEEK
    arrivals = [0.0] * HOURS_PER_WEEK
    for document, finish in zip(documents, finishes(documents, tokens_per_second), strict=True):
        arrivals[_hour_of_week(document.at, time_zone)] += 1
        moment = document.at
        while moment < finish:
            hour_end = (moment // 3600 + 1) * 3600
            span = min(finish, hour_end) - moment
            serving[_hour_of_week(moment, time_zone)] += span
            moment = hour_end
    scale = max(weeks, 1.0)
    return [
        serving[h] / scale >= busy_minutes * 60 or arrivals[h] / scale >= busy_arrivals
        for h in range(HOURS_PER_WEEK)
    ]


def _hour_of_week(epoch: float, zone: ZoneInfo) -> int:
    local = datetime.fromtimestamp(epoch, UTC).astimezone(zone)
    return local.weekday() * 24 + local.hour


def fit_windows(
    documents: Sequence[TraceDocument],
    *,
    weeks: float,
    tokens_per_second: float,
    time_zone: str = "UTC",
    bridge_hours: int = 1,
    lead_seconds: float = 600.0,
) -> tuple[WindowSettings, ...]:
    """Windows covering the trace's busy hours; empty when it has no weekly pattern."""
    zone = ZoneInfo(time_zone)
    busy = busy_hours(documents, weeks=weeks, tokens_per_second=tokens_per_second, time_zone=zone)
    by_span: dict[tuple[int, int], list[int]] = defaultdict(list)
    for day in range(7):
        for opens, closes in _day_spans(busy[day * 24 : day * 24 + 24], bridge_hours):
            by_span[(opens, closes)].append(day)
    windows = []
    for number, ((opens, closes), days) in enumerate(sorted(by_span.items()), start=1):
        windows.append(
            WindowSettings(
                name=f"fitted-{number}",
                time_zone=time_zone,
                weekdays=tuple(WEEKDAYS[day] for day in days),
                opens=time(opens),
                # A day busy from midnight to midnight: the window must close before opening.
                closes=time(23, 59) if (opens, closes) == (0, 24) else time(closes % 24),
                lead_seconds=lead_seconds,
            )
        )
    return tuple(windows)


def _day_spans(hours: list[bool], bridge_hours: int) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for hour, is_busy in enumerate(hours):
        if not is_busy:
            continue
        if spans and hour - spans[-1][1] <= bridge_hours:
            spans[-1] = (spans[-1][0], hour + 1)
        else:
            spans.append((hour, hour + 1))
    return spans


def windows_toml(windows: tuple[WindowSettings, ...], model: str) -> str:
    """The windows as `[[models.<model>.windows]]` tables for the hosted-models file."""
    blocks = []
    for window in windows:
        days = ", ".join(f'"{day}"' for day in window.weekdays)
        blocks.append(
            f"[[models.{model}.windows]]\n"
            f'name = "{window.name}"\n'
            f'time_zone = "{window.time_zone}"\n'
            f"weekdays = [{days}]\n"
            f'opens = "{window.opens:%H:%M}"\n'
            f'closes = "{window.closes:%H:%M}"\n'
            f"lead_seconds = {window.lead_seconds:g}\n"
        )
    return "\n".join(blocks)
