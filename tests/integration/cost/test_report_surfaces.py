"""`hosting report` and `GET /api/report` over a real run: the operator's up and down, logged.

The command runs as a subprocess against the local Azure (as a person runs it), the HTTP
handler through the decorated trigger with a real `func.HttpRequest`; both read the hosting
log the `up` and `down` wrote, and both refuse bad input with a message saying what to change.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from shared import composition, settings
from shared.console.app import main
from tests.integration.console.test_console import Hosting, one_line, setup  # noqa: F401
from tests.integration.test_function_app import handler

BASE = "http://localhost:7071/api/report"


@pytest.fixture
def one_cycle(setup: Any) -> tuple[Hosting, Any]:  # noqa: F811 - the imported fixture
    hosting, services = setup()
    assert hosting("up", "default").returncode == 0
    assert hosting("down", "default").returncode == 0
    return hosting, services


def test_the_command_reports_the_cycle_as_a_table_json_and_a_chart(
    one_cycle: tuple[Hosting, Any], tmp_path: Path
) -> None:
    hosting, services = one_cycle
    chart = tmp_path / "charts" / "report.png"
    data = hosting.json("report", "--since", "PT1H", "--chart", str(chart))
    assert chart.read_bytes().startswith(b"\x89PNG")
    (lifetime,) = data["lifetimes"]
    assert lifetime["deployment"] == services.model().spec.name
    assert lifetime["ended_by"] == "gone"
    assert lifetime["created_by"].startswith("operator:")
    assert lifetime["holds"] == ["operator:operator:default"]
    totals = {row["model"]: row for row in data["totals"]}
    assert totals["default"]["on_demand"]["deploy_cycles"] == 1
    assert totals["default"]["on_demand"]["hosted_seconds"] > 0
    assert totals["(all)"]["always_on"]["hosting_cost"]["per_minute"] > 0
    assert data["complete"] is True and data["gaps"] == []
    assert set(data["billing_readings"]) == {"per_minute", "per_started_hour"}

    table = hosting("report", "--since", "PT1H", "--by", "week")
    assert table.returncode == 0, table.stderr
    for expected in ("on demand (this app)", "always on (24x7)", "per document", "default"):
        assert expected in table.stdout
    assert "-W" in table.stdout, "ISO weeks"


BAD_OPTIONS = [
    (["--by", "month"], "'month' is not one of 'day', 'week'"),
    (["--chart", "report.pdf"], "name the file *.png or *.svg"),
    (["--model", "nope"], "unknown hosted model 'nope'; the hosted models are: default"),
    (["--since", "2026-11-05", "--until", "2026-11-01"], "must be before until"),
    (["--since", "yesterday"], "is neither a date/time"),
    (["--since", "2999-01-01"], "is in the future"),
    (["--since", "2020-01-01", "--until", "2022-01-01"], "ask for at most 366 days"),
]


def test_the_command_refuses_bad_options_in_one_line(
    setup: Any,  # noqa: F811 - the imported fixture
    capsys: pytest.CaptureFixture[str],
) -> None:
    hosting, _ = setup()
    for args, says in BAD_OPTIONS:
        # In-process: the same main() as the script, without a second's start-up per case.
        code = main(["--settings", str(hosting.settings), "report", *args])
        err = capsys.readouterr().err.strip()
        assert code == 2, (args, err)
        assert len(err.splitlines()) == 1 and says in err, (args, err)


@pytest.fixture
def api(setup: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:  # noqa: F811
    """The function app's settings from the test's; the services `get_report` will use."""
    hosting, _ = setup()
    values = json.loads(hosting.settings.read_text(encoding="utf-8"))["Values"]
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    settings.get_settings.cache_clear()
    composition.reset_services()
    yield composition.get_services()
    settings.get_settings.cache_clear()
    composition.reset_services()


def get(**params: str) -> func.HttpResponse:
    response: func.HttpResponse = handler("get_report")(
        func.HttpRequest("GET", BASE, params=params, body=b"")
    )
    return response


def test_get_api_report_answers_the_same_json_and_the_chart(api: Any) -> None:
    provisioner = api.model().provisioner
    provisioner.ensure_ready("operator:test", deadline=time.monotonic() + 30)
    assert provisioner.delete_now("operator:test").deleted
    answer = get(since="PT1H", by="day")
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    data = json.loads(answer.get_body())
    assert [lt["ended_by"] for lt in data["lifetimes"]] == ["gone"]
    assert {row["model"] for row in data["totals"]} == {"default", "(all)"}

    image = get(since="PT1H", format="svg")
    assert image.status_code == 200 and image.mimetype == "image/svg+xml"
    assert b"<svg" in image.get_body()


BAD_PARAMETERS = [
    ({"colour": "red"}, "unknown parameter(s) colour"),
    ({"by": "month"}, "use day or week"),
    ({"format": "pdf"}, "use json, png or svg"),
    ({"since": "soon"}, "since='soon' is neither"),
    ({"model": "nope"}, "unknown hosted model 'nope'"),
]


def test_get_api_report_refuses_bad_parameters_with_400(api: Any) -> None:
    for params, says in BAD_PARAMETERS:
        answer = get(**params)
        assert answer.status_code == 400, params
        assert says in json.loads(answer.get_body())["error"], params
