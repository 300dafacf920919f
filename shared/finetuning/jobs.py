"""The adapter to Azure OpenAI's files and fine-tuning endpoints, through the `openai` client.

`FineTuning` uploads the files (and waits until Azure has processed them), creates a job,
reads, lists and cancels jobs, lists their events and checkpoints, follows a job to its end
and downloads its `results.csv`. It holds no rules: what a good dataset or curve is belongs to
`dataset` and `curves`. Retries are the openai client's own (its `max_retries`); this module
adds none. Waiting uses the `sleep` passed in, so tests can drive it.

Azure's answers differ from OpenAI's in small ways this module absorbs: `result_files` and
`organization_id` may be null, a file's status is `pending` until processed, and a results
file may come back base64-encoded.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import openai
from openai.types import FileObject
from openai.types.fine_tuning import FineTuningJob, FineTuningJobEvent
from openai.types.fine_tuning.jobs import FineTuningJobCheckpoint

TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
FILE_DONE_STATUSES = frozenset({"processed", "error", "failed", "deleted"})
FINE_TUNE_PURPOSE: Literal["fine-tune"] = "fine-tune"
FILE_POLL_SECONDS = 2.0


class FineTuningError(RuntimeError):
    """A step of the fine-tuning flow that cannot go on; the message says why."""


@dataclass(frozen=True)
class JobSpec:
    """What `hosting finetune start` asks for; None leaves a choice to Azure."""

    model: str
    n_epochs: int | None = None
    batch_size: int | None = None
    learning_rate_multiplier: float | None = None
    seed: int | None = None
    suffix: str | None = None
    training_type: str | None = None

    def hyperparameters(self) -> dict[str, int | float]:
        chosen: dict[str, int | float | None] = {
            "n_epochs": self.n_epochs,
            "batch_size": self.batch_size,
            "learning_rate_multiplier": self.learning_rate_multiplier,
        }
        return {name: value for name, value in chosen.items() if value is not None}


def job_error(job: FineTuningJob) -> dict[str, Any] | None:
    """The failed job's error body as Azure sent it."""
    if job.error is None:
        return None
    return job.error.model_dump(exclude_none=False)


def decode_results_file(content: bytes) -> bytes:
    """The CSV bytes, whether Azure sent them plain or base64-encoded."""
    stripped = content.lstrip(b"\xef\xbb\xbf").lstrip()
    if stripped.startswith(b"step"):
        return content
    try:
        decoded = base64.b64decode(stripped, validate=True)
    except (binascii.Error, ValueError):
        return content
    return decoded if decoded.lstrip(b"\xef\xbb\xbf").lstrip().startswith(b"step") else content


