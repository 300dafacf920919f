"""The sweeper: makes sure every job that is not final will be resumed.

No document depends on the Functions host delivering its blob again, or on one queue message
arriving. Each pass (a timer) lists the open-job markers and sends a resume now for a job whose
worker's claim expired (the worker died), whose resume is overdue by more than the grace (the
message was lost or poisoned), or that has waited unclaimed since it was queued (its blob
was never delivered). The job's claim makes a duplicate resume harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.documents.job_store import JobStore
from shared.documents.jobs import TERMINAL, JobRecord
from shared.documents.parking import ResumeQueue

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepReport:
    open_jobs: int
    resumed: list[str]
    closed: int


def stalled_reason(record: JobRecord, now: datetime, grace: timedelta) -> str | None:
    """Why a job that is not final needs a resume now, or None when it is in hand. Pure."""
    if record.worker is not None:
        if record.worker_expires is not None and record.worker_expires + grace <= now:
            return f"its worker {record.worker} stopped renewing its claim"
        return None
    if record.parked_until is not None:
        if record.parked_until + grace <= now:
            return "its resume is overdue"
        return None
    if record.created + grace <= now:
        return f"it has been {record.status} unclaimed since {record.created:%H:%M:%S}"
    return None


class JobSweeper:
    """One pass over the open jobs."""

    def __init__(
        self,
        *,
        jobs: JobStore,
        resumes: ResumeQueue,
        grace: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self._jobs = jobs
        self._resumes = resumes
        self._grace = grace
        self._clock = clock

    def run(self) -> SweepReport:
        resumed: list[str] = []
        open_jobs = closed = 0
        for job_id in self._jobs.open_job_ids():
            open_jobs += 1
            record = self._jobs.get(job_id)
            if record is None or record.status in TERMINAL:
                # Finished (its marker's removal was interrupted), or its record is gone.
                self._jobs.mark_closed(job_id)
                closed += 1
                continue
            reason = stalled_reason(record, self._clock(), self._grace)
            if reason is not None:
                logger.warning("job %s is stalled (%s); resuming it", job_id, reason)
                self._resumes.schedule(job_id, delay_seconds=0, reason=f"sweeper: {reason}")
                resumed.append(job_id)
        return SweepReport(open_jobs, resumed, closed)
