"""`make demo`: the ad-hoc path end to end on the local Azure, through the function handlers.

Starts Azurite and the simulator, hosts `function_app.app` with the local Functions host, uploads a
document and submits another over HTTP while the deployment is cold, and reports what really
happened: the deployment's states as the management API reports them, both jobs' results,
the teardown after the idle grace, and the billed hosting time from the simulator's meter
beside what always-on and per-document hosting cost for the same work (the per-document
strategy is run for real afterwards, not estimated).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from tenacity import AsyncRetrying, RetryError, retry_if_result, stop_after_delay, wait_fixed

from scripts.interrupts import sigterm_as_keyboard_interrupt
from scripts.local_azure import LocalAzure, local_azure
from shared.documents.jobs import job_id_for

TIME_SCALE = 60.0  # simulated seconds per real second: a 5-minute provisioning takes 5 s
IDLE_GRACE_MINUTES = 3.0
CONTRACT = """MASTER SERVICES AGREEMENT

This agreement is made between Contoso Ltd ("Customer") and Fabrikam Inc ("Supplier").

The Supplier shall deliver the managed services described in Schedule 1 from 1 January 2027.
Fees are payable within 30 days of invoice. Either party may terminate on 90 days' notice.
"""
RFP = """Request for proposal: laptops for the Lisbon office.

