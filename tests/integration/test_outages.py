"""Outages in the middle of a cold burst: the management API failing, storage frozen.

Every document ends in exactly one outcome, none spends an attempt on the outage, and no lease
or hold outlives its finish or release. Real SDKs against the simulator (which injects the
5xx answers) and Azurite (frozen with SIGSTOP, as a stalled storage front end would be).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from scripts.azurite import RunningAzurite
from shared.composition import AppServices
from shared.documents.engine import JobOutcome
from simulator.process import RunningSimulator
from tests.integration.conftest import ServicesFactory
from tests.integration.drive import drive
from tests.integration.outputs import current_outputs

DOCUMENTS = 8


def cold_burst(services: AppServices) -> list[JobOutcome]:
    container = services.settings.input_container
    return [
        services.engine.process_blob(container, f"doc-{i}.txt", f"Contract {i}.".encode())
        for i in range(DOCUMENTS)
    ]


def assert_one_clean_outcome_each(services: AppServices, outcomes: list[JobOutcome]) -> None:
    for outcome in outcomes:
        record = services.jobs.get(outcome.job_id)
        assert record is not None
        assert record.status == "succeeded", (record.status, record.error)
        assert record.attempts == 1, "the outage cost the document no attempt"
    output = services.blob_service.get_container_client(services.settings.output_container)
    assert current_outputs(output) == sorted(f"doc-{i}.txt.result.json" for i in range(DOCUMENTS))
    versions = [b.name for b in output.list_blobs(name_starts_with="versions/")]
    assert len(versions) == DOCUMENTS, "one outcome per document, no error beside a result"
    ledger = services.model().ledger
    ledger_record = ledger.read()
    assert ledger_record.lease is None, "no lease outlives its operation"
    assert ledger_record.live_holds(ledger.now()) == (), "no hold outlives its job"
    assert services.sweeper.run().open_jobs == 0


def test_the_management_api_failing_longer_than_the_sdk_retries_costs_no_attempt(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    # Six real seconds of provisioning: the burst finds it cold however busy the machine is.
    sim.admin.configure(provisioning_seconds=3600)
    services = make_services(IDLE_GRACE_SECONDS=3600)
    outcomes = cold_burst(services)
    assert all(o.parked for o in outcomes)
    # Every management call fails for a while: each provisioning step's read of the state
    # is retried by the SDK, then given up on, and the step is simply taken again later.
    sim.admin.inject_errors("management", 503, 1.0, count=6)
    drive(services, [o.job_id for o in outcomes], timeout=120)
    assert sim.admin.faults()["errors"]["management"]["remaining"] == 0, "all 6 were answered"
    assert_one_clean_outcome_each(services, outcomes)


@contextmanager
def frozen(azurite: RunningAzurite, seconds: float) -> Iterator[None]:
    """Storage stops answering for `seconds` (connections hang), then carries on."""
    os.kill(azurite.process.pid, signal.SIGSTOP)
    thaw = threading.Timer(seconds, os.kill, args=(azurite.process.pid, signal.SIGCONT))
    thaw.start()
    try:
        yield
    finally:
        thaw.join()
        os.kill(azurite.process.pid, signal.SIGCONT)


def test_storage_frozen_for_15_seconds_mid_burst_costs_no_attempt_and_leaks_nothing(
    make_services: ServicesFactory, azurite: RunningAzurite, sim: RunningSimulator
) -> None:
    sim.admin.configure(provisioning_seconds=1800)  # three real seconds
    # Claims and holds outlive the freeze, as they would a 15 s outage under Azure's timings.
    services = make_services(
        IDLE_GRACE_SECONDS=3600, JOB_HOLD_SECONDS=40, OPERATION_LEASE_SECONDS=40
    )
    outcomes = cold_burst(services)
    assert all(o.parked for o in outcomes)
    done = threading.Event()
    errors: list[BaseException] = []

    def resume_all() -> None:
        try:
            drive(services, [o.job_id for o in outcomes], timeout=180)
        except BaseException as error:
            errors.append(error)
        finally:
            done.set()

    driver = threading.Thread(target=resume_all, name="resume-driver")
    driver.start()
    time.sleep(1.0)  # mid-provisioning, resumes and renewals in flight
    with frozen(azurite, 15):
        pass
    driver.join(timeout=200)
    assert done.is_set() and not errors, errors
    assert_one_clean_outcome_each(services, outcomes)


def test_a_long_management_outage_costs_a_few_calls_whatever_waits_on_it(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    # Two instances of the app share one ledger: each resumes parked jobs and runs its reaper
    # as often as it likes while the management API answers nothing but 503 for 16 seconds.
    timings = {
        "IDLE_GRACE_SECONDS": 3600,
        "MANAGEMENT_POLL_SECONDS": 0.5,
        "PARK_MAX_SECONDS": 4,
        "JOB_HOLD_SECONDS": 30,
        "PROVISION_TIMEOUT_SECONDS": 120,
    }
    first = make_services(**timings)
    second = make_services(
        **timings, DEPLOYMENT_NAME=first.settings.deployment_name, **_same_containers(first)
    )
    injected = 100_000
    sim.admin.inject_errors("management", 503, 1.0, count=injected)
    outcomes = cold_burst(first)
    assert all(o.parked for o in outcomes)
    outage_ends = time.monotonic() + 16
    turn = 0
    while time.monotonic() < outage_ends:
        for instance in (first, second):
            instance.reaper.run("reaper:test")
            for resume, handle in instance.resumes.take_visible(lease_seconds=30):
                instance.engine.resume(resume.job_id)
                instance.resumes.done(handle)
        turn += 1
        time.sleep(0.1)
    calls = injected - sim.admin.faults()["errors"]["management"]["remaining"]
    sim.admin.clear_faults()
    record = first.model().ledger.read()
    assert record.management_failures >= 3, "the outage is on record for every instance"
    # Backing off from 0.5 s, doubling up to 4 s: about seven looks in 16 s, two calls each
    # (one quick retry), however many documents wait and however often the reapers run.
    assert calls <= 20, f"{calls} management calls during the outage ({turn} rounds)"

    drive(first, [o.job_id for o in outcomes], timeout=120)
    assert_one_clean_outcome_each(first, outcomes)
    assert first.model().ledger.read().management_failures == 0, "forgotten once it answers"


def _same_containers(services: AppServices) -> dict[str, str]:
    s = services.settings
    return {
        "INPUT_CONTAINER": s.input_container,
        "OUTPUT_CONTAINER": s.output_container,
        "LEDGER_CONTAINER": s.ledger_container,
        "JOBS_CONTAINER": s.jobs_container,
        "RESUME_QUEUE": s.resume_queue,
        "BATCH_CONTAINER": s.batch_container,
        "BATCH_OUTPUT_CONTAINER": s.batch_output_container,
        "BATCH_RUNS_CONTAINER": s.batch_runs_container,
        "BATCH_QUEUE": s.batch_queue,
    }
