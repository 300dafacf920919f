"""HTTP triggers and the admin API: functions_host serving the sample app over real HTTP.

The host runs in-process on a free port, so tests read what the sample handlers recorded.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import pytest

from scripts.functions_host.http import RouteTemplate
from tests.integration.functions_host import sample_app as sample
from tests.integration.functions_host.support import LOGGER, hosted, run, wait_until


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
    caplog.set_level(logging.INFO, logger=LOGGER)

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
            # The slow handler holds its thread until released (or 10 s): answered long before.
            assert time.monotonic() - started < 8
            assert not slow.done()
            sample.SLOW_RELEASE.set()
            async with await slow as response:
                assert await response.text() == "released"

    run(scenario())


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


def test_admin_api_reports_status_and_refuses_what_it_cannot_run(
    environ: dict[str, str],
) -> None:
    async def scenario() -> None:
        async with hosted(environ) as host, aiohttp.ClientSession(host.base_url) as http:
            async with http.get("/admin/host/status") as response:
                assert response.status == 200
                assert await response.json() == {
                    "state": "Running",
                    "functions": len(host.functions),
                }
            assert len(host.functions) == 10  # every function of the sample app
            async with http.post("/admin/functions/get_item") as response:
                assert response.status == 404  # an HTTP function does not run on demand
                assert await response.json() == {"error": "no timer function named get_item"}
            async with http.get("/admin/functions/tick") as response:
                assert response.status == 405
                assert response.headers["Allow"] == "POST"
            async with http.post("/admin/nothing") as response:
                assert response.status == 404
            assert sample.TIMER_CALLS == []
        keyed = {**environ, "FUNCTIONS_LOCAL_KEY": "s3cret"}
        async with hosted(keyed) as host, aiohttp.ClientSession(host.base_url) as http:
            async with http.post("/admin/functions/tick") as response:
                assert response.status == 401
            async with http.post(
                "/admin/functions/tick", headers={"x-functions-key": "s3cret"}
            ) as response:
                assert response.status == 202
            await wait_until(lambda: len(sample.TIMER_CALLS) == 1, 3, "the keyed admin run")

    run(scenario())
