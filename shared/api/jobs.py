"""The portal's HTTP API: submit a document, read a job. Adapts HTTP to `JobSubmissions`.

Parses the request (JSON or multipart), answers bad input with 400 or 413 and what is wrong,
and otherwise leaves validation and storage to `shared.documents.submissions`. A job that has
not started yet also shows where its deployment's provisioning stands (`shared.api.waits`), so
the portal can say how long the wait should be.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
from azure.core.exceptions import AzureError

from shared.api.bodies import BodyInvalid, json_value
from shared.api.waits import DeploymentWait
from shared.documents.submissions import (
    JobSubmissions,
    Submission,
    SubmissionInvalid,
    parse_questions,
    safe_filename,
)

logger = logging.getLogger(__name__)


class JobsApi:
    """Handles POST /api/jobs and GET /api/jobs/{id}."""

    def __init__(
        self,
        *,
        submissions: JobSubmissions,
        max_submit_bytes: int,
        deployment_wait: Callable[[str], DeploymentWait | None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._submissions = submissions
        self._max_submit_bytes = max_submit_bytes
        self._deployment_wait = deployment_wait
        self._clock = clock

    # --- POST /api/jobs -------------------------------------------------------------------

    def submit(self, req: func.HttpRequest) -> func.HttpResponse:
        try:
            submitted = self._submissions.submit(self._parse(req))
        except SubmissionInvalid as invalid:
            payload: dict[str, Any] = {"error": invalid.message}
            if invalid.job_id is not None:
                payload["job_id"] = invalid.job_id
            return json_response(payload, invalid.status)
        location = status_url(req.url, submitted.job_id)
        return json_response(
            {
                "job_id": submitted.job_id,
                "status": "queued",
                "status_url": location,
                "input": submitted.input_blob,
            },
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
            payload = json_value(body)
        except BodyInvalid as invalid:
            raise SubmissionInvalid(invalid.status, invalid.message) from None
        if not isinstance(payload, dict):
            raise SubmissionInvalid(400, "the body must be a JSON object with a 'text' field")
        unknown = sorted(set(payload) - {"text", "filename", "profile", "questions"})
        if unknown:
            raise SubmissionInvalid(
                400, f"unknown field(s) {unknown[:10]}; allowed: text, filename, profile, questions"
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
            filename=safe_filename(filename),
            data=text.encode("utf-8"),
            profile=profile,
            questions=parse_questions(payload.get("questions")),
        )

    def _parse_multipart(self, req: func.HttpRequest) -> Submission:
        files = req.files
        uploads = list(files.items(multi=True)) if files is not None else []
        if len(uploads) > 1:
            raise SubmissionInvalid(
                400,
                f"the multipart request has {len(uploads)} files; send one file per request "
                "(in a 'file' field), each document is its own job",
            )
        upload = files.get("file") if files is not None else None
        if upload is None:
            raise SubmissionInvalid(400, "multipart request has no 'file' field")
        form = req.form
        raw_questions: Any = None
        if form is not None:
            listed = form.getlist("questions")
            if len(listed) == 1 and listed[0].strip().startswith("["):
                try:
                    raw_questions = json_value(listed[0].encode("utf-8", errors="replace"))
                except BodyInvalid as invalid:
                    raise SubmissionInvalid(
                        400, f"'questions' is not a JSON list: {invalid.message}"
                    ) from None
            else:
                raw_questions = listed or None
        profile = form.get("profile") if form is not None else None
        return Submission(
            filename=safe_filename(upload.filename or "document.txt"),
            data=upload.read(),
            profile=profile or None,
            questions=parse_questions(raw_questions),
        )

    # --- GET /api/jobs/{id} ---------------------------------------------------------------

    def status(self, job_id: str) -> func.HttpResponse:
        try:
            view = self._submissions.view(job_id)
        except SubmissionInvalid as invalid:
            return json_response({"error": invalid.message}, invalid.status)
        final = view["status"] in ("succeeded", "failed")
        # The server's time, so a page counts the wait from it rather than from its own clock.
        view["checked_at"] = self._clock().isoformat()
        if not final and view["status"] != "running" and view.get("model"):
            view["deployment"] = self._wait_of(view["model"])
        return json_response(view, 200, headers={} if final else {"Retry-After": "5"})

    def _wait_of(self, model: str) -> dict[str, Any] | None:
        if self._deployment_wait is None:
            return None
        try:
            wait = self._deployment_wait(model)
        except AzureError:
            # The job's own state is what was asked for; the expectation is a bonus.
            logger.warning("reading the ledger of %s for a job's status failed", model)
            return None
        return wait.to_json() if wait is not None else None


def status_url(request_url: str, job_id: str) -> str:
    base = request_url.split("?", 1)[0].rstrip("/")
    return f"{base}/{job_id}"


def json_response(
    payload: dict[str, Any], status: int, headers: dict[str, str] | None = None
) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(payload, indent=2),
        status_code=status,
        mimetype="application/json",
        headers=headers,
    )
