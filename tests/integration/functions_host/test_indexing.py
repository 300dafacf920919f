"""Indexing the app: which functions are hosted, and configuration errors before start-up."""

from __future__ import annotations

import pytest

from scripts.functions_host.errors import FunctionsHostError
from scripts.functions_host.host import LocalFunctionsHost
from tests.integration.functions_host import sample_app as sample


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
