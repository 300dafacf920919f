"""The dev runner (scripts/dev_runner.py) hosting a sample app over real HTTP and Azurite.

The host runs in-process on a free port, so tests read what the sample handlers recorded;
the CLI's exit codes and signal handling are checked in subprocesses.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import aiohttp
import azure.functions as func
import pytest
from azure.storage.blob import BlobServiceClient
from azure.storage.blob.aio import BlobServiceClient as AsyncBlobServiceClient
from azure.storage.queue import QueueClient

from scripts.azurite import RunningAzurite, start_azurite
from scripts.dev_runner import (
    DevRunnerError,
    LocalFunctionsHost,
    RouteTemplate,
    TimerSchedule,
    timer_time_zone,
)
from tests.integration import dev_runner_sample_app as sample
from tests.integration.processes import azurite_pids

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_APP = "tests.integration.dev_runner_sample_app:app"
NEVER = "0 0 0 1 1 *"  # once a year: the timer exists but does not fire during a test

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAzurite]:
    with start_azurite(tmp_path_factory.mktemp("dev-runner-azurite")) as running:
        yield running


@pytest.fixture
def container(storage: RunningAzurite) -> str:
    name = f"dr-{uuid.uuid4().hex[:12]}"
    with BlobServiceClient.from_connection_string(storage.connection_string) as service:
        service.create_container(name)
    return name


@pytest.fixture
def environ(storage: RunningAzurite, container: str) -> dict[str, str]:
    return {
        "SAMPLE_TICK_SCHEDULE": NEVER,
        "SAMPLE_INPUT_CONTAINER": container,
        "SampleStorage": storage.connection_string,
    }


@pytest.fixture(autouse=True)
def _fresh_sample_state() -> Iterator[None]:
    sample.reset()
    yield
    # Let any handler thread still waiting finish, so no test leaves a thread behind.
    sample.SLOW_RELEASE.set()
    sample.TIMER_RELEASE.set()


@contextlib.asynccontextmanager
async def hosted(environ: dict[str, str], **options: Any) -> AsyncIterator[LocalFunctionsHost]:
    settings: dict[str, Any] = {
        "http_port": 0,
        "blob_poll_seconds": 0.1,
        "blob_retry_delay": 0.01,
        "host_id": f"test-{uuid.uuid4().hex[:8]}",
        "shutdown_timeout": 3.0,
    }
    settings.update(options)
    host = LocalFunctionsHost(sample.app, environ=environ, **settings)
    await host.start()
    try:
        yield host
    finally:
        await host.stop()


async def upload(connection_string: str, container: str, name: str, data: bytes) -> None:
    async with AsyncBlobServiceClient.from_connection_string(connection_string) as service:
        await service.get_blob_client(container, name).upload_blob(data, overwrite=True)


async def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


# --- HTTP --------------------------------------------------------------------------------


def test_routes_pass_route_params_query_and_prefer_literal_segments(
    environ: dict[str, str],
) -> None:
    async def scenario() -> None:
        async with hosted(environ) as host, aiohttp.ClientSession(host.base_url) as http:
            async with http.get("/api/items/42", params=[("x", "1"), ("x", "2")]) as response:
                assert response.status == 200
                assert response.content_type == "application/json"
                body = await response.json()
            assert body["item_id"] == "42"
            assert body["query"] == {"x": "1,2"}
            assert body["method"] == "GET"
            assert body["url"].startswith(f"{host.base_url}/api/items/42?")

            async with http.get("/api/items/abc") as response:
                assert response.status == 404  # {item_id:int} does not match
            async with http.get("/api/files/latest") as response:
                assert await response.json() == {"literal": True}
            async with http.get("/api/files/docs") as response:
                assert await response.json() == {"folder": "docs"}
            async with http.get("/api/files/docs/a%20b/") as response:
                assert await response.json() == {"folder": "docs", "name": "a b"}

    run(scenario())


def test_async_post_handler_gets_the_body_and_sets_status_headers(
    environ: dict[str, str],
) -> None:
    async def scenario() -> None:
        async with hosted(environ) as host, aiohttp.ClientSession(host.base_url) as http:
            response = await http.post("/api/echo", json={"doc": "a.pdf", "n": [1, 2]})
            assert response.status == 201
            assert response.headers["X-Echo"] == "yes"
            assert response.headers["Content-Type"] == "application/json"
            assert await response.json() == {
                "received": {"doc": "a.pdf", "n": [1, 2]},
                "content_type": "application/json",
            }

    run(scenario())


def test_unknown_route_is_404_and_wrong_method_is_405(environ: dict[str, str]) -> None:
    async def scenario() -> None:
        async with hosted(environ) as host, aiohttp.ClientSession(host.base_url) as http:
            async with http.get("/api/nothing-here") as response:
                assert response.status == 404
            async with http.get("/items/1") as response:
                assert response.status == 404  # routes live under the /api prefix
            async with http.post("/api/items/1") as response:
                assert response.status == 405
                assert response.headers["Allow"] == "GET"
            async with http.put("/api/files/a") as response:
                assert response.status == 405
                assert response.headers["Allow"] == "DELETE, GET"

    run(scenario())


def test_function_level_route_needs_the_local_key_when_one_is_set(
    environ: dict[str, str],
) -> None:
    async def scenario() -> None:
        keyed = {**environ, "FUNCTIONS_LOCAL_KEY": "s3cret"}
        async with hosted(keyed) as host, aiohttp.ClientSession(host.base_url) as http:
            async with http.get("/api/secret") as response:
                assert response.status == 401
            async with http.get("/api/secret", params={"code": "wrong"}) as response:
                assert response.status == 401
            async with http.get("/api/secret", headers={"x-functions-key": "s3cret"}) as response:
                assert response.status == 200
                assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
                assert await response.text() == "the secret"
            async with http.get("/api/secret", params={"code": "s3cret"}) as response:
                assert response.status == 200
            async with http.get("/api/items/1") as response:
                assert response.status == 200  # anonymous routes need no key
        async with hosted(environ) as host, aiohttp.ClientSession(host.base_url) as http:
            response = await http.get("/api/secret")
            assert response.status == 200  # no key configured: accepted, as func start does

    run(scenario())


def test_handler_exception_is_a_500_with_a_short_json_body_and_a_logged_traceback(
    environ: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="scripts.dev_runner")

    async def scenario() -> None:
        async with hosted(environ) as host, aiohttp.ClientSession(host.base_url) as http:
            async with http.get("/api/boom") as response:
                assert response.status == 500
                body = await response.json()
            assert body["error"] == "Exception while executing function: Functions.boom"
            assert body["invocationId"] in caplog.text
            assert "RuntimeError: handler exploded" in caplog.text
            assert "Executing 'Functions.boom' (Reason=" in caplog.text
            assert "Executed 'Functions.boom' (Failed, Id=" in caplog.text
            async with http.get("/api/items/1") as response:
                assert response.status == 200  # the host keeps serving
            assert "Executed 'Functions.get_item' (Succeeded, Id=" in caplog.text

    run(scenario())


def test_a_slow_sync_handler_does_not_block_other_requests(environ: dict[str, str]) -> None:
    async def scenario() -> None:
        async with hosted(environ) as host, aiohttp.ClientSession(host.base_url) as http:
            slow = asyncio.create_task(http.get("/api/slow"))
            await wait_until(sample.SLOW_STARTED.is_set, 5, "the slow handler to start")
            started = time.monotonic()
            async with http.get("/api/items/7") as response:
                assert response.status == 200
            assert time.monotonic() - started < 2
            assert not slow.done()
            sample.SLOW_RELEASE.set()
            async with await slow as response:
                assert await response.text() == "released"

    run(scenario())


# --- Timers ------------------------------------------------------------------------------


def test_timer_fires_on_the_schedule_named_by_an_app_setting(
    environ: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="scripts.dev_runner")

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
    with pytest.raises(DevRunnerError, match="WEBSITE_TIME_ZONE"):
        timer_time_zone({"WEBSITE_TIME_ZONE": "Eastern Standard Time"})
    with pytest.raises(DevRunnerError, match="6-field"):
        TimerSchedule("*/5 * * * *")  # 5-field cron is not NCRONTAB
    with pytest.raises(DevRunnerError, match="6-field"):
        TimerSchedule("not a schedule")


def test_route_templates_cover_the_host_forms() -> None:
    assert RouteTemplate("jobs/{job_id}").match("/api/jobs/j-1") == {"job_id": "j-1"}
    assert RouteTemplate("jobs/{job_id}").match("/api/jobs/j-1/extra") is None
    assert RouteTemplate("Jobs/{id:int}").match("/API/jobs/12") == {"id": "12"}
    assert RouteTemplate("jobs/{id:int}").match("/api/jobs/x") is None
    assert RouteTemplate("docs/{*path}").match("/api/docs/a/b/c.pdf") == {"path": "a/b/c.pdf"}
    assert RouteTemplate("files/{name}.{ext}").match("/api/files/report.pdf") == {
        "name": "report",
        "ext": "pdf",
    }
    assert RouteTemplate("page/{n=1}").match("/api/page") == {"n": "1"}
    assert RouteTemplate("health", prefix="").match("/health") == {}
    literal, param = RouteTemplate("items/new"), RouteTemplate("items/{id}")
    assert literal.precedence < param.precedence


# --- Blobs -------------------------------------------------------------------------------


def test_a_blob_is_delivered_once_however_often_it_is_polled_and_again_when_changed(
    environ: dict[str, str], storage: RunningAzurite, container: str
) -> None:
    conn = storage.connection_string

    async def scenario() -> None:
        async with hosted(environ) as host:
            await upload(conn, container, "incoming/a.txt", b"first version")
            await upload(conn, container, "incoming/a.json", b"wrong suffix")
            await upload(conn, container, "elsewhere/b.txt", b"wrong prefix")
            await host.wait_for_blob_idle(timeout=10)
            assert len(sample.BLOB_CALLS) == 1
            call = sample.BLOB_CALLS[0]
            assert call["name"] == f"{container}/incoming/a.txt"
            assert call["data"] == b"first version"
            assert call["length"] == len(b"first version")
            assert str(call["uri"]).endswith(f"/{container}/incoming/a.txt")

            for _ in range(5):
                await host.wait_for_blob_idle(timeout=10)
            await asyncio.sleep(0.3)  # a few more timed polls
            assert len(sample.BLOB_CALLS) == 1

            await upload(conn, container, "incoming/a.txt", b"second version")
            await host.wait_for_blob_idle(timeout=10)
            assert [c["data"] for c in sample.BLOB_CALLS] == [b"first version", b"second version"]

    run(scenario())


def test_blob_receipts_persist_so_a_restart_does_not_redeliver(
    environ: dict[str, str], storage: RunningAzurite, container: str
) -> None:
    async def scenario() -> None:
        await upload(storage.connection_string, container, "incoming/kept.txt", b"once")
        async with hosted(environ, host_id="restart-test") as host:
            await host.wait_for_blob_idle(timeout=10)
        assert len(sample.BLOB_CALLS) == 1
        async with hosted(environ, host_id="restart-test") as host:
            await host.wait_for_blob_idle(timeout=10)
        assert len(sample.BLOB_CALLS) == 1
        async with hosted(environ, host_id="restart-test", persist_blob_receipts=False) as host:
            await host.wait_for_blob_idle(timeout=10)
        assert len(sample.BLOB_CALLS) == 2  # memory-only receipts start empty

    run(scenario())


def test_a_failing_blob_is_retried_five_times_then_poisoned(
    environ: dict[str, str],
    storage: RunningAzurite,
    container: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="scripts.dev_runner")

    async def scenario() -> None:
        async with hosted(environ) as host:
            await upload(storage.connection_string, container, "incoming/bad.txt", b"fail me")
            await host.wait_for_blob_idle(timeout=10)
            assert len(sample.BLOB_CALLS) == 5
            failures = [r for r in host.invocations if r.function_name == "on_blob"]
            assert [r.succeeded for r in failures] == [False] * 5
            assert "ValueError: cannot process" in (failures[0].error or "")
            assert f"Blob '{container}/incoming/bad.txt' will be skipped" in caplog.text
            assert "(poison)" in caplog.text
            await host.wait_for_blob_idle(timeout=10)
            assert len(sample.BLOB_CALLS) == 5  # poisoned: not retried on later scans

    run(scenario())
    poison = QueueClient.from_connection_string(
        storage.connection_string, "webjobs-blobtrigger-poison"
    )
    with poison:
        messages = [json.loads(m.content) for m in poison.peek_messages(max_messages=32)]
    assert {"ContainerName": container, "BlobName": "incoming/bad.txt"}.items() <= {
        key: value
        for message in messages
        if message["ContainerName"] == container
        for key, value in message.items()
    }.items()


def test_blob_deliveries_run_concurrently_up_to_the_limit(
    environ: dict[str, str], storage: RunningAzurite, container: str
) -> None:
    async def scenario() -> None:
        for index in range(6):
            await upload(storage.connection_string, container, f"incoming/s{index}.txt", b"slow")
        async with hosted(environ, blob_concurrency=2) as host:
            await host.wait_for_blob_idle(timeout=10)
        assert len(sample.BLOB_CALLS) == 6
        assert sample.BLOB_CONCURRENCY["max"] == 2

    run(scenario())


# --- Configuration errors and the CLI ----------------------------------------------------


def test_a_missing_app_setting_is_a_clear_error(environ: dict[str, str]) -> None:
    without_schedule = {k: v for k, v in environ.items() if k != "SAMPLE_TICK_SCHEDULE"}
    with pytest.raises(DevRunnerError, match=r"'tick' uses %SAMPLE_TICK_SCHEDULE%.*not set"):
        LocalFunctionsHost(sample.app, environ=without_schedule)
    without_storage = {k: v for k, v in environ.items() if k != "SampleStorage"}
    with pytest.raises(DevRunnerError, match=r"'on_blob'.*SampleStorage"):
        LocalFunctionsHost(sample.app, environ=without_storage)
    # --functions hosts a subset, so unrelated settings are not needed.
    only_http = LocalFunctionsHost(sample.app, environ={}, functions=["get_item", "echo"])
    assert sorted(f.name for f in only_http.functions) == ["echo", "get_item"]


def _cli(args: list[str], environ: dict[str, str], **popen: Any) -> subprocess.Popen[str]:
    env = {**os.environ, **environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "scripts.dev_runner", "--app", SAMPLE_APP,
         "--settings-file", "/nonexistent/local.settings.json", *args],
        cwd=REPO_ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        **popen,
    )  # fmt: skip


def test_cli_port_busy_exits_2_with_one_line(environ: dict[str, str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with _cli(["--port", str(port)], environ) as process:
            _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    assert stderr.strip().splitlines() == [
        f"dev_runner: cannot listen on 127.0.0.1:{port}: Address already in use "
        "(is another host running? pick another port with --port)"
    ]


def test_cli_port_busy_fails_before_starting_the_local_azure(environ: dict[str, str]) -> None:
    azurites_before = azurite_pids()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with _cli(["--port", str(port), "--local-azure"], environ) as process:
            _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    assert stderr.strip().splitlines() == [
        f"dev_runner: cannot listen on 127.0.0.1:{port}: Address already in use "
        "(is another host running? pick another port with --port)"
    ], "nothing else may start (and print) before the port is known to be free"
    assert not azurite_pids() - azurites_before, "an Azurite started here was left running"


def test_cli_sigterm_while_the_local_azure_starts_leaves_no_process(
    environ: dict[str, str],
) -> None:
    azurites_before = azurite_pids()
    with _cli(["--port", "0", "--local-azure"], environ) as process:
        try:
            assert process.stderr is not None
            # Azurite is up and the simulator is starting: the window where a plain SIGTERM
            # used to kill the runner and orphan Azurite.
            for line in process.stderr:
                if "Azurite blob" in line:
                    break
            process.send_signal(signal.SIGTERM)
            _, rest = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 130
    assert "dev_runner: interrupted before the host started; stopped" in rest
    assert "Traceback" not in rest
    assert not azurite_pids() - azurites_before, "an Azurite started here was left running"


def test_cli_import_failure_exits_2_with_one_line(environ: dict[str, str]) -> None:
    process = subprocess.run(
        [sys.executable, "-m", "scripts.dev_runner", "--app", "tests.integration.nope:app"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert process.returncode == 2
    assert process.stderr.strip().splitlines() == [
        "dev_runner: cannot import the function app module 'tests.integration.nope': "
        "ModuleNotFoundError: No module named 'tests.integration.nope'"
    ]


def test_cli_serves_until_sigint_then_stops_cleanly(environ: dict[str, str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with _cli(["--port", str(port), "--functions", "get_item"], environ) as process:
        try:
            body = _get_when_up(f"http://127.0.0.1:{port}/api/items/5", process)
            assert '"item_id": "5"' in body
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=15)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, stderr
    assert "Executed 'Functions.get_item' (Succeeded" in stderr
    assert "Host stopped" in stderr
    assert "Traceback" not in stderr


def _get_when_up(url: str, process: subprocess.Popen[str]) -> str:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return str(response.read().decode())
        except (urllib.error.URLError, ConnectionError):
            if process.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