class FineTuning:
    """Azure OpenAI fine-tuning through an `openai.AzureOpenAI` client."""

    def __init__(
        self,
        client: openai.OpenAI,
        *,
        poll_seconds: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.poll_seconds = poll_seconds
        self._sleep = sleep
        self._monotonic = monotonic

    # --- files ---------------------------------------------------------------------------

    def upload(self, path: Path, *, max_wait_seconds: float = 1800.0) -> FileObject:
        """Upload a JSONL file for fine-tuning and wait until Azure has processed it."""
        with path.open("rb") as handle:
            uploaded = self.client.files.create(file=(path.name, handle), purpose=FINE_TUNE_PURPOSE)
        deadline = self._monotonic() + max_wait_seconds
        while uploaded.status not in FILE_DONE_STATUSES:
            if self._monotonic() > deadline:
                raise FineTuningError(
                    f"{path.name} ({uploaded.id}) still {uploaded.status} after "
                    f"{max_wait_seconds:.0f} s; look again with `hosting finetune files`"
                )
            # Files take seconds to process, jobs minutes to hours: look sooner for a file.
            self._sleep(min(self.poll_seconds, FILE_POLL_SECONDS))
            uploaded = self.client.files.retrieve(uploaded.id)
        if uploaded.status != "processed":
            detail = uploaded.status_details or "no details given"
            raise FineTuningError(
                f"Azure could not process {path.name} ({uploaded.id}): {uploaded.status}: {detail}"
            )
        return uploaded

    def delete_file(self, file_id: str) -> None:
        self.client.files.delete(file_id)

    def download(self, file_id: str) -> bytes:
        return self.client.files.content(file_id).read()

    def results_csv(self, job: FineTuningJob) -> bytes | None:
        """The job's results.csv (decoded), or None when the job has no result file."""
        files = getattr(job, "result_files", None) or []
        if not files:
            return None
        return decode_results_file(self.download(files[0]))

    # --- jobs ----------------------------------------------------------------------------

    def create(
        self, spec: JobSpec, training_file_id: str, validation_file_id: str | None = None
    ) -> FineTuningJob:
        extra_body: dict[str, Any] = {}
        if spec.training_type is not None:
            # Azure's own field (preview API versions): standard, globalstandard, developer.
            extra_body["trainingType"] = spec.training_type
        hyperparameters = spec.hyperparameters()
        return self.client.fine_tuning.jobs.create(
            model=spec.model,
            training_file=training_file_id,
            validation_file=validation_file_id if validation_file_id is not None else openai.omit,
            hyperparameters=hyperparameters if hyperparameters else openai.omit,  # type: ignore[arg-type]
            seed=spec.seed if spec.seed is not None else openai.omit,
            suffix=spec.suffix if spec.suffix is not None else openai.omit,
            extra_body=extra_body or None,
        )

    def get(self, job_id: str) -> FineTuningJob:
        return self.client.fine_tuning.jobs.retrieve(job_id)

    def list_jobs(self, limit: int = 20) -> list[FineTuningJob]:
        return list(self.client.fine_tuning.jobs.list(limit=limit).data)

    def cancel(self, job_id: str) -> FineTuningJob:
        return self.client.fine_tuning.jobs.cancel(job_id)

    def events(self, job_id: str, limit: int = 100) -> list[FineTuningJobEvent]:
        """The job's latest events, oldest first (the API lists newest first)."""
        page = self.client.fine_tuning.jobs.list_events(job_id, limit=limit)
        listed = list(page.data)
        # Events of the same second keep the order Azure listed them in, reversed.
        order = sorted(range(len(listed)), key=lambda i: (listed[i].created_at, -i))
        return [listed[i] for i in order]

    def checkpoints(self, job_id: str, limit: int = 10) -> list[FineTuningJobCheckpoint]:
        """The job's checkpoints, newest first."""
        page = self.client.fine_tuning.jobs.checkpoints.list(job_id, limit=limit)
        return sorted(page.data, key=lambda checkpoint: checkpoint.step_number, reverse=True)

    def follow(
        self,
        job_id: str,
        on_update: Callable[[FineTuningJob, Sequence[FineTuningJobEvent]], None],
        *,
        max_wait_seconds: float | None = None,
    ) -> FineTuningJob:
        """Poll the job and its new events until it ends; `on_update` sees each poll.

        Returns the ended job; raises `FineTuningError` past `max_wait_seconds` (the job goes
        on in Azure).
        """
        seen: set[str] = set()
        deadline = None if max_wait_seconds is None else self._monotonic() + max_wait_seconds
        while True:
            job = self.get(job_id)
            fresh = [event for event in self.events(job_id) if event.id not in seen]
            seen.update(event.id for event in fresh)
            on_update(job, fresh)
            if job.status in TERMINAL_STATUSES:
                return job
            if deadline is not None and self._monotonic() > deadline:
                raise FineTuningError(
                    f"job {job_id} is still {job.status} after {max_wait_seconds:.0f} s; it goes "
                    f"on in Azure: follow it with `hosting finetune status {job_id} --follow`"
                )
            self._sleep(self.poll_seconds)
