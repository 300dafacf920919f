"""Batch runs: throughput at the deployment's quota, and memory over 100,000 waiting documents.

- `batch-throughput`: documents of about 2,000 rate-limit tokens each (prompt plus
  `max_tokens`) on a deployment of capacity 10 (10,000 tokens a minute), enough of them for
  many simulated minutes of work. Measured from the run's own summary and the simulator:
  tokens per simulated minute as Azure's limit counts them (each answered request's prompt,
  as the simulator counted it, plus its `max_tokens`) over the processing window (deployment
  serving to run ended), divided by the deployment's token limit; the share of requests
  answered 429; documents with an outcome against documents uploaded.
- `batch-memory`: 1,000 and 100,000 small documents waiting under two prefixes; each batch
  runs in its own process (`python -m bench.batch --worker`), which reports its peak RSS
  (`ru_maxrss`) and the peak of Python allocations (tracemalloc). The 1,000 run processes
  every document; the 100,000 run is bounded by its deadline, so it processes what it can in
  that time and then lists every other document as left (streamed from the paged listing into
  the leftover blob): listing and bookkeeping cover all 100,000.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.storage.blob.aio import BlobServiceClient as AsyncBlobServiceClient
from rich.progress import Progress

from bench.common import counter, scaled, scenario_settings, time_scale
from scripts.local_azure import LocalAzure
from shared.batch.models import BatchRun
from shared.composition import AppServices, build_services
from shared.console.flows import drive_batch
from shared.settings import AppSettings

THROUGHPUT_CAPACITY = 10
# About 1,000 prompt tokens by the simulator's count (4 characters a token) and 1,000 of
# max_tokens: five requests fill a capacity-10 deployment's minute.
THROUGHPUT_MAX_TOKENS = 1000
PARAGRAPH = (
    "The Supplier shall deliver the services described in Schedule 1 with due care and skill, "
    "and the Customer shall pay each undisputed invoice within thirty days of receipt. "
)
MEMORY_CAPACITY = 100  # the simulator's whole quota: the app's own pace is what is measured
UPLOAD_CONCURRENCY = 64


def profiles(max_tokens: int) -> str:
    return json.dumps(
        {
            "default": {
                "system_prompt": "Summarise the document in one line.",
                "user_prompt_template": "{filename}: {document}",
                "max_output_tokens": max_tokens,
            }
        }
    )


async def _upload(connection_string: str, container: str, names: Iterable[str], text: str) -> None:
    """Upload the documents with a bounded number in flight (a semaphore, not one task per
    document at once, so 100,000 uploads do not hold 100,000 connections)."""
    gate = asyncio.Semaphore(UPLOAD_CONCURRENCY)
    async with AsyncBlobServiceClient.from_connection_string(connection_string) as service:
        client = service.get_container_client(container)

        async def upload(name: str) -> None:
            async with gate:
                await client.upload_blob(name, f"{name}: {text}".encode(), overwrite=True)

        pending: set[asyncio.Task[None]] = set()
        for name in names:
            pending.add(asyncio.create_task(upload(name)))
            if len(pending) >= 4 * UPLOAD_CONCURRENCY:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
        if pending:
            await asyncio.gather(*pending)


def upload_documents(services: AppServices, prefix: str, count: int, text: str) -> float:
    started = time.monotonic()
    connection = services.settings.storage_connection_string
    assert connection is not None, "the local Azure uses a connection string"
    names = (f"{prefix}doc-{i:06d}.txt" for i in range(count))
    asyncio.run(
        _upload(connection.get_secret_value(), services.settings.batch_container, names, text)
    )
    return time.monotonic() - started


def run_batch(
    services: AppServices, run_id: str, prefix: str, deadline: datetime | None
) -> BatchRun:
    services.batches.start("default", run_id, prefix, prefix, deadline, queue_first_slice=False)
    return drive_batch(services.batches, run_id, on_change=lambda _run: None, poll_seconds=5.0)


def outcomes_under(services: AppServices, prefix: str) -> int:
    output = services.blob_service.get_container_client(services.settings.batch_output_container)
    return sum(
        1
        for blob in output.list_blobs(name_starts_with=prefix)
        if blob.name.endswith((".result.json", ".error.json"))
    )


# --- throughput ---------------------------------------------------------------------------------


def bench_batch_throughput(azure: LocalAzure, documents: int, progress: Progress) -> dict[str, Any]:
    scale = time_scale(azure)
    settings = scenario_settings(
        azure,
        DEPLOYMENT_CAPACITY=str(THROUGHPUT_CAPACITY),
        PROCESSING_PROFILES=profiles(THROUGHPUT_MAX_TOKENS),
        RATE_LIMIT_MINUTE_SECONDS=scaled(azure, 60),
        BATCH_HOLD_SECONDS=scaled(azure, 600),
        BATCH_CONCURRENCY="8",
        IDLE_GRACE_SECONDS="0",
    )
    services = build_services(AppSettings.model_validate(settings))
    text = PARAGRAPH * 22  # about 3,900 characters: about 1,000 tokens at 4 characters a token
    upload_documents(services, "throughput/", documents, text)
    step = counter(progress, "batch throughput (documents)", documents)
    done_before = 0
    started = time.monotonic()
    services.batches.start("default", "throughput", "throughput/", "throughput-out/", None,
                           queue_first_slice=False)  # fmt: skip

    def changed(run: BatchRun) -> None:
        nonlocal done_before
        done = run.counters.succeeded + run.counters.failed
        for _ in range(done - done_before):
            step()
        done_before = max(done_before, done)

    run = drive_batch(services.batches, "throughput", on_change=changed, poll_seconds=1.0)
    wall = time.monotonic() - started
    report = services.batches.runs.read_summary("throughput") or {}
    window_real = report["durations_seconds"]["processing_window"]
    window_minutes = window_real * scale / 60
    charged = report["tokens"]["rate_limit_charged"]
    used = report["tokens"]["prompt"] + report["tokens"]["completion"]
    limit = 1000 * THROUGHPUT_CAPACITY
    answered = report["requests"]["answered"]
    throttled = report["requests"]["throttled_429"]
    written = outcomes_under(services, "throughput-out/")
    services.blob_service.close()
    return {
        "documents": documents,
        "capacity": THROUGHPUT_CAPACITY,
        "token_limit_per_minute": limit,
        "status": run.status,
        "outcomes_written": written,
        "documents_lost": documents - written,
        "succeeded": report["documents"]["succeeded"],
        "failed": report["documents"]["failed"],
        "processing_window_simulated_minutes": round(window_minutes, 2),
        "rate_limit_tokens_per_minute": round(charged / window_minutes, 1),
        "throughput_ratio": round(charged / window_minutes / limit, 3),
        "usage_tokens_per_minute": round(used / window_minutes, 1),
        "requests_answered": answered,
        "requests_429": throttled,
        "share_429": round(throttled / max(1, answered + throttled), 4),
        "wall_seconds": round(wall, 1),
        "billed_hosting_simulated_minutes": round(report["billed_hosting_seconds"] * scale / 60, 2),
    }


# --- memory ---------------------------------------------------------------------------------------


def bench_batch_memory(
    azure: LocalAzure, small: int, large: int, deadline_seconds: float, progress: Progress
) -> dict[str, Any]:
    settings = scenario_settings(
        azure,
        DEPLOYMENT_CAPACITY=str(MEMORY_CAPACITY),
        PROCESSING_PROFILES=profiles(60),
        RATE_LIMIT_MINUTE_SECONDS=scaled(azure, 60),
        BATCH_HOLD_SECONDS=scaled(azure, 600),
        IDLE_GRACE_SECONDS="3600",
    )
    services = build_services(AppSettings.model_validate(settings))
    task = progress.add_task("batch memory: uploading", total=None)
    uploads = {
        "small": upload_documents(services, "small/", small, "Invoice: 100 EUR due."),
        "large": upload_documents(services, "large/", large, "Invoice: 100 EUR due."),
    }
    upload_documents(services, "warm/", 1, "Invoice: 100 EUR due.")
    # The deployment serves before either measured run, so both measure the batch alone.
    progress.update(task, description="batch memory: warming up the deployment")
    run_batch(services, "warm", "warm/", None)
    services.blob_service.close()
    results: dict[str, Any] = {"upload_seconds": {k: round(v, 1) for k, v in uploads.items()}}
    for label, prefix, count, deadline in (
        ("small", "small/", small, None),
        ("large", "large/", large, deadline_seconds),
    ):
        progress.update(task, description=f"batch memory: {count:,} documents")
        results[label] = measure_in_subprocess(settings, f"memory-{label}", prefix, deadline)
        results[label]["waiting_documents"] = count
    progress.update(task, description="batch memory: done")
    results["peak_rss_ratio"] = round(
        results["large"]["peak_rss_mb"] / results["small"]["peak_rss_mb"], 3
    )
    results["peak_traced_ratio"] = round(
        results["large"]["peak_traced_mb"] / results["small"]["peak_traced_mb"], 3
    )
    return results


def measure_in_subprocess(
    settings: dict[str, str], run_id: str, prefix: str, deadline_seconds: float | None
) -> dict[str, Any]:
    """Run one batch in a fresh process (its own peak RSS) and read its report."""
    spec = {"run_id": run_id, "prefix": prefix, "deadline_seconds": deadline_seconds}
    done = subprocess.run(
        [sys.executable, "-m", "bench.batch", "--worker", json.dumps(spec)],
        env={**os.environ, **settings},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the batch worker failed: {done.stderr[-2000:]}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """One measured batch, in this process: settings from the environment."""
    tracemalloc.start()
    services = build_services(AppSettings())  # from the environment
    deadline = (
        datetime.now(UTC) + timedelta(seconds=spec["deadline_seconds"])
        if spec["deadline_seconds"] is not None
        else None
    )
    started = time.monotonic()
    run = run_batch(services, spec["run_id"], spec["prefix"], deadline)
    elapsed = time.monotonic() - started
    _, traced_peak = tracemalloc.get_traced_memory()
    counters = run.counters
    return {
        "status": run.status,
        "processed": counters.succeeded + counters.failed,
        "skipped": counters.skipped,
        "left_listed": run.left_count or 0,
        "accounted_for": counters.succeeded + counters.failed + counters.skipped
        + (run.left_count or 0),
        "seconds": round(elapsed, 1),
        # ru_maxrss is in kilobytes on Linux.
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_traced_mb": round(traced_peak / 2**20, 2),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The batch memory benchmark's worker process.")
    parser.add_argument("--worker", required=True, help="the run to measure, as JSON")
    args = parser.parse_args(argv)
    print(json.dumps(worker(json.loads(args.worker))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
