"""The on-demand engine: one document in, one result (or error record) out.

`DocumentEngine.process_blob` is what the blob trigger calls. It claims the document's job
record (so a re-delivered blob is processed once), validates and plans the document before
anything is billed, places a job hold on the deployment, waits for the single-flight
provisioner, runs the chat requests, writes the result with provenance, releases the hold and
tears the deployment down when nothing else needs it. A document that cannot be processed
leaves an error blob beside where its result would be; a transient failure leaves the job
record saying so and raises, so the Functions host delivers the blob again.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from azure.storage.blob import ContentSettings

from shared.catalog import Catalog
from shared.documents.decoding import DocumentRejected, decode_document
from shared.documents.job_store import JobStore
from shared.documents.jobs import (
    JobError,
    JobRecord,
    claim_job,
    job_id_for,
    move_job,
    new_job,
    release_job,
)
from shared.documents.outcomes import OutcomeKind, OutcomeStore, VersionStamp, content_md5
from shared.documents.planning import ModelAnswerInvalid, parse_answer, plan_document, run_combine
from shared.documents.profiles import (
    ProcessingProfile,
    ProfileConfigError,
    UnknownProfileError,
    resolve_profile,
)
from shared.documents.tokens import TokenCounter
from shared.hosting.deployments import ProvisioningError
from shared.hosting.holds import KnownState, LedgerRecord
from shared.hosting.hosted import HostedDeployment
from shared.hosting.ledger import HoldLedger
from shared.inference import (
    ChatRequest,
    ChatResult,
    DeploymentNotServing,
    InferenceUnavailable,
    ModelRefusal,
    RequestRejected,
)
from shared.observability import log_fields
from shared.renewal import PeriodicRenewal

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
_JSON = ContentSettings(content_type="application/json")


class RetryLater(Exception):
    """Processing could not finish now; the job record says why and a re-delivery resumes it."""


@dataclass(frozen=True)
class EngineLimits:
    """Bounds on one document's processing (seconds, bytes, counts)."""

    job_hold_seconds: float = 600.0
    ready_timeout_seconds: float = 1200.0
    job_timeout_seconds: float = 1680.0
    max_attempts: int = 5
    not_found_retry_seconds: float = 60.0
    max_document_bytes: int = 2_000_000
    max_chunks: int = 40
    max_recoveries: int = 3


@dataclass(frozen=True)
class JobOutcome:
    job_id: str
    status: str
    result_blob: str | None = None
    error_blob: str | None = None
    skipped: bool = False


