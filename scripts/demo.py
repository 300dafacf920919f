"""`make demo`: two hosted models end to end on the local Azure, through the function handlers.

Starts Azurite and the simulator, hosts `function_app.app` with the local Functions host and a
hosted-models file declaring two fine-tuned models (contracts and RFPs, each with its own
deployment and idle grace), uploads two contracts and submits an RFP over HTTP while both
deployments are cold, and reports what really happened: each deployment's states as the
management API reports them, the jobs' results, each teardown after its own grace, and the
billed hosting time per model from the simulator's meter beside what always-on and
per-document hosting cost for the same work (the per-document strategy is run for real
afterwards, not estimated).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from tenacity import AsyncRetrying, RetryError, retry_if_result, stop_after_delay, wait_fixed

from scripts.demo_plan import show_plan_for_reference_trace
from scripts.interrupts import sigterm_as_keyboard_interrupt
from scripts.local_azure import LOCAL_MODEL, LocalAzure, local_azure

if TYPE_CHECKING:
    pass
from scripts.resume_player import finish_parked
from shared.documents.jobs import job_id_for

TIME_SCALE = 60.0  # simulated seconds per real second: a 5-minute provisioning takes 5 s
# Each hosted model has its own grace, so the two deployments go at different times.
IDLE_GRACE_MINUTES = {"contracts": 3.0, "rfps": 6.0}
DEPLOYMENTS = {"contracts": "ft-contracts", "rfps": "ft-rfps"}
LOCAL_BASE_MODEL = LOCAL_MODEL.split(".ft-", 1)[0]
CONTRACT = """MASTER SERVICES AGREEMENT

This agreement is made between Contoso Ltd ("Customer") and Fabrikam Inc ("Supplier").

The Supplier shall deliver the managed services described in Schedule 1 from 1 January 2027.
Fees are payable within 30 days of invoice. Either party may terminate on 90 days' notice.
"""
NDA = """MUTUAL NON-DISCLOSURE AGREEMENT

Between Contoso Ltd and Northwind Traders. Each party keeps the other's confidential
information secret for five years from 1 February 2027. Either party may end it in writing.
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


def write_catalog(folder: Path, *, grace_minutes: dict[str, float]) -> Path:
    """The hosted-models file of the demo: two models, a profile routing to each."""
    lines: list[str] = []
    for model, deployment in DEPLOYMENTS.items():
        lines += [
            f"[models.{model}]",
            f'deployment = "{deployment}"',
            f'fine_tuned_model = "{LOCAL_BASE_MODEL}.ft-{model}"',
            "capacity = 10",
            f"idle_grace_seconds = {grace_minutes[model] * 60 / TIME_SCALE}",
            "",
        ]
    lines += [
        "[profiles.contracts]",
        'model = "contracts"',
        'system_prompt = "You review contracts."',
        'user_prompt_template = "Contract {filename}:\\n{document}\\n\\n{questions}"',
        'questions = ["Who are the parties?", "When can it be terminated?"]',
        "",
        "[profiles.rfps]",
        'model = "rfps"',
        'system_prompt = "You read requests for proposals."',
        'user_prompt_template = "RFP {filename}:\\n{document}\\n\\n{questions}"',
    ]
    path = folder / "hosting.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def demo_settings(azure: LocalAzure, catalog: Path) -> dict[str, str]:
    settings = azure.app_settings(
        HOSTING_CONFIG_FILE=str(catalog),
        MANAGEMENT_POLL_SECONDS=str(15 / TIME_SCALE),
        EXPECTED_PROVISION_SECONDS=str(300 / TIME_SCALE),
        PARK_MAX_SECONDS=str(300 / TIME_SCALE),
        JOB_HOLD_SECONDS="60",
        OPERATION_LEASE_SECONDS="30",
        NOT_FOUND_RETRY_SECONDS="1",
        # Every real second is a simulated minute: the reaper's default cadence.
        REAPER_SCHEDULE="* * * * * *",
    )
    del settings["FINE_TUNED_MODEL"]  # the file declares the models
    return settings


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


