"""A job's record and outcome: status changes, which input version it holds, and the result or
error blob it ends with (written through `outcomes.OutcomeStore`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.documents.answering import usage_of
from shared.documents.job_store import JobStore
from shared.documents.jobs import (
    TERMINAL,
    JobError,
    JobRecord,
    carry_version,
    finish_run,
    may_have_payload,
    move_job,
    with_version,
)
from shared.documents.outcomes import OutcomeKind, OutcomeStore, VersionStamp, content_md5
from shared.documents.steps import JobOutcome, PlannedJob
from shared.documents.tokens import TokenCounter
from shared.inference import ChatResult

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Version:
    """Which version of its input a job holds: its content's MD5 (hex), and when it was
    uploaded (None: a newer version had already replaced it)."""

    md5: str
    uploaded_at: datetime | None


class JobRecorder:
    """Writes what happens to a job: its record's changes and its outcome blobs."""

    def __init__(
        self, *, jobs: JobStore, outcomes: OutcomeStore, counter: TokenCounter, clock: Clock
    ) -> None:
        self._jobs = jobs
        self._outcomes = outcomes
        self._counter = counter
        self._clock = clock

    # --- the record -----------------------------------------------------------------------

    def move(self, record: JobRecord, status: Any, **fields: Any) -> None:
        """A status change of the job `record` is this worker's copy of."""
        self._jobs.change(
            record.id,
            lambda r: (
                move_job(carry_version(r, record), status, now=self._clock(), **fields)
                if r is not None
                else None
            ),
        )

    def note(self, job_id: str, **fields: Any) -> None:
        """Change fields of the job record without a status change (which model, version)."""

        def change(record: JobRecord | None) -> JobRecord | None:
            if record is None or all(getattr(record, k) == v for k, v in fields.items()):
                return None
            return record.model_copy(update=fields)

        self._jobs.change(job_id, change)

    def start_running(self, job_id: str, worker: str) -> None:
        """The job's record says it runs, while `worker` still holds it."""

        def running(record: JobRecord | None) -> JobRecord | None:
            if record is None or record.worker != worker or record.status in TERMINAL:
                return None
            return move_job(
                record, "running", now=self._clock(), waiting_reason=None, waiting_since=None
            )

        self._jobs.change(job_id, running)

    def read_version(self, container: str, name: str, data: bytes, job_id: str) -> Version:
        """Which version of its input a job holds: one read of the input blob's properties."""
        md5 = content_md5(data)
        stamp = self._outcomes.stamp_for(container, name, md5, job_id, now=self._clock())
        return Version(md5.hex(), stamp.uploaded_at if stamp is not None else None)

    def note_version(self, record: JobRecord, container: str, data: bytes) -> JobRecord:
        """Read, once per job, which version of its input the job holds (see outcomes.py)."""
        if record.input_uploaded_at is not None or record.superseded:
            return record
        version = self.read_version(container, record.input_blob, data, record.id)
        noted = with_version(record, input_md5=version.md5, uploaded_at=version.uploaded_at)
        self.note(
            record.id,
            input_md5=noted.input_md5,
            input_uploaded_at=noted.input_uploaded_at,
            superseded=noted.superseded,
        )
        return noted

    def succeed(self, record: JobRecord, result_blob: str, *, started_at: datetime) -> None:
        """The run's outcome is written: the record says so (and frees the claim)."""
        self._jobs.change(
            record.id,
            lambda r: (
                finish_run(
                    carry_version(r, record),
                    started_at=started_at,
                    now=self._clock(),
                    result_blob=result_blob,
                )
                if r is not None
                else None
            ),
        )
        self.close(record)

    def close(self, record: JobRecord) -> None:
        """The job is final (its record's last write untagged it as open): its kept document,
        if it parked, is not needed any more."""
        if may_have_payload(record):
            self._jobs.drop_payload(record.id)

    # --- outcomes -------------------------------------------------------------------------

    def write_result(
        self,
        plan: PlannedJob,
        answer: Any,
        results: list[ChatResult],
        *,
        waited: float,
        inference: float,
    ) -> str:
        record, hosted = plan.record, plan.hosted
        document = {
            "job_id": record.id,
            "input": f"{record.input_container}/{record.input_blob}",
            "profile": plan.profile.name,
            "questions": list(record.questions),
            "answer": answer,
            "provenance": {
                "hosted_model": hosted.name,
                "deployment": hosted.chat.deployment,
                "model": results[-1].model if results else None,
                "requests": len(results),
                "usage": usage_of(results),
                "token_counting": self._counter.method,
                "wait_for_deployment_seconds": round(waited, 3),
                "inference_seconds": round(inference, 3),
                "completed_at": self._clock().isoformat(),
                **self._version_provenance(record),
            },
        }
        return self._write_outcome(record, "result", document)

    def fail(self, record: JobRecord, worker: str, code: str, reason: str) -> JobOutcome:
        document = {
            "job_id": record.id,
            "input": f"{record.input_container}/{record.input_blob}",
            "error": {"code": code, "reason": reason},
            "failed_at": self._clock().isoformat(),
            **self._version_provenance(record),
        }
        name = self._write_outcome(record, "error", document)
        self.move(record, "failed", error=JobError(code=code, reason=reason), error_blob=name)
        self.close(record)
        logger.warning("job %s failed (%s): %s", record.id, code, reason)
        return JobOutcome(record.id, "failed", error_blob=name)

    def _write_outcome(self, record: JobRecord, kind: OutcomeKind, document: dict[str, Any]) -> str:
        stamp = (
            None
            if record.superseded or record.input_uploaded_at is None
            else VersionStamp(record.input_uploaded_at, record.id)
        )
        md5 = bytes.fromhex(record.input_md5) if record.input_md5 else None
        return self._outcomes.write(
            record.input_blob,
            record.id,
            kind,
            document,
            stamp,
            still_current=lambda: (
                md5 is None
                or self._outcomes.holds_content(record.input_container, record.input_blob, md5)
            ),
        )

    @staticmethod
    def _version_provenance(record: JobRecord) -> dict[str, Any]:
        uploaded = record.input_uploaded_at
        return {"input_uploaded_at": uploaded.isoformat() if uploaded is not None else None}
