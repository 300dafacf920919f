"""The on-demand engine: one document in, one result (or error record) out, never waiting idle.

`process_blob` is what the blob trigger calls, `resume` what the resume queue's trigger calls.
Either claims the document's job record (so a document is worked on by one worker at a time),
validates and plans the document before anything is billed, places a job hold on its hosted
model's deployment and takes one provisioning step:

- serving: the warm path, inline: the chat requests run, the outcome is written (see
  `outcomes.py`), the hold is released and the deployment torn down if nothing needs it;
- not serving yet: the job *parks*. Its record says why it waits, its hold is kept for the
  wait, its claim given back, and a message on the resume queue (invisible until the
  provisioning is expected to be done) resumes it. The invocation ends; nothing sleeps.

A transient failure parks the job too, with backoff, and spends one of its attempts; after
`MAX_JOB_ATTEMPTS` the job fails with an error record saying why. So no document depends on the
Functions host delivering its blob again, and the sweeper (`sweeper.py`) resumes any job
whose worker died or whose resume message was lost.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.catalog import Catalog
from shared.documents.answering import (
    AnswerContext,
    answer_document,
    failure_record,
    readiness_window_end,
    usage_of,
)
from shared.documents.decoding import DocumentRejected, decode_document
from shared.documents.job_store import JobStore
from shared.documents.jobs import (
    TERMINAL,
    JobError,
    JobRecord,
    claim_job,
    job_id_for,
    live_claim,
    move_job,
    new_job,
    park_job,
)
from shared.documents.outcomes import OutcomeKind, OutcomeStore, VersionStamp, content_md5
from shared.documents.parking import ResumeQueue
from shared.documents.planning import ModelAnswerInvalid, plan_document
from shared.documents.profiles import (
    ProcessingProfile,
    ProfileConfigError,
    UnknownProfileError,
    resolve_profile,
)
from shared.documents.tokens import TokenCounter
from shared.hosting.deployments import ProvisioningError
from shared.hosting.holds import LedgerRecord
from shared.hosting.hosted import HostedDeployment
from shared.hosting.ledger import HoldLedger
from shared.inference import (
    ChatRequest,
    ChatResult,
    DeploymentNotServing,
    InferenceUnavailable,
    ModelRefusal,
    RequestRejected,
    Throttled,
)
from shared.names import refusal_record_name, refused_output_name
from shared.observability import log_fields
from shared.renewal import PeriodicRenewal

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


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
class _Plan:
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
class _Wait:
    """The job must wait for its deployment: park it for `seconds`."""

    reason: str
    seconds: float
    # Whether this job took the provisioning step; if not, it waits as a follower.
    drives: bool = True


@dataclass(frozen=True)
class _Throttle:
    """The deployment asked for a long wait before the document's first answer: park."""

    seconds: float


@dataclass(frozen=True)
class _Retry:
    """A transient failure: park the job with backoff, or fail it on its last attempt."""

    code: str
    reason: str


class HoldKeeper(PeriodicRenewal):
    """Renews a job's hold and its claim on the job record while the job runs.

    The hold is placed again if it lapsed (a long storage outage) only while the job runs:
    once the keeper has stopped, a renewal that was delayed never puts a released hold back.
    """

    def __init__(
        self,
        ledger: HoldLedger,
        jobs: JobStore,
        *,
        job_id: str,
        hold_id: str,
        worker: str,
        ttl: timedelta,
    ) -> None:
        super().__init__(f"hold-{hold_id}", ttl.total_seconds(), self._renew_hold)
        self._ledger = ledger
        self._jobs = jobs
        self._job_id = job_id
        self._hold_id = hold_id
        self._worker = worker
        self._ttl = ttl

    def _extend_claim(self, record: JobRecord | None) -> JobRecord | None:
        if record is None or record.worker != self._worker:
            return None
        return record.model_copy(update={"worker_expires": self._ledger.now() + self._ttl})

    def _renew_hold(self) -> None:
        if self.stopped:
            return
        if not self._ledger.renew_hold(self._hold_id, self._ttl):
            placed = self._ledger.place_hold_while(
                self._hold_id,
                "job",
                self._worker,
                self._ttl,
                still_wanted=lambda: not self.stopped,
            )
            if placed is not None:
                logger.warning("hold %s had lapsed; placed it again", self._hold_id)
        self._jobs.change(self._job_id, self._extend_claim)


