"""Many instances, one deployment: 4 OS processes and 40 documents arriving together.

Documents for the cold deployment park; the processes resume them from one resume queue.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from scripts.azurite import RunningAzurite
from shared.composition import build_services
from shared.settings import AppSettings
from simulator.process import RunningSimulator
from tests.integration.azure_state import deployment_gone
from tests.integration.conftest import local_app_settings
from tests.integration.drive import process_to_end
from tests.integration.outputs import current_outputs

PROCESSES = 4
DOCUMENTS_PER_PROCESS = 10


def _instance(settings: dict[str, str], index: int, start: Any, results: Any) -> None:
    services = build_services(AppSettings.model_validate(settings))
    names = [f"batch/doc-{index}-{i}.txt" for i in range(DOCUMENTS_PER_PROCESS)]
    start.wait(timeout=60)

    def run(name: str) -> str:
        try:
            text = f"Document {name}.\n\nThe supplier shall deliver on time.\n"
            # Parked documents are resumed from the shared resume queue by whichever
            # process receives their message, as instances do in Azure.
            return process_to_end(services, name, text.encode(), timeout=300).status
        except Exception as error:  # reported to the parent, which fails the test
            return f"error: {type(error).__name__}: {error}"

    with ThreadPoolExecutor(max_workers=DOCUMENTS_PER_PROCESS) as pool:
        statuses = list(pool.map(run, names))
    results.put((index, statuses))


def test_forty_documents_from_four_processes_share_one_deployment(
    azurite: RunningAzurite, sim: RunningSimulator
) -> None:
    # Claims and holds of 120 s, and three minutes to wait for the deployment: forty documents
    # in four processes on a loaded two-core machine must not time out while one provisions,
    # and a parked job whose resume comes late must still hold the deployment (with 30 s, a
    # run beside another suite saw every hold lapse, the deployment deleted and made again).
    # Holds end when their jobs do, so the longer lease costs this test nothing.
    settings = local_app_settings(
        azurite, sim, IDLE_GRACE_SECONDS=2, JOB_HOLD_SECONDS=120, PROVISION_TIMEOUT_SECONDS=180
    )
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    results = context.Queue()
    processes = [
        context.Process(target=_instance, args=(settings, i, start, results))
        for i in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    start.set()
    collected = dict(results.get(timeout=600) for _ in processes)
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0

    statuses = [status for index in sorted(collected) for status in collected[index]]
    assert statuses == ["succeeded"] * (PROCESSES * DOCUMENTS_PER_PROCESS)
    billing = sim.admin.billing()
    assert len(billing["deployments"]) == 1, "exactly one create for the whole burst"

    services = build_services(AppSettings.model_validate(settings))
    output = services.blob_service.get_container_client(services.settings.output_container)
    results_written = [n for n in current_outputs(output) if n.endswith(".result.json")]
    assert len(results_written) == PROCESSES * DOCUMENTS_PER_PROCESS
    assert len(set(results_written)) == len(results_written)
    assert not [n for n in current_outputs(output) if n.endswith(".error.json")]

    # Still up inside the idle grace; the reaper deletes it once the grace has passed.
    name = services.settings.deployment_name
    assert services.deployments.get(name).exists
    assert services.model().ledger.read().holds == ()
    for _ in range(60):
        if any(report.deleted for report in services.reaper.run("reaper:test")):
            break
        time.sleep(0.1)
    assert deployment_gone(services, name)
    assert billing["deployments"][0]["deleted"] is None  # it was still up when measured
    assert sim.admin.billing()["deployments"][0]["deleted"] is not None
