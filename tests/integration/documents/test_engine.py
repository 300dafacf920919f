"""The on-demand engine end to end: real SDKs against Azurite and the simulator.

Each test gets fresh containers and a fresh deployment name; the simulator is reset, so its
billing meter counts exactly the deployments this test created.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest

from shared.composition import AppServices
from shared.hosting.holds import KnownState
from shared.inference import ChatRequest, InferenceUnavailable
from simulator.process import RunningSimulator
from tests.integration.azure_state import deployment_gone
from tests.integration.conftest import ServicesFactory, ShiftedClock
from tests.integration.drive import drive, process_to_end
from tests.integration.outputs import current_outputs

CONTRACT = (
    "MASTER SERVICES AGREEMENT\n\nThe Supplier shall deliver the services described in "
    "Schedule 1.\n\nPayment is due within 30 days of invoice.\n"
)


# A profile with short answers, so small context windows still leave room to chunk.
SHORT_ANSWERS = json.dumps(
    {
        "default": {
            "system_prompt": "You review contracts.",
            "user_prompt_template": "{filename}:\n{document}",
            "max_output_tokens": 100,
        }
    }
)


def creates(sim: RunningSimulator) -> int:
    return len(sim.admin.billing()["deployments"])


def deployment_exists(services: AppServices) -> bool:
    return services.deployments.get(services.settings.deployment_name).exists


def output_json(services: AppServices, name: str) -> dict[str, Any]:
    container = services.blob_service.get_container_client(services.settings.output_container)
    return json.loads(container.download_blob(name).readall())  # type: ignore[no-any-return]


def process(services: AppServices, name: str, data: bytes) -> Any:
    return process_to_end(services, name, data)


def test_cold_document_provisions_once_writes_result_and_tears_down(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    services = make_services()
    outcome = process(services, "contract.txt", CONTRACT.encode())
    assert outcome.status == "succeeded"
    result = output_json(services, "contract.txt.result.json")
    provenance = result["provenance"]
    assert provenance["deployment"] == services.settings.deployment_name
    assert provenance["model"] == services.settings.model_name
    assert provenance["usage"]["total_tokens"] > 0
    assert provenance["wait_for_deployment_seconds"] > 0
    assert "sim-answer-" in json.dumps(result["answer"])
    record = services.jobs.get(outcome.job_id)
    assert record is not None
    assert [c.status for c in record.history] == [
        "queued",
        "waiting_for_deployment",
        "running",
        "succeeded",
    ]
    assert creates(sim) == 1
    assert deployment_gone(services, services.settings.deployment_name), (
        "idle grace 0 deletes after the last hold"
    )
    # The delete was sent, not followed; the reaper's next look at the account confirms it.
    assert services.model().ledger.read().state is KnownState.DELETING
    services.reaper.run("reaper:test")
    assert services.model().ledger.read().state is KnownState.ABSENT


def test_redelivery_never_processes_or_bills_twice(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    services = make_services()
    first = process(services, "a.txt", CONTRACT.encode())
    again = process(services, "a.txt", CONTRACT.encode())
    assert first.status == "succeeded"
    assert again.skipped and again.job_id == first.job_id
    assert creates(sim) == 1
    assert sim.admin.stats()["data"]["ok"] == 2  # one readiness probe, one answer


def test_warm_deployment_is_used_without_management_calls(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    services = make_services(IDLE_GRACE_SECONDS=3600)
    process(services, "one.txt", b"first document")
    management_before = sum(sim.admin.stats()["management"].values())
    outcome = process(services, "two.txt", b"second document")
    assert outcome.status == "succeeded"
    assert sum(sim.admin.stats()["management"].values()) == management_before
    assert deployment_exists(services), "the idle grace keeps it for the next document"


def start_create(services: AppServices) -> None:
    services.deployments.begin_create(services.model().spec)


def test_creating_deployment_is_waited_for_not_created_again(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    services = make_services()
    start_create(services)
    assert services.deployments.get(services.settings.deployment_name).provisioning_state in {
        "Accepted",
        "Creating",
    }
    assert process(services, "doc.txt", b"text").status == "succeeded"
    assert creates(sim) == 1


def test_deleting_deployment_is_waited_for_then_created(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    # Three real seconds of deleting: still Deleting when the document comes, however busy
    # the machine (the default, 50 ms, can be over before the next request is answered).
    sim.admin.configure(deletion_seconds=1800)
    services = make_services()
    start_create(services)
    name = services.settings.deployment_name
    while services.deployments.get(name).provisioning_state != "Succeeded":
        time.sleep(0.05)
    services.deployments.begin_delete(name)
    assert services.deployments.get(name).provisioning_state == "Deleting"
    assert process(services, "doc.txt", b"text").status == "succeeded"
    assert creates(sim) == 2


def test_failed_provisioning_is_retried_and_the_job_succeeds(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    services = make_services()
    sim.admin.fail_next_provisionings(1)
    assert process(services, "doc.txt", b"text").status == "succeeded"
    assert creates(sim) == 2


def test_provisioning_that_keeps_failing_fails_the_job_with_a_reason(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    services = make_services(CREATE_ATTEMPTS=2)
    sim.admin.fail_next_provisionings(5)
    outcome = process(services, "doc.txt", b"text")
    assert outcome.status == "failed"
    error = output_json(services, "doc.txt.error.json")["error"]
    assert error["code"] == "provisioning_failed"
    assert "failed 2 times" in error["reason"]
    assert creates(sim) == 2


def test_gateway_timeout_while_creating_rereads_state_instead_of_recreating(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    services = make_services()
    sim.admin.gateway_timeout_on_next_creates(1)
    assert process(services, "doc.txt", b"text").status == "succeeded"
    # azure-core itself retries the 504'd PUT and gets 409 (the create is running): the app
    # then follows the running creation instead of starting another.
    assert creates(sim) == 1


def test_quota_error_becomes_a_clear_failure_not_endless_retries(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    services = make_services(DEPLOYMENT_CAPACITY=100_000)
    outcome = process(services, "doc.txt", b"text")
    assert outcome.status == "failed"
    error = output_json(services, "doc.txt.error.json")["error"]
    assert error["code"] == "insufficient_quota"
    assert "DEPLOYMENT_CAPACITY" in error["reason"]
    assert sim.admin.stats()["management"]["PUT"] == 1


def test_data_plane_warmup_after_succeeded_is_waited_out(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    sim.admin.configure(warmup_seconds=600)  # one real second at the test time scale
    services = make_services()
    assert process(services, "doc.txt", b"text").status == "succeeded"
    assert sim.admin.stats()["data"]["not_found"] >= 1


def test_a_429_storm_is_ridden_out_with_retry_after(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    services = make_services(
        DEPLOYMENT_CAPACITY=2, IDLE_GRACE_SECONDS=3600, PROCESSING_PROFILES=SHORT_ANSWERS
    )
    process(services, "warm.txt", b"warm up")
    # Slow the clock so a minute's token window lasts a real second: four documents of about
    # a thousand tokens each arriving at once exceed the 2,000 tokens a minute of capacity 2.
    sim.admin.configure(time_scale=60)
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(
            pool.map(lambda i: process(services, f"doc{i}.txt", (CONTRACT * 20).encode()), range(4))
        )
    assert [o.status for o in outcomes] == ["succeeded"] * 4
    assert sim.admin.stats()["data"]["throttled"] >= 1


def test_server_errors_are_retried(make_services: ServicesFactory, sim: RunningSimulator) -> None:
    services = make_services(IDLE_GRACE_SECONDS=3600)
    process(services, "warm.txt", b"warm up")
    sim.admin.inject_errors("data", 503, 1.0, count=2)
    assert process(services, "doc.txt", b"text").status == "succeeded"


def test_deployment_deleted_behind_the_apps_back_mid_job_is_reprovisioned(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    # A small context window splits the document into several requests; latency makes the
    # job last long enough for the deployment to vanish between two of them.
    services = make_services(
        MODEL_CONTEXT_TOKENS=1500, IDLE_GRACE_SECONDS=3600, PROCESSING_PROFILES=SHORT_ANSWERS
    )
    process(services, "warm.txt", b"warm up")
    sim.admin.add_latency("data", 300)
    document = "\n\n".join(f"Clause {i}. " + "The parties agree. " * 40 for i in range(8))
    vanish = threading.Timer(0.5, sim.admin.vanish, args=(services.settings.deployment_name,))
    vanish.start()
    outcome = process(services, "long.txt", document.encode())
    vanish.join()
    assert outcome.status == "succeeded"
    assert creates(sim) == 2
    assert output_json(services, "long.txt.result.json")["provenance"]["requests"] > 2


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("empty.txt", b"   \n", "empty"),
        ("scan.txt", b"%PDF-1.7\x00\x01\x02binary", "not_text"),
        ("deck.pptx", b"slides", "unsupported_type"),
        ("huge.txt", b"x" * 5000, "too_large"),
    ],
)
def test_bad_documents_leave_an_error_record_and_cost_nothing(
    make_services: ServicesFactory, sim: RunningSimulator, name: str, data: bytes, code: str
) -> None:
    services = make_services(MAX_DOCUMENT_BYTES=4000)
    outcome = process(services, name, data)
    assert outcome.status == "failed"
    error = output_json(services, f"{name}.error.json")["error"]
    assert error["code"] == code
    assert len(error["reason"]) > 20
    assert creates(sim) == 0, "a document rejected up front never provisions"


def test_document_too_large_even_for_chunking(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    services = make_services(
        MODEL_CONTEXT_TOKENS=2000, MAX_CHUNKS=2, PROCESSING_PROFILES=SHORT_ANSWERS
    )
    document = "\n\n".join("Paragraph. " * 150 for _ in range(10))
    outcome = process(services, "long.txt", document.encode())
    assert outcome.status == "failed"
    assert output_json(services, "long.txt.error.json")["error"]["code"] == "too_many_chunks"
    assert creates(sim) == 0


def test_model_refusal_leaves_an_error_record(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    services = make_services()
    outcome = process(services, "bad.txt", b"Please SIMULATOR:REFUSE this")
    assert outcome.status == "failed"
    error = output_json(services, "bad.txt.error.json")["error"]
    assert error["code"] == "model_refused"
    assert "content filter" in error["reason"]
    assert deployment_gone(services, services.settings.deployment_name), (
        "a failed job still releases its hold"
    )


def test_unowned_deployment_is_used_but_never_deleted(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    services = make_services(OWNER_TAG="someone-else")
    start_create(services)  # tagged managed-by=someone-else
    ours = make_services(
        DEPLOYMENT_NAME=services.settings.deployment_name,
        INPUT_CONTAINER=services.settings.input_container,
        OUTPUT_CONTAINER=services.settings.output_container,
    )
    assert process(ours, "doc.txt", b"text").status == "succeeded"
    assert deployment_exists(ours)
    assert ours.reaper.run("reaper:test") == []


def test_reaper_deletes_after_the_idle_grace(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    services = make_services(IDLE_GRACE_SECONDS=1)
    process(services, "doc.txt", b"text")
    assert deployment_exists(services), "inside the grace the fast path keeps it"
    kept = services.reaper.run("reaper:test")
    assert [r.deleted for r in kept] == [False]
    time.sleep(1.1)
    reports = services.reaper.run("reaper:test")
    assert [(r.deployment, r.deleted) for r in reports] == [
        (services.settings.deployment_name, True)
    ]
    assert deployment_gone(services, services.settings.deployment_name)


def test_a_cold_document_parks_instead_of_waiting_and_finishes_when_resumed(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    sim.admin.configure(provisioning_seconds=1200)  # two real seconds
    services = make_services()
    started = time.monotonic()
    parked = services.engine.process_blob(services.settings.input_container, "doc.txt", b"text")
    assert parked.parked and parked.status == "waiting_for_deployment"
    # Parked, so it did not wait for the deployment to serve; the bound is loose for a busy
    # machine and catches only an invocation stuck on something else.
    assert time.monotonic() - started < 30, "the invocation ended without waiting"
    record = services.jobs.get(parked.job_id)
    assert record is not None
    assert record.worker is None, "the claim is given back while the job waits"
    assert record.waiting_reason is not None and "create sent" in record.waiting_reason
    assert record.parked_until is not None
    holds = services.model().ledger.read().holds
    assert [h.id for h in holds] == [f"job:{parked.job_id}"], "the hold stays for the wait"
    drive(services, [parked.job_id])
    done = services.jobs.get(parked.job_id)
    assert done is not None and done.status == "succeeded"
    assert done.attempts == 1, "waiting for the deployment spends no attempt"
    assert creates(sim) == 1


def test_waiting_past_the_provision_timeout_fails_with_a_record(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    sim.admin.configure(provisioning_seconds=1200)  # two real seconds
    impatient = make_services(PROVISION_TIMEOUT_SECONDS=0.5)
    outcome = process(impatient, "doc.txt", b"text")
    assert outcome.status == "failed"
    error = output_json(impatient, "doc.txt.error.json")["error"]
    assert error["code"] == "provisioning_timeout"
    assert "PROVISION_TIMEOUT_SECONDS" in error["reason"]
    ledger = impatient.model().ledger
    assert ledger.read().live_holds(ledger.now()) == ()
    # Nothing needs the deployment any more: it is not left to bill (no idle grace here).
    assert deployment_gone(impatient, impatient.settings.deployment_name)
    patient = make_services(PROVISION_TIMEOUT_SECONDS=30)
    assert process(patient, "other.txt", b"more text").status == "succeeded"


def test_leaked_hold_expires_and_reaper_cleans_up(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    clock = ShiftedClock()
    services = make_services(clock=clock, IDLE_GRACE_SECONDS=0)
    services.model().ledger.place_hold("crashed-job", "job", "dead-worker", timedelta(minutes=5))
    start_create(services)
    while (
        services.deployments.get(services.settings.deployment_name).provisioning_state
        != "Succeeded"
    ):
        time.sleep(0.05)
    assert [r.deleted for r in services.reaper.run("reaper:test")] == [False]
    clock.advance(5 * 60 + 1)  # the crashed job never renews its hold
    assert [r.deleted for r in services.reaper.run("reaper:test")] == [True]


def test_recreate_cooldown_is_waited_out_not_counted_as_a_failed_create(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    sim.admin.configure(recreate_cooldown_seconds=600)  # a real second after each delete
    services = make_services(CREATE_ATTEMPTS=1)
    assert process(services, "one.txt", b"first").status == "succeeded"
    assert deployment_gone(services, services.settings.deployment_name)
    assert process(services, "two.txt", b"second").status == "succeeded"
    assert creates(sim) == 2
    assert sim.admin.stats()["management"]["PUT"] > 2, "the name was refused at least once"


def test_a_transient_failure_is_retried_and_the_last_attempt_leaves_an_error_record(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    services = make_services(IDLE_GRACE_SECONDS=3600, MAX_JOB_ATTEMPTS=2, INFERENCE_MAX_SECONDS=0.3)
    assert process(services, "warm.txt", b"warm up").status == "succeeded"
    sim.admin.inject_errors("data", 503, 1.0)
    outcome = process(services, "doc.txt", b"text")
    assert outcome.status == "failed"
    error = output_json(services, "doc.txt.error.json")["error"]
    assert error["code"] == "inference_unavailable"
    assert "gave up after 2 attempts" in error["reason"]
    record = services.jobs.get(outcome.job_id)
    assert record is not None and record.status == "failed" and record.attempts == 2
    notes = [change.note or "" for change in record.history]
    assert any(note.startswith("retrying after: ") for note in notes), notes
    ledger = services.model().ledger
    assert ledger.read().live_holds(ledger.now()) == ()


def test_a_job_longer_than_its_timeout_stops_and_fails_on_its_last_attempt(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    services = make_services(
        MODEL_CONTEXT_TOKENS=1500,
        IDLE_GRACE_SECONDS=3600,
        PROCESSING_PROFILES=SHORT_ANSWERS,
        JOB_TIMEOUT_SECONDS=0.5,
        MAX_JOB_ATTEMPTS=1,
    )
    process(services, "warm.txt", b"warm up")
    sim.admin.add_latency("data", 300)
    document = "\n\n".join(f"Clause {i}. " + "The parties agree. " * 40 for i in range(16))
    ok_before = sim.admin.stats()["data"]["ok"]
    outcome = process(services, "long.txt", document.encode())
    assert outcome.status == "failed"
    error = output_json(services, "long.txt.error.json")["error"]
    assert error["code"] == "inference_unavailable"
    assert "JOB_TIMEOUT_SECONDS" in error["reason"]
    # At 0.3 s a request, a 0.5 s budget starts two of the five or more requests it needs.
    assert sim.admin.stats()["data"]["ok"] - ok_before == 2


def exhaust_request_window(services: AppServices) -> None:
    """A capacity-1 deployment allows one request per ten simulated seconds: use it up."""
    services.model().chat.complete(
        ChatRequest(
            messages=[{"role": "user", "content": "hello"}],
            max_tokens=50,
            response_format=None,
            temperature=0.0,
            purpose="test",
        )
    )


def test_the_readiness_probe_takes_a_429_as_routed_without_retrying(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    services = make_services(
        DEPLOYMENT_CAPACITY=1, IDLE_GRACE_SECONDS=3600, PROCESSING_PROFILES=SHORT_ANSWERS
    )
    assert process(services, "warm.txt", b"warm up").status == "succeeded"
    sim.admin.configure(time_scale=1)  # the ten-second request window lasts ten real seconds
    exhaust_request_window(services)
    before = sim.admin.stats()["data"]
    assert services.model().chat.serves()
    after = sim.admin.stats()["data"]
    assert after["throttled"] == before["throttled"] + 1
    assert after["ok"] == before["ok"], "one throttled probe, no retry until it passes"


def test_a_retry_after_beyond_the_budget_is_not_slept(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    services = make_services(
        DEPLOYMENT_CAPACITY=1,
        IDLE_GRACE_SECONDS=3600,
        INFERENCE_MAX_SECONDS=2,
        PROCESSING_PROFILES=SHORT_ANSWERS,
    )
    assert process(services, "warm.txt", b"warm up").status == "succeeded"
    sim.admin.configure(time_scale=1)
    exhaust_request_window(services)
    before = sim.admin.stats()["data"]
    with pytest.raises(InferenceUnavailable, match="1 attempt"):
        exhaust_request_window(services)  # answered 429 with Retry-After of several seconds
    assert sim.admin.stats()["data"]["throttled"] == before["throttled"] + 1


def test_an_answer_cut_off_at_max_tokens_is_a_failure_not_a_result(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    terse = json.dumps(
        {
            "default": {
                "system_prompt": "You review contracts.",
                "user_prompt_template": "{filename}:\n{document}",
                "max_output_tokens": 3,
            }
        }
    )
    services = make_services(PROCESSING_PROFILES=terse)
    outcome = process(services, "doc.txt", CONTRACT.encode())
    assert outcome.status == "failed"
    error = output_json(services, "doc.txt.error.json")["error"]
    assert error["code"] == "answer_truncated"
    assert "max_output_tokens" in error["reason"]
    container = services.blob_service.get_container_client(services.settings.output_container)
    assert current_outputs(container) == ["doc.txt.error.json"]


def test_every_log_line_of_a_job_carries_its_ids(
    make_services: ServicesFactory, caplog: pytest.LogCaptureFixture
) -> None:
    services = make_services()
    with caplog.at_level(logging.INFO, logger="shared"):
        outcome = process(services, "doc.txt", b"text")
    assert outcome.status == "succeeded"
    records = [r for r in caplog.records if r.name.startswith("shared.")]
    assert len(records) > 5
    assert {getattr(r, "job_id", None) for r in records} == {outcome.job_id}
    hosting = [r for r in records if r.name.startswith("shared.hosting")]
    assert hosting, "the provisioner logged while the job held the deployment"
    deployment = services.model().spec.name
    assert {(getattr(r, "model", None), getattr(r, "deployment", None)) for r in hosting} == {
        ("default", deployment)
    }
    assert {getattr(r, "hold_id", None) for r in hosting} == {f"job:{outcome.job_id}"}
