"""What the engine's flows pass between them: its limits, a job's outcome, a planned document,
and the steps a run on the deployment can end in (wait, throttled, retry)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.documents.jobs import JobRecord
from shared.documents.profiles import ProcessingProfile
from shared.hosting.hosted import HostedDeployment
from shared.inference import ChatRequest, ChatResult


@dataclass(frozen=True)
class EngineLimits:
    """Bounds on one document's processing (seconds, bytes, counts)."""

    job_hold_seconds: float = 600.0
    # How long a document may wait for its deployment in all, parked or not.
    ready_timeout_seconds: float = 1200.0
    job_timeout_seconds: float = 1680.0
    max_attempts: int = 5
    not_found_retry_seconds: float = 60.0
    max_document_bytes: int = 2_000_000
    max_chunks: int = 40
    # Backoff of a job parked after a transient failure: base * 2^(attempt-1), at most max.
    retry_base_seconds: float = 15.0
    retry_max_seconds: float = 300.0
    # How long a job that does not drive its deployment's provisioning parks (it is woken
    # when the provisioning settles; this is only the backstop if that wake-up is lost).
    follower_park_seconds: float = 300.0
    throttle_park_seconds: float | None = 10.0


@dataclass(frozen=True)
class JobOutcome:
    job_id: str
    status: str
    result_blob: str | None = None
    error_blob: str | None = None
    skipped: bool = False
    parked: bool = False


@dataclass(frozen=True)
class PlannedJob:
    """A claimed, decoded and planned document, routed to its hosted model."""

    record: JobRecord
    profile: ProcessingProfile
    requests: list[ChatRequest]
    hosted: HostedDeployment
    worker: str
    data: bytes

    @property
    def hold_id(self) -> str:
        return f"job:{self.record.id}"


@dataclass(frozen=True)
class Wait:
    """The job must wait for its deployment: park it for `seconds`."""

    reason: str
    seconds: float
    # Whether this job took the provisioning step; if not, it waits as a follower.
    drives: bool = True


@dataclass(frozen=True)
class Throttle:
    """The deployment asked for a long wait before the document's first answer: park."""

    seconds: float


@dataclass(frozen=True)
class Retry:
    """A transient failure: park the job with backoff, or fail it on its last attempt."""

    code: str
    reason: str


@dataclass(frozen=True)
class Answered:
    """The model answered: the outcome is written once the hold's keeper has stopped."""

    answer: Any
    results: list[ChatResult]
    started_at: datetime
    waited: float
    inference: float


# What running a planned job on its deployment comes to.
RunStep = JobOutcome | Answered | Wait | Retry | Throttle
