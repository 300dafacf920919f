"""One document of a batch: from its input blob to its outcome, with the engine's own pieces.

Decoding, profile resolution, planning and answering are the ad-hoc path's
(`shared.documents`); the outcome goes through `OutcomeStore` under the run's output prefix, so
a batch's results and error records are named like the ad-hoc path's
(`<output prefix><name>.result.json`, and every version's under `versions/`). A document
whose version already has an outcome is skipped; a document that fails gets an error record
and never stops the batch. Requests go through `PacedChat`, which spends the run's budgets
before each request and tells the pacer about every 429.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from shared.batch.models import BatchRun, RunCounters
from shared.batch.pacing import PacingDeadline, RatePacer
from shared.batch.store import InputListing, OutcomeIndex, WaitingDocument
from shared.documents.answering import AnswerContext, answer_document, failure_record, usage_of
from shared.documents.decoding import DocumentRejected, decode_document
from shared.documents.outcomes import OutcomeKind, OutcomeStore, VersionStamp
from shared.documents.planning import ModelAnswerInvalid, plan_document
from shared.documents.profiles import ProcessingProfile, ProfileConfigError
from shared.documents.tokens import TokenCounter
from shared.inference import (
    ChatClient,
    ChatRequest,
    ChatResult,
    DeploymentNotServing,
    InferenceUnavailable,
    ModelRefusal,
    RequestRejected,
    Throttled,
)
from shared.names import refusal_record_name, refused_output_name

logger = logging.getLogger(__name__)

DocumentOutcome = Literal["succeeded", "failed", "skipped", "not_serving", "unfinished"]


@dataclass
class Tally:
    """Counters of one page, added to from the worker threads."""

    requests: int = 0
    throttled: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    rate_limit_tokens: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def answered(self, result: ChatResult, max_tokens: int) -> None:
        with self._lock:
            self.requests += 1
            self.prompt_tokens += result.prompt_tokens
            self.completion_tokens += result.completion_tokens
            self.rate_limit_tokens += result.prompt_tokens + max_tokens

    def throttle(self) -> None:
        with self._lock:
            self.throttled += 1


class PacedChat:
    """The deployment's chat client behind the run's pacer (the `ChatCompleter` answering uses).

    Every request first spends its cost (prompt estimate plus `max_tokens`, as Azure counts
    it) from the budgets. A 429 is not slept out inside the client (`longest_sleep=0`): the
    pacer hears of it, pauses every sender for the Retry-After and lowers the share, and the
    request queues for the budget again.
    """

    def __init__(
        self, chat: ChatClient, pacer: RatePacer, counter: TokenCounter, tally: Tally
    ) -> None:
        self._chat = chat
        self._pacer = pacer
        self._counter = counter
        self._tally = tally

    def complete(
        self,
        request: ChatRequest,
        *,
        readiness_until: float | None = None,
        deadline: float | None = None,
        longest_sleep: float | None = None,
    ) -> ChatResult:
        estimate = self._counter.count_messages(request.messages)
        while True:
            cost = self._pacer.request_cost(estimate, request.max_tokens)
            try:
                self._pacer.acquire(cost, deadline=deadline)
            except PacingDeadline as late:
                raise InferenceUnavailable(f"the batch's time ran out: {late}") from late
            try:
                result = self._chat.complete(
                    request, readiness_until=readiness_until, deadline=deadline, longest_sleep=0.0
                )
            except Throttled as throttled:
                self._tally.throttle()
                self._pacer.throttled(throttled.retry_after)
                continue
            self._pacer.answered(prompt_estimate=estimate, prompt_counted=result.prompt_tokens)
            self._tally.answered(result, request.max_tokens)
            return result


@dataclass(frozen=True)
class BatchLimits:
    max_document_bytes: int
    max_chunks: int
    # Transient failures (5xx streaks, timeouts beyond the retry policy) of one document
    # before it gets an error record.
    document_attempts: int = 3
    retry_pause_seconds: float = 1.0


@dataclass(frozen=True)
class DocumentContext:
    """What every document of one slice shares."""

    run_id: str
    model: str
    input_prefix: str
    output_prefix: str
    profile: ProcessingProfile
    chat: PacedChat
    context_tokens: int
    deployment: str
    readiness_until: float | None
    stop_at: float  # monotonic: the slice's end (deadline or invocation budget)


class DocumentProcessor:
    """Processes one waiting document of a batch to exactly one outcome."""

    def __init__(
        self,
        *,
        listing: InputListing,
        index: OutcomeIndex,
        outcomes: OutcomeStore,
        counter: TokenCounter,
        limits: BatchLimits,
        clock: Callable[[], datetime],
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._listing = listing
        self._index = index
        self._outcomes = outcomes
        self._counter = counter
        self._limits = limits
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep

    def output_name(self, context: DocumentContext, input_name: str) -> str:
        return output_name_for(context.input_prefix, context.output_prefix, input_name)

    def settle_if_done(self, document: WaitingDocument, run: BatchRun) -> bool:
        """Whether this version already has an outcome (published under its current name
        now, if a crash left that undone); storage reads only, no model."""
        output_name = output_name_for(run.input_prefix, run.output_prefix, document.name)
        return self._settled(document, output_name)

    def _settled(self, document: WaitingDocument, output_name: str) -> bool:
        existing = self._index.existing(output_name, document.version)
        if existing is None:
            return False
        if not self._index.published(output_name, document.version):
            kind: OutcomeKind = "error" if existing.endswith(".error.json") else "result"
            self._write(document, output_name, kind, self._index.read(existing))
        return True

    def process(self, document: WaitingDocument, context: DocumentContext) -> DocumentOutcome:
        output_name = self.output_name(context, document.name)
        refused = refused_output_name(output_name)
        if refused is not None:
            # The joined name (output prefix + the name under the input prefix) is checked,
            # not the prefix alone: nothing a batch writes lands in a reserved folder.
            self._outcomes.write_refusal(
                refusal_record_name(output_name),
                {
                    "job_id": document.version,
                    "run_id": context.run_id,
                    "input": f"{self._listing.container_name}/{document.name}",
                    "error": {"code": "reserved_name", "reason": refused},
                    "failed_at": self._clock().isoformat(),
                },
            )
            logger.warning("batch %s: refused %s: %s", context.run_id, document.name, refused)
            return "failed"
        if self._settled(document, output_name):
            return "skipped"
        data = self._listing.read(document.name)
        if data is None:
            # Deleted since the listing: nothing waits any more, nothing to record.
            logger.info("batch %s: %s is gone; skipping it", context.run_id, document.name)
            return "skipped"
        for attempt in range(1, self._limits.document_attempts + 1):
            try:
                return self._answer(document, data, output_name, context)
            except InferenceUnavailable as error:
                if self._monotonic() >= context.stop_at:
                    return "unfinished"
                if attempt == self._limits.document_attempts:
                    return self._fail(
                        document,
                        output_name,
                        context,
                        "inference_unavailable",
                        f"gave up after {attempt} attempts in this batch: {error}",
                    )
                logger.warning(
                    "batch %s: %s attempt %d failed (%s); retrying",
                    context.run_id,
                    document.name,
                    attempt,
                    error,
                )
                self._sleep(self._limits.retry_pause_seconds * attempt)
        raise AssertionError("unreachable: the last attempt returns")

    def _answer(
        self, document: WaitingDocument, data: bytes, output_name: str, context: DocumentContext
    ) -> DocumentOutcome:
        started = self._monotonic()
        try:
            text = decode_document(document.name, data, max_bytes=self._limits.max_document_bytes)
            requests = plan_document(
                text,
                filename=document.name,
                profile=context.profile,
                questions=None,
                context_tokens=context.context_tokens,
                counter=self._counter,
                max_chunks=self._limits.max_chunks,
            )
            answer, results = answer_document(
                requests,
                context.chat,
                AnswerContext(
                    profile=context.profile,
                    questions=(),
                    filename=document.name,
                    context_tokens=context.context_tokens,
                    counter=self._counter,
                    readiness_until=context.readiness_until,
                    deadline=context.stop_at,
                ),
            )
        except DocumentRejected as rejected:
            return self._fail(document, output_name, context, rejected.code, rejected.reason)
        except DeploymentNotServing:
            return "not_serving"
        except (ModelRefusal, RequestRejected, ModelAnswerInvalid, ProfileConfigError) as failure:
            return self._fail(document, output_name, context, *failure_record(failure))
        self._write(
            document,
            output_name,
            "result",
            {
                "job_id": document.version,
                "run_id": context.run_id,
                "input": f"{self._listing.container_name}/{document.name}",
                "profile": context.profile.name,
                "questions": [],
                "answer": answer,
                "provenance": {
                    "hosted_model": context.model,
                    "deployment": context.deployment,
                    "model": results[-1].model if results else None,
                    "requests": len(results),
                    "usage": usage_of(results),
                    "token_counting": self._counter.method,
                    "inference_seconds": round(self._monotonic() - started, 3),
                    "completed_at": self._clock().isoformat(),
                    "input_uploaded_at": _iso(document.last_modified),
                },
            },
        )
        return "succeeded"

    def _fail(
        self,
        document: WaitingDocument,
        output_name: str,
        context: DocumentContext,
        code: str,
        reason: str,
    ) -> DocumentOutcome:
        self._write(
            document,
            output_name,
            "error",
            {
                "job_id": document.version,
                "run_id": context.run_id,
                "input": f"{self._listing.container_name}/{document.name}",
                "error": {"code": code, "reason": reason},
                "failed_at": self._clock().isoformat(),
                "input_uploaded_at": _iso(document.last_modified),
            },
        )
        logger.warning("batch %s: %s failed (%s): %s", context.run_id, document.name, code, reason)
        return "failed"

    def _write(
        self,
        document: WaitingDocument,
        output_name: str,
        kind: OutcomeKind,
        body: dict[str, Any],
    ) -> None:
        stamp = (
            VersionStamp(document.last_modified, document.version)
            if document.last_modified is not None
            else None
        )
        self._outcomes.write(output_name, document.version, kind, body, stamp)


def output_name_for(input_prefix: str, output_prefix: str, input_name: str) -> str:
    """A batch document's outcome name: its name under the input prefix, under the output's."""
    return f"{output_prefix}{input_name[len(input_prefix) :]}"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def counters_of(tally: Tally, outcomes: list[DocumentOutcome], seconds: float) -> RunCounters:
    return RunCounters(
        listed=len(outcomes),
        succeeded=outcomes.count("succeeded"),
        failed=outcomes.count("failed"),
        skipped=outcomes.count("skipped"),
        requests=tally.requests,
        throttled=tally.throttled,
        prompt_tokens=tally.prompt_tokens,
        completion_tokens=tally.completion_tokens,
        rate_limit_tokens=tally.rate_limit_tokens,
        processing_seconds=seconds,
    )
