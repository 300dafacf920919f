"""Cold burst: documents uploaded together to a cold deployment, through the real triggers.

`function_app.app` runs under the local Functions host (blob trigger, resume queue trigger,
reaper and sweeper timers) against the local Azure; the documents are uploaded at once to its
input container. Measured:

- function execution per document: the handler wall times of every blob and queue
  invocation, summed and divided by the documents. Parked invocations sleep on nothing, so
  their real seconds are what they cost in Azure; waits on the model's 429 Retry-After are
  simulated intervals (the simulator's token window is a simulated minute), so the figure at
  Azure's timings counts them time-scale times;
- upload-to-result time of each document (upload done to its final record), against the
  simulator's provisioning time P (PUT to serving: provisioning plus warm-up) and the target
  P + two poll intervals + the document's own processing (running to result);
- deployments created and management calls per document, up to the reaper's delete.

The per-document strategy (deploy, infer, delete for each document, one after another) is
measured on a sample and scaled, for the billed hosting beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from azure.storage.blob.aio import BlobServiceClient as AsyncBlobServiceClient
from azure.storage.queue import QueueClient
from rich.progress import Progress

from bench.common import (
    BURST_CAPACITY,
    DOCUMENT,
    ThrottleWaits,
    counter,
    management_calls,
    percentile,
    real_timeout,
    scaled,
    scenario_settings,
    time_scale,
)
from bench.hosted import handler_times, hosted_app
from scripts.functions_host.invocation import InvocationRecord
from scripts.local_azure import LocalAzure
from scripts.resume_player import finish_parked
from shared.composition import AppServices, build_services
from shared.documents.jobs import TERMINAL, JobRecord, job_id_for
from shared.hosting.holds import KnownState
from shared.settings import AppSettings

AZURE_POLL_SECONDS = 15.0  # MANAGEMENT_POLL_SECONDS's default, at Azure's timings


async def _upload_all(
    connection_string: str, container: str, documents: dict[str, bytes]
) -> dict[str, float]:
    """Upload every document at once, each on its own connection; when each was done."""
    uploaded: dict[str, float] = {}
    async with AsyncBlobServiceClient.from_connection_string(connection_string) as service:
        client = service.get_container_client(container)

        async def upload(name: str, data: bytes) -> None:
            await client.upload_blob(name, data)
            uploaded[name] = time.time()

        await asyncio.gather(*(upload(name, data) for name, data in documents.items()))
    return uploaded


def _outcomes_written(services: AppServices) -> int:
    """Result or error blobs under the documents' current names (one listing call)."""
    output = services.blob_service.get_container_client(services.settings.output_container)
    return sum(
        1
        for blob in output.list_blobs(name_starts_with="burst-")
        if blob.name.endswith((".result.json", ".error.json"))
    )


async def _until(check: Callable[[], bool], timeout: float, what: str, poll: float = 0.25) -> float:
    """Poll `check` in a thread until it holds; the real seconds it took."""
    started = time.monotonic()
    while not await asyncio.to_thread(check):
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(poll)
    return time.monotonic() - started


def _queue_length(app_settings: dict[str, str]) -> int:
    """Messages on the resume queue, invisible (delayed) ones included."""
    queue = QueueClient.from_connection_string(
        app_settings["DocumentStorage"], app_settings["RESUME_QUEUE"]
    )
    with queue:
        return int(queue.get_queue_properties().approximate_message_count or 0)


@dataclass(frozen=True)
class ClockAnchor:
    """One instant on both clocks: the simulator's (simulated epoch) and this machine's."""

    sim: float
    real: float
    scale: float

    @classmethod
    def now(cls, azure: LocalAzure) -> ClockAnchor:
        before = time.time()
        clock = azure.simulator.admin.clock()
        after = time.time()
        return cls(float(clock["sim_now_epoch"]), (before + after) / 2, float(clock["time_scale"]))

    def real_of(self, sim: float) -> float:
        return self.real + (sim - self.sim) / self.scale


