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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.blob import ContainerClient
from pydantic import ValidationError

from shared.batch.store import RunStore
from shared.documents.jobs import JobRecord

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
    """Reads jobs (with their results' provenance) and batch runs for a time range.

    A month of a busy app is tens of thousands of jobs, two small blobs each (the record, its
    result): they are downloaded `workers` at a time, after the container's listing has
    dropped every job created before the range.
    """

    def __init__(
        self,
        jobs: ContainerClient,
        output: ContainerClient,
        runs: RunStore,
        *,
        workers: int = 16,
    ) -> None:
        self._jobs = jobs
        self._output = output
        self._runs = runs
        self._workers = workers

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
    ) -> list[WorkDone]:
        earliest = since - JOB_LOOKBACK
        names = [
            blob.name
            for blob in self._jobs.list_blobs()
            # Records only (not the open/ markers or payloads/), created in reach of the range.
            if "/" not in blob.name and (blob.creation_time or blob.last_modified) >= earliest
        ]

        def one(name: str) -> WorkDone | str | None:
            return self._job(name, since, until, model)

        with ThreadPoolExecutor(max_workers=self._workers) as pool:
            found = list(pool.map(one, names))
        notes.extend(item for item in found if isinstance(item, str))
        return [item for item in found if isinstance(item, WorkDone)]

    def _job(
        self, name: str, since: datetime, until: datetime, model: str | None
    ) -> WorkDone | str | None:
        """The job's work, a note on what could not be read, or None (not in the range)."""
        try:
            record = JobRecord.model_validate_json(self._jobs.download_blob(name).readall())
        except ResourceNotFoundError:
            return None  # deleted since the listing
        except ValidationError:
            return f"{name}: not a job record; skipped"
        if record.status not in ("succeeded", "failed") or record.model is None:
            # Unfinished, or failed before it was routed to a model (nothing hosted).
            return None
        if model is not None and record.model != model:
            return None
        finished = record.entered(record.status)
        if finished is None or not since <= finished <= until:
            return None
        if record.status == "failed":
            return WorkDone(record.model, finished.timestamp(), "job", 0, 1, 0, 0, 0.0)
        provenance = self._provenance(record.result_blob)
        if provenance is None:
            return (
                f"job {record.id}: its result {record.result_blob!r} could not be read; its "
                "tokens are not counted"
            )
        usage = provenance.get("usage") or {}
        return WorkDone(
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
