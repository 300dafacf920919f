"""`GET /api/ops` through the app's services against Azurite and the simulator."""

from __future__ import annotations

import json
from datetime import timedelta

from simulator.process import RunningSimulator
from tests.integration.conftest import ServicesFactory


def test_the_view_answers_from_the_ledger_when_the_management_api_fails(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    services = make_services()
    hosted = services.hosted["default"]
    hosted.ledger.place_hold(
        "operator:default", "operator", "operator:ana@host", timedelta(hours=1)
    )
    # Every management call fails (the SDK's own retries included).
    sim.admin.inject_errors("management", 503, 1.0, count=50)
    try:
        response = services.operations_api.get()
    finally:
        sim.admin.clear_faults()
    assert response.status_code == 200
    view = json.loads(response.get_body())
    assert view["azure_error"].startswith("the management API could not list the deployments")
    (model,) = view["models"]
    assert model["deployment"] == services.settings.deployment_name
    assert [hold["id"] for hold in model["holds"]] == ["operator:default"]
    assert model["azure_state"] is None, "not made up: Azure could not be asked"
    assert model["provisioning"]["basis"] == "setting"
    assert view["batches"] == []


def test_a_batch_run_not_yet_ended_is_listed_with_its_counters(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    services = make_services()
    run = services.batches.start("default", "run-ops-1", "default/", "default/", None)
    listed = services.operations_api.view()["batches"]
    assert [b["run_id"] for b in listed] == [run.run_id]
    assert listed[0]["status"] == "pending" and listed[0]["counters"]["listed"] == 0