@dataclass(frozen=True)
class Timeline:
    """One document's moments (epoch seconds on this machine's clock)."""

    uploaded: float
    started: float  # entered `running`: the deployment served and a thread took it
    finished: float
    throttled: float  # real seconds of 429 waits inside its processing


def _phases(
    timelines: list[Timeline], *, created: float, serving: float, noticed: float, scale: float
) -> dict[str, Any]:
    """Upload-to-result and its parts, in simulated seconds (real seconds x `scale`)."""

    def stats(values: list[float]) -> dict[str, float]:
        return {
            "p50": round(percentile(values, 0.5) * scale, 1),
            "p95": round(percentile(values, 0.95) * scale, 1),
        }

    return {
        "upload_to_result": stats([t.finished - t.uploaded for t in timelines]),
        "upload_to_result_less_processing": stats([t.started - t.uploaded for t in timelines]),
        "processing": stats([t.finished - t.started for t in timelines]),
        "processing_429_waits": stats([t.throttled for t in timelines]),
        # The parts of the wait, the same for every document but the last two.
        "first_upload_to_create": round((created - min(t.uploaded for t in timelines)) * scale, 1),
        "create_to_serving_P": round((serving - created) * scale, 1),
        "serving_to_noticed": round((noticed - serving) * scale, 1),
        "noticed_to_running": stats([t.started - noticed for t in timelines]),
    }


