"""The decorated handlers in function_app.py, called with real azure.functions objects."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
import azure.functions as func
import pytest
from azure.functions.queue import QueueMessage

import function_app
from scripts.functions_host.host import LocalFunctionsHost
from shared import composition, settings
from shared.composition import AppServices
from shared.documents.jobs import job_id_for
from simulator.process import RunningSimulator
from tests.integration.drive import drive
from tests.integration.outputs import current_outputs

BASE = "http://localhost:7071/api/jobs"


@pytest.fixture
def services(
    app_settings: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[AppServices]:
    for key, value in app_settings.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv(
        "PROCESSING_PROFILES",
        json.dumps(
            {
                "default": {
                    "system_prompt": "You analyse business documents.",
                    "user_prompt_template": "Document {filename}:\n{document}\n{questions}",
                },
                "contracts": {
                    "system_prompt": "You review contracts.",
                    "user_prompt_template": "{document}\n\nAnswer: {questions}",
                    "questions": ["Who are the parties?"],
                },
            }
        ),
    )
    settings.get_settings.cache_clear()
    composition.reset_services()
    yield composition.get_services()
    settings.get_settings.cache_clear()
    composition.reset_services()


@functools.cache
def handlers() -> dict[str, Any]:
    # get_functions() registers the functions and may run only once per app object.
    return {
        str(f.get_function_name()): f.get_user_function() for f in function_app.app.get_functions()
    }


def handler(name: str) -> Any:
    """The plain Python function behind a decorated trigger, called as the host calls it: an
    async handler (every HTTP route) is run to its answer on an event loop of its own."""
    function = handlers()[name]
    if not inspect.iscoroutinefunction(function):
        return function

    def run_to_answer(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(function(*args, **kwargs))

    return run_to_answer


def post_json(body: Any, *, raw: bytes | None = None) -> func.HttpResponse:
    req = func.HttpRequest(
        "POST",
        BASE,
        headers={"content-type": "application/json"},
        body=raw if raw is not None else json.dumps(body).encode(),
    )
    response: func.HttpResponse = handler("submit_job")(req)
    return response


def get_job(job_id: str) -> func.HttpResponse:
    req = func.HttpRequest("GET", f"{BASE}/{job_id}", route_params={"job_id": job_id}, body=b"")
    response: func.HttpResponse = handler("get_job")(req)
    return response


def deliver(services: AppServices, blob_name: str) -> None:
    """The blob trigger's delivery, then the resume queue's trigger until the job is final."""
    container = services.settings.input_container
    data = services.blob_service.get_container_client(container).download_blob(blob_name).readall()
    stream = func.blob.InputStream(
        data=data, name=f"{container}/{blob_name}", length=len(data), uri=f"http://x/{blob_name}"
    )
    handler("process_uploaded_document")(stream)
    drive(services, [job_id_for(container, blob_name, data)], handler=handler("resume_job"))


def body(response: func.HttpResponse) -> dict[str, Any]:
    return json.loads(response.get_body())  # type: ignore[no-any-return]


def test_submit_then_process_then_read_the_result(
    services: AppServices, sim: RunningSimulator
) -> None:
    response = post_json(
        {
            "text": "Lease of premises.",
            "filename": "lease.txt",
            "profile": "contracts",
            "questions": ["When does it end?"],
        }
    )
    assert response.status_code == 202
    accepted = body(response)
    assert response.headers["Location"] == f"{BASE}/{accepted['job_id']}"
    queued = get_job(accepted["job_id"])
    assert queued.status_code == 200 and body(queued)["status"] == "queued"

    deliver(services, accepted["input"])

    done = body(get_job(accepted["job_id"]))
    assert done["status"] == "succeeded"
    assert done["profile"] == "contracts"
    answers = done["result"]["answer"]["answers"]
    assert answers and all(set(a) >= {"question", "answer"} for a in answers)
    assert done["result"]["provenance"]["deployment"] == services.settings.deployment_name


def test_multipart_upload_is_accepted(services: AppServices) -> None:
    boundary = "XyZ"
    payload = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="rfp.md"\r\n'
        "Content-Type: text/markdown\r\n\r\n# RFP\n\nWe need 40 laptops.\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="questions"\r\n\r\n'
        '["How many laptops?"]\r\n'
        f"--{boundary}--\r\n"
    ).encode()
    req = func.HttpRequest(
        "POST",
        BASE,
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        body=payload,
    )
    response = handler("submit_job")(req)
    assert response.status_code == 202, response.get_body()
    job = body(get_job(body(response)["job_id"]))
    assert job["questions"] == ["How many laptops?"]
    assert job["input"].endswith("rfp.md")


@pytest.mark.parametrize(
    ("payload", "raw", "status", "needle"),
    [
        (None, b"{not json", 400, "not valid JSON"),
        ({"filename": "a.txt"}, None, 400, "'text' is required"),
        ({"text": "   "}, None, 400, "only whitespace"),
        ({"text": "x", "profile": "nope"}, None, 400, "contracts"),
        ({"text": "x", "questions": "why?"}, None, 400, "list of strings"),
        ({"text": "x", "colour": "red"}, None, 400, "unknown field"),
        ({"text": "x", "filename": "a.exe"}, None, 400, ".exe"),
    ],
)
def test_bad_submissions_get_400_saying_what_is_wrong(
    services: AppServices, payload: Any, raw: bytes | None, status: int, needle: str
) -> None:
    response = post_json(payload, raw=raw)
    assert response.status_code == status
    assert needle in body(response)["error"]
    container = services.blob_service.get_container_client(services.settings.input_container)
    assert list(container.list_blobs()) == [], "nothing is stored for a rejected submission"


def test_oversized_submission_gets_413(
    services: AppServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    response = post_json({"text": "x" * (services.settings.max_submit_bytes + 10)})
    assert response.status_code == 413
    assert "MAX_SUBMIT_BYTES" in body(response)["error"]


def test_wrong_content_type_gets_400(services: AppServices) -> None:
    req = func.HttpRequest("POST", BASE, headers={"content-type": "text/xml"}, body=b"<a/>")
    response = handler("submit_job")(req)
    assert response.status_code == 400
    assert "multipart/form-data" in body(response)["error"]


def test_unknown_and_malformed_job_ids(services: AppServices) -> None:
    assert get_job("0" * 24).status_code == 404
    assert get_job("../etc/passwd").status_code == 400


def test_blob_trigger_handles_an_uploaded_document_once(
    services: AppServices, sim: RunningSimulator
) -> None:
    container = services.blob_service.get_container_client(services.settings.input_container)
    container.upload_blob("contracts/nda.txt", b"Mutual NDA between A and B.")
    deliver(services, "contracts/nda.txt")
    deliver(services, "contracts/nda.txt")
    output = services.blob_service.get_container_client(services.settings.output_container)
    assert current_outputs(output) == ["contracts/nda.txt.result.json"]
    result = json.loads(output.download_blob("contracts/nda.txt.result.json").readall())
    assert result["profile"] == "contracts"
    assert len(sim.admin.billing()["deployments"]) == 1


def test_reaper_timer_handler_runs(services: AppServices) -> None:
    timer = func.timer.TimerRequest(past_due=True)
    handler("reap_idle_deployments")(timer)


def test_a_submission_that_cannot_be_stored_answers_503_and_records_why(
    services: AppServices,
) -> None:
    services.blob_service.delete_container(services.settings.input_container)
    response = post_json({"text": "Lease of premises.", "filename": "lease.txt"})
    assert response.status_code == 503
    failed = body(get_job(body(response)["job_id"]))
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "store_failed"


def test_concurrent_first_invocations_share_one_build_of_the_services(
    services: AppServices,
) -> None:
    composition.reset_services()
    with ThreadPoolExecutor(max_workers=6) as pool:
        built = list(pool.map(lambda _: composition.get_services(), range(6)))
    assert len({id(s) for s in built}) == 1
    assert logging.getLogger("httpx2").level == logging.WARNING


def test_a_resume_that_keeps_failing_ends_in_an_error_record_not_the_poison_queue(
    services: AppServices, monkeypatch: pytest.MonkeyPatch
) -> None:
    accepted = body(post_json({"text": "Lease of premises.", "filename": "lease.txt"}))
    job_id = accepted["job_id"]

    def broken_resume(job_id: str) -> None:
        raise RuntimeError("storage kept timing out")

    # The engine fails; what is tested is the trigger's handling of its last delivery.
    monkeypatch.setattr(services.engine, "resume", broken_resume)
    message = json.dumps({"job_id": job_id, "reason": "test"}).encode()
    resume = handler("resume_job")
    with pytest.raises(RuntimeError):
        resume(QueueMessage(id="m1", body=message, dequeue_count=1))  # type: ignore[no-untyped-call]
    assert body(get_job(job_id))["status"] == "queued", "the host retries it"
    resume(QueueMessage(id="m1", body=message, dequeue_count=5))  # type: ignore[no-untyped-call]
    failed = body(get_job(job_id))
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "resume_failed"
    assert "resuming the job failed 5 times" in failed["error"]["reason"]
    output = services.blob_service.get_container_client(services.settings.output_container)
    assert current_outputs(output) == [f"{accepted['input']}.error.json"]


def test_a_message_that_is_not_a_resume_is_dropped_with_a_log_line(
    services: AppServices, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        handler("resume_job")(QueueMessage(id="m", body=b"hello", dequeue_count=1))  # type: ignore[no-untyped-call]
    assert "dropping a message that is not a resume" in caplog.text


def test_the_http_api_answers_while_every_handler_thread_is_busy(services: AppServices) -> None:
    """A person at the portal is answered while documents and timers fill the worker's pool.

    The app runs in the local Functions host with a pool of one thread for sync handlers
    (`PYTHON_THREADPOOL_THREAD_COUNT=1`), and that thread is held, as a long blob delivery or a
    reaper pass waiting on Azure would hold it. Every HTTP route must still answer.
    """
    routes = ["submit_job", "get_job", "portal", "list_profiles", "get_batch", "get_report"]

    async def scenario() -> None:
        host = LocalFunctionsHost(
            function_app.app, functions=routes, thread_pool_size=1, shutdown_timeout=5.0
        )
        async with host:
            release = threading.Event()
            pool = host._invoker._executor  # the host's pool of sync handler threads
            busy = asyncio.get_running_loop().run_in_executor(pool, release.wait, 120)
            # Bounded: before the HTTP handlers were async, each of these waited for the
            # held thread (here: for ever) and the page stopped answering.
            timeout = aiohttp.ClientTimeout(total=20)
            async with aiohttp.ClientSession(host.base_url, timeout=timeout) as http:
                async with http.get("/api/portal/") as page:
                    assert page.status == 200
                async with http.get("/api/profiles") as profiles:
                    assert profiles.status == 200
                submitted = {"text": "Lease of premises.", "filename": "lease.txt"}
                async with http.post("/api/jobs", json=submitted) as posted:
                    assert posted.status == 202, await posted.text()
                    job_id = (await posted.json())["job_id"]
                async with http.get(f"/api/jobs/{job_id}") as job:
                    assert job.status == 200 and (await job.json())["status"] == "queued"
                async with http.get("/api/batches/no-such-run") as batch:
                    assert batch.status == 404
                async with http.get("/api/report", params={"since": "PT1H"}) as report:
                    assert report.status == 200
            assert not busy.done(), "the pool's thread was held throughout"
            release.set()
            await busy

    asyncio.run(scenario())
