"""Indexing the app: which functions are hosted, and configuration errors before start-up."""

from __future__ import annotations

import logging

import azure.functions as func
import pytest

from scripts.functions_host.errors import FunctionsHostError
from scripts.functions_host.host import LocalFunctionsHost
from tests.integration.functions_host import sample_app as sample
from tests.integration.functions_host.support import LOGGER


def test_a_missing_app_setting_is_a_clear_error(environ: dict[str, str]) -> None:
    without_schedule = {k: v for k, v in environ.items() if k != "SAMPLE_TICK_SCHEDULE"}
    with pytest.raises(FunctionsHostError, match=r"'tick' uses %SAMPLE_TICK_SCHEDULE%.*not set"):
        LocalFunctionsHost(sample.app, environ=without_schedule)
    without_storage = {k: v for k, v in environ.items() if k != "SampleStorage"}
    with pytest.raises(FunctionsHostError, match=r"'on_blob'.*SampleStorage"):
        LocalFunctionsHost(sample.app, environ=without_storage)
    # --functions hosts a subset, so unrelated settings are not needed.
    only_http = LocalFunctionsHost(sample.app, environ={}, functions=["get_item", "echo"])
    assert sorted(f.name for f in only_http.functions) == ["echo", "get_item"]


def test_functions_the_host_cannot_run_are_skipped_with_a_logged_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.service_bus_queue_trigger(arg_name="msg", queue_name="work", connection="Bus")
    def on_bus(msg: func.ServiceBusMessage) -> None:
        pass

    @app.route(route="report")
    @app.blob_output(arg_name="out", path="reports/latest.txt", connection="Storage")
    def write_report(req: func.HttpRequest, out: func.Out[str]) -> str:
        return "written"

    @app.route(route="ping")
    def ping(req: func.HttpRequest) -> str:
        return "pong"

    caplog.set_level(logging.ERROR, logger=LOGGER)
    host = LocalFunctionsHost(app, environ={})
    assert [f.name for f in host.functions] == ["ping"]
    assert "Function 'on_bus' has a serviceBusTrigger trigger" in caplog.text
    assert "Function 'write_report' declares bindings" in caplog.text
    assert "(blob 'out'); skipped" in caplog.text
    with pytest.raises(FunctionsHostError, match="no hostable function named on_bus"):
        LocalFunctionsHost(app, environ={}, functions=["ping", "on_bus"])
