"""`POST /api/jobs` latency during a burst of submissions, cold deployment against warm.

The function app runs under the local Functions host, whose sync handlers share one thread
pool as the Python worker's do in Azure: submissions (HTTP), deliveries (blob trigger) and
resumes (queue trigger) all take its threads. `clients` aiohttp clients submit `submissions`
documents between them, as fast as they are answered, first while the deployment is cold (the
submitted documents' deliveries park, and resume once it serves), then, once every document
of the first burst is final and the same deployment serves, the same burst again (the
deliveries now run inline: inference, and waits on the model's 429s). The figure is the p95 of
each POST's time from sending it to its answer, in real seconds: a request does not wait on
simulated time, so this is the figure in Azure too (give or take the machine).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import aiohttp
from rich.progress import Progress

from bench.common import (
    BURST_CAPACITY,
    DOCUMENT,
    ThrottleWaits,
    counter,
    percentile,
    real_timeout,
    scaled,
    scenario_settings,
    time_scale,
)
from bench.hosted import handler_times, hosted_app
from scripts.functions_host.invocation import InvocationRecord
from scripts.local_azure import LocalAzure
from shared.composition import AppServices
from shared.hosting.holds import KnownState


async def _submit_burst(
    base_url: str, submissions: int, clients: int, label: str, progress: Progress
) -> tuple[list[float], list[int]]:
    """`submissions` POSTs from `clients` clients at once; each one's seconds and status."""
    step = counter(progress, f"POST /api/jobs ({label})", submissions)
    latencies: list[float] = []
    statuses: list[int] = []
    numbers = iter(range(submissions))

    async def client() -> None:
        # One session per client: its own connection, as separate browsers would have.
        async with aiohttp.ClientSession() as session:
            for i in numbers:  # the shared iterator hands each number to one client
                body = {"text": f"{DOCUMENT}\nSubmission {i} ({label}).", "filename": f"s{i}.txt"}
                started = time.perf_counter()
                async with session.post(f"{base_url}/api/jobs", json=body) as response:
                    await response.read()
                    statuses.append(response.status)
                latencies.append(time.perf_counter() - started)
                step()

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, statuses


def _outcomes_written(services: AppServices) -> int:
    output = services.blob_service.get_container_client(services.settings.output_container)
    return sum(
        1
        for blob in output.list_blobs(name_starts_with="submitted/")
        if blob.name.endswith((".result.json", ".error.json"))
    )


async def _until_outcomes(services: AppServices, count: int, timeout: float) -> float:
    started = time.monotonic()
    while await asyncio.to_thread(_outcomes_written, services) < count:
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"fewer than {count} outcomes after {timeout:.0f} s")
        await asyncio.sleep(0.25)
    return time.monotonic() - started


def _submit_handler_split(records: Iterable[InvocationRecord]) -> dict[str, float]:
    """Where the POSTs' time went inside the host: the handler itself, and the wait before it
    (for a sync handler, a free thread of the pool the triggers share)."""
    submits = [r for r in records if r.function_name == "submit_job"]
    handler = [(r.handler_ms or 0.0) / 1000 for r in submits]
    waited = [max(0.0, r.duration_ms / 1000 - h) for r, h in zip(submits, handler, strict=True)]
    return {
        "handler_p95_seconds": round(percentile(handler, 0.95), 3),
        "wait_before_handler_p95_seconds": round(percentile(waited, 0.95), 3),
    }


def _summary(latencies: list[float], statuses: list[int], settle_seconds: float) -> dict[str, Any]:
    return {
        "requests": len(latencies),
        "accepted_202": statuses.count(202),
        "p50_seconds": round(percentile(latencies, 0.5), 3),
        "p95_seconds": round(percentile(latencies, 0.95), 3),
        "max_seconds": round(max(latencies), 3),
        "seconds_until_every_document_was_final": round(settle_seconds, 1),
    }


async def _run(
    azure: LocalAzure, submissions: int, clients: int, progress: Progress
) -> dict[str, Any]:
    # A long idle grace keeps the deployment of the cold burst serving for the warm one.
    settings = scenario_settings(
        azure,
        IDLE_GRACE_SECONDS=scaled(azure, 3600),
        DEPLOYMENT_CAPACITY=BURST_CAPACITY,
        INFERENCE_MAX_SECONDS=scaled(azure, 300),
        JOB_TIMEOUT_SECONDS=scaled(azure, 1680),
    )
    throttled = ThrottleWaits()
    async with hosted_app(settings, time_scale(azure)) as (host, services):
        with throttled:
            cold, cold_statuses = await _submit_burst(
                host.base_url, submissions, clients, "cold", progress
            )
            cold_settle = await _until_outcomes(
                services, submissions, real_timeout(azure, 3600, 120)
            )
        cold_throttled = (throttled.retries, throttled.seconds)
        cold_invocations = handler_times(host.invocations)
        cold_split = _submit_handler_split(host.invocations)
        submitted = len(host.invocations)
        serving = await asyncio.to_thread(services.model().ledger.read)
        assert serving.state is KnownState.READY, serving
        with throttled:
            warm, warm_statuses = await _submit_burst(
                host.base_url, submissions, clients, "warm", progress
            )
            warm_settle = await _until_outcomes(
                services, 2 * submissions, real_timeout(azure, 3600, 120)
            )
        warm_split = _submit_handler_split(list(host.invocations)[submitted:])
    cold_summary = _summary(cold, cold_statuses, cold_settle)
    cold_summary.update(cold_split)
    cold_summary["throttle_retries"] = cold_throttled[0]
    cold_summary["throttle_wait_real_seconds"] = round(cold_throttled[1], 1)
    warm_summary = _summary(warm, warm_statuses, warm_settle)
    warm_summary.update(warm_split)
    warm_summary["throttle_retries"] = throttled.retries - cold_throttled[0]
    warm_summary["throttle_wait_real_seconds"] = round(throttled.seconds - cold_throttled[1], 1)
    all_invocations = handler_times(host.invocations)
    return {
        "submissions": submissions,
        "clients": clients,
        "cold": cold_summary,
        "warm": warm_summary,
        "cold_over_warm_p95": round(cold_summary["p95_seconds"] / warm_summary["p95_seconds"], 2),
        "target_ratio": 2.0,
        "document_invocations_cold": cold_invocations.invocations,
        "document_invocations_total": all_invocations.invocations,
    }


def bench_post(
    azure: LocalAzure, submissions: int, clients: int, progress: Progress
) -> dict[str, Any]:
    admin = azure.simulator.admin
    admin.configure(token_latency_ms=1.0, base_latency_ms=5)
    admin.reset()
    return asyncio.run(_run(azure, submissions, clients, progress))
