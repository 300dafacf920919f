"""Warm path: one document at a time through the engine while its deployment serves.

The simulator's inference latency is set to zero and the deployment's capacity is large
enough that no request is throttled, so what is measured is everything the app does around
the model call: the input's version, the claim (job record), the hold, the HTTPS round trip,
the outcome (its version's blob and the current name), the release and teardown check, the
record's end. The deployment is made ready first by a warm-up document, resumed from the
resume queue by hand as the queue trigger would; the measured documents then run inline (no
queue hop) and must succeed. Each document's storage and management round trips are counted
at the SDK's HTTP pipeline (bench/roundtrips.py) and reported by operation beside the times.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from typing import Any

from rich.progress import Progress

from bench.common import DOCUMENT, ThrottleWaits, counter, scenario_settings
from bench.roundtrips import RoundTripCounter, per_document
from scripts.local_azure import LocalAzure
from shared.composition import AppServices, build_services
from shared.documents.jobs import TERMINAL
from shared.settings import AppSettings

# Documents one after another with no inference latency ask for tokens faster than a
# capacity-10 deployment's window allows (10,000 a simulated minute, a real second at 60x):
# its 429s would be measured as the app's time. 100 is the simulator's whole quota.
WARM_CAPACITY = 100


def make_ready(services: AppServices, timeout: float = 60) -> None:
    """Process a warm-up document to its end: the deployment serves afterwards."""
    container = services.settings.input_container
    outcome = services.engine.process_blob(container, "warm-up.txt", DOCUMENT.encode())
    deadline = time.monotonic() + timeout
    while outcome.parked:
        record = services.jobs.get(outcome.job_id)
        if record is not None and record.status in TERMINAL:
            assert record.status == "succeeded", record
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the warm-up document did not finish within {timeout:.0f} s")
        taken = services.resumes.take_visible()
        for message, handle in taken:
            services.engine.resume(message.job_id)
            services.resumes.done(handle)
        if not taken:
            time.sleep(0.05)


def roles_of(settings: AppSettings) -> dict[str, str]:
    """Which of the app's containers and queues each name is, for labelling round trips."""
    return {
        settings.input_container: "input",
        settings.output_container: "output",
        settings.ledger_container: "ledger",
        settings.jobs_container: "jobs",
        settings.batch_container: "batch input",
        settings.batch_runs_container: "batch runs",
        settings.resume_queue: "queue",
        settings.batch_queue: "queue",
    }


def bench_warm(
    azure: LocalAzure, documents: int, progress: Progress, capacity: int = WARM_CAPACITY
) -> dict[str, Any]:
    azure.simulator.admin.configure(token_latency_ms=0, base_latency_ms=0)
    # An idle grace of an hour of real time: the deployment stays up between documents.
    settings = scenario_settings(
        azure, IDLE_GRACE_SECONDS="3600", DEPLOYMENT_CAPACITY=str(capacity)
    )
    app_settings = AppSettings.model_validate(settings)
    round_trips = RoundTripCounter(roles_of(app_settings))
    services = build_services(app_settings, request_policy=round_trips)
    make_ready(services)
    container = services.settings.input_container
    timings: list[float] = []
    counted: list[Counter[str]] = []
    step = counter(progress, "warm path", documents)
    with ThrottleWaits() as throttled:
        for i in range(documents):
            data = f"{DOCUMENT}\nReference {i}.".encode()
            before = round_trips.snapshot()
            started = time.perf_counter()
            outcome = services.engine.process_blob(container, f"doc-{i}.txt", data)
            timings.append(time.perf_counter() - started)
            counted.append(per_document(before, round_trips.snapshot()))
            assert outcome.status == "succeeded", outcome
            step()
    services.blob_service.close()
    timings.sort()
    totals = sorted(sum(c.values()) for c in counted)
    by_operation = sum(counted, Counter[str]())
    return {
        "documents": documents,
        "capacity": capacity,
        "median_ms": round(statistics.median(timings) * 1000, 1),
        "p90_ms": round(timings[int(0.9 * (len(timings) - 1))] * 1000, 1),
        "min_ms": round(timings[0] * 1000, 1),
        "throttle_retries": throttled.retries,
        # Storage and management round trips per document, counted at the SDK pipeline.
        "round_trips_per_document": {
            "median": statistics.median(totals),
            "min": totals[0],
            "max": totals[-1],
            "by_operation": {
                label: round(n / documents, 2) for label, n in sorted(by_operation.items())
            },
        },
        "target_median_ms": 50,
    }
