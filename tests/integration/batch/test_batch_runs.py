"""Batch runs end to end: the real SDKs against Azurite and the simulator's rate limits.

Several hundred documents, a batch process killed mid-run and resumed, then, while the run
goes on, a 429 storm (the deployment's capacity halved behind the client's back), a 5xx
streak and the deployment vanishing: every document ends in exactly one outcome. A deadline
leaves the rest listed and in place; a second start of the same run id starts nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.composition import AppServices
from simulator.process import RunningSimulator
from tests.integration.azure_state import deployment_gone
from tests.integration.batch.helpers import (
    BATCH_PROFILES,
    drive_batches,
    outcomes_by_input,
    summary,
    upload_documents,
    version_outcomes,
)
from tests.integration.conftest import ServicesFactory

ROOT = Path(__file__).resolve().parents[3]
DOCUMENTS = 300
# The simulator at 120x: a provisioning takes 3 real seconds and a rate-limit minute half a
# second. Capacity 2 then allows 24 requests a real second: the batch's own pace, so the
# budgets bind.
TIME_SCALE = 120
CAPACITY = 2


BATCH_SETTINGS = {
    "PROCESSING_PROFILES": BATCH_PROFILES,
    "DEPLOYMENT_CAPACITY": str(CAPACITY),
    "RATE_LIMIT_MINUTE_SECONDS": str(60 / TIME_SCALE),
    "SWEEP_GRACE_SECONDS": "0.5",
}


def batch_services(make_services: ServicesFactory, sim: RunningSimulator) -> AppServices:
    sim.admin.configure(time_scale=TIME_SCALE)
    return make_services(**BATCH_SETTINGS)


def count_outcomes(services: AppServices, prefix: str) -> int:
    return sum(len(kinds) for kinds in outcomes_by_input(services, prefix).values())


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.05)


def test_a_killed_batch_resumes_through_faults_with_one_outcome_per_document(
    make_services: ServicesFactory,
    app_settings: dict[str, str],
    sim: RunningSimulator,
    tmp_path: Path,
) -> None:
    services = batch_services(make_services, sim)
    settings = services.settings
    batch_in = services.blob_service.get_container_client(settings.batch_container)
    names = upload_documents(batch_in, "in/", DOCUMENTS)
    run_id = "nightly-1"

    # 1. `hosting batch run` in its own process, killed once it has done some of the work.
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps({"Values": {**app_settings, **BATCH_SETTINGS}}))
    command = [sys.executable, "-m", "shared.console", "--settings", str(settings_file)]
    command += ["batch", "run", "default", "--run-id", run_id]
    command += ["--input-prefix", "in/", "--output-prefix", "out/"]
    doomed = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: count_outcomes(services, "out/") >= 60, 60, "60 outcomes")
    finally:
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=10)
    killed_at = count_outcomes(services, "out/")
    assert killed_at < DOCUMENTS, "killed mid-run"

    # 2. Nothing is queued for the killed run (the command drove it itself): the sweeper
    # finds it once the dead process's claim has lapsed, and queues its next slice, which is
    # played here as the continue_batch trigger does.
    dead = services.batches.runs.get(run_id)
    assert dead is not None and not dead.final and dead.worker is not None
    assert services.batches.sweep_stalled() == [], "the dead worker's claim is still live"
    wait_for(lambda: services.batches.sweep_stalled() == [run_id], 10, "the sweeper")
    errors: list[BaseException] = []
    finished = threading.Event()

    def resume() -> None:
        try:
            drive_batches(services, run_id, timeout=150)
        except BaseException as error:
            errors.append(error)
        finally:
            finished.set()

    driver = threading.Thread(target=resume, name="batch-driver")
    driver.start()
    deployment = settings.deployment_name
    # 3. Faults while it runs: a 429 storm, a 5xx streak, the deployment vanishing.
    wait_for(lambda: count_outcomes(services, "out/") >= killed_at + 30, 60, "progress")
    sim.admin.set_capacity(deployment, 1)
    time.sleep(1.5)
    sim.admin.set_capacity(deployment, CAPACITY)
    sim.admin.inject_errors("data", 503, 1.0, count=15)
    wait_for(lambda: count_outcomes(services, "out/") >= killed_at + 90, 60, "progress")
    sim.admin.vanish(deployment)
    driver.join(timeout=170)
    assert finished.is_set() and not errors, errors

    run = services.batches.runs.get(run_id)
    assert run is not None and run.status == "succeeded", run
    outcomes = outcomes_by_input(services, "out/")
    assert sorted(outcomes) == sorted(f"out/{n.removeprefix('in/')}" for n in names)
    assert all(len(kinds) == 1 for kinds in outcomes.values()), "one current outcome each"
    versions = version_outcomes(services, "out/")
    assert len(versions) == DOCUMENTS and set(versions.values()) == {1}, "one version outcome"
    assert all(kinds == [".result.json"] for kinds in outcomes.values()), "none failed"
    report = summary(services, run_id)
    documents = report["documents"]
    assert documents["listed"] == DOCUMENTS
    assert documents["succeeded"] + documents["failed"] + documents["skipped_already_done"] == (
        DOCUMENTS
    )
    assert documents["skipped_already_done"] > 0, "the killed run's finished documents"
    assert report["requests"]["throttled_429"] > 0, "the storm was met"
    assert sim.admin.faults()["errors"]["data"]["remaining"] == 0, "the 5xx streak was met"
    assert report["billed_hosting_seconds"] > 0 and report["slices"] >= 3
    ledger = services.model().ledger
    record = ledger.read()
    assert record.provision_count >= 2, "provisioned again after it vanished"
    assert not [h for h in record.live_holds(ledger.now()) if h.kind == "batch"]


def test_the_deadline_lists_what_is_left_and_leaves_it_in_place(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    services = batch_services(make_services, sim)
    batch_in = services.blob_service.get_container_client(services.settings.batch_container)
    names = upload_documents(batch_in, "late/", 240)
    # Capacity 2 at 120x: about 24 documents a second, so 240 need ten; the deadline comes
    # after the 3 s provisioning and about five seconds of work, so some are done and some
    # left even when a busy machine slows the run down.
    deadline = datetime.now(UTC) + timedelta(seconds=8)
    run = services.batches.start("default", "late-1", "late/", "late-out/", deadline)
    again = services.batches.start("default", "late-1", "late/", "late-out/", deadline)
    assert again.created == run.created, "the same run id is started once"
    ended = drive_batches(services, run.run_id, timeout=60)
    assert ended.status == "deadline_reached"
    report = summary(services, run.run_id)
    done = set(outcomes_by_input(services, "late-out/"))
    left_blob = services.blob_service.get_container_client(
        services.settings.batch_runs_container
    ).download_blob(report["left"]["list_blob"])
    left = left_blob.readall().decode().split()
    assert 0 < len(left) < len(names) and report["left"]["count"] == len(left)
    assert report["documents"]["left_at_deadline"] == len(left)
    # Every document is either done or listed as left, never both, never neither.
    done_inputs = {f"late/{name.removeprefix('late-out/')}" for name in done}
    assert done_inputs.isdisjoint(left) and done_inputs | set(left) == set(names)
    # Left in place for the next window.
    still_there = {b.name for b in batch_in.list_blobs(name_starts_with="late/")}
    assert still_there == set(names)
    assert report["documents"]["succeeded"] == len(done)


def test_an_ad_hoc_document_during_a_batch_rides_its_deployment(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    services = batch_services(make_services, sim)
    batch_in = services.blob_service.get_container_client(services.settings.batch_container)
    upload_documents(batch_in, "busy/", 100)
    run = services.batches.start("default", "busy-1", "busy/", "busy-out/", None)
    errors: list[BaseException] = []
    driver = threading.Thread(
        target=lambda: _collect(errors, lambda: drive_batches(services, run.run_id, timeout=90))
    )
    driver.start()
    wait_for(lambda: count_outcomes(services, "busy-out/") >= 10, 60, "the batch under way")
    # Idle grace 0: without the batch hold, this job's release would delete the deployment.
    outcome = services.engine.process_blob(
        services.settings.input_container, "ad-hoc.txt", b"Contract: 30 days notice."
    )
    assert outcome.status == "succeeded" and not outcome.parked, "served warm, inline"
    driver.join(timeout=100)
    assert not errors, errors
    ended = services.batches.runs.get(run.run_id)
    assert ended is not None and ended.status == "succeeded"
    assert count_outcomes(services, "busy-out/") == 100
    record = services.model().ledger.read()
    assert record.provision_count == 1, "one deployment for the batch and the ad-hoc job"
    assert record.live_holds(services.model().ledger.now()) == ()


def _collect(errors: list[BaseException], work: Callable[[], object]) -> None:
    try:
        work()
    except BaseException as error:
        errors.append(error)


def test_a_run_with_nothing_left_to_do_never_asks_for_the_deployment(
    make_services: ServicesFactory, sim: RunningSimulator
) -> None:
    services = make_services(PROCESSING_PROFILES=BATCH_PROFILES, IDLE_GRACE_SECONDS=0)
    batch_in = services.blob_service.get_container_client(services.settings.batch_container)
    upload_documents(batch_in, "nightly/", 60)
    first = services.batches.start("default", "nightly-1", "nightly/", "nightly-out/", None)
    assert drive_batches(services, first.run_id, timeout=90).status == "succeeded"
    ledger = services.model().ledger
    name = services.settings.deployment_name
    assert deployment_gone(services, name), "torn down after the first run"
    provisioned = ledger.read().provision_count
    puts = sim.admin.stats()["management"].get("PUT", 0)

    # The same prefix again, and a prefix with nothing in it: both end without a hold.
    again = services.batches.start("default", "nightly-2", "nightly/", "nightly-out/", None)
    empty = services.batches.start("default", "empty-1", "nothing-here/", "nothing-out/", None)
    for run in (again, empty):
        ended = drive_batches(services, run.run_id, timeout=60)
        assert ended.status == "succeeded", ended
        assert ended.needed_since is None and ended.first_ready_at is None
    report = summary(services, again.run_id)
    assert report["documents"]["skipped_already_done"] == 60
    assert report["documents"]["succeeded"] == 0
    assert summary(services, empty.run_id)["documents"]["skipped_already_done"] == 0
    assert ledger.read().provision_count == provisioned, "not provisioned again"
    assert sim.admin.stats()["management"].get("PUT", 0) == puts, "no create sent"
    assert not services.deployments.get(name).exists
    assert all(not h.id.startswith("batch:nightly-2") for h in ledger.read().holds)

    # A new document under the finished prefix is found past the done ones, and provisions.
    batch_in.upload_blob("nightly/doc-99999.txt", b"Invoice 99999: 5 EUR due now.")
    late = services.batches.start("default", "nightly-3", "nightly/", "nightly-out/", None)
    assert drive_batches(services, late.run_id, timeout=60).status == "succeeded"
    late_report = summary(services, late.run_id)
    documents = late_report["documents"]
    assert (documents["succeeded"], documents["skipped_already_done"]) == (1, 60)
    assert ledger.read().provision_count == provisioned + 1
