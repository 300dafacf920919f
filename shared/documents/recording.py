"""A job's record and outcome: status changes, which input version it holds, and the result or
error blob it ends with (written through `outcomes.OutcomeStore`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.documents.answering import usage_of
from shared.documents.job_store import JobStore
from shared.documents.jobs import JobError, JobRecord, move_job
from shared.documents.outcomes import OutcomeKind, OutcomeStore, VersionStamp, content_md5
from shared.documents.steps import JobOutcome, PlannedJob
from shared.documents.tokens import TokenCounter
from shared.inference import ChatResult

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


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

    def move(self, job_id: str, status: Any, **fields: Any) -> None:
        self._jobs.change(
            job_id,
            lambda r: move_job(r, status, now=self._clock(), **fields) if r is not None else None,
        )

    def note(self, job_id: str, **fields: Any) -> None:
        """Change fields of the job record without a status change (which model, version)."""

        def change(record: JobRecord | None) -> JobRecord | None:
            if record is None or all(getattr(record, k) == v for k, v in fields.items()):
                return None
            return record.model_copy(update=fields)

        self._jobs.change(job_id, change)

    def note_version(self, record: JobRecord, container: str, data: bytes) -> JobRecord:
        """Read, once per job, which version of its input the job holds (see outcomes.py)."""
        if record.input_uploaded_at is not None or record.superseded:
            return record
        md5 = content_md5(data)
        stamp = self._outcomes.stamp_for(
            container, record.input_blob, md5, record.id, now=self._clock()
        )
        fields: dict[str, Any] = {"input_md5": md5.hex()}
        if stamp is None:
            fields["superseded"] = True
        else:
            fields["input_uploaded_at"] = stamp.uploaded_at
        self.note(record.id, **fields)
        return record.model_copy(update=fields)

    def close(self, job_id: str) -> None:
        self._jobs.drop_payload(job_id)
        self._jobs.mark_closed(job_id)

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
        self.move(record.id, "failed", error=JobError(code=code, reason=reason), error_blob=name)
        self.close(record.id)
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