async def _run_on_demand(
    azure: LocalAzure, documents: int, progress: Progress, capacity: int
) -> dict[str, Any]:
    admin = azure.simulator.admin
    config = admin.config()
    scale = time_scale(azure)
    app_settings = scenario_settings(
        azure,
        IDLE_GRACE_SECONDS=scaled(azure, 120),
        DEPLOYMENT_CAPACITY=str(capacity),
        INFERENCE_MAX_SECONDS=scaled(azure, 300),
        JOB_TIMEOUT_SECONDS=scaled(azure, 1680),
    )
    inputs = {
        f"burst-{i}.txt": f"{DOCUMENT}\nBurst document {i}.".encode() for i in range(documents)
    }
    step = counter(progress, "burst through the triggers", documents)
    with ThrottleWaits() as throttled:
        async with hosted_app(app_settings, scale) as (host, services):
            container = services.settings.input_container
            job_ids = {name: job_id_for(container, name, data) for name, data in inputs.items()}
            calls_before = management_calls(azure)
            tokens_before = _chat_tokens(admin.stats())
            reaper_runs_before = _reaper_runs(host.invocations)
            anchor = ClockAnchor.now(azure)
            uploaded = await _upload_all(app_settings["DocumentStorage"], container, inputs)
            done = 0

            def all_written() -> bool:
                nonlocal done
                written = _outcomes_written(services)
                for _ in range(written - done):
                    step()
                done = written
                return written >= documents

            burst_seconds = await _until(
                all_written, real_timeout(azure, 3600, 120), "every document's outcome"
            )
            records: dict[str, JobRecord | None] = {}

            def all_records_final() -> bool:
                # The outcome blob is written just before the record's final move.
                for name, job_id in job_ids.items():
                    record = records.get(name)
                    if record is None or record.status not in TERMINAL:
                        records[name] = services.jobs.get(job_id)
                return all(r is not None and r.status in TERMINAL for r in records.values())

            await _until(all_records_final, 30, "every job record to be final")
            ledger = await asyncio.to_thread(services.model().ledger.read)

            def deleted() -> bool:
                # Azure's delete done and the ledger says so (the reaper records the
                # deployment absent at its next look after the delete it sent finished).
                bill = admin.billing()
                gone = bool(bill["deployments"]) and all(
                    d["deleted"] is not None for d in bill["deployments"]
                )
                return gone and services.model().ledger.read().state is KnownState.ABSENT

            # The deployment goes once its idle grace has passed, at the reaper's next run.
            await _until(
                deleted,
                real_timeout(azure, 600),
                f"the reaper to delete {services.settings.deployment_name}",
            )
            # Up to the delete: the reaper keeps listing the account once a minute after.
            calls = management_calls(azure) - calls_before
            reaper_runs = _reaper_runs(host.invocations) - reaper_runs_before
            stats_after = admin.stats()
            by_kind = stats_after["management"]
            tokens = _chat_tokens(stats_after) - tokens_before
            bill = admin.billing()
            # Late resumes (a job's own, after a wake-up already finished it; one sent for
            # when a live claim ends) still run and cost an invocation each: they count, so
            # wait for the queue to drain, up to the claim's length (at most two minutes).
            late = await asyncio.to_thread(_queue_length, app_settings)
            if late:
                with contextlib.suppress(TimeoutError):
                    await _until(
                        lambda: _queue_length(app_settings) == 0,
                        min(real_timeout(azure, 600, 10), 120),
                        "the resume queue to drain",
                    )
            pending = await asyncio.to_thread(_queue_length, app_settings)
            await host.wait_for_blob_idle()
        times = handler_times(host.invocations)

    statuses: dict[str, int] = {}
    timelines: list[Timeline] = []
    for name, record in records.items():
        assert record is not None, name
        statuses[record.status] = statuses.get(record.status, 0) + 1
        finished = _entered(record, record.status)
        timelines.append(
            Timeline(
                uploaded=uploaded[name],
                started=_entered(record, "running") if record.entered("running") else finished,
                finished=finished,
                throttled=throttled.by_job.get(record.id, 0.0),
            )
        )
    provision_sim = float(config["provisioning_seconds"]) + float(config["warmup_seconds"])
    created = anchor.real_of(float(bill["deployments"][0]["created_epoch"]))
    assert ledger.ready_since is not None, ledger
    phases = _phases(
        timelines,
        created=created,
        serving=created + provision_sim / scale,
        noticed=ledger.ready_since.timestamp(),
        scale=scale,
    )
    handler_real = times.total_handler_seconds
    throttle_real = throttled.seconds
    poll = AZURE_POLL_SECONDS
    waiting_p95 = phases["upload_to_result_less_processing"]["p95"]
    # However soon the deployment serves, the burst cannot all be answered before its tokens
    # fit the deployment's per-minute limit: the last documents wait this long for quota.
    quota_floor = tokens / (capacity * 1000) * 60
    return {
        "documents": documents,
        "statuses": statuses,
        "burst_wall_seconds": round(burst_seconds, 2),
        "function_execution": {
            "invocations": times.invocations,
            "resumes_still_queued_at_the_end": pending,
            "failed_invocations": times.failed,
            "handler_seconds": {k: round(v, 3) for k, v in times.handler_seconds.items()},
            "host_duration_seconds": {k: round(v, 3) for k, v in times.duration_seconds.items()},
            "real_seconds_per_document": round(handler_real / documents, 3),
            "host_duration_seconds_per_document": round(
                times.total_duration_seconds / documents, 3
            ),
            "throttle_retries": throttled.retries,
            "throttle_wait_real_seconds": round(throttle_real, 3),
            # Only the 429 waits are simulated intervals; the rest is I/O and CPU.
            "azure_seconds_per_document": round(
                (handler_real - throttle_real + throttle_real * scale) / documents, 2
            ),
            "target_azure_seconds_per_document": 5.0,
        },
        "latency_simulated_seconds": {
            **phases,
            "P": provision_sim,
            "target_upload_to_result_less_processing_p95": provision_sim + 2 * poll,
            "met": waiting_p95 <= provision_sim + 2 * poll,
            "burst_tokens": tokens,
            "quota_floor_seconds": round(quota_floor, 1),
        },
        "deployments_created": len(bill["deployments"]),
        "management_calls": calls,
        "management_calls_per_document": round(calls / documents, 3),
        "management_calls_by_kind": by_kind,
        # Reaper passes (once a simulated minute); a pass lists only when a ledger says so.
        "reaper_runs": reaper_runs,
        "target_management_calls_per_document": 0.1,
        "billed_hosted_minutes": round(bill["billed_hosted_seconds"] / 60, 2),
        "billed_per_minute_cost": round(bill["per_minute"]["cost"], 2),
        "billed_per_started_hour_cost": round(bill["per_started_hour"]["cost"], 2),
        "time_scale": scale,
    }