We need 40 laptops with 32 GB of memory, delivered before 15 March 2027, with three years of
on-site support. Proposals are due by 31 January 2027.
"""


class Timeline:
    """Prints each step with the real seconds since the demo started and the simulator's own
    clock (simulated minutes since the local Azure started), read from its admin API."""

    def __init__(self, azure: LocalAzure) -> None:
        self._admin = azure.simulator.admin
        self._start = time.monotonic()
        self._sim_start = self._sim_now()

    def _sim_now(self) -> float:
        return float(self._admin.clock()["sim_now_epoch"])

    def __call__(self, message: str) -> None:
        elapsed = time.monotonic() - self._start
        simulated = (self._sim_now() - self._sim_start) / 60
        print(f"[{elapsed:6.1f} s | sim {simulated:5.1f} min] {message}", flush=True)


def demo_settings(azure: LocalAzure) -> dict[str, str]:
    return azure.app_settings(
        DEPLOYMENT_NAME="ft-on-demand",
        IDLE_GRACE_SECONDS=str(IDLE_GRACE_MINUTES * 60 / TIME_SCALE),
        MANAGEMENT_POLL_SECONDS=str(15 / TIME_SCALE),
        JOB_HOLD_SECONDS="60",
        OPERATION_LEASE_SECONDS="30",
        NOT_FOUND_RETRY_SECONDS="1",
        # Every real second is a simulated minute: the reaper's default cadence.
        REAPER_SCHEDULE="* * * * * *",
    )


async def wait_until(
    predicate: Callable[[], Any], timeout: float, what: str, poll: float = 0.25
) -> None:
    """Poll `predicate` in a thread until it is true, at most `timeout` seconds."""
    retrying = AsyncRetrying(
        retry=retry_if_result(lambda done: not done),
        stop=stop_after_delay(timeout),
        wait=wait_fixed(poll),
    )
    try:
        await retrying(asyncio.to_thread, predicate)
    except RetryError as error:
        raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}") from error


async def run_demo(azure: LocalAzure, say: Timeline) -> dict[str, Any]:
    # Inside the event loop SIGTERM cancels this task, as asyncio.run does for Ctrl-C: an
    # exception raised from a signal handler mid-loop can leave a task waiting forever.
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    os.environ.update(demo_settings(azure))
    # Imported only now: the app reads its settings lazily from this environment.
    import function_app  # noqa: PLC0415
    from scripts.functions_host.blobs import BlobOptions  # noqa: PLC0415
    from scripts.functions_host.host import LocalFunctionsHost  # noqa: PLC0415
    from scripts.functions_host.http import HttpOptions  # noqa: PLC0415
    from shared.composition import get_services  # noqa: PLC0415

    services = await asyncio.to_thread(get_services)
    name = services.settings.deployment_name
    states: list[str] = []

    def observe() -> str:
        snapshot = services.deployments.get(name)
        state = (snapshot.provisioning_state or "Unknown") if snapshot.exists else "absent"
        if not states or states[-1] != state:
            states.append(state)
            say(f"deployment {name}: {state} (management API)")
        return state

    host = LocalFunctionsHost(
        function_app.app,
        environ=os.environ,
        options=[HttpOptions(port=0), BlobOptions(poll_seconds=0.2, persist_receipts=False)],
        # On Ctrl-C the terminal signals the local Azure too: little is gained by waiting.
        shutdown_timeout=2.0,
    )
    async with host, aiohttp.ClientSession() as http:
        await asyncio.to_thread(observe)
        inputs = services.blob_service.get_container_client(services.settings.input_container)
        await asyncio.to_thread(inputs.upload_blob, "contracts/msa.txt", CONTRACT.encode())
        say(f"uploaded {inputs.container_name}/contracts/msa.txt (blob trigger path)")
        async with http.post(
            f"{host.base_url}/api/jobs",
            json={
                "text": RFP,
                "filename": "rfp-lisbon.txt",
                "questions": ["How many laptops?", "When are proposals due?"],
            },
        ) as response:
            accepted = await response.json()
            if response.status != 202:
                raise RuntimeError(f"POST /api/jobs answered {response.status}: {accepted}")
            say(f"POST /api/jobs -> {response.status}, job {accepted['job_id']} (portal path)")

        async def job_status(job_id: str) -> dict[str, Any]:
            async with http.get(f"{host.base_url}/api/jobs/{job_id}") as response:
                return await response.json()  # type: ignore[no-any-return]

        # The uploaded document's job id follows from its path and content.
        blob_job_id = job_id_for(inputs.container_name, "contracts/msa.txt", CONTRACT.encode())
        jobs: dict[str, dict[str, Any]] = {}

        async def both_done() -> bool:
            await asyncio.to_thread(observe)
            jobs["blob"] = await job_status(blob_job_id)
            jobs["http"] = await job_status(accepted["job_id"])
            return all(job.get("status") in {"succeeded", "failed"} for job in jobs.values())

        try:
            await AsyncRetrying(
                retry=retry_if_result(lambda done: not done),
                stop=stop_after_delay(120),
                wait=wait_fixed(0.25),
            )(both_done)
        except RetryError as error:
            raise TimeoutError("the two jobs did not finish within 120 s") from error
        blob_job, http_job = jobs["blob"], jobs["http"]
        for label, job in (("uploaded document", blob_job), ("HTTP submission", http_job)):
            where = job["result_blob"] or job["error_blob"]
            say(f"{label}: {job['status']} -> {services.settings.output_container}/{where}")
        result = http_job.get("result") or {}
        provenance = result.get("provenance", {})
        say(
            "HTTP job result: model {model}, {tokens} tokens, waited {wait} s for the "
            "deployment, inference {inference} s".format(
                model=provenance.get("model", "unknown"),
                tokens=provenance.get("usage", {}).get("total_tokens", "unknown"),
                wait=provenance.get("wait_for_deployment_seconds", "unknown"),
                inference=provenance.get("inference_seconds", "unknown"),
            )
        )
        say(f"HTTP job answer: {json.dumps(result.get('answer'))[:160]}")
        billing = await asyncio.to_thread(azure.simulator.admin.billing)
        created = len(billing["deployments"])
        shared = " (shared by both jobs)" if created == 1 else ""
        say(f"deployments created so far: {created}{shared}")
        say(f"waiting for the idle grace ({IDLE_GRACE_MINUTES:.0f} simulated min) and reaper")
        await wait_until(lambda: observe() == "absent", 60, "the deployment to be deleted")
        on_demand_bill = await asyncio.to_thread(azure.simulator.admin.billing)
    return {
        "states": states,
        "bill": on_demand_bill,
        "blob_status": blob_job["status"],
        "http_status": http_job["status"],
        "deleted": states[-1] == "absent",
    }


def run_per_document(azure: LocalAzure, say: Timeline) -> dict[str, Any]:
    """The seed's strategy on the same two documents: deploy, infer, delete for each."""
    from shared.composition import build_services  # noqa: PLC0415
    from shared.settings import AppSettings  # noqa: PLC0415

    azure.simulator.admin.reset()
    settings = {
        **demo_settings(azure),
        "DEPLOYMENT_NAME": "ft-per-document",
        "IDLE_GRACE_SECONDS": "0",
        "INPUT_CONTAINER": "per-document-in",
        "OUTPUT_CONTAINER": "per-document-out",
        "JOBS_CONTAINER": "per-document-jobs",
        "LEDGER_CONTAINER": "per-document-ledger",
    }
    services = build_services(AppSettings.model_validate(settings))
    for blob, text in (("msa.txt", CONTRACT), ("rfp-lisbon.txt", RFP)):
        outcome = services.engine.process_blob("per-document-in", blob, text.encode())
        exists = services.deployments.get(services.settings.deployment_name).exists
        after = "deployment still up after it" if exists else "deployment deleted after it"
        say(f"per-document strategy: {blob} {outcome.status}, {after}")
    return azure.simulator.admin.billing()


