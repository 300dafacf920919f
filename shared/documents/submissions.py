"""Submitting a document for processing, and reading a job, apart from any transport.

The HTTP API and the operator's command both submit through `JobSubmissions`: the submission
is validated completely before anything is stored (what is wrong is said, with the HTTP-like
status it maps to: 400, 413, 503), then stored in the input container with a queued job
record, so the blob trigger processes it exactly like an uploaded document.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.blob import ContainerClient

from shared.documents.decoding import DocumentRejected, decode_document
from shared.documents.job_store import JobStore
from shared.documents.jobs import (
    JobError,
    JobRecord,
    job_id_for,
    job_id_problem,
    move_job,
    new_job,
)
from shared.documents.profiles import ProcessingProfile, UnknownProfileError, resolve_profile

logger = logging.getLogger(__name__)

MAX_QUESTIONS = 50
MAX_QUESTION_CHARS = 2000
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


class SubmissionInvalid(Exception):
    """The request cannot be accepted; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str, *, job_id: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.job_id = job_id


@dataclass(frozen=True)
class Submission:
    """A document to process, as the caller gave it (filename already made safe)."""

    filename: str
    data: bytes
    profile: str | None
    questions: tuple[str, ...]


@dataclass(frozen=True)
class SubmittedJob:
    job_id: str
    input_blob: str


class JobSubmissions:
    """Stores submitted documents with their job records, and reads jobs back."""

    def __init__(
        self,
        *,
        jobs: JobStore,
        input_container: ContainerClient,
        output_container: ContainerClient,
        profiles: Mapping[str, ProcessingProfile],
        default_profile: str,
        max_document_bytes: int,
        clock: Callable[[], datetime],
    ) -> None:
        self._jobs = jobs
        self._input = input_container
        self._output = output_container
        self._profiles = profiles
        self._default_profile = default_profile
        self._max_document_bytes = max_document_bytes
        self._clock = clock

    def submit(self, submission: Submission) -> SubmittedJob:
        """Validate, then store; `SubmissionInvalid` says what is wrong."""
        self._validate(submission)
        now = self._clock()
        blob_name = f"submitted/{now:%Y-%m-%d}/{uuid.uuid4().hex[:12]}-{submission.filename}"
        job_id = job_id_for(self._input.container_name, blob_name, submission.data)
        record = new_job(
            job_id=job_id,
            container=self._input.container_name,
            blob_name=blob_name,
            now=now,
            source="http",
            profile=submission.profile,
            questions=submission.questions,
        )
        # The record first, so the blob trigger finds the submitted profile and questions.
        self._jobs.create(record)
        try:
            self._input.upload_blob(blob_name, submission.data, overwrite=False)
        except AzureError as error:
            logger.exception("storing submitted document %s failed", blob_name)
            reason = f"the document could not be stored ({type(error).__name__}); submit it again"
            self._jobs.change(
                job_id,
                lambda r: (
                    move_job(
                        r,
                        "failed",
                        now=self._clock(),
                        error=JobError(code="store_failed", reason=reason),
                    )
                    if r is not None
                    else None
                ),
            )
            raise SubmissionInvalid(503, reason, job_id=job_id) from error
        logger.info("job %s submitted as %s", job_id, blob_name)
        return SubmittedJob(job_id, blob_name)

    def view(self, job_id: str) -> dict[str, Any]:
        """The job's record as JSON-ready values, with its result once it succeeded."""
        problem = job_id_problem(job_id or "")
        if problem is not None:
            raise SubmissionInvalid(400, problem)
        record = self._jobs.get(job_id)
        if record is None:
            raise SubmissionInvalid(404, f"no job with id {job_id}")
        view = job_view(record)
        if record.status == "succeeded" and record.result_blob:
            view["result"] = self.read_output(record.result_blob)
        return view

    def read_output(self, name: str) -> Any:
        try:
            return json.loads(self._output.download_blob(name).readall())
        except ResourceNotFoundError:
            return None

    def _validate(self, submission: Submission) -> None:
        try:
            decode_document(
                submission.filename, submission.data, max_bytes=self._max_document_bytes
            )
        except DocumentRejected as rejected:
            status = 413 if rejected.code == "too_large" else 400
            raise SubmissionInvalid(status, rejected.reason) from rejected
        try:
            resolve_profile(self._profiles, submission.profile, self._default_profile)
        except UnknownProfileError as unknown:
            raise SubmissionInvalid(400, str(unknown)) from unknown


def job_view(record: JobRecord) -> dict[str, Any]:
    return {
        "job_id": record.id,
        "status": record.status,
        "input": f"{record.input_container}/{record.input_blob}",
        "profile": record.profile,
        "model": record.model,
        "created": record.created.isoformat(),
        "waiting_reason": record.waiting_reason,
        # Since when the job has waited for its deployment (None: it is not waiting for it).
        "waiting_since": record.waiting_since.isoformat() if record.waiting_since else None,
        "questions": list(record.questions),
        "attempts": record.attempts,
        "history": [change.model_dump(mode="json") for change in record.history],
        "error": record.error.model_dump() if record.error else None,
        "result_blob": record.result_blob,
        "error_blob": record.error_blob,
    }


def parse_questions(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(q, str) for q in raw):
        raise SubmissionInvalid(400, "'questions' must be a list of strings")
    questions = tuple(q.strip() for q in raw if q.strip())
    if len(questions) > MAX_QUESTIONS:
        raise SubmissionInvalid(400, f"at most {MAX_QUESTIONS} questions; got {len(questions)}")
    too_long = [q[:40] for q in questions if len(q) > MAX_QUESTION_CHARS]
    if too_long:
        raise SubmissionInvalid(
            400, f"questions longer than {MAX_QUESTION_CHARS} characters: {too_long}"
        )
    return questions


def _safe_filename(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE_FILENAME.sub("_", base).strip("._")
    return cleaned[:120] or "document.txt"


def safe_filename(name: str) -> str:
    """The last path segment, with anything but letters, digits, '.', '_', '-' replaced."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE_FILENAME.sub("_", base).strip("._")
    return cleaned[:120] or "document.txt"
