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
    services = make_services(IDLE_GRACE_SECONDS=3600)
    outcomes = cold_burst(services)
    assert all(o.parked for o in outcomes)
    # Every management call fails for a while: each provisioning step's read of the state
    # is retried by the SDK, then given up on, and the step is simply taken again later.
    sim.admin.inject_errors("management", 503, 1.0, count=12)
    drive(services, [o.job_id for o in outcomes], timeout=120)
    assert sim.admin.faults()["errors"]["management"]["remaining"] == 0, "all 12 were answered"
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
