"""The portal's HTTP API: submit a document, read a job. Adapts HTTP to the engine's terms.

A submission is validated completely before anything is stored (bad input answers 400 or
413 with what is wrong), then stored in the input container with a queued job record, so
the blob trigger processes it exactly like an uploaded document.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import azure.functions as func
from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.storage.blob import ContainerClient

from shared.documents.decoding import DocumentRejected, decode_document
from shared.documents.job_store import JobStore
from shared.documents.jobs import JobError, JobRecord, job_id_for, move_job, new_job
from shared.documents.profiles import ProcessingProfile, UnknownProfileError, resolve_profile

logger = logging.getLogger(__name__)

MAX_QUESTIONS = 50
MAX_QUESTION_CHARS = 2000
_JOB_ID = re.compile(r"^[0-9a-f]{24}$")
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


class SubmissionInvalid(Exception):
    """The request cannot be accepted; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Submission:
    filename: str
    data: bytes
    profile: str | None
    questions: tuple[str, ...]


class JobsApi:
    """Handles POST /api/jobs and GET /api/jobs/{id}."""

    def __init__(
        self,
        *,
        jobs: JobStore,
        input_container: ContainerClient,
        output_container: ContainerClient,
        profiles: dict[str, ProcessingProfile],
        default_profile: str,
        max_submit_bytes: int,
        max_document_bytes: int,
        clock: Callable[[], datetime],
    ) -> None:
        self._jobs = jobs
        self._input = input_container
        self._output = output_container
        self._profiles = profiles
        self._default_profile = default_profile
        self._max_submit_bytes = max_submit_bytes
        self._max_document_bytes = max_document_bytes
        self._clock = clock

    # --- POST /api/jobs -------------------------------------------------------------------

    def submit(self, req: func.HttpRequest) -> func.HttpResponse:
        try:
            submission = self._parse(req)
            self._validate(submission)
        except SubmissionInvalid as invalid:
            return _json_response({"error": invalid.message}, invalid.status)
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
            return _json_response({"error": reason, "job_id": job_id}, 503)
        location = _status_url(req.url, job_id)
        logger.info("job %s submitted over HTTP as %s", job_id, blob_name)
        return _json_response(
            {"job_id": job_id, "status": "queued", "status_url": location, "input": blob_name},
            202,
            headers={"Location": location, "Retry-After": "5"},
        )

    def _parse(self, req: func.HttpRequest) -> Submission:
        body = req.get_body() or b""
        if len(body) > self._max_submit_bytes:
            raise SubmissionInvalid(
                413,
                f"the request is {len(body):,} bytes; the limit is {self._max_submit_bytes:,} "
                "bytes (MAX_SUBMIT_BYTES). Split the document or upload it to the input "
                "container instead.",
            )
        content_type = (req.headers.get("content-type") or "").split(";")[0].strip().lower()
        if content_type == "application/json":
            return self._parse_json(body)
        if content_type == "multipart/form-data":
            return self._parse_multipart(req)
        raise SubmissionInvalid(
            400,
            f"unsupported Content-Type {content_type or '(none)'!r}: send application/json with "
            '{"text": ..., "filename": ..., "profile": ..., "questions": [...]} or '
            "multipart/form-data with a 'file' field.",
        )

    def _parse_json(self, body: bytes) -> Submission:
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise SubmissionInvalid(400, f"the body is not valid JSON: {error}") from error
        if not isinstance(payload, dict):
            raise SubmissionInvalid(400, "the body must be a JSON object with a 'text' field")
        unknown = sorted(set(payload) - {"text", "filename", "profile", "questions"})
        if unknown:
            raise SubmissionInvalid(
                400, f"unknown field(s) {unknown}; allowed: text, filename, profile, questions"
            )
        text = payload.get("text")
        if not isinstance(text, str):
            raise SubmissionInvalid(400, "'text' is required and must be a string")
        filename = payload.get("filename", "document.txt")
        if not isinstance(filename, str):
            raise SubmissionInvalid(400, "'filename' must be a string")
        profile = payload.get("profile")
        if profile is not None and not isinstance(profile, str):
            raise SubmissionInvalid(400, "'profile' must be a string")
        return Submission(
            filename=_safe_filename(filename),
            data=text.encode("utf-8"),
            profile=profile,
            questions=_questions(payload.get("questions")),
        )

    def _parse_multipart(self, req: func.HttpRequest) -> Submission:
        files = req.files
        upload = files.get("file") if files is not None else None
        if upload is None:
            raise SubmissionInvalid(400, "multipart request has no 'file' field")
        form = req.form
        raw_questions: Any = None
        if form is not None:
            listed = form.getlist("questions")
            if len(listed) == 1 and listed[0].strip().startswith("["):
                try:
                    raw_questions = json.loads(listed[0])
                except json.JSONDecodeError as error:
                    raise SubmissionInvalid(
                        400, f"'questions' is not a JSON list: {error}"
                    ) from error
            else:
                raw_questions = listed or None
        profile = form.get("profile") if form is not None else None
        return Submission(
            filename=_safe_filename(upload.filename or "document.txt"),
            data=upload.read(),
            profile=profile or None,
            questions=_questions(raw_questions),
        )

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

    # --- GET /api/jobs/{id} ---------------------------------------------------------------

    def status(self, job_id: str) -> func.HttpResponse:
        if not _JOB_ID.match(job_id or ""):
            return _json_response(
                {"error": f"{job_id!r} is not a job id (24 lowercase hex characters)"}, 400
            )
        record = self._jobs.get(job_id)
        if record is None:
            return _json_response({"error": f"no job with id {job_id}"}, 404)
        view = _job_view(record)
        if record.status == "succeeded" and record.result_blob:
            view["result"] = self._read_output(record.result_blob)
        headers = {} if record.status in ("succeeded", "failed") else {"Retry-After": "5"}
        return _json_response(view, 200, headers=headers)

    def _read_output(self, name: str) -> Any:
        try:
            return json.loads(self._output.download_blob(name).readall())
        except ResourceNotFoundError:
            return None


def _job_view(record: JobRecord) -> dict[str, Any]:
    return {
        "job_id": record.id,
        "status": record.status,
        "input": f"{record.input_container}/{record.input_blob}",
        "profile": record.profile,
        "questions": list(record.questions),
        "attempts": record.attempts,
        "history": [change.model_dump(mode="json") for change in record.history],
        "error": record.error.model_dump() if record.error else None,
        "result_blob": record.result_blob,
        "error_blob": record.error_blob,
    }


def _questions(raw: Any) -> tuple[str, ...]:
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


def _status_url(request_url: str, job_id: str) -> str:
    base = request_url.split("?", 1)[0].rstrip("/")
    return f"{base}/{job_id}"


def _json_response(
    payload: dict[str, Any], status: int, headers: dict[str, str] | None = None
) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(payload, indent=2),
        status_code=status,
        mimetype="application/json",
        headers=headers,
    )
