"""Job records: what happened to each document, stored as one JSON blob per job.

A job's id is derived from its input blob's path and content, so a re-delivered blob maps to
the same record and is never processed twice; the pure transition functions here decide who
may work on a job, and `job_store.JobStore` applies them under ETags.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JobStatus = Literal["queued", "waiting_for_deployment", "running", "succeeded", "failed"]
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed"})


class JobError(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str
    reason: str


class StatusChange(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: JobStatus
    at: datetime
    note: str | None = None


class JobRecord(BaseModel):
    """The state and history of processing one input document."""

    model_config = ConfigDict(frozen=True)

    id: str
    status: JobStatus = "queued"
    source: Literal["blob", "http"] = "blob"
    input_container: str
    input_blob: str
    profile: str | None = None
    questions: tuple[str, ...] = ()
    created: datetime
    history: tuple[StatusChange, ...] = ()
    attempts: int = Field(0, ge=0)
    worker: str | None = None
    worker_expires: datetime | None = None
    result_blob: str | None = None
    error_blob: str | None = None
    error: JobError | None = None
    # The hosted model the job's profile routes to, once known.
    model: str | None = None
    # Why the job is not running yet, in words (e.g. no room on the account), while it waits.
    waiting_reason: str | None = None
    # The version of the input this job processes: when it was uploaded (None: not yet read,
    # or a newer version had already replaced it when the job was first claimed).
    input_uploaded_at: datetime | None = None
    superseded: bool = False
    input_md5: str | None = None  # hex digest of the content this job processes
    # Parking: a job with nothing to do until later (its deployment is being provisioned, or
    # a transient failure passes) gives its claim back and a queue message resumes it at
    # `parked_until`. Waiting for the deployment does not spend an attempt.
    parked_until: datetime | None = None
    # Whether the resume is free (waiting for the deployment or for throttling to pass), or
    # spends an attempt (retrying after a failure).
    parked_for_deployment: bool = False
    waiting_since: datetime | None = None

    def entered(self, status: JobStatus) -> datetime | None:
        """When the job last entered `status`."""
        moments = [change.at for change in self.history if change.status == status]
        return moments[-1] if moments else None


# What `job_id_for` makes: 24 lowercase hex characters, nothing before or after.
JOB_ID = re.compile(r"[0-9a-f]{24}")


def job_id_problem(job_id: str) -> str | None:
    """What is wrong with a job id, or None: checked before it names any blob."""
    if JOB_ID.fullmatch(job_id):
        return None
    return f"{job_id[:80]!r} is not a job id (24 lowercase hex characters)"


def job_id_for(container: str, blob_name: str, data: bytes) -> str:
    """Stable id: the same blob path with the same content is always the same job."""
    digest = hashlib.sha256()
    digest.update(f"{container}/{blob_name}\n".encode())
    digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()[:24]


def new_job(
    *,
    job_id: str,
    container: str,
    blob_name: str,
    now: datetime,
    source: Literal["blob", "http"] = "blob",
    profile: str | None = None,
    questions: tuple[str, ...] = (),
) -> JobRecord:
    return JobRecord(
        id=job_id,
        source=source,
        input_container=container,
        input_blob=blob_name,
        profile=profile,
        questions=questions,
        created=now,
        history=(StatusChange(status="queued", at=now),),
    )


def live_claim(record: JobRecord, now: datetime) -> bool:
    """Whether some worker's claim on the job has not expired yet."""
    return (
        record.worker is not None
        and record.worker_expires is not None
        and record.worker_expires > now
    )


def claim_job(record: JobRecord, *, worker: str, now: datetime, ttl: timedelta) -> JobRecord | None:
    """Let `worker` process the job, or None when it is finished or another worker is live on it.

    Every claim is an attempt, but resuming a job that parked only to wait for its deployment:
    a crashed worker's claim counts, so a document that kills its worker ends after its
    attempts instead of being resumed forever.
    """
    if record.status in TERMINAL:
        return None
    if record.worker != worker and live_claim(record, now):
        return None
    attempts = record.attempts if record.parked_for_deployment else record.attempts + 1
    return record.model_copy(
        update={
            "worker": worker,
            "worker_expires": now + ttl,
            "attempts": attempts,
            "parked_until": None,
            "parked_for_deployment": False,
        }
    )