class HoldKeeper(PeriodicRenewal):
    """Renews a job's hold and its claim on the job record while the job runs."""

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
        if not self._ledger.renew_hold(self._hold_id, self._ttl):
            logger.warning("hold %s had lapsed; placing it again", self._hold_id)
            self._ledger.place_hold(self._hold_id, "job", self._worker, self._ttl)
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
        self._profiles = catalog.profiles
        self._default_profile = default_profile
        self._counter = counter
        self._limits = limits
        self._clock = clock
        self._monotonic = monotonic
        self._instance = instance or uuid.uuid4().hex[:8]

    # --- entry point ----------------------------------------------------------------------

    def process_blob(self, container: str, name: str, data: bytes) -> JobOutcome:
        job_id = job_id_for(container, name, data)
        with log_fields(job_id=job_id):
            return self._process_blob(job_id, container, name, data)

    def _process_blob(self, job_id: str, container: str, name: str, data: bytes) -> JobOutcome:
        worker = f"{self._instance}:{uuid.uuid4().hex[:8]}"
        ttl = timedelta(seconds=self._limits.job_hold_seconds)

        def claim(current: JobRecord | None) -> JobRecord | None:
            record = current or new_job(
                job_id=job_id, container=container, blob_name=name, now=self._clock()
            )
            return claim_job(record, worker=worker, now=self._clock(), ttl=ttl)

        # Most documents are new: try to create the claimed record outright (If-None-Match)
        # and fall back to compare-and-swap when a record exists (re-delivery, HTTP submit).
        first_claim = claim(None)
        record = first_claim if first_claim and self._jobs.create(first_claim) else None
        if record is None:
            record = self._jobs.change(job_id, claim)
        if record is None or record.worker != worker:
            existing = self._jobs.get(job_id)
            status = existing.status if existing else "unknown"
            logger.info("job %s for %s is %s; not processing it again", job_id, name, status)
            return JobOutcome(job_id, status, skipped=True)
        logger.info(
            "job %s claimed for %s/%s (attempt %d)", job_id, container, name, record.attempts
        )
        record = self._note_version(record, container, data)
        try:
            return self._process(record, data, worker, ttl)
        except RetryLater:
            raise
        except Exception as error:
            # Anything unforeseen still leaves a record a person can read, then the host
            # retries; after the last attempt the record is final and an error blob says why.
            logger.exception("job %s failed unexpectedly", job_id)
            return self._retry_or_fail(
                record, worker, "unexpected_error", f"{type(error).__name__}: {error}", error
            )

    # --- the work -------------------------------------------------------------------------

    def _process(self, record: JobRecord, data: bytes, worker: str, ttl: timedelta) -> JobOutcome:
        job_deadline = self._monotonic() + self._limits.job_timeout_seconds
        try:
            text = decode_document(
                record.input_blob, data, max_bytes=self._limits.max_document_bytes
            )
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
        except DocumentRejected as rejected:
            return self._fail(record, worker, rejected.code, rejected.reason)
        except UnknownProfileError as unknown:
            return self._fail(record, worker, "unknown_profile", str(unknown))
        except ProfileConfigError as misconfigured:
            return self._fail(record, worker, "profile_config", str(misconfigured))

        hold_id = f"job:{record.id}"
        with log_fields(model=hosted.name, deployment=hosted.spec.name, hold_id=hold_id):
            return self._hold_and_run(
                record,
                profile=profile,
                requests=requests,
                worker=worker,
                ttl=ttl,
                hosted=hosted,
                hold_id=hold_id,
                job_deadline=job_deadline,
            )

    def _hold_and_run(
        self,
        record: JobRecord,
        *,
        profile: ProcessingProfile,
        requests: list[ChatRequest],
        worker: str,
        ttl: timedelta,
        hosted: HostedDeployment,
        hold_id: str,
        job_deadline: float,
    ) -> JobOutcome:
        ledger = hosted.ledger
        held = ledger.place_hold(hold_id, "job", worker, ttl)
        try:
            with HoldKeeper(
                ledger, self._jobs, job_id=record.id, hold_id=hold_id, worker=worker, ttl=ttl
            ):
                outcome = self._run_with_deployment(
                    record,
                    profile,
                    requests,
                    worker,
                    hosted=hosted,
                    held=held,
                    job_deadline=job_deadline,
                )
        except RetryLater:
            # Keep the hold (it lapses after JOB_HOLD_SECONDS): the deployment being made
            # ready is exactly what the re-delivery of this document will need.
            logger.info("job %s keeps its hold until %s for its retry", record.id, ttl)
            raise
        except BaseException:
            self._teardown_if_idle(worker, hosted, ledger.release_hold(hold_id))
            raise
        self._teardown_if_idle(worker, hosted, ledger.release_hold(hold_id))
        return outcome

    def _run_with_deployment(
        self,
        record: JobRecord,
        profile: ProcessingProfile,
        requests: list[ChatRequest],
        worker: str,
        *,
        hosted: HostedDeployment,
        held: LedgerRecord,
        job_deadline: float,
    ) -> JobOutcome:
        already_ready = held.state is KnownState.READY
        if already_ready:
            # Warm path: nothing to wait for, so both transitions go in one write.
            self._move(record.id, "waiting_for_deployment", "running")
        else:
            self._move(record.id, "waiting_for_deployment")
        waiting_started = self._monotonic()
        try:
            ready = hosted.provisioner.ensure_ready(
                worker,
                deadline=self._ready_deadline(job_deadline),
                known=held,
                on_wait=lambda reason: self._note(record.id, waiting_reason=reason),
            )
        except ProvisioningError as error:
            if error.retryable:
                return self._retry_or_fail(record, worker, error.code, error.reason, error)
            return self._fail(record, worker, error.code, error.reason)
        except RequestRejected as rejected:  # the readiness probe was refused (a role)
            return self._fail(record, worker, rejected.code, rejected.reason)
        wait_seconds = self._monotonic() - waiting_started
        if not already_ready:
            self._move(record.id, "running", waiting_reason=None)
        running_started = self._monotonic()
        runner = _RequestRunner(self, hosted, worker, ready, job_deadline)
        try:
            answer, results = self._answer(requests, profile, record, runner, hosted)
        except ModelRefusal as refusal:
            return self._fail(record, worker, "model_refused", refusal.reason)
        except RequestRejected as rejected:
            return self._fail(record, worker, rejected.code, rejected.reason)
        except ModelAnswerInvalid as invalid:
            return self._fail(record, worker, "invalid_model_answer", str(invalid))
        except ProfileConfigError as misconfigured:
            return self._fail(record, worker, "profile_config", str(misconfigured))
        except ProvisioningError as error:
            if error.retryable:
                return self._retry_or_fail(record, worker, error.code, error.reason, error)
            return self._fail(record, worker, error.code, error.reason)
        except InferenceUnavailable as error:
            return self._retry_or_fail(record, worker, "inference_unavailable", str(error), error)
        inference_seconds = self._monotonic() - running_started
        result_blob = self._write_result(
            record=record,
            hosted=hosted,
            profile=profile,
            answer=answer,
            results=results,
            wait_seconds=wait_seconds,
            inference_seconds=inference_seconds,
        )
        self._move(record.id, "succeeded", result_blob=result_blob)
        logger.info("job %s succeeded: %s", record.id, result_blob)
        return JobOutcome(record.id, "succeeded", result_blob=result_blob)

    def _answer(
        self,
        requests: list[ChatRequest],
        profile: ProcessingProfile,
        record: JobRecord,
        runner: _RequestRunner,
        hosted: HostedDeployment,
    ) -> tuple[Any, list[ChatResult]]:
        if len(requests) == 1:
            content = runner(requests[0])
            return parse_answer(content, requests[0]), runner.results
        partials = [runner(request) for request in requests]
        final_content, final_request = run_combine(
            partials,
            profile=profile,
            questions=list(record.questions),
            filename=record.input_blob,
            context_tokens=hosted.model.usable_context_tokens,
            counter=self._counter,
            run=runner,
        )
        return parse_answer(final_content, final_request), runner.results

    # --- persistence ----------------------------------------------------------------------

    def _write_result(
        self,
        *,
        record: JobRecord,
        hosted: HostedDeployment,
        profile: ProcessingProfile,
        answer: Any,
        results: list[ChatResult],
        wait_seconds: float,
        inference_seconds: float,
    ) -> str:
        document = {
            "job_id": record.id,
            "input": f"{record.input_container}/{record.input_blob}",
            "profile": profile.name,
            "questions": list(record.questions),
            "answer": answer,
            "provenance": {
                "hosted_model": hosted.name,
                "deployment": hosted.chat.deployment,
                "model": results[-1].model if results else None,
                "requests": len(results),
                "usage": {
                    "prompt_tokens": sum(r.prompt_tokens for r in results),
                    "completion_tokens": sum(r.completion_tokens for r in results),
                    "total_tokens": sum(r.prompt_tokens + r.completion_tokens for r in results),
                },
                "token_counting": self._counter.method,
                "wait_for_deployment_seconds": round(wait_seconds, 3),
                "inference_seconds": round(inference_seconds, 3),
                "completed_at": self._clock().isoformat(),
                **self._version_provenance(record),
            },
        }
        return self._write_outcome(record, "result", document)

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

    def _move(self, job_id: str, *statuses: Any, **fields: Any) -> None:
        def change(record: JobRecord | None) -> JobRecord | None:
            if record is None:
                return None
            for status in statuses:
                record = move_job(record, status, now=self._clock(), **fields)
            return record

        self._jobs.change(job_id, change)

    def _note(self, job_id: str, **fields: Any) -> None:
        """Change fields of the job record without a status change (which model, why it waits)."""

        def change(record: JobRecord | None) -> JobRecord | None:
            if record is None or all(getattr(record, k) == v for k, v in fields.items()):
                return None
            return record.model_copy(update=fields)

        self._jobs.change(job_id, change)

    def _ready_deadline(self, job_deadline: float) -> float:
        """How long this job may wait for the deployment from now: never past its own end."""
        return min(self._monotonic() + self._limits.ready_timeout_seconds, job_deadline)

    def _retry_or_fail(
        self, record: JobRecord, worker: str, code: str, reason: str, cause: BaseException
    ) -> JobOutcome:
        """A failure that may pass: hand the job back for a re-delivery, or, on its last
        attempt, fail it with an error record, since the host gives the blob up after that."""
        if record.attempts >= self._limits.max_attempts:
            return self._fail(
                record,
                worker,
                code,
                f"gave up after {record.attempts} attempts (MAX_JOB_ATTEMPTS). The last "
                f"attempt's failure, which would otherwise have been retried: "
                f"{reason.rstrip('.')}. Upload the document again to retry it.",
            )
        self._release(record.id, worker, reason)
        raise RetryLater(reason) from cause

    def _release(self, job_id: str, worker: str, note: str) -> None:
        self._jobs.change(
            job_id,
            lambda r: (
                release_job(r, worker=worker, now=self._clock(), note=note)
                if r is not None
                else None
            ),
        )

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

    # --- used by _RequestRunner -----------------------------------------------------------

    def _complete(
        self,
        hosted: HostedDeployment,
        request: ChatRequest,
        ready: LedgerRecord,
        job_deadline: float,
    ) -> ChatResult:
        window_left = 0.0
        if ready.ready_since is not None:
            elapsed = (self._clock() - ready.ready_since).total_seconds()
            window_left = self._limits.not_found_retry_seconds - elapsed
        readiness_until = self._monotonic() + window_left if window_left > 0 else None
        return hosted.chat.complete(request, readiness_until=readiness_until, deadline=job_deadline)


class _RequestRunner:
    """Runs chat requests for one job, re-provisioning if the deployment vanished mid-job."""

    def __init__(
        self,
        engine: DocumentEngine,
        hosted: HostedDeployment,
        worker: str,
        ready: LedgerRecord,
        job_deadline: float,
    ):
        self._engine = engine
        self._hosted = hosted
        self._worker = worker
        self._ready = ready
        self._job_deadline = job_deadline
        self.results: list[ChatResult] = []

    def __call__(self, request: ChatRequest) -> str:
        for _ in range(self._engine._limits.max_recoveries + 1):
            try:
                result = self._engine._complete(
                    self._hosted, request, self._ready, self._job_deadline
                )
            except DeploymentNotServing:
                logger.warning("deployment stopped serving mid-job; re-checking it")
                self._ready = self._hosted.provisioner.recheck(
                    self._worker,
                    observed_ready_since=self._ready.ready_since,
                    deadline=self._engine._ready_deadline(self._job_deadline),
                )
                continue
            self.results.append(result)
            return result.content
        raise ProvisioningError(
            "the deployment kept disappearing while the document was processed",
            code="deployment_unstable",
            retryable=True,
        )
