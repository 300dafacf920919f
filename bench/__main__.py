"""Benchmarks of the on-demand engine on the local Azure: warm path and cold burst.

Run with `make bench` (or `python -m bench warm|burst|all`). Each run starts its own Azurite
and simulator, prints a table and writes JSON to bench/results/. Figures are ratios and
medians from one run, since this machine is shared and noisy; BENCHMARKS.md records them.
Progress is drawn by rich, like the operator's command, with the app's log lines printed
above it rather than on the same terminal line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.progress import Progress

from scripts.local_azure import LocalAzure, local_azure
from shared.composition import AppServices, build_services
from shared.console.display import log_to, stderr_console, step_progress
from shared.settings import AppSettings

RESULTS = Path(__file__).resolve().parent / "results"
DOCUMENT = (
    "MASTER SERVICES AGREEMENT\n\nThe Supplier shall deliver the services in Schedule 1.\n\n"
    "Payment is due within 30 days of invoice. Either party may terminate on 90 days notice.\n"
)

# Simulated seconds per real second: provisioning (300 s simulated) takes 5 s. Low enough
# that the app's own CPU time (a few real seconds for a burst on this machine) stays small
# beside the simulated durations it is billed for. The app's management poll interval is
# scaled the same way, so management call counts are those Azure would see.
TIME_SCALE = 60.0
REAPER_PERIOD_SECONDS = 60.0
BURST_CAPACITY = 50
AZURE_POLL_SECONDS = 15.0


def services_for(azure: LocalAzure, **overrides: Any) -> AppServices:
    suffix = uuid.uuid4().hex[:8]
    settings = azure.app_settings(
        DEPLOYMENT_NAME=f"ft-bench-{suffix}",
        INPUT_CONTAINER=f"in-{suffix}",
        OUTPUT_CONTAINER=f"out-{suffix}",
        LEDGER_CONTAINER=f"ledger-{suffix}",
        JOBS_CONTAINER=f"jobs-{suffix}",
        MANAGEMENT_POLL_SECONDS=str(AZURE_POLL_SECONDS / TIME_SCALE),
        JOB_HOLD_SECONDS="30",
        OPERATION_LEASE_SECONDS="30",
        NOT_FOUND_RETRY_SECONDS="0.2",
        **{key: str(value) for key, value in overrides.items()},
    )
    return build_services(AppSettings.model_validate(settings))


def management_calls(azure: LocalAzure) -> int:
    return sum(int(v) for v in azure.simulator.admin.stats()["management"].values())


def counter(progress: Progress, label: str, total: int) -> Callable[[], None]:
    """One step of `label` done; safe from many threads (rich's progress takes a lock)."""
    task = progress.add_task(label, total=total)
    return lambda: progress.advance(task)


# --- warm path --------------------------------------------------------------------------------


def bench_warm(azure: LocalAzure, documents: int, progress: Progress) -> dict[str, Any]:
    """End-to-end time of a document on a serving deployment, minus simulated inference.

    The simulator's inference latency is set to zero, so what is measured is everything the
    app does around the model call: job record, hold, ledger, the HTTPS round trip, result.
    """
    azure.simulator.admin.configure(token_latency_ms=0, base_latency_ms=0)
    services = services_for(azure, IDLE_GRACE_SECONDS=3600)
    container = services.settings.input_container
    services.engine.process_blob(container, "warm-up.txt", DOCUMENT.encode())
    timings: list[float] = []
    step = counter(progress, "warm path", documents)
    for i in range(documents):
        data = f"{DOCUMENT}\nReference {i}.".encode()
        started = time.perf_counter()
        outcome = services.engine.process_blob(container, f"doc-{i}.txt", data)
        timings.append(time.perf_counter() - started)
        assert outcome.status == "succeeded", outcome
        step()
    timings.sort()
    return {
        "documents": documents,
        "median_ms": round(statistics.median(timings) * 1000, 1),
        "p90_ms": round(timings[int(0.9 * (len(timings) - 1))] * 1000, 1),
        "min_ms": round(timings[0] * 1000, 1),
        "target_median_ms": 50,
    }


# --- cold burst -------------------------------------------------------------------------------


def bench_burst(
    azure: LocalAzure, documents: int, workers: int, sample: int, progress: Progress
) -> dict[str, Any]:
    """Documents arriving together on a cold deployment, against the per-document strategy.

    The per-document strategy (deploy, infer, delete for each document, one after another
    since concurrent ones would delete each other's deployment) is measured on `sample`
    documents and scaled linearly to `documents`: each of its cycles is independent.
    """
    admin = azure.simulator.admin
    admin.configure(token_latency_ms=1.0, base_latency_ms=5)
    admin.reset()
    # Two simulated minutes of idle grace, as a user would configure it.
    # Capacity 50 (50,000 tokens a minute) lets 100 documents through in about two simulated
    # minutes; at capacity 10 the burst needs ten, and the last documents run out of their
    # INFERENCE_MAX_SECONDS and are left for the host's re-delivery.
    on_demand = services_for(
        azure, IDLE_GRACE_SECONDS=str(120 / TIME_SCALE), DEPLOYMENT_CAPACITY=BURST_CAPACITY
    )
    container = on_demand.settings.input_container
    calls_before = management_calls(azure)
    started = time.perf_counter()
    burst_step = counter(progress, "burst (on demand)", documents)

    def run(i: int) -> str:
        data = f"{DOCUMENT}\nBurst document {i}.".encode()
        status = on_demand.engine.process_blob(container, f"burst-{i}.txt", data).status
        burst_step()
        return status

    with ThreadPoolExecutor(max_workers=workers) as pool:
        statuses = list(pool.map(run, range(documents)))
    burst_seconds = time.perf_counter() - started
    # The deployment goes once the idle grace has passed, at the reaper's next run (every
    # simulated minute, as REAPER_SCHEDULE's default); its calls count too.
    while not any(r.deleted for r in on_demand.reaper.run("reaper:bench")):
        time.sleep(REAPER_PERIOD_SECONDS / TIME_SCALE)
    on_demand_calls = management_calls(azure) - calls_before
    on_demand_breakdown = azure.simulator.admin.stats()["management"]
    on_demand_bill = admin.billing()

    admin.reset()
    per_document = services_for(azure, IDLE_GRACE_SECONDS="0", DEPLOYMENT_CAPACITY=BURST_CAPACITY)
    calls_before = management_calls(azure)
    per_document_statuses = []
    sample_step = counter(progress, "per-document strategy", sample)
    for i in range(sample):
        data = f"{DOCUMENT}\nBurst document {i}.".encode()
        outcome = per_document.engine.process_blob(
            per_document.settings.input_container, f"burst-{i}.txt", data
        )
        per_document_statuses.append(outcome.status)
        sample_step()
    per_document_calls = management_calls(azure) - calls_before
    per_document_bill = admin.billing()

    def summary(
        bill: dict[str, Any], calls: int, statuses: list[str], scale: float
    ) -> dict[str, Any]:
        return {
            "documents_measured": len(statuses),
            "succeeded": statuses.count("succeeded"),
            "deployments_created": len(bill["deployments"]),
            "management_calls": calls,
            "management_calls_per_document": round(calls / len(statuses), 3),
            "billed_hosted_minutes": round(bill["billed_hosted_seconds"] / 60 * scale, 2),
            "billed_per_minute_cost": round(bill["per_minute"]["cost"] * scale, 2),
            "billed_per_started_hour_cost": round(bill["per_started_hour"]["cost"] * scale, 2),
        }

    ours = summary(on_demand_bill, on_demand_calls, statuses, 1.0)
    ours["management_calls_by_kind"] = on_demand_breakdown
    seed = summary(per_document_bill, per_document_calls, per_document_statuses, documents / sample)
    seed["scaled_to_documents"] = documents
    return {
        "documents": documents,
        "concurrency": workers,
        "burst_wall_seconds": round(burst_seconds, 2),
        "time_scale": TIME_SCALE,
        "on_demand": ours,
        "per_document": seed,
        "per_minute_cost_ratio_per_document_over_on_demand": round(
            seed["billed_per_minute_cost"] / ours["billed_per_minute_cost"], 1
        ),
        "per_started_hour_cost_ratio": round(
            seed["billed_per_started_hour_cost"] / ours["billed_per_started_hour_cost"], 1
        ),
        "target_management_calls_per_document": 0.2,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("which", choices=["warm", "burst", "all"], nargs="?", default="all")
    parser.add_argument("--warm-documents", type=int, default=50)
    parser.add_argument("--burst-documents", type=int, default=100)
    parser.add_argument("--burst-workers", type=int, default=32)
    parser.add_argument("--per-document-sample", type=int, default=10)
    args = parser.parse_args(argv)
    simulator_args = ["--time-scale", str(TIME_SCALE)]
    results: dict[str, Any] = {"started": datetime.now(UTC).isoformat()}
    console = stderr_console()
    log_to(console)  # warnings print above the progress bars, not inside their line
    with local_azure(simulator_args=simulator_args) as azure, step_progress(console) as progress:
        if args.which in ("warm", "all"):
            results["warm_path"] = bench_warm(azure, args.warm_documents, progress)
        if args.which in ("burst", "all"):
            results["burst"] = bench_burst(
                azure,
                args.burst_documents,
                args.burst_workers,
                args.per_document_sample,
                progress,
            )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"bench-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(json.dumps(results, indent=2))
    print(f"written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
