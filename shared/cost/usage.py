"""The work the deployments did, read from where it is already recorded.

Token usage stays on the job and batch records: a job's result carries its usage and its
inference time in its provenance, a batch run its counters. `UsageReader` turns them into
`WorkDone` items, one per job or batch run, dated when the work finished, for the report to
put in periods and price. Reads only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.blob import ContainerClient

from shared.batch.store import RunStore
from shared.documents.job_store import JobStore

logger = logging.getLogger(__name__)

# Jobs are listed by when they were created; one created this long before the report's start
# may still have finished inside it.
JOB_LOOKBACK = timedelta(days=1)


@dataclass(frozen=True)
class WorkDone:
    """A job or a batch run: its documents, tokens and how long they used the deployment."""

    model: str
    at: float  # when it finished (or now, for a run still going), POSIX seconds
    source: Literal["job", "batch"]
    documents: int  # answered (succeeded)
    failed: int
    input_tokens: int
    output_tokens: int
    # Seconds the answered documents spent being answered (their requests and retries).
    inference_seconds: float


@dataclass(frozen=True)
class UsageReading:
    work: tuple[WorkDone, ...]
    notes: tuple[str, ...] = ()


class UsageReader:
    """Reads jobs (with their results' provenance) and batch runs for a time range."""

    def __init__(self, jobs: JobStore, output: ContainerClient, runs: RunStore) -> None:
        self._jobs = jobs
        self._output = output
        self._runs = runs

    def read(
        self, since: datetime, until: datetime, *, now: datetime, model: str | None = None
    ) -> UsageReading:
        notes: list[str] = []
        work = [
            *self._job_work(since, until, model, notes),
            *self._batch_work(since, until, now, model),
        ]
        return UsageReading(tuple(sorted(work, key=lambda w: w.at)), tuple(notes))

    def _job_work(
        self, since: datetime, until: datetime, model: str | None, notes: list[str]
    ) -> Iterator[WorkDone]:
        for record in self._jobs.newest_first(since=since - JOB_LOOKBACK):
            if record.status not in ("succeeded", "failed") or record.model is None:
                # Unfinished, or failed before it was routed to a model (nothing hosted).
                continue
            if model is not None and record.model != model:
                continue
            finished = record.entered(record.status)
            if finished is None or not since <= finished <= until:
                continue
            if record.status == "failed":
                yield WorkDone(record.model, finished.timestamp(), "job", 0, 1, 0, 0, 0.0)
                continue
            provenance = self._provenance(record.result_blob)
            if provenance is None:
                notes.append(
                    f"job {record.id}: its result {record.result_blob!r} could not be read; "
                    "its tokens are not counted"
                )
                provenance = {}
            usage = provenance.get("usage") or {}
            yield WorkDone(
                model=record.model,
                at=finished.timestamp(),
                source="job",
                documents=1,
                failed=0,
                input_tokens=int(usage.get("prompt_tokens", 0)),
                output_tokens=int(usage.get("completion_tokens", 0)),
                inference_seconds=float(provenance.get("inference_seconds", 0.0)),
            )

    def _provenance(self, result_blob: str | None) -> dict[str, Any] | None:
        if not result_blob:
            return None
        try:
            document = json.loads(self._output.download_blob(result_blob).readall())
        except (ResourceNotFoundError, ValueError):
            return None
        except AzureError as error:
            logger.warning("reading %s failed: %s", result_blob, error)
            return None
        provenance = document.get("provenance") if isinstance(document, dict) else None
        return provenance if isinstance(provenance, dict) else None

    def _batch_work(
        self, since: datetime, until: datetime, now: datetime, model: str | None
    ) -> Iterator[WorkDone]:
        for run in self._runs.runs():
            if model is not None and run.model != model:
                continue
            # A run's counters are cumulative: it is dated when it finished (now, if running).
            at = run.finished or now
            counters = run.counters
            if not since <= at <= until or counters.succeeded + counters.failed == 0:
                continue
            yield WorkDone(
                model=run.model,
                at=at.timestamp(),
                source="batch",
                documents=counters.succeeded,
                failed=counters.failed,
                input_tokens=counters.prompt_tokens,
                output_tokens=counters.completion_tokens,
                inference_seconds=counters.processing_seconds,
            )
