"""Parking a job that cannot finish now: it waits for its deployment, for throttling to pass,
or for a transient failure to pass (with backoff, one attempt spent each time).

A parked job's record says why it waits, its hold is kept for the wait, its claim is given
back, its document is kept beside its record (a new version of the input must not change what
it reads) and a message on the resume queue, invisible until the wait is over, resumes it.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from shared.documents.job_store import JobStore
from shared.documents.jobs import JobRecord, carry_version, park_job
from shared.documents.parking import ResumeQueue
from shared.documents.recording import JobRecorder
from shared.documents.steps import EngineLimits, JobOutcome, PlannedJob, Retry, Throttle, Wait

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# Releases a planned job's hold (and tears the deployment down if nothing else needs it).
Release = Callable[[PlannedJob], None]


class JobParker:
    """Parks jobs on the resume queue, or fails them when waiting longer would not help."""

    def __init__(
        self,
        *,
        jobs: JobStore,
        resumes: ResumeQueue,
        recorder: JobRecorder,
        limits: EngineLimits,
        clock: Clock,
    ) -> None:
        self._jobs = jobs
        self._resumes = resumes
        self._recorder = recorder
        self._limits = limits
        self._clock = clock

    def after_step(
        self, plan: PlannedJob, step: Wait | Throttle | Retry, release: Release
    ) -> JobOutcome:
        """Park the job after a run that could not finish; its hold is kept for the wait, or
        released (by `release`) when the job fails instead."""
        if isinstance(step, Wait):
            seconds = step.seconds
            if not step.drives:
                # Another job drives the provisioning and every job waiting on the deployment
                # is woken when it settles: a follower looks again only as a backstop, so a
                # burst does not resume a hundred jobs at every poll interval.
                seconds = max(seconds, self._limits.follower_park_seconds)
            return self._park_for_deployment(plan, step.reason, seconds, release)
        if isinstance(step, Throttle):
            # Spread the comeback: every job throttled in this burst was told the same wait.
            delay = step.seconds + random.uniform(0, max(1.0, step.seconds / 10))
            self._extend_hold(plan, delay)
            return self.park(
                plan.record,
                plan.worker,
                plan.data,
                f"throttled: the deployment asked to wait {step.seconds:.0f} s",
                delay,
                for_deployment=False,
                free_resume=True,
            )
        outcome = self.retry_or_fail(plan.record, plan.worker, plan.data, step.code, step.reason)
        if not outcome.parked:
            release(plan)
        # Parked: the hold lapses by itself if the retry does not come.
        return outcome

    def _extend_hold(self, plan: PlannedJob, delay: float) -> None:
        # The hold covers the wait and the run after it, so the deployment being made ready
        # for this document is not torn down before the document comes back for it.
        plan.hosted.ledger.place_hold(
            plan.hold_id,
            "job",
            plan.worker,
            timedelta(seconds=delay + self._limits.job_hold_seconds),
        )

    def _park_for_deployment(
        self, plan: PlannedJob, reason: str, wait_seconds: float, release: Release
    ) -> JobOutcome:
        record = plan.record
        since = record.waiting_since or self._clock()
        waited = (self._clock() - since).total_seconds()
        if waited >= self._limits.ready_timeout_seconds:
            release(plan)
            return self._recorder.fail(
                plan.record,
                plan.worker,
                "waiting_for_room" if "waiting for room" in reason else "provisioning_timeout",
                f"the deployment was not ready after {waited:.0f} s of waiting "
                f"(PROVISION_TIMEOUT_SECONDS); last: {reason}. Upload the document again to "
                "retry it.",
            )
        delay = min(wait_seconds, self._limits.ready_timeout_seconds - waited)
        self._extend_hold(plan, delay)
        return self.park(plan.record, plan.worker, plan.data, reason, delay, for_deployment=True)

    def park(
        self,
        record: JobRecord,
        worker: str,
        data: bytes,
        reason: str,
        delay_seconds: float,
        *,
        for_deployment: bool,
        free_resume: bool | None = None,
    ) -> JobOutcome:
        now = self._clock()
        until = now + timedelta(seconds=delay_seconds)
        self._jobs.save_payload(record.id, data)
        parked = self._jobs.change(
            record.id,
            lambda r: (
                park_job(
                    carry_version(r, record),
                    worker=worker,
                    now=now,
                    until=until,
                    reason=reason,
                    for_deployment=for_deployment,
                    free_resume=free_resume,
                )
                if r is not None
                else None
            ),
        )
        if parked is None:
            logger.warning("job %s: claim lost before parking; its new worker goes on", record.id)
            return JobOutcome(record.id, "unknown", skipped=True)
        self._resumes.schedule(record.id, delay_seconds=delay_seconds, reason=reason)
        logger.info("job %s parked for %.0f s: %s", record.id, delay_seconds, reason)
        return JobOutcome(record.id, parked.status, parked=True)

    def retry_or_fail(
        self, record: JobRecord, worker: str, data: bytes, code: str, reason: str
    ) -> JobOutcome:
        """A failure that may pass: park the job with backoff (one attempt spent), or, on its
        last attempt, fail it with an error record saying why."""
        if record.attempts >= self._limits.max_attempts:
            return self._recorder.fail(
                record,
                worker,
                code,
                f"gave up after {record.attempts} attempts (MAX_JOB_ATTEMPTS). The last "
                f"attempt's failure, which would otherwise have been retried: "
                f"{reason.rstrip('.')}. Upload the document again to retry it.",
            )
        delay = min(
            self._limits.retry_base_seconds * 2 ** max(0, record.attempts - 1),
            self._limits.retry_max_seconds,
        )
        return self.park(
            record, worker, data, f"retrying after: {reason}", delay, for_deployment=False
        )