def report(say: Timeline, on_demand: dict[str, Any], per_document: dict[str, Any]) -> None:
    rate = on_demand["hourly_rate"]
    always_on_day = 24 * rate
    print()
    print("Billed hosting for the same two documents (simulator's billing meter):")
    print(f"  {'strategy':<34}{'deployments':>12}{'hosted min':>12}{'per-minute $':>14}"
          f"{'per-started-hour $':>20}")  # fmt: skip
    for label, bill in (("on demand (this app)", on_demand), ("per document (seed)", per_document)):
        print(
            f"  {label:<34}{len(bill['deployments']):>12}"
            f"{bill['billed_hosted_seconds'] / 60:>12.1f}{bill['per_minute']['cost']:>14.2f}"
            f"{bill['per_started_hour']['cost']:>20.2f}"
        )
    print(f"  {'always on (24 h x the fee)':<34}{1:>12}{24 * 60:>12.1f}{always_on_day:>14.2f}"
          f"{always_on_day:>20.2f}")  # fmt: skip
    print(f"  hosting fee ${rate:.2f}/hour (the meter's rate); always on is that fee times 24 h,")
    print("  not metered; per-minute vs per-started-hour billing is unverified")


def verdict(outcome: dict[str, Any]) -> tuple[bool, str]:
    """The closing line, from what was observed: both jobs, the creates, the deletion."""
    created = len(outcome["bill"]["deployments"])
    facts = [
        f"uploaded document {outcome['blob_status']}",
        f"HTTP submission {outcome['http_status']}",
        f"{created} provisioning(s)",
        "deployment deleted" if outcome["deleted"] else "deployment NOT deleted",
    ]
    ok = (
        outcome["blob_status"] == "succeeded"
        and outcome["http_status"] == "succeeded"
        and created == 1
        and outcome["deleted"]
    )
    return ok, ("demo finished: " if ok else "demo failed: ") + ", ".join(facts)


def main() -> int:
    # SIGTERM unwinds like Ctrl-C, so the local Azure is stopped either way.
    sigterm_as_keyboard_interrupt()
    print(f"On-demand hosting demo on the local Azure (1 real s = {TIME_SCALE:.0f} simulated s)")
    code = 1
    try:
        with local_azure(simulator_args=["--time-scale", str(TIME_SCALE)]) as azure:
            say = Timeline(azure)
            outcome = asyncio.run(run_demo(azure, say))
            # Closing the loop reset SIGTERM to its default, which would orphan the local Azure.
            sigterm_as_keyboard_interrupt()
            per_document = run_per_document(azure, say)
            report(say, outcome["bill"], per_document)
            ok, line = verdict(outcome)
            print(line, file=sys.stdout if ok else sys.stderr)
            code = 0 if ok else 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("demo interrupted; the local Azure is stopped", file=sys.stderr)
        code = 130
    except Exception as error:
        print(f"demo failed: {type(error).__name__}: {error}", file=sys.stderr)
    if code:
        # Handler threads still retrying against the stopped local Azure cannot be
        # interrupted and would hold the interpreter (and flood the log) for minutes.
        logging.disable(logging.CRITICAL)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
