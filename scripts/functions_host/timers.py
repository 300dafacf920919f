"""Timer triggers: schedules, firing, and runs on demand.

Owns: 6-field NCRONTAB (via croniter) and `hh:mm:ss` TimeSpan schedules, in UTC or
`WEBSITE_TIME_ZONE`; `runOnStartup`; `past_due` when a firing comes late (a suspended
laptop, a clock change); no overlapping invocations of one timer; and running a timer now for
the admin API and `LocalFunctionsHost.fire_timer`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import re
import zoneinfo
from collections.abc import Mapping

import azure.functions as func
from croniter import croniter

from scripts.functions_host.errors import FunctionsHostError
from scripts.functions_host.indexing import IndexedFunction, resolve_setting_expressions
from scripts.functions_host.invocation import HOST_REASON, InvocationRecord
from scripts.functions_host.triggers import HostContext, TriggerKind

logger = logging.getLogger(__name__)

TIME_ZONE_SETTING = "WEBSITE_TIME_ZONE"
PAST_DUE_TOLERANCE = dt.timedelta(seconds=1)

_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})$")


class TimerSchedule:
    """A timer trigger's schedule: 6-field NCRONTAB or a TimeSpan interval, in one time zone."""

    def __init__(self, expression: str, tz: dt.tzinfo = dt.UTC) -> None:
        self.expression = expression.strip()
        self.tz = tz
        self.interval: dt.timedelta | None = None
        span = _TIMESPAN.match(self.expression)
        if span:
            days, hours, minutes, seconds = (int(g or 0) for g in span.groups())
            self.interval = dt.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
            if self.interval <= dt.timedelta(0):
                raise FunctionsHostError(f"timer interval {expression!r} must be positive")
            return
        fields = self.expression.split()
        if len(fields) != 6 or not croniter.is_valid(self.expression, second_at_beginning=True):
            raise FunctionsHostError(
                f"timer schedule {expression!r} is neither a 6-field NCRONTAB expression "
                "('{second} {minute} {hour} {day} {month} {day-of-week}') nor hh:mm:ss"
            )

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        """The first occurrence strictly after `moment` (aware), in UTC."""
        if self.interval is not None:
            return (moment + self.interval).astimezone(dt.UTC)
        local = moment.astimezone(self.tz)
        occurrence = croniter(self.expression, local, second_at_beginning=True).get_next(
            dt.datetime
        )
        return occurrence.astimezone(dt.UTC)


def timer_time_zone(environ: Mapping[str, str]) -> dt.tzinfo:
    """The zone timers run in: WEBSITE_TIME_ZONE (an IANA name) if set, else UTC."""
    name = environ.get(TIME_ZONE_SETTING, "").strip()
    if not name:
        return dt.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise FunctionsHostError(
            f"{TIME_ZONE_SETTING}={name!r} is not an IANA time zone name "
            "(Linux plans use names like Europe/London, not Windows names)"
        ) from exc


@dataclasses.dataclass
class _Timer:
    function: IndexedFunction
    schedule: TimerSchedule
    run_on_startup: bool
    running: bool = False
    last: dt.datetime | None = None


class TimerTriggers(TriggerKind):
    """`timerTrigger` functions, each fired by its own schedule task."""

    on_demand_label = "timer"

    def __init__(self, context: HostContext) -> None:
        super().__init__(context)
        # Read even when the app has no timers, so a bad zone name is reported either way.
        self._tz = timer_time_zone(context.environ)
        self._timers: dict[str, _Timer] = {}
        self._schedules: list[asyncio.Task[None]] = []

    def add(self, function: IndexedFunction) -> None:
        where = f"schedule of timer function '{function.name}'"
        expression = resolve_setting_expressions(
            str(function.trigger.get("schedule", "")), self.context.environ, where=where
        )
        try:
            schedule = TimerSchedule(expression, self._tz)
        except FunctionsHostError as exc:
            raise FunctionsHostError(f"{where}: {exc}") from exc
        run_on_startup = bool(function.trigger.get("runOnStartup"))
        self._timers[function.name] = _Timer(function, schedule, run_on_startup)

    def describe(self) -> list[str]:
        return [
            f"{timer.function.name}: timerTrigger ({timer.schedule.expression}"
            f"{', runOnStartup' if timer.run_on_startup else ''})"
            for timer in self._timers.values()
        ]

    async def start(self) -> None:
        for timer in self._timers.values():
            self._schedules.append(
                asyncio.create_task(self._run_schedule(timer), name=f"timer:{timer.function.name}")
            )

    async def stop(self) -> None:
        for task in self._schedules:
            task.cancel()
        await asyncio.gather(*self._schedules, return_exceptions=True)

    def run_now(self, name: str) -> bool:
        timer = self._timers.get(name)
        if timer is None:
            return False
        self._start_invocation(timer, self.context.clock(), False, HOST_REASON)
        return True

    async def fire(self, name: str, *, past_due: bool = False) -> InvocationRecord | None:
        """Run a timer function now and wait for it; None if it was still running (skipped)."""
        timer = self._timers.get(name)
        if timer is None:
            raise KeyError(f"no timer function named {name!r}")
        task = self._start_invocation(timer, self.context.clock(), past_due, HOST_REASON)
        return None if task is None else await task

    def _start_invocation(
        self, timer: _Timer, scheduled: dt.datetime, past_due: bool, reason: str
    ) -> asyncio.Task[InvocationRecord] | None:
        name = timer.function.name
        if timer.running:
            logger.warning(
                "Timer '%s' is still running; skipping the occurrence at %s",
                name,
                scheduled.isoformat(),
            )
            return None
        timer.running = True
        status = {
            "Last": (timer.last or dt.datetime.min.replace(tzinfo=dt.UTC)).isoformat(),
            "Next": timer.schedule.next_after(scheduled).isoformat(),
            "LastUpdated": self.context.clock().isoformat(),
        }
        timer.last = scheduled
        request = func.timer.TimerRequest(
            past_due=past_due, schedule_status=status, schedule={"AdjustForDST": True}
        )

        async def run() -> InvocationRecord:
            try:
                record, _ = await self.context.invoker.invoke(
                    timer.function, request, reason, quiet=True
                )
                return record
            finally:
                timer.running = False

        return self.context.invoker.track(run(), f"timer-run:{name}")

    async def _run_schedule(self, timer: _Timer) -> None:
        clock = self.context.clock
        if timer.run_on_startup:
            self._start_invocation(timer, clock(), False, "Timer fired on startup")
        next_at = timer.schedule.next_after(clock())
        logger.debug("Timer '%s' next at %s", timer.function.name, next_at.isoformat())
        while True:
            delay = (next_at - clock()).total_seconds()
            if delay > 0:
                # Short sleeps re-read the clock, so a suspended laptop or a clock change is
                # noticed (and reported as past due) instead of sleeping on a stale delay.
                await asyncio.sleep(min(delay, 1.0))
                continue
            now = clock()
            past_due = now - next_at > PAST_DUE_TOLERANCE
            self._start_invocation(timer, next_at, past_due, f"Timer fired at {now.isoformat()}")
            # Missed occurrences collapse into this one firing, as in the host.
            next_at = timer.schedule.next_after(max(now, next_at))