async def run_demo(azure: LocalAzure, say: Timeline, catalog: Path) -> dict[str, Any]:
    # Inside the event loop SIGTERM cancels this task, as asyncio.run does for Ctrl-C: an
    # exception raised from a signal handler mid-loop can leave a task waiting forever.
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    os.environ.update(demo_settings(azure, catalog))
    # Imported only now: the app reads its settings lazily from this environment.
    import function_app  # noqa: PLC0415
    from scripts.functions_host.blobs import BlobOptions  # noqa: PLC0415
    from scripts.functions_host.host import LocalFunctionsHost  # noqa: PLC0415
    from scripts.functions_host.http import HttpOptions  # noqa: PLC0415
    from shared.composition import get_services  # noqa: PLC0415

    services = await asyncio.to_thread(get_services)
    states: dict[str, list[str]] = {name: [] for name in DEPLOYMENTS.values()}

    def observe() -> dict[str, str]:
        now: dict[str, str] = {}
        for name, seen in states.items():
            snapshot = services.deployments.get(name)
            state = (snapshot.provisioning_state or "Unknown") if snapshot.exists else "absent"
            if not seen or seen[-1] != state:
                seen.append(state)
                say(f"deployment {name}: {state} (management API)")
            now[name] = state
        return now

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
        for blob, text in (("contracts/msa.txt", CONTRACT), ("contracts/nda.txt", NDA)):
            await asyncio.to_thread(inputs.upload_blob, blob, text.encode())
            say(f"uploaded {inputs.container_name}/{blob} (blob trigger, model contracts)")
        async with http.post(
            f"{host.base_url}/api/jobs",
            json={
                "text": RFP,
                "filename": "rfp-lisbon.txt",
                "profile": "rfps",
                "questions": ["How many laptops?", "When are proposals due?"],
            },
        ) as response:
            accepted = await response.json()
            if response.status != 202:
                raise RuntimeError(f"POST /api/jobs answered {response.status}: {accepted}")
            say(
                f"POST /api/jobs -> {response.status}, job {accepted['job_id']} "
                "(portal path, profile rfps, model rfps)"
            )

        async def job_status(job_id: str) -> dict[str, Any]:
            async with http.get(f"{host.base_url}/api/jobs/{job_id}") as response:
                return await response.json()  # type: ignore[no-any-return]

        # An uploaded document's job id follows from its path and content.
        job_ids = {
            "uploaded MSA": job_id_for(
                inputs.container_name, "contracts/msa.txt", CONTRACT.encode()
            ),
            "uploaded NDA": job_id_for(inputs.container_name, "contracts/nda.txt", NDA.encode()),
            "submitted RFP": accepted["job_id"],
        }
        jobs: dict[str, dict[str, Any]] = {}

        async def all_done() -> bool:
            await asyncio.to_thread(observe)
            for label, job_id in job_ids.items():
                jobs[label] = await job_status(job_id)
            return all(job.get("status") in {"succeeded", "failed"} for job in jobs.values())

        try:
            await AsyncRetrying(
                retry=retry_if_result(lambda done: not done),
                stop=stop_after_delay(120),
                wait=wait_fixed(0.25),
            )(all_done)
        except RetryError as error:
            raise TimeoutError("the three jobs did not finish within 120 s") from error
        http_job = jobs["submitted RFP"]
        for label, job in jobs.items():
            where = job["result_blob"] or job["error_blob"]
            say(
                f"{label}: {job['status']} on model {job.get('model')} -> "
                f"{services.settings.output_container}/{where}"
            )
        result = http_job.get("result") or {}
        provenance = result.get("provenance", {})
        say(
            "RFP result: deployment {deployment}, {tokens} tokens, waited {wait} s for the "
            "deployment, inference {inference} s".format(
                deployment=provenance.get("deployment", "unknown"),
                tokens=provenance.get("usage", {}).get("total_tokens", "unknown"),
                wait=provenance.get("wait_for_deployment_seconds", "unknown"),
                inference=provenance.get("inference_seconds", "unknown"),
            )
        )
        say(f"RFP answer: {json.dumps(result.get('answer'))[:160]}")
        billing = await asyncio.to_thread(azure.simulator.admin.billing)
        say(f"deployments created so far: {len(billing['deployments'])} (one per model)")
        graces = ", ".join(f"{m} {g:.0f}" for m, g in IDLE_GRACE_MINUTES.items())
        say(f"waiting for each model's idle grace (simulated min: {graces}) and the reaper")
        await wait_until(
            lambda: set(observe().values()) == {"absent"}, 90, "both deployments to be deleted"
        )
        on_demand_bill = await asyncio.to_thread(azure.simulator.admin.billing)
        # The app logs a deletion it did not follow as gone at the reaper's next pass: the run
        # ends with that, so its savings report has both lifetimes closed.
        await wait_until(
            lambda: all(h.ledger.read().state.value == "absent" for h in services.hosted.values()),
            30,
            "the reaper to confirm both deletions",
        )
    return {
        "states": states,
        "bill": on_demand_bill,
        "jobs": {label: (job["status"], job.get("model")) for label, job in jobs.items()},
        "deleted": all(seen[-1] == "absent" for seen in states.values()),
    }


