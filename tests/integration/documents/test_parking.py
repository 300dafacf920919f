"""Parking: a document for a cold deployment ends its invocation at once and is resumed later.

Against Azurite (the resume queue, job records) and the simulator; the resume queue's trigger is
played by `drive`, from the real queue messages.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from shared.composition import AppServices
from shared.documents.jobs import claim_job, job_id_for, new_job
from shared.hosting.holds import KnownState
from simulator.process import RunningSimulator
from tests.integration.conftest import ServicesFactory
from tests.integration.drive import drive, process_to_end


def deliver(services: AppServices, name: str, data: bytes) -> object:
    return services.engine.process_blob(services.settings.input_container, name, data)


def test_a_cold_burst_parks_at_once_and_all_finish_after_one_provisioning(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    # Thirty real seconds: longer than the burst takes even on a busy 2-core machine (ten were
    # outrun there, and documents arriving once it served rightly ran instead of parking).
    sim.admin.configure(provisioning_seconds=18000)
    # The test settings' 30 s PROVISION_TIMEOUT_SECONDS would end the wait exactly when the
    # deployment serves: the jobs may wait for it as long as it takes here.
    services = make_services(IDLE_GRACE_SECONDS=3600, PROVISION_TIMEOUT_SECONDS=180)
    container = services.settings.input_container

    def timed(i: int) -> tuple[float, object]:
        started = time.monotonic()
        outcome = services.engine.process_blob(container, f"doc-{i}.txt", f"Doc {i}.".encode())
        return time.monotonic() - started, outcome

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(timed, range(20)))
    assert all(outcome.parked for _, outcome in results)  # type: ignore[attr-defined]
    longest = max(seconds for seconds, _ in results)
    # Parked, so none waited for the deployment to serve (it would have run, not parked); the
    # bound only catches an invocation stuck on something else, loose for a busy machine.
    assert longest < 30.0, f"an invocation took {longest:.1f} s to park"
    drive(services, [outcome.job_id for _, outcome in results])  # type: ignore[attr-defined]
    for _, outcome in results:
        record = services.jobs.get(outcome.job_id)  # type: ignore[attr-defined]
        assert record is not None and record.status == "succeeded" and record.attempts == 1
    assert len(sim.admin.billing()["deployments"]) == 1
    calls = sum(int(v) for v in sim.admin.stats()["management"].values())
    # A list (room), a create and reads of the state at the steps' next-look times: at these
    # test timings about one a second over the thirty seconds of provisioning, however many
    # documents wait (twenty pollers would make hundreds); no poller thread follows the create.
    assert calls <= 45, f"{calls} management calls for 20 documents"
    assert sim.admin.stats()["management"]["POLL"] == 0


def test_a_delivery_meeting_a_dead_workers_live_claim_finishes_after_the_claim_expires(
    make_services: ServicesFactory,
) -> None:
    services = make_services(IDLE_GRACE_SECONDS=3600)
    container = services.settings.input_container
    data = b"Supply agreement."
    services.blob_service.get_container_client(container).upload_blob("doc.txt", data)
    job_id = job_id_for(container, "doc.txt", data)
    # A worker claimed the job, then died: its claim is live for two more seconds.
    now = services.model().ledger.now()
    dead = claim_job(
        new_job(job_id=job_id, container=container, blob_name="doc.txt", now=now),
        worker="dead-worker",
        now=now,
        ttl=timedelta(seconds=2),
    )
    assert dead is not None and services.jobs.create(dead)
    services.jobs.mark_open(job_id)
    outcome = services.engine.process_blob(container, "doc.txt", data)
    assert outcome.skipped, "another worker's live claim: not processed now"
    # Nothing delivers the blob again: the resume scheduled for after the claim does it.
    started = time.monotonic()
    drive(services, [job_id])
    assert time.monotonic() - started >= 1.0, "not before the dead worker's claim expired"
    record = services.jobs.get(job_id)
    assert record is not None and record.status == "succeeded"


def test_a_step_on_a_stale_view_of_a_ready_deployment_leaves_it_ready(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    services = make_services(IDLE_GRACE_SECONDS=3600)
    assert process_to_end(services, "warm.txt", b"warm up").status == "succeeded"
    hosted = services.model()
    ready = hosted.ledger.read()
    assert ready.state is KnownState.READY
    # What a job read before another one's step made the deployment ready.
    stale = ready.model_copy(update={"state": KnownState.PROVISIONING, "next_check_at": None})
    calls = dict(sim.admin.stats()["management"])
    step = hosted.provisioner.advance("late-worker", known=stale)
    assert step.ready
    assert hosted.ledger.read().state is KnownState.READY, "not marked provisioning again"
    assert sim.admin.stats()["management"] == calls, "Azure was not asked"
