"""A missing role fails a job at once and says which role; throttling is bounded by time.

Against the simulator: 401/403 answers are injected on either plane, and a capacity-1
deployment throttles real requests with Retry-After.
"""

from __future__ import annotations

import json
import time
from typing import Any

from shared.composition import AppServices
from shared.inference import ChatRequest
from simulator.process import RunningSimulator
from tests.integration.conftest import ServicesFactory
from tests.integration.drive import drive, process_to_end

SHORT_ANSWERS = json.dumps(
    {
        "default": {
            "system_prompt": "You review contracts.",
            "user_prompt_template": "{filename}:\n{document}",
            "max_output_tokens": 50,
        }
    }
)
HELLO = ChatRequest(
    messages=[{"role": "user", "content": "hello"}],
    max_tokens=50,
    response_format=None,
    temperature=0.0,
    purpose="test",
)


def process(services: AppServices, name: str, data: bytes) -> Any:
    return process_to_end(services, name, data)


def error_record(services: AppServices, name: str) -> dict[str, Any]:
    container = services.blob_service.get_container_client(services.settings.output_container)
    return json.loads(container.download_blob(f"{name}.error.json").readall())["error"]  # type: ignore[no-any-return]


def test_a_refused_management_call_fails_the_job_at_once_naming_the_role(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    services = make_services()
    sim.admin.inject_errors("management", 403, 1.0)
    outcome = process(services, "doc.txt", b"text")
    assert outcome.status == "failed"
    error = error_record(services, "doc.txt")
    assert error["code"] == "not_authorized"
    assert "AuthorizationFailed" in error["reason"]
    assert (
        "Cognitive Services OpenAI Contributor (a001fd3d-188f-4b5d-821b-7da978bf7442)"
        in error["reason"]
    )
    record = services.jobs.get(outcome.job_id)
    assert record is not None and record.attempts == 1, "no blind re-deliveries"


def test_a_refused_inference_fails_the_job_at_once_naming_the_role(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    services = make_services(IDLE_GRACE_SECONDS=3600)
    assert process(services, "warm.txt", b"warm up").status == "succeeded"
    sim.admin.inject_errors("data", 403, 1.0)
    before = sim.admin.stats()["data"]
    outcome = process(services, "doc.txt", b"text")
    assert outcome.status == "failed"
    error = error_record(services, "doc.txt")
    assert error["code"] == "not_authorized"
    assert "PermissionDenied" in error["reason"]
    assert (
        "Cognitive Services OpenAI Contributor (a001fd3d-188f-4b5d-821b-7da978bf7442) or, for "
        "inference alone, Cognitive Services OpenAI User (5e0bd9bd-7b93-4f28-af87-19fc36ad61bd)"
        in error["reason"]
    )
    assert f"account {services.settings.aoai_account_name!r}" in error["reason"]
    assert sim.admin.stats()["data"]["chat"] - before["chat"] == 1, "not retried"


def test_a_refused_readiness_probe_fails_the_job_too(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    services = make_services()
    sim.admin.inject_errors("data", 401, 1.0)
    outcome = process(services, "doc.txt", b"text")
    assert outcome.status == "failed"
    assert error_record(services, "doc.txt")["code"] == "not_authorized"


def test_throttling_is_bounded_by_time_not_by_a_count_of_short_waits(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    # One attempt for failures: under the old count-based stop the first 429 ended the request.
    services = make_services(
        DEPLOYMENT_CAPACITY=1,
        IDLE_GRACE_SECONDS=3600,
        INFERENCE_MAX_ATTEMPTS=1,
        INFERENCE_MAX_SECONDS=30,
        PROCESSING_PROFILES=SHORT_ANSWERS,
    )
    assert process(services, "warm.txt", b"warm up").status == "succeeded"
    # A capacity-1 deployment allows one request per ten simulated seconds: two and a half
    # real seconds at this time scale, so the second request is throttled however slowly a
    # busy machine sends it, and the Retry-After waits stay short.
    sim.admin.configure(time_scale=4)
    chat = services.model().chat
    chat.complete(HELLO)
    before = sim.admin.stats()["data"]
    result = chat.complete(HELLO)
    assert result.attempts >= 2
    assert sim.admin.stats()["data"]["throttled"] > before["throttled"]


def test_a_long_retry_after_before_any_answer_parks_the_job_instead_of_sleeping(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    services = make_services(
        DEPLOYMENT_CAPACITY=1,
        IDLE_GRACE_SECONDS=3600,
        THROTTLE_PARK_SECONDS=1,
        PROCESSING_PROFILES=SHORT_ANSWERS,
    )
    assert process(services, "warm.txt", b"warm up").status == "succeeded"
    # Real time: the ten-second request window of capacity 1 lasts ten real seconds.
    sim.admin.configure(time_scale=1)
    services.model().chat.complete(HELLO)
    started = time.monotonic()
    parked = services.engine.process_blob(services.settings.input_container, "doc.txt", b"text")
    # The Retry-After is about ten real seconds; a busy machine may take a few on its own.
    assert time.monotonic() - started < 8, "the invocation did not sleep out the Retry-After"
    assert parked.parked
    record = services.jobs.get(parked.job_id)
    assert record is not None and record.status == "queued"
    assert record.waiting_reason is not None
    assert record.waiting_reason.startswith("throttled: the deployment asked to wait")
    drive(services, [parked.job_id], timeout=60)
    done = services.jobs.get(parked.job_id)
    assert done is not None and done.status == "succeeded"
    assert done.attempts == 1, "waiting out throttling spends no attempt"