class DocumentEngine:
    """Processes input documents, each on the hosted model its profile names."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        hosted: Mapping[str, HostedDeployment],
        jobs: JobStore,
        outcomes: OutcomeStore,
        resumes: ResumeQueue,
        default_profile: str,
        counter: TokenCounter,
        limits: EngineLimits,
        clock: Clock,
        monotonic: Callable[[], float] = time.monotonic,
        instance: str | None = None,
    ) -> None:
        self._catalog = catalog
        self._hosted = hosted
        self._jobs = jobs
        self._outcomes = outcomes
        self._resumes = resumes
        self._profiles = catalog.profiles
        self._default_profile = default_profile
        self._counter = counter
        self._limits = limits
        self._clock = clock
        self._monotonic = monotonic
        self._instance = instance or uuid.uuid4().hex[:8]

    # --- entry points ---------------------------------------------------------------------

    def process_blob(self, container: str, name: str, data: bytes) -> JobOutcome:
        """A document was delivered (uploaded, or submitted over HTTP)."""
        job_id = job_id_for(container, name, data)
        with log_fields(job_id=job_id):
            refused = refused_output_name(name)
            if refused is not None:
                return self._refuse(job_id, container, name, refused)
            worker = self._new_worker()
            record = self._claim(
                job_id,
                worker,
                create=lambda: new_job(
                    job_id=job_id, container=container, blob_name=name, now=self._clock()
                ),
            )
            if record is None or record.worker != worker:
                return self._not_ours(job_id, name)
            record = self._note_version(record, container, data)
            return self._guarded(record, worker, data)

    def resume(self, job_id: str) -> JobOutcome:
        """A parked job's time came (its resume message appeared, or the sweeper sent one)."""
        with log_fields(job_id=job_id):
            current = self._jobs.get(job_id)
            if current is None or current.status in TERMINAL:
                status = current.status if current is not None else "unknown"
                logger.info("job %s is %s; nothing to resume", job_id, status)
                return JobOutcome(job_id, status, skipped=True)
            worker = self._new_worker()
            record = self._claim(job_id, worker, create=None)
            if record is None or record.worker != worker:
                return self._not_ours(job_id, current.input_blob)
            data = self._document_of(record)
            if data is None:
                return self._fail(
                    record,
                    worker,
                    "input_missing",
                    f"the document {record.input_container}/{record.input_blob} was deleted or "
                    "replaced before it could be processed. Upload it again.",
                )
            return self._guarded(record, worker, data)

    def fail_job(self, job_id: str, code: str, reason: str) -> JobOutcome:
        """End a job that cannot be resumed any more (its message was poisoned), with a record."""
        with log_fields(job_id=job_id):
            record = self._jobs.get(job_id)
            if record is None or record.status in TERMINAL:
                return JobOutcome(job_id, record.status if record else "unknown", skipped=True)
            data = self._document_of(record)
            if data is not None:
                # Never claimed, perhaps: learn its version so the error takes the current name.
                record = self._note_version(record, record.input_container, data)
            return self._fail(record, record.worker or "", code, reason)

    def _refuse(self, job_id: str, container: str, name: str, reason: str) -> JobOutcome:
        """A name the app may not name outcomes after: an error record under `refused/` and a
        failed job, and nothing under the name itself (see `shared/names.py`)."""
        now = self._clock()
        error_blob = refusal_record_name(name)
        self._outcomes.write_refusal(
            error_blob,
            {
                "job_id": job_id,
                "input": f"{container}/{name}",
                "error": {"code": "reserved_name", "reason": reason},
                "failed_at": now.isoformat(),
            },
        )
        record = new_job(job_id=job_id, container=container, blob_name=name, now=now)
        failed = move_job(
            record,
            "failed",
            now=now,
            error=JobError(code="reserved_name", reason=reason),
            error_blob=error_blob,
        )
        self._jobs.create(failed)  # a delivery again finds the record there: nothing to add
        logger.warning("refused %s/%s: %s", container, name, reason)
        return JobOutcome(job_id, "failed", error_blob=error_blob)

    # --- claiming -------------------------------------------------------------------------

    def _new_worker(self) -> str:
        return f"{self._instance}:{uuid.uuid4().hex[:8]}"

    def _claim(
        self, job_id: str, worker: str, *, create: Callable[[], JobRecord] | None
    ) -> JobRecord | None:
        ttl = timedelta(seconds=self._limits.job_hold_seconds)

        def claim(current: JobRecord | None) -> JobRecord | None:
            if current is None:
                if create is None:
                    return None
                current = create()
            return claim_job(current, worker=worker, now=self._clock(), ttl=ttl)

        record: JobRecord | None = None
        if create is not None:
            # Most documents are new: try to create the claimed record outright
            # (If-None-Match), and fall back to compare-and-swap when one exists.
            first = claim(None)
            if first is not None and self._jobs.create(first):
                record = first
                self._jobs.mark_open(job_id)
        if record is None:
            record = self._jobs.change(job_id, claim)
        if record is not None and record.worker == worker:
            logger.info("job %s claimed (attempt %d)", job_id, record.attempts)
        return record

    def _not_ours(self, job_id: str, name: str) -> JobOutcome:
        """Finished, or another worker is on it: make sure it is resumed if that worker dies."""
        existing = self._jobs.get(job_id)
        status = existing.status if existing is not None else "unknown"
        if existing is not None and live_claim(existing, self._clock()):
            assert existing.worker_expires is not None
            delay = (existing.worker_expires - self._clock()).total_seconds() + 1
            self._resumes.schedule(
                job_id, delay_seconds=delay, reason="in case the worker holding it dies"
            )
        logger.info("job %s for %s is %s; not processing it again", job_id, name, status)
        return JobOutcome(job_id, status, skipped=True)

    def _document_of(self, record: JobRecord) -> bytes | None:
        """A resumed job's document: the copy kept when it parked, else the input blob if it
        still holds this job's content."""
        saved = self._jobs.load_payload(record.id)
        if saved is not None:
            return saved
        data = self._outcomes.read_input(record.input_container, record.input_blob)
        if data is None or job_id_for(record.input_container, record.input_blob, data) != (
            record.id
        ):
            return None
        return data

    # --- the work -------------------------------------------------------------------------

    def _guarded(self, record: JobRecord, worker: str, data: bytes) -> JobOutcome:
        try:
            return self._work(record, worker, data)
        except Exception as error:
            # Anything unforeseen still leaves a record a person can read and is retried;
            # after the last attempt the record is final and an error blob says why.
            logger.exception("job %s failed unexpectedly", record.id)
            return self._retry_or_fail(
                record, worker, data, "unexpected_error", f"{type(error).__name__}: {error}"
            )

    def _work(self, record: JobRecord, worker: str, data: bytes) -> JobOutcome:
        try:
            plan = self._plan(record, worker, data)
        except DocumentRejected as rejected:
            return self._fail(record, worker, rejected.code, rejected.reason)
        except UnknownProfileError as unknown:
            return self._fail(record, worker, "unknown_profile", str(unknown))
        except ProfileConfigError as misconfigured:
            return self._fail(record, worker, "profile_config", str(misconfigured))
        with log_fields(
            model=plan.hosted.name, deployment=plan.hosted.spec.name, hold_id=plan.hold_id
        ):
            return self._on_deployment(plan)

    def _plan(self, record: JobRecord, worker: str, data: bytes) -> _Plan:
        text = decode_document(record.input_blob, data, max_bytes=self._limits.max_document_bytes)
        profile = resolve_profile(
            self._profiles,
            record.profile or self._profile_from_path(record.input_blob),
            self._default_profile,
        )
        hosted = self._hosted[self._catalog.model_for(profile).name]
        if record.model != hosted.name:
            self._note(record.id, model=hosted.name)
        requests = plan_document(
            text,
            filename=record.input_blob,
            profile=profile,
            questions=list(record.questions),
            context_tokens=hosted.model.usable_context_tokens,
            counter=self._counter,
            max_chunks=self._limits.max_chunks,
        )
        return _Plan(record, profile, requests, hosted, worker, data)

    def _on_deployment(self, plan: _Plan) -> JobOutcome:
        hosted, worker = plan.hosted, plan.worker
        ledger = hosted.ledger
        run_ttl = timedelta(seconds=self._limits.job_hold_seconds)
        held = ledger.place_hold(plan.hold_id, "job", worker, run_ttl)
        try:
            # The keeper renews the hold and the claim through the provisioning step too (a
            # readiness probe may be slow) and stops before any parking, whose longer hold
            # a late renewal must not cut short.
            with HoldKeeper(
                ledger,
                self._jobs,
                job_id=plan.record.id,
                hold_id=plan.hold_id,
                worker=worker,
                ttl=run_ttl,
            ):
                step = self._advance_and_run(plan, held)
        except BaseException:
            self._teardown_if_idle(worker, hosted, ledger.release_hold(plan.hold_id))
            raise
        if isinstance(step, _Wait):
            seconds = step.seconds
            if not step.drives:
                # Another job drives the provisioning and every job waiting on the deployment
                # is woken when it settles: a follower looks again only as a backstop, so a
                # burst does not resume a hundred jobs at every poll interval.
                seconds = max(seconds, self._limits.follower_park_seconds)
            return self._park_for_deployment(plan, step.reason, seconds)
        if isinstance(step, _Throttle):
            # Spread the comeback: every job throttled in this burst was told the same wait.
            delay = step.seconds + random.uniform(0, max(1.0, step.seconds / 10))
            plan.hosted.ledger.place_hold(
                plan.hold_id,
                "job",
                worker,
                timedelta(seconds=delay + self._limits.job_hold_seconds),
            )
            return self._park(
                plan.record,
                worker,
                plan.data,
                f"throttled: the deployment asked to wait {step.seconds:.0f} s",
                delay,
                for_deployment=False,
                free_resume=True,
            )
        if isinstance(step, _Retry):
            outcome = self._retry_or_fail(plan.record, worker, plan.data, step.code, step.reason)
            if outcome.parked:
                return outcome  # the hold lapses by itself if the retry does not come
        else:
            outcome = step
        self._teardown_if_idle(worker, hosted, ledger.release_hold(plan.hold_id))
        return outcome

    def _advance_and_run(
        self, plan: _Plan, held: LedgerRecord
    ) -> JobOutcome | _Wait | _Retry | _Throttle:
        try:
            step = plan.hosted.provisioner.advance(
                plan.worker, waiting_since=plan.record.waiting_since, known=held
            )
        except ProvisioningError as error:
            if error.retryable:
                return _Retry(error.code, error.reason)
            return self._fail(plan.record, plan.worker, error.code, error.reason)
        except RequestRejected as rejected:  # the readiness probe was refused (a role)
            return self._fail(plan.record, plan.worker, rejected.code, rejected.reason)
        if step.record is None:
            return _Wait(step.reason, step.wait_seconds, drives=step.stepped)
        return self._run(plan, step.record)

    def _run(self, plan: _Plan, ready: LedgerRecord) -> JobOutcome | _Wait | _Retry | _Throttle:
        record, hosted, worker = plan.record, plan.hosted, plan.worker
        waited = (
            (self._clock() - record.waiting_since).total_seconds()
            if record.waiting_since is not None
            else 0.0
        )
        self._move(record.id, "running", waiting_reason=None, waiting_since=None)
        started = self._monotonic()
        context = AnswerContext(
            profile=plan.profile,
            questions=record.questions,
            filename=record.input_blob,
            context_tokens=hosted.model.usable_context_tokens,
            counter=self._counter,
            readiness_until=readiness_window_end(
                ready.ready_since,
                now=self._clock(),
                monotonic_now=started,
                window_seconds=self._limits.not_found_retry_seconds,
            ),
            deadline=started + self._limits.job_timeout_seconds,
            park_on_throttle_after=self._limits.throttle_park_seconds,
        )
        try:
            answer, results = answer_document(plan.requests, hosted.chat, context)
        except DeploymentNotServing:
            # It vanished after it was ready: make the next step re-check Azure, and wait.
            logger.warning("deployment %s stopped serving mid-job; parking", hosted.spec.name)
            hosted.provisioner.mark_suspect(ready.ready_since)
            return _Wait(
                f"deployment {hosted.spec.name!r} stopped serving; it is being checked",
                self._limits.retry_base_seconds,
            )
        except (ModelRefusal, RequestRejected, ModelAnswerInvalid, ProfileConfigError) as failure:
            return self._fail(record, worker, *failure_record(failure))
        except InferenceUnavailable as error:
            return _Retry("inference_unavailable", str(error))
        except Throttled as throttled:
            return _Throttle(throttled.retry_after)
        result_blob = self._write_result(
            plan, answer, results, waited=waited, inference=self._monotonic() - started
        )
        self._move(record.id, "succeeded", result_blob=result_blob)
        self._close(record.id)
        logger.info("job %s succeeded: %s", record.id, result_blob)
        return JobOutcome(record.id, "succeeded", result_blob=result_blob)

    # --- parking --------------------------------------------------------------------------

    def _park_for_deployment(self, plan: _Plan, reason: str, wait_seconds: float) -> JobOutcome:
        record = plan.record
        since = record.waiting_since or self._clock()
        waited = (self._clock() - since).total_seconds()
        if waited >= self._limits.ready_timeout_seconds:
            return self._release_and_fail(
                plan,
                "waiting_for_room" if "waiting for room" in reason else "provisioning_timeout",
                f"the deployment was not ready after {waited:.0f} s of waiting "
                f"(PROVISION_TIMEOUT_SECONDS); last: {reason}. Upload the document again to "
                "retry it.",
            )
        delay = min(wait_seconds, self._limits.ready_timeout_seconds - waited)
        # The hold covers the wait and the run after it, so the deployment being made ready
        # for this document is not torn down before the document comes back for it.
        plan.hosted.ledger.place_hold(
            plan.hold_id,
            "job",
            plan.worker,
            timedelta(seconds=delay + self._limits.job_hold_seconds),
        )
        return self._park(plan.record, plan.worker, plan.data, reason, delay, for_deployment=True)

    def _park(
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
                    r,
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

    def _retry_or_fail(
        self, record: JobRecord, worker: str, data: bytes, code: str, reason: str
    ) -> JobOutcome:
        """A failure that may pass: park the job with backoff (one attempt spent), or, on its
        last attempt, fail it with an error record saying why."""
        if record.attempts >= self._limits.max_attempts:
            return self._fail(
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
        return self._park(
            record, worker, data, f"retrying after: {reason}", delay, for_deployment=False
        )

    # --- outcomes -------------------------------------------------------------------------

    def _write_result(
        self,
        plan: _Plan,
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

    def _release_and_fail(self, plan: _Plan, code: str, reason: str) -> JobOutcome:
        released = plan.hosted.ledger.release_hold(plan.hold_id)
        self._teardown_if_idle(plan.worker, plan.hosted, released)
        return self._fail(plan.record, plan.worker, code, reason)

    def _fail(self, record: JobRecord, worker: str, code: str, reason: str) -> JobOutcome:
        document = {
            "job_id": record.id,
            "input": f"{record.input_container}/{record.input_blob}",
            "error": {"code": code, "reason": reason},
            "failed_at": self._clock().isoformat(),
            **self._version_provenance(record),
        }
        name = self._write_outcome(record, "error", document)
        self._move(record.id, "failed", error=JobError(code=code, reason=reason), error_blob=name)
        self._close(record.id)
        logger.warning("job %s failed (%s): %s", record.id, code, reason)
        return JobOutcome(record.id, "failed", error_blob=name)

    def _close(self, job_id: str) -> None:
        self._jobs.drop_payload(job_id)
        self._jobs.mark_closed(job_id)

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

    def _note_version(self, record: JobRecord, container: str, data: bytes) -> JobRecord:
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
        self._note(record.id, **fields)
        return record.model_copy(update=fields)

    # --- small helpers --------------------------------------------------------------------

    def _move(self, job_id: str, status: Any, **fields: Any) -> None:
        self._jobs.change(
            job_id,
            lambda r: move_job(r, status, now=self._clock(), **fields) if r is not None else None,
        )

    def _note(self, job_id: str, **fields: Any) -> None:
        """Change fields of the job record without a status change (which model, version)."""

        def change(record: JobRecord | None) -> JobRecord | None:
            if record is None or all(getattr(record, k) == v for k, v in fields.items()):
                return None
            return record.model_copy(update=fields)

        self._jobs.change(job_id, change)

    def _teardown_if_idle(
        self, worker: str, hosted: HostedDeployment, released: LedgerRecord
    ) -> None:
        try:
            outcome = hosted.provisioner.teardown_if_idle(
                worker, idle_grace=hosted.idle_grace, known=released
            )
        except Exception:  # the reaper finishes what the fast path could not
            logger.exception("teardown after the job failed; the reaper will retry")
            return
        logger.info("teardown check: %s", outcome.reason)

    def _profile_from_path(self, blob_name: str) -> str | None:
        """A first folder named like a profile selects it: `contracts/lease.txt`."""
        first = blob_name.split("/", 1)[0] if "/" in blob_name else None
        return first if first in self._profiles else None
