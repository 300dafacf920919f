"""The on-demand engine: one document in, one result (or error record) out, never waiting idle.

`process_blob` is what the blob trigger calls, `resume` what the resume queue's trigger calls.
Either claims the document's job record (so a document is worked on by one worker at a time),
validates and plans the document before anything is billed, places a job hold on its hosted
model's deployment and takes one provisioning step:

- serving: the warm path, inline, in this module: the chat requests run, the outcome is
  written (`recording.py`, `outcomes.py`), the hold is released and the deployment torn down
  if nothing needs it;
- not serving yet: the job *parks* (`waiting.py`): its record says why it waits, its hold is
  kept for the wait, its claim given back, and a message on the resume queue resumes it. The
  invocation ends; nothing sleeps.

A transient failure parks the job too, with backoff, and spends one of its attempts; after
`MAX_JOB_ATTEMPTS` the job fails with an error record saying why. So no document depends on the
Functions host delivering its blob again, and the sweeper (`sweeper.py`) resumes any job
whose worker died or whose resume message was lost.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta

from shared.catalog import Catalog
from shared.documents.answering import (
    AnswerContext,
    answer_document,
    failure_record,
    readiness_window_end,
)
from shared.documents.decoding import DocumentRejected, decode_document
from shared.documents.hold_keeper import HoldKeeper
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
    with_version,
)
from shared.documents.outcomes import OutcomeStore
from shared.documents.parking import ResumeQueue
from shared.documents.planning import ModelAnswerInvalid, plan_document
from shared.documents.profiles import (
    ProfileConfigError,
    UnknownProfileError,
    resolve_profile,
)
from shared.documents.recording import JobRecorder
from shared.documents.steps import (
    Answered,
    EngineLimits,
    JobOutcome,
    PlannedJob,
    Retry,
    RunStep,
    Throttle,
    Wait,
)
from shared.documents.tokens import TokenCounter
from shared.documents.waiting import JobParker
from shared.hosting.deployments import ProvisioningError
from shared.hosting.holds import LedgerRecord
from shared.hosting.hosted import HostedDeployment
from shared.inference import (
    DeploymentNotServing,
    InferenceUnavailable,
    ModelRefusal,
    RequestRejected,
    Throttled,
)
from shared.names import refusal_record_name, refused_output_name
from shared.observability import log_fields
from shared.together import begin, together

__all__ = ["DocumentEngine", "EngineLimits", "JobOutcome"]


def _refusal(
    refused: DocumentRejected | UnknownProfileError | ProfileConfigError,
) -> tuple[str, str]:
    """The error record's code and reason for a document refused before anything is billed."""
    if isinstance(refused, DocumentRejected):
        return refused.code, refused.reason
    if isinstance(refused, UnknownProfileError):
        return "unknown_profile", str(refused)
    return "profile_config", str(refused)


# How long a run goes before its record says `running` (see `_run`).
RUNNING_STATUS_AFTER_SECONDS = 1.0


@contextmanager
def _after(
    seconds: float, action: Callable[[str, str], None], job_id: str, worker: str
) -> Iterator[None]:
    """Run `action(job_id, worker)` on a timer if the block is still running after `seconds`;
    on leaving, a started action is waited for, so it lands before anything written next."""
    timer = threading.Timer(seconds, _logged, args=(action, job_id, worker))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()


def _logged(action: Callable[[str, str], None], job_id: str, worker: str) -> None:
    try:
        action(job_id, worker)
    except Exception:  # only a status for people to read; the outcome write does not need it
        logger.exception("job %s: recording that it runs failed", job_id)


logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


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
        self._recorder = JobRecorder(jobs=jobs, outcomes=outcomes, counter=counter, clock=clock)
        self._parker = JobParker(
            jobs=jobs, resumes=resumes, recorder=self._recorder, limits=limits, clock=clock
        )

    # --- entry points ---------------------------------------------------------------------

    def process_blob(self, container: str, name: str, data: bytes) -> JobOutcome:
        """A document was delivered (uploaded, or submitted over HTTP)."""
        job_id = job_id_for(container, name, data)
        with log_fields(job_id=job_id):
            refused = refused_output_name(name)
            if refused is not None:
                return self._refuse(job_id, container, name, refused)
            worker = self._new_worker()
            # Read while the record is created: a new record takes the version with its next
            # write (its end or its park); an existing one with the claim.
            reading = begin(lambda: self._recorder.read_version(container, name, data, job_id))

            def versioned(record: JobRecord) -> JobRecord:
                version = reading.result()
                return with_version(record, input_md5=version.md5, uploaded_at=version.uploaded_at)

            def with_model(record: JobRecord) -> JobRecord:
                model = record.model or self._model_name_for(record)
                return (
                    record if model == record.model else record.model_copy(update={"model": model})
                )

            record = self._claim(
                job_id,
                worker,
                create=lambda: with_model(
                    new_job(job_id=job_id, container=container, blob_name=name, now=self._clock())
                ),
                fill=lambda record: versioned(with_model(record)),
            )
            version = reading.result()
            if record is None or record.worker != worker:
                return self._not_ours(job_id, name)
            record = with_version(record, input_md5=version.md5, uploaded_at=version.uploaded_at)
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
            if data is not None:
                # Its first worker died before the record took its version: read it now.
                record = self._recorder.note_version(record, record.input_container, data)
            if data is None:
                return self._input_gone(record, worker)
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
                record = self._recorder.note_version(record, record.input_container, data)
            return self._recorder.fail(record, record.worker or "", code, reason)

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
        self,
        job_id: str,
        worker: str,
        *,
        create: Callable[[], JobRecord] | None,
        fill: Callable[[JobRecord], JobRecord] = lambda record: record,
    ) -> JobRecord | None:
        """Claim the job for `worker` (creating its record if `create` and none exists);
        `fill` adds what is known of an existing job to the claim's write. The record is
        written tagged open (job_store.py), so the sweeper finds it if this worker dies."""
        ttl = timedelta(seconds=self._limits.job_hold_seconds)

        def claim(current: JobRecord | None) -> JobRecord | None:
            if current is None:
                if create is None:
                    return None
                return claim_job(create(), worker=worker, now=self._clock(), ttl=ttl)
            claimed = claim_job(current, worker=worker, now=self._clock(), ttl=ttl)
            return fill(claimed) if claimed is not None else None

        record: JobRecord | None = None
        if create is not None:
            # Most documents are new: try to create the claimed record outright
            # (If-None-Match), and fall back to compare-and-swap when one exists.
            first = claim(None)
            if first is not None and self._jobs.create(first):
                record = first
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

    def _input_gone(self, record: JobRecord, worker: str) -> JobOutcome:
        """A resumed job whose content was not kept and is no longer in its input blob."""
        where = f"{record.input_container}/{record.input_blob}"
        current = self._outcomes.read_input(record.input_container, record.input_blob)
        if current is None:
            return self._recorder.fail(
                record,
                worker,
                "input_missing",
                f"the document {where} was deleted before it could be processed. Upload it "
                "again to process it.",
            )
        # Not lost: a newer version took its place, and that version is the document now.
        newer = job_id_for(record.input_container, record.input_blob, current)
        self._recorder.note(record.id, superseded=True)
        return self._recorder.fail(
            record.model_copy(update={"superseded": True}),
            worker,
            "superseded",
            f"a newer version of {where} (job {newer}) was uploaded while this version waited "
            f"to be processed; the newer version is processed instead and its outcome is the "
            f"document's. Nothing to do, unless you need this older version's own answer: "
            "then upload its content again under another name.",
        )

    # --- the work -------------------------------------------------------------------------

    def _guarded(self, record: JobRecord, worker: str, data: bytes) -> JobOutcome:
        try:
            return self._work(record, worker, data)
        except Exception as error:
            # Anything unforeseen still leaves a record a person can read and is retried;
            # after the last attempt the record is final and an error blob says why.
            logger.exception("job %s failed unexpectedly", record.id)
            return self._parker.retry_or_fail(
                record, worker, data, "unexpected_error", f"{type(error).__name__}: {error}"
            )

    def _work(self, record: JobRecord, worker: str, data: bytes) -> JobOutcome:
        try:
            plan = self._plan(record, worker, data)
        except (DocumentRejected, UnknownProfileError, ProfileConfigError) as refused:
            code, reason = _refusal(refused)
            return self._recorder.fail(record, worker, code, reason)
        with log_fields(
            model=plan.hosted.name, deployment=plan.hosted.spec.name, hold_id=plan.hold_id
        ):
            return self._on_deployment(plan)

    def _plan(self, record: JobRecord, worker: str, data: bytes) -> PlannedJob:
        text = decode_document(record.input_blob, data, max_bytes=self._limits.max_document_bytes)
        profile = resolve_profile(
            self._profiles,
            record.profile or self._profile_from_path(record.input_blob),
            self._default_profile,
        )
        hosted = self._hosted[self._catalog.model_for(profile).name]
        if record.model != hosted.name:
            self._recorder.note(record.id, model=hosted.name)
        requests = plan_document(
            text,
            filename=record.input_blob,
            profile=profile,
            questions=list(record.questions),
            context_tokens=hosted.model.usable_context_tokens,
            counter=self._counter,
            max_chunks=self._limits.max_chunks,
        )
        return PlannedJob(record, profile, requests, hosted, worker, data)

    def _on_deployment(self, plan: PlannedJob) -> JobOutcome:
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
            self._release(plan)
            raise
        if isinstance(step, Answered):
            return self._succeed(plan, step)
        if not isinstance(step, JobOutcome):
            return self._parker.after_step(plan, step, self._release)
        self._release(plan)
        return step

    def _succeed(self, plan: PlannedJob, answered: Answered) -> JobOutcome:
        """Write the outcome; the hold is released meanwhile (the model's part is done)."""
        record = plan.record
        # The outcome's writes run here (they fan out themselves); the release on the pool.
        result_blob, _ = together(
            lambda: self._recorder.write_result(
                plan,
                answered.answer,
                answered.results,
                waited=answered.waited,
                inference=answered.inference,
            ),
            lambda: self._release(plan),
        )
        self._recorder.succeed(record, result_blob, started_at=answered.started_at)
        logger.info("job %s succeeded: %s", record.id, result_blob)
        return JobOutcome(record.id, "succeeded", result_blob=result_blob)

    def _advance_and_run(self, plan: PlannedJob, held: LedgerRecord) -> RunStep:
        try:
            step = plan.hosted.provisioner.advance(
                plan.worker, waiting_since=plan.record.waiting_since, known=held
            )
        except ProvisioningError as error:
            if error.retryable:
                return Retry(error.code, error.reason)
            return self._recorder.fail(plan.record, plan.worker, error.code, error.reason)
        except RequestRejected as rejected:  # the readiness probe was refused (a role)
            return self._recorder.fail(plan.record, plan.worker, rejected.code, rejected.reason)
        if step.record is None:
            return Wait(step.reason, step.wait_seconds, drives=step.stepped)
        return self._run(plan, step.record)

    def _run(self, plan: PlannedJob, ready: LedgerRecord) -> RunStep:
        record, hosted, worker = plan.record, plan.hosted, plan.worker
        waited = (
            (self._clock() - record.waiting_since).total_seconds()
            if record.waiting_since is not None
            else 0.0
        )
        started_at, started = self._clock(), self._monotonic()
        if record.waiting_reason is not None or record.waiting_since is not None:
            # Back from a wait: the record stops saying why it waits as soon as it runs.
            self._recorder.start_running(record.id, worker)
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
            # A run on a serving deployment is usually over in well under a second: the record
            # says `running` only if it is still running after RUNNING_STATUS_AFTER_SECONDS.
            with _after(
                RUNNING_STATUS_AFTER_SECONDS, self._recorder.start_running, record.id, worker
            ):
                answer, results = answer_document(plan.requests, hosted.chat, context)
        except DeploymentNotServing:
            # It vanished after it was ready: make the next step re-check Azure, and wait.
            logger.warning("deployment %s stopped serving mid-job; parking", hosted.spec.name)
            hosted.provisioner.mark_suspect(ready.ready_since)
            return Wait(
                f"deployment {hosted.spec.name!r} stopped serving; it is being checked",
                self._limits.retry_base_seconds,
            )
        except (ModelRefusal, RequestRejected, ModelAnswerInvalid, ProfileConfigError) as failure:
            return self._recorder.fail(record, worker, *failure_record(failure))
        except InferenceUnavailable as error:
            return Retry("inference_unavailable", str(error))
        except Throttled as throttled:
            return Throttle(throttled.retry_after)
        return Answered(answer, results, started_at, waited, self._monotonic() - started)

    # --- small helpers --------------------------------------------------------------------

    def _release(self, plan: PlannedJob) -> None:
        """Release the job's hold, and tear the deployment down if nothing else needs it."""
        hosted = plan.hosted
        released = hosted.ledger.release_hold(plan.hold_id)
        try:
            outcome = hosted.provisioner.teardown_if_idle(
                plan.worker, idle_grace=hosted.idle_grace, known=released
            )
        except Exception:  # the reaper finishes what the fast path could not
            logger.exception("teardown after the job failed; the reaper will retry")
            return
        logger.info("teardown check: %s", outcome.reason)

    def _model_name_for(self, record: JobRecord) -> str | None:
        """The hosted model the job's profile routes to; None if the profile is wrong (the
        planning step fails the job with a record saying why)."""
        try:
            profile = resolve_profile(
                self._profiles,
                record.profile or self._profile_from_path(record.input_blob),
                self._default_profile,
            )
            return self._catalog.model_for(profile).name
        except (UnknownProfileError, ProfileConfigError, KeyError):
            return None

    def _profile_from_path(self, blob_name: str) -> str | None:
        """A first folder named like a profile selects it: `contracts/lease.txt`."""
        first = blob_name.split("/", 1)[0] if "/" in blob_name else None
        return first if first in self._profiles else None