def run_per_document(azure: LocalAzure, say: Timeline, folder: Path) -> dict[str, Any]:
    """The seed's strategy on the same two documents: deploy, infer, delete for each."""
    from shared.composition import build_services  # noqa: PLC0415
    from shared.settings import AppSettings  # noqa: PLC0415

    say(
        "for comparison, the same three documents the per-document way (each gets its own "
        "deployment, deleted as soon as it is done), on a fresh local Azure:"
    )
    say(
        "  with per-minute billing, three documents that arrive together cost less this way "
        "than a deployment kept for an idle grace; the grace pays when more documents follow "
        "within it, and always under per-started-hour billing (see the bill below)"
    )
    azure.simulator.admin.reset()
    folder.mkdir(exist_ok=True)
    catalog = write_catalog(folder, grace_minutes=dict.fromkeys(DEPLOYMENTS, 0.0))
    settings = {
        **demo_settings(azure, catalog),
        "INPUT_CONTAINER": "per-document-in",
        "OUTPUT_CONTAINER": "per-document-out",
        "JOBS_CONTAINER": "per-document-jobs",
        "LEDGER_CONTAINER": "per-document-ledger",
        "HOSTING_LOG_CONTAINER": "per-document-log",
    }
    services = build_services(AppSettings.model_validate(settings))
    for blob, text, model in (
        ("contracts/msa.txt", CONTRACT, "contracts"),
        ("contracts/nda.txt", NDA, "contracts"),
        ("rfps/rfp-lisbon.txt", RFP, "rfps"),
    ):
        outcome = services.engine.process_blob("per-document-in", blob, text.encode())
        status = finish_parked(services, outcome.job_id) if outcome.parked else outcome.status
        snapshot = services.deployments.get(DEPLOYMENTS[model])
        if not snapshot.exists:
            after = "its deployment is gone"
        elif snapshot.provisioning_state == "Deleting":
            after = "its deployment is being deleted (idle grace 0)"
        else:
            after = f"its deployment is still {snapshot.provisioning_state}"
        say(f"per-document: {blob} {status}; {after}")
    return azure.simulator.admin.billing()