def _chat_tokens(stats: dict[str, Any]) -> int:
    """Tokens the simulator's admitted chat requests charged against the rate limit so far."""
    return int(stats.get("charged_tokens", 0))


def _reaper_runs(records: Iterable[InvocationRecord]) -> int:
    """Reaper invocations so far: each lists the account's deployments once."""
    return sum(1 for r in records if r.function_name == "reap_idle_deployments")


def _entered(record: JobRecord, status: str) -> float:
    """When the job last entered `status` (epoch seconds, the app's clock)."""
    moment = record.entered(status)  # type: ignore[arg-type]
    return (moment or datetime.now(UTC)).timestamp()


def _run_per_document(azure: LocalAzure, sample: int, progress: Progress) -> dict[str, Any]:
    """The seed's strategy: deploy, infer, delete for each document, one after another.

    No host: the engine is called directly and the resume queue played by hand, the way
    the demo does, since each document must end (and its deployment go) before the next.
    """
    admin = azure.simulator.admin
    admin.reset()
    settings = scenario_settings(azure, IDLE_GRACE_SECONDS="0", DEPLOYMENT_CAPACITY=BURST_CAPACITY)
    services = build_services(AppSettings.model_validate(settings))
    calls_before = management_calls(azure)
    statuses: list[str] = []
    step = counter(progress, "per-document strategy", sample)
    for i in range(sample):
        data = f"{DOCUMENT}\nBurst document {i}.".encode()
        outcome = services.engine.process_blob(
            services.settings.input_container, f"burst-{i}.txt", data
        )
        statuses.append(
            finish_parked(services, outcome.job_id, poll=0.05) if outcome.parked else outcome.status
        )
        step()
    calls = management_calls(azure) - calls_before
    bill = admin.billing()
    services.blob_service.close()
    return {
        "documents_measured": sample,
        "succeeded": statuses.count("succeeded"),
        "deployments_created": len(bill["deployments"]),
        "management_calls_per_document": round(calls / sample, 2),
        "billed_hosted_minutes": round(bill["billed_hosted_seconds"] / 60, 2),
        "billed_per_minute_cost": round(bill["per_minute"]["cost"], 2),
        "billed_per_started_hour_cost": round(bill["per_started_hour"]["cost"], 2),
    }


def bench_burst(
    azure: LocalAzure,
    documents: int,
    sample: int,
    progress: Progress,
    capacity: int = BURST_CAPACITY,
) -> dict[str, Any]:
    admin = azure.simulator.admin
    admin.configure(token_latency_ms=1.0, base_latency_ms=5)
    admin.reset()
    on_demand = asyncio.run(_run_on_demand(azure, documents, progress, capacity))
    result: dict[str, Any] = {"on_demand": on_demand}
    if sample > 0:
        seed = _run_per_document(azure, sample, progress)
        scale = documents / sample
        seed["scaled_to_documents"] = documents
        for key in ("billed_hosted_minutes", "billed_per_minute_cost"):
            seed[f"{key}_scaled"] = round(seed[key] * scale, 2)
        seed["billed_per_started_hour_cost_scaled"] = round(
            seed["billed_per_started_hour_cost"] * scale, 2
        )
        result["per_document"] = seed
        if on_demand["billed_per_minute_cost"]:
            result["per_minute_cost_ratio"] = round(
                seed["billed_per_minute_cost_scaled"] / on_demand["billed_per_minute_cost"], 1
            )
    return result