def park_job(
    record: JobRecord,
    *,
    worker: str,
    now: datetime,
    until: datetime,
    reason: str,
    for_deployment: bool,
    free_resume: bool | None = None,
) -> JobRecord | None:
    """Give the claim back until `until`, saying why; None when `worker` no longer holds it.

    Waiting for the deployment (and, with `free_resume`, for throttling to pass) spends no
    attempt when the job is resumed; a retry after a failure does.
    """
    if record.worker != worker or record.status in TERMINAL:
        return None
    status: JobStatus = "waiting_for_deployment" if for_deployment else "queued"
    free = for_deployment if free_resume is None else free_resume
    return record.model_copy(
        update={
            "status": status,
            "worker": None,
            "worker_expires": None,
            "parked_until": until,
            "parked_for_deployment": free,
            "waiting_reason": reason,
            "waiting_since": (record.waiting_since or now) if for_deployment else None,
            "history": (*record.history, StatusChange(status=status, at=now, note=reason)),
        }
    )


def move_job(
    record: JobRecord,
    status: JobStatus,
    *,
    now: datetime,
    note: str | None = None,
    **fields: Any,
) -> JobRecord:
    """Record a status change (terminal statuses also free the worker claim)."""
    update: dict[str, object] = {
        "status": status,
        "history": (*record.history, StatusChange(status=status, at=now, note=note)),
        **fields,
    }
    if status in TERMINAL:
        update["worker"] = None
        update["worker_expires"] = None
    return record.model_copy(update=update)


def may_have_payload(record: JobRecord) -> bool:
    """Whether a copy of the job's document may have been kept beside its record.

    The copy is kept when the job parks (before its record says so): a job whose history
    shows no park and that is on its first attempt never parked, so there is nothing to
    delete. A park that did not land (its worker died after keeping the copy) costs the job
    an attempt when it is resumed, which this counts.
    """
    return record.attempts > 1 or len(record.history) > 1


def with_version(record: JobRecord, *, input_md5: str, uploaded_at: datetime | None) -> JobRecord:
    """The record knowing which version of its input it processes, unless it already does.

    `uploaded_at` None: a newer version had already replaced the job's content when it was
    read, so this job can never be the newest (see outcomes.py).
    """
    if record.input_uploaded_at is not None or record.superseded:
        return record
    if uploaded_at is None:
        return record.model_copy(update={"input_md5": input_md5, "superseded": True})
    return record.model_copy(update={"input_md5": input_md5, "input_uploaded_at": uploaded_at})


def carry_version(stored: JobRecord, known: JobRecord) -> JobRecord:
    """`stored` with the version `known` (the worker's copy) holds, if it does not have one.

    A new job's record is created while its input's properties are read, and takes the
    version with its next write (its end, or its park).
    """
    if stored.input_uploaded_at is not None or stored.superseded:
        return stored
    if known.input_uploaded_at is None and not known.superseded:
        return stored
    return stored.model_copy(
        update={
            "input_md5": known.input_md5,
            "input_uploaded_at": known.input_uploaded_at,
            "superseded": known.superseded,
        }
    )


def finish_run(
    record: JobRecord, *, started_at: datetime, now: datetime, result_blob: str
) -> JobRecord:
    """A run succeeded: the record says when it started running, and that it succeeded.

    A short run on a serving deployment does not write `running` on its own (it would be a
    round trip nobody sees); its history still shows it, at the moment it started.
    """
    if record.status != "running":
        record = move_job(record, "running", now=started_at, waiting_reason=None)
    return move_job(
        record,
        "succeeded",
        now=now,
        result_blob=result_blob,
        waiting_reason=None,
        waiting_since=None,
    )


def release_job(record: JobRecord, *, worker: str, now: datetime, note: str) -> JobRecord:
    """Give a job back (for a later retry) without finishing it, noting why."""
    if record.worker != worker:
        return record
    history = (*record.history, StatusChange(status=record.status, at=now, note=note))
    return record.model_copy(update={"worker": None, "worker_expires": None, "history": history})