def report(on_demand: dict[str, Any], per_document: dict[str, Any]) -> None:
    rate = on_demand["hourly_rate"]
    print()
    print("Billed hosting per model (simulator's billing meter):")
    print(f"  {'model':<12}{'deployment':<16}{'idle grace':>12}{'hosted min':>12}"
          f"{'per-minute $':>14}")  # fmt: skip
    by_name = {d["name"]: d for d in on_demand["deployments"]}
    for model, name in DEPLOYMENTS.items():
        item = by_name.get(name, {"hosted_seconds": 0.0, "billed_minutes": 0})
        print(
            f"  {model:<12}{name:<16}{IDLE_GRACE_MINUTES[model]:>8.0f} min"
            f"{item['hosted_seconds'] / 60:>12.1f}{item['billed_minutes'] * rate / 60:>14.2f}"
        )
    print()
    print("Billed hosting for the same three documents, all models:")
    print(f"  {'strategy':<34}{'deployments':>12}{'hosted min':>12}{'per-minute $':>14}"
          f"{'per-started-hour $':>20}")  # fmt: skip
    for label, bill in (("on demand (this app)", on_demand), ("per document (seed)", per_document)):
        print(
            f"  {label:<34}{len(bill['deployments']):>12}"
            f"{bill['billed_hosted_seconds'] / 60:>12.1f}{bill['per_minute']['cost']:>14.2f}"
            f"{bill['per_started_hour']['cost']:>20.2f}"
        )
    always_on = 24 * rate * len(DEPLOYMENTS)
    print(f"  {'always on (2 models x 24 h x fee)':<34}{len(DEPLOYMENTS):>12}"
          f"{24 * 60 * len(DEPLOYMENTS):>12.1f}{always_on:>14.2f}{always_on:>20.2f}")  # fmt: skip
    print(f"  hosting fee ${rate:.2f}/hour (the meter's rate); always on is that fee times 24 h,")
    print("  not metered; per-minute vs per-started-hour billing is unverified")


EXPECTED_MODELS = {
    "uploaded MSA": "contracts",
    "uploaded NDA": "contracts",
    "submitted RFP": "rfps",
}


def verdict(outcome: dict[str, Any]) -> tuple[bool, str]:
    """The closing line, from what was observed: the jobs, their models, creates, deletions."""
    created = len(outcome["bill"]["deployments"])
    jobs: dict[str, tuple[str, str | None]] = outcome["jobs"]
    facts = [f"{label} {status} on model {model}" for label, (status, model) in jobs.items()]
    facts.append(f"{created} provisioning(s)")
    facts.append(
        "both deployments deleted" if outcome["deleted"] else "a deployment was NOT deleted"
    )
    ok = (
        all(status == "succeeded" for status, _ in jobs.values())
        and {label: model for label, (_, model) in jobs.items()} == EXPECTED_MODELS
        and created == len(DEPLOYMENTS)
        and outcome["deleted"]
    )
    return ok, ("demo finished: " if ok else "demo failed: ") + ", ".join(facts)


def main() -> int:
    # SIGTERM unwinds like Ctrl-C, so the local Azure is stopped either way.
    sigterm_as_keyboard_interrupt()
    print(f"On-demand hosting demo on the local Azure (1 real s = {TIME_SCALE:.0f} simulated s)")
    code = 1
    try:
        with (
            tempfile.TemporaryDirectory(prefix="demo-", ignore_cleanup_errors=True) as folder,
            local_azure(simulator_args=["--time-scale", str(TIME_SCALE)]) as azure,
        ):
            say = Timeline(azure)
            catalog = write_catalog(Path(folder), grace_minutes=IDLE_GRACE_MINUTES)
            started = datetime.now(UTC)
            outcome = asyncio.run(run_demo(azure, say, catalog))
            ended = datetime.now(UTC)
            # Closing the loop reset SIGTERM to its default, which would orphan the local Azure.
            sigterm_as_keyboard_interrupt()
            per_document = run_per_document(azure, say, Path(folder) / "per-document")
            report(outcome["bill"], per_document)
            # Imported only now: matplotlib and the SDKs are not needed before the end.
            from scripts.demo_report import show_run_report  # noqa: PLC0415
            from shared.composition import get_services  # noqa: PLC0415

            show_run_report(get_services(), outcome["bill"], since=started, until=ended)
            show_plan_for_reference_trace()
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
