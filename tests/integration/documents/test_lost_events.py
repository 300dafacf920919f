"""A blob whose event never arrives is found by the intake sweep and processed, never lost.

The function app runs in the local Functions host with every function but the blob trigger:
an upload then fires nothing, exactly as when Event Grid drops the event. The timer
`sweep_lost_uploads` must notice the blob after the grace and hand it to the engine; the job
then parks and resumes through the real resume queue like any cold document.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Iterator

import pytest

from scripts.functions_host.host import LocalFunctionsHost
from shared import composition, settings
from shared.composition import AppServices
from shared.documents.intake_sweeper import IntakeSweepReport
from shared.documents.jobs import job_id_for
from tests.integration.conftest import ServicesFactory

CONTRACT = b"MASTER SERVICES AGREEMENT\n\nThe Supplier delivers. Payment is due in 30 days.\n"
EVERY_FUNCTION_BUT_THE_BLOB_TRIGGER = [
    "sweep_lost_uploads",
    "resume_job",
    "reap_idle_deployments",
    "sweep_stalled_jobs",
]


@pytest.fixture
def app_environment(app_settings: dict[str, str]) -> Iterator[dict[str, str]]:
    values = {
        **app_settings,
        "INTAKE_GRACE_SECONDS": "1",
        "REAPER_SCHEDULE": "* * * * * *",
        "SCHEDULE_RECONCILE_SCHEDULE": "0 0 0 1 1 *",
    }
    saved = dict(os.environ)
    os.environ.update(values)
    settings.get_settings.cache_clear()
    composition.reset_services()
    try:
        yield values
    finally:
        os.environ.clear()
        os.environ.update(saved)
        settings.get_settings.cache_clear()
        composition.reset_services()


def test_an_upload_whose_event_was_lost_is_processed_by_the_intake_sweep(
    app_environment: dict[str, str],
) -> None:
    import function_app

    services = composition.get_services()
    name = "contracts/msa.txt"
    job_id = job_id_for(services.settings.input_container, name, CONTRACT)

    async def scenario() -> None:
        host = LocalFunctionsHost(
            function_app.app,
            environ=os.environ,
            functions=EVERY_FUNCTION_BUT_THE_BLOB_TRIGGER,
            host_id=f"lost-{app_environment['INPUT_CONTAINER']}",
            shutdown_timeout=5.0,
        )
        async with host:
            assert "process_uploaded_document" not in " ".join(host.describe())
            container = services.blob_service.get_container_client(
                services.settings.input_container
            )
            await asyncio.to_thread(container.upload_blob, name, CONTRACT)
            deadline = time.monotonic() + 90
            while not finished(services, job_id):
                assert time.monotonic() < deadline, "the lost upload was never processed"
                await asyncio.sleep(0.1)
            swept = [r for r in host.invocations if r.function_name == "sweep_lost_uploads"]
            assert swept and all(r.succeeded for r in swept)

    asyncio.run(scenario())
    record = services.jobs.get(job_id)
    assert record is not None and record.status == "succeeded", record
    output = services.blob_service.get_container_client(services.settings.output_container)
    result = json.loads(output.download_blob(f"{name}.result.json").readall())
    assert result["job_id"] == job_id


def finished(services: AppServices, job_id: str) -> bool:
    record = services.jobs.get(job_id)
    return record is not None and record.status in {"succeeded", "failed"}


def test_the_sweep_goes_page_by_page_from_its_marker_and_skips_what_a_cycle_checked(
    make_services: ServicesFactory,
) -> None:
    services = make_services(INTAKE_GRACE_SECONDS=0, INTAKE_SWEEP_PAGE_SIZE=2)
    container = services.blob_service.get_container_client(services.settings.input_container)
    names = [f"lost-{n}.txt" for n in range(5)]
    for n, name in enumerate(names):
        container.upload_blob(name, CONTRACT + str(n).encode())
    handled_by_trigger = "handled.txt"  # its event arrived: a job exists, nothing to recover
    container.upload_blob(handled_by_trigger, CONTRACT + b"handled")
    services.engine.process_blob(
        container.container_name, handled_by_trigger, CONTRACT + b"handled"
    )

    passes = []
    while True:
        report = services.intake.run()
        passes.append(report)
        if report.cycle_completed:
            break
    assert [p.listed for p in passes] == [2, 2, 2], "one page per pass, from the saved marker"
    recovered = [job for p in passes for job in p.recovered]
    expected = {
        job_id_for(container.container_name, name, CONTRACT + str(n).encode())
        for n, name in enumerate(names)
    }
    assert set(recovered) == expected and len(recovered) == 5
    for job_id in expected:
        assert services.jobs.get(job_id) is not None

    # Later cycles list again but download nothing once the clock margin has passed: every
    # blob was checked already.
    later = sweep_until(services, lambda report: report.cycle_completed and report.checked == 0)
    assert not any(p.recovered for p in later)

    # A new version (new content) of a checked blob is looked at again, and recovered once.
    container.upload_blob(names[0], CONTRACT + b"v2", overwrite=True)
    new_job = job_id_for(container.container_name, names[0], CONTRACT + b"v2")
    reports = sweep_until(services, lambda report: new_job in report.recovered)
    reports += sweep_until(services, lambda report: report.cycle_completed and report.checked == 0)
    assert [job for p in reports for job in p.recovered] == [new_job]


def sweep_until(
    services: AppServices, done: Callable[[IntakeSweepReport], bool], timeout: float = 30
) -> list[IntakeSweepReport]:
    """Sweep passes until one satisfies `done`; every report, in order."""
    reports: list[IntakeSweepReport] = []
    deadline = time.monotonic() + timeout
    while not reports or not done(reports[-1]):
        assert time.monotonic() < deadline, f"no pass did it: {reports[-3:]}"
        reports.append(services.intake.run())
    return reports
