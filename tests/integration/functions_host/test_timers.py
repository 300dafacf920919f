"""Timer triggers: schedules from app settings, runs on demand, past-due firings, time zones."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from zoneinfo import ZoneInfo

import aiohttp
import azure.functions as func
import pytest

from scripts.functions_host.errors import FunctionsHostError
from scripts.functions_host.timers import TimerSchedule, timer_time_zone
from tests.integration.functions_host import sample_app as sample
from tests.integration.functions_host.support import LOGGER, hosted, run, wait_until


def test_timer_fires_on_the_schedule_named_by_an_app_setting(
    environ: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)

    async def scenario() -> None:
        every_second = {**environ, "SAMPLE_TICK_SCHEDULE": "* * * * * *"}
        async with hosted(every_second):
            await wait_until(lambda: len(sample.TIMER_CALLS) >= 2, 4, "two timer firings")
        first = sample.TIMER_CALLS[0]
        assert isinstance(first, func.timer.TimerRequest)
        assert first.past_due is False
        assert {"Last", "Next", "LastUpdated"} <= first.schedule_status.keys()
        assert "Executing 'Functions.tick' (Reason='Timer fired at" in caplog.text

    run(scenario())


def test_fire_timer_and_the_admin_api_run_a_timer_now_without_overlap(
    environ: dict[str, str],
) -> None:
    async def scenario() -> None:
        async with hosted(environ) as host, aiohttp.ClientSession(host.base_url) as http:
            record = await host.fire_timer("tick")
            assert record is not None and record.succeeded
            assert len(sample.TIMER_CALLS) == 1

            async with http.post("/admin/functions/tick", json={"input": ""}) as response:
                assert response.status == 202
            await wait_until(lambda: len(sample.TIMER_CALLS) == 2, 3, "the admin-API run")

            first = asyncio.create_task(host.fire_timer("slow_tick"))
            await wait_until(sample.TIMER_STARTED.is_set, 3, "slow_tick to start")
            assert await host.fire_timer("slow_tick") is None  # still running: skipped
            sample.TIMER_RELEASE.set()
            finished = await first
            assert finished is not None and finished.succeeded
            with pytest.raises(KeyError):
                await host.fire_timer("no_such_timer")

    run(scenario())


def test_a_late_firing_is_past_due(environ: dict[str, str]) -> None:
    offset = dt.timedelta(0)

    def clock() -> dt.datetime:
        return dt.datetime.now(dt.UTC) + offset

    async def scenario() -> None:
        nonlocal offset
        every_half_minute = {**environ, "SAMPLE_TICK_SCHEDULE": "00:00:30"}
        async with hosted(every_half_minute, clock=clock):
            await asyncio.sleep(0.1)
            assert sample.TIMER_CALLS == []
            # As after a suspended laptop: the clock jumps past the next occurrence.
            offset = dt.timedelta(seconds=45)
            await wait_until(lambda: len(sample.TIMER_CALLS) == 1, 3, "the late firing")
        assert sample.TIMER_CALLS[0].past_due is True

    run(scenario())


def test_timer_schedules_parse_ncrontab_timespan_and_time_zones() -> None:
    new_york = ZoneInfo("America/New_York")
    nine_am = TimerSchedule("0 0 9 * * *", new_york)
    assert nine_am.next_after(dt.datetime(2024, 1, 15, tzinfo=dt.UTC)) == dt.datetime(
        2024, 1, 15, 14, tzinfo=dt.UTC
    )
    assert nine_am.next_after(dt.datetime(2024, 7, 15, tzinfo=dt.UTC)) == dt.datetime(
        2024, 7, 15, 13, tzinfo=dt.UTC
    )
    weekdays = TimerSchedule("0 30 17 * * 1-5")
    friday_evening = dt.datetime(2024, 5, 3, 18, tzinfo=dt.UTC)
    assert weekdays.next_after(friday_evening) == dt.datetime(2024, 5, 6, 17, 30, tzinfo=dt.UTC)
    every_90s = TimerSchedule("00:01:30")
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert every_90s.next_after(start) == start + dt.timedelta(seconds=90)

    assert timer_time_zone({"WEBSITE_TIME_ZONE": "Europe/London"}) == ZoneInfo("Europe/London")
    assert timer_time_zone({}) == dt.UTC
    with pytest.raises(FunctionsHostError, match="WEBSITE_TIME_ZONE"):
        timer_time_zone({"WEBSITE_TIME_ZONE": "Eastern Standard Time"})
    with pytest.raises(FunctionsHostError, match="6-field"):
        TimerSchedule("*/5 * * * *")  # 5-field cron is not NCRONTAB
    with pytest.raises(FunctionsHostError, match="6-field"):
        TimerSchedule("not a schedule")


def test_quiet_timers_log_a_firing_only_when_it_did_something(
    environ: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    async def scenario() -> None:
        async with hosted(environ, quiet_timers=True) as host:
            idle = await host.fire_timer("tick")
            assert idle is not None and idle.succeeded
            assert "Functions.tick" not in caplog.text, "a firing that logged nothing is quiet"

            sample.TICK_SAYS.append("deleted ft-contracts")
            busy = await host.fire_timer("tick")
            assert busy is not None and busy.succeeded
        lines = [record.getMessage() for record in caplog.records]
        said = lines.index("deleted ft-contracts")
        assert lines[said - 1].startswith("Executing 'Functions.tick' (Reason=")
        assert any(line.startswith("Executed 'Functions.tick' (Succeeded") for line in lines[said:])
        assert len([line for line in lines if "Functions.tick" in line]) == 2

    run(scenario())


def test_quiet_timers_show_an_idle_firing_at_debug(
    environ: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)

    async def scenario() -> None:
        async with hosted(environ, quiet_timers=True) as host:
            await host.fire_timer("tick")

    run(scenario())
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any(line.startswith("Executing 'Functions.tick'") for line in debug)
    assert any("(Succeeded, nothing logged" in line for line in debug)
