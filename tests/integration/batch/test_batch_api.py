"""POST /api/batches and GET /api/batches/{run_id} through the decorated handlers, and the
run carried to its end by the `continue_batch` queue trigger with real queue messages."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import pytest
from azure.functions.queue import QueueMessage

from shared import composition, settings
from shared.composition import AppServices
from simulator.process import RunningSimulator
from tests.integration.batch.helpers import BATCH_PROFILES, outcomes_by_input, upload_documents
from tests.integration.drive import process_to_end
from tests.integration.test_function_app import handler

BASE = "http://localhost:7071/api/batches"


@pytest.fixture
def services(
    app_settings: dict[str, str], sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AppServices]:
    for key, value in {**app_settings, "PROCESSING_PROFILES": BATCH_PROFILES}.items():
        monkeypatch.setenv(key, value)
    settings.get_settings.cache_clear()
    composition.reset_services()
    yield composition.get_services()
    settings.get_settings.cache_clear()
    composition.reset_services()


def post(body: Any) -> func.HttpResponse:
    request = func.HttpRequest(
        "POST", BASE, headers={"content-type": "application/json"}, body=json.dumps(body).encode()
    )
    response: func.HttpResponse = handler("start_batch")(request)
    return response


def get(run_id: str) -> func.HttpResponse:
    request = func.HttpRequest("GET", f"{BASE}/{run_id}", body=b"", route_params={"run_id": run_id})
    response: func.HttpResponse = handler("get_batch")(request)
    return response


def deliver_until_final(services: AppServices, run_id: str, timeout: float = 60) -> None:
    """Play the batch queue's trigger: each visible message to `continue_batch`."""
    deadline = time.monotonic() + timeout
    while not json.loads(get(run_id).get_body())["final"]:
        assert time.monotonic() < deadline, "the run did not end in time"
        taken = services.batch_queue.take_visible(lease_seconds=60)
        for _, message in taken:
            delivered = QueueMessage(  # type: ignore[no-untyped-call]
                id=message.id, body=message.content.encode(), dequeue_count=message.dequeue_count
            )
            handler("continue_batch")(delivered)
            services.batch_queue.done(message)
        if not taken:
            time.sleep(0.05)


def test_post_starts_a_run_that_the_queue_trigger_carries_to_its_summary(
    services: AppServices,
) -> None:
    batch_in = services.blob_service.get_container_client(services.settings.batch_container)
    upload_documents(batch_in, "api/", 30)
    # Batch inputs are not in the blob trigger's container: no ad-hoc job sees them.
    assert services.settings.batch_container != services.settings.input_container

    response = post({"model": "default", "input_prefix": "api/", "output_prefix": "api-out/"})
    assert response.status_code == 202, response.get_body()
    body = json.loads(response.get_body())
    run_id = body["run_id"]
    assert body["status_url"] == f"{BASE}/{run_id}" == response.headers["Location"]

    again = post({"model": "default", "input_prefix": "api/", "run_id": run_id})
    assert again.status_code == 202 and json.loads(again.get_body())["run_id"] == run_id

    deliver_until_final(services, run_id)
    view = json.loads(get(run_id).get_body())
    assert view["status"] == "succeeded", view
    assert view["summary"]["documents"]["succeeded"] == 30
    assert len(outcomes_by_input(services, "api-out/")) == 30


def test_bad_requests_are_answered_400_and_unknown_runs_404(services: AppServices) -> None:
    for body, says in (
        ({"input_prefix": "x/"}, "'model' is required"),
        ({"model": "nope", "input_prefix": "x/"}, "unknown hosted model"),
        ({"model": "default", "input_prefix": "x/", "deadline": "soon"}, "deadline"),
        ({"model": "default", "input_prefix": "x/", "colour": "red"}, "unknown field"),
        ({"model": "default", "input_prefix": "../x/"}, "'..'"),
    ):
        response = post(body)
        assert response.status_code == 400, body
        assert says in json.loads(response.get_body())["error"]
    assert get("no-such-run").status_code == 404


def test_a_batch_and_an_ad_hoc_document_of_the_same_name_keep_their_own_outcomes(
    services: AppServices,
) -> None:
    # `hosting batch run default` reads batch-in/default/ and writes under default/; an
    # ad-hoc upload of default/doc000.txt is named default/doc000.txt too.
    batch_in = services.blob_service.get_container_client(services.settings.batch_container)
    batch_in.upload_blob("default/doc000.txt", b"Batch invoice 000: 100 EUR due in 30 days.")
    response = post({"model": "default", "input_prefix": "default/"})
    assert response.status_code == 202, response.get_body()
    run_id = json.loads(response.get_body())["run_id"]
    deliver_until_final(services, run_id)
    outcome = process_to_end(services, "default/doc000.txt", b"Ad-hoc lease: 3 months.")
    assert outcome.status == "succeeded"

    def current(container: str) -> dict[str, Any]:
        client = services.blob_service.get_container_client(container)
        return json.loads(client.download_blob("default/doc000.txt.result.json").readall())  # type: ignore[no-any-return]

    batch = current(services.settings.batch_output_container)
    ad_hoc = current(services.settings.output_container)
    assert batch["input"] == f"{services.settings.batch_container}/default/doc000.txt"
    assert batch["run_id"] == run_id
    assert ad_hoc["input"] == f"{services.settings.input_container}/default/doc000.txt"
    assert ad_hoc["job_id"] == outcome.job_id


def test_a_run_whose_outcomes_would_take_another_runs_names_is_refused(
    services: AppServices,
) -> None:
    first = post(
        {"model": "default", "input_prefix": "a/", "output_prefix": "out/", "run_id": "r-1"}
    )
    assert first.status_code == 202, first.get_body()
    refused = post(
        {"model": "default", "input_prefix": "b/", "output_prefix": "out/", "run_id": "r-2"}
    )
    assert refused.status_code == 400
    assert json.loads(refused.get_body())["error"] == (
        "run 'r-2' writes outcomes under 'out/' (for 'b/'), which overlaps run 'r-1''s 'out/' "
        "(for 'a/'): two different documents would share an outcome name. Choose an output "
        "prefix neither inside nor around the other"
    )
    nested = post({"model": "default", "input_prefix": "b/", "output_prefix": "out/b/"})
    assert nested.status_code == 400, "inside r-1's prefix, over other inputs"
    alike = post({"model": "default", "input_prefix": "a/2026/", "output_prefix": "out/2026/"})
    assert alike.status_code == 202, "names every input as r-1 does"
    apart = post({"model": "default", "input_prefix": "b/", "output_prefix": "out-b/"})
    assert apart.status_code == 202
