"""A job killed mid-flight: its hold expires, the reaper deletes, and the sweeper finishes it once,
with no re-delivery of its blob."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from typing import Any

from scripts.azurite import RunningAzurite
from shared.composition import build_services
from shared.documents.jobs import job_id_for
from shared.settings import AppSettings
from simulator.process import RunningSimulator
from tests.integration.azure_state import deployment_gone
from tests.integration.conftest import ShiftedClock, local_app_settings
from tests.integration.drive import drive, process_to_end
from tests.integration.outputs import current_outputs

DOCUMENT = b"Supply agreement.\n\nDelivery within 10 days of each order.\n"


def _doomed_instance(settings: dict[str, str], started: Any) -> None:
    services = build_services(AppSettings.model_validate(settings))
    started.set()
    process_to_end(services, "doc.txt", DOCUMENT)


def test_a_killed_job_is_reaped_and_finished_once_by_the_sweeper(
    azurite: RunningAzurite, sim: RunningSimulator
) -> None:
    # The killed instance's hold lasts 30 s from its last renewal: this process's clock is
    # moved past it, so no busy machine can let it lapse before the test looks.
    settings = local_app_settings(
        azurite, sim, JOB_HOLD_SECONDS=30, IDLE_GRACE_SECONDS=0, SWEEP_GRACE_SECONDS=0
    )
    clock = ShiftedClock()
    services = build_services(AppSettings.model_validate(settings), clock=clock)
    job_id = job_id_for(services.settings.input_container, "doc.txt", DOCUMENT)
    # Slow answers keep the doomed instance inside inference long enough to be killed there.
    sim.admin.add_latency("data", 3000)

    context = multiprocessing.get_context("spawn")
    started = context.Event()
    doomed = context.Process(target=_doomed_instance, args=(settings, started))
    doomed.start()
    assert started.wait(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        record = services.jobs.get(job_id)
        if record is not None and record.status == "running":
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the job never reached running")
    assert doomed.pid is not None
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.join(timeout=10)
    sim.admin.clear_faults()

    name = services.settings.deployment_name
    crashed = services.jobs.get(job_id)
    assert crashed is not None and crashed.status == "running" and crashed.worker is not None
    assert [h.id for h in services.model().ledger.read().holds] == [f"job:{job_id}"]
    # While the dead job's hold is live, the reaper keeps the deployment.
    assert [r.deleted for r in services.reaper.run("reaper:test")] == [False]
    lists = sim.admin.stats()["management"]["LIST"]
    assert services.reaper.run("reaper:test") == [], "held: the pass reads the ledger only"
    assert sim.admin.stats()["management"]["LIST"] == lists, "no management call while held"
    clock.advance(31)
    assert [r.deleted for r in services.reaper.run("reaper:test")] == [True]
    assert deployment_gone(services, name)

    # The host delivers nothing more: the sweeper finds the job whose claim expired.
    report = services.sweeper.run()
    assert report.resumed == [job_id]
    drive(services, [job_id])
    assert services.sweeper.run().resumed == [], "finished: nothing left to resume"
    once_more = services.engine.resume(job_id)
    assert once_more.skipped and once_more.status == "succeeded"

    output = services.blob_service.get_container_client(services.settings.output_container)
    assert current_outputs(output) == ["doc.txt.result.json"]
    record = services.jobs.get(job_id)
    assert record is not None and record.attempts == 2
    result = json.loads(output.download_blob("doc.txt.result.json").readall())
    assert result["job_id"] == job_id
    assert len(sim.admin.billing()["deployments"]) == 2, "the resumed job provisioned again"


VERSION_1 = b"Supply agreement, version 1.\n\nDelivery within 10 days.\n"
VERSION_2 = b"Supply agreement, version 2.\n\nDelivery within 5 days.\n"


def _doomed_version(settings: dict[str, str], started: Any) -> None:
    services = build_services(AppSettings.model_validate(settings))
    started.set()
    services.engine.process_blob(services.settings.input_container, "deal.txt", VERSION_1)


def test_an_older_version_whose_worker_died_is_recorded_as_superseded_not_missing(
    azurite: RunningAzurite, sim: RunningSimulator
) -> None:
    settings = local_app_settings(
        azurite, sim, JOB_HOLD_SECONDS=2, IDLE_GRACE_SECONDS=3600, SWEEP_GRACE_SECONDS=0
    )
    services = build_services(AppSettings.model_validate(settings))
    inputs = services.blob_service.get_container_client(services.settings.input_container)
    # A serving deployment, so version 1 runs inline and no copy of it is kept for a wait.
    assert process_to_end(services, "warm-up.txt", DOCUMENT).status == "succeeded"
    inputs.upload_blob("deal.txt", VERSION_1)
    first = job_id_for(services.settings.input_container, "deal.txt", VERSION_1)
    sim.admin.add_latency("data", 3000)

    context = multiprocessing.get_context("spawn")
    started = context.Event()
    doomed = context.Process(target=_doomed_version, args=(settings, started))
    doomed.start()
    assert started.wait(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        record = services.jobs.get(first)
        if record is not None and record.status == "running":
            break
        time.sleep(0.05)
    else:
        raise AssertionError("version 1 never reached running")
    inputs.upload_blob("deal.txt", VERSION_2, overwrite=True)
    assert doomed.pid is not None
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.join(timeout=10)
    sim.admin.clear_faults()

    second = process_to_end(services, "deal.txt", VERSION_2)
    assert second.status == "succeeded"
    deadline = time.monotonic() + 30
    while services.sweeper.run().resumed != [first]:  # once version 1's claim has lapsed
        assert time.monotonic() < deadline, "the sweeper never resumed version 1"
        time.sleep(0.2)
    drive(services, [first])

    record = services.jobs.get(first)
    assert record is not None and record.status == "failed" and record.error is not None
    assert record.error.code == "superseded", record.error
    assert second.job_id in record.error.reason and "Upload it again" not in record.error.reason
    assert record.superseded
    output = services.blob_service.get_container_client(services.settings.output_container)
    assert "deal.txt.result.json" in current_outputs(output)
    assert "deal.txt.error.json" not in current_outputs(output)
    current = json.loads(output.download_blob("deal.txt.result.json").readall())
    assert current["job_id"] == second.job_id, "the newest version's outcome stays current"
    kept = json.loads(output.download_blob(f"versions/deal.txt/{first}.error.json").readall())
    assert kept["error"]["code"] == "superseded"
