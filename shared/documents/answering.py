"""Running a planned document's chat requests on a serving deployment, and combining answers.

Given the requests `planning.plan_document` made, sends each through the deployment's chat
client (with its one retry policy) and, for a document in parts, combines the partial answers
until one is left; then parses the answer in the requested format. A deployment that stops
serving mid-way surfaces as `DeploymentNotServing`: the engine decides what to do about it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from shared.documents.planning import ModelAnswerInvalid, parse_answer, run_combine
from shared.documents.profiles import ProcessingProfile, ProfileConfigError
from shared.documents.tokens import TokenCounter
from shared.inference import ChatRequest, ChatResult, ModelRefusal, RequestRejected

# What answering can raise that no retry mends: the document gets an error record.
AnswerFailure = ModelRefusal | RequestRejected | ModelAnswerInvalid | ProfileConfigError


class ChatCompleter(Protocol):
    """What answering needs of a deployment: `ChatClient`, or a batch's paced wrapper of it."""

    def complete(
        self,
        request: ChatRequest,
        *,
        readiness_until: float | None = None,
        deadline: float | None = None,
        longest_sleep: float | None = None,
    ) -> ChatResult: ...


@dataclass(frozen=True)
class AnswerContext:
    """What answering one document needs besides its requests."""

    profile: ProcessingProfile
    questions: Sequence[str]
    filename: str
    context_tokens: int
    counter: TokenCounter
    # DeploymentNotFound is retried only this long after the deployment became ready (Azure
    # answers it for minutes after Succeeded); later it means the deployment is gone.
    readiness_until: float | None
    deadline: float
    # A 429 asking for a longer wait than this before any request of the document has been
    # answered ends the attempt with `Throttled`: the job parks instead of sleeping. Later
    # requests sleep it out, since parking would lose the answers already paid for.
    park_on_throttle_after: float | None = None


def answer_document(
    requests: Sequence[ChatRequest], chat: ChatCompleter, context: AnswerContext
) -> tuple[Any, list[ChatResult]]:
    """The parsed answer and every request's result (for provenance and usage)."""
    results: list[ChatResult] = []

    def run(request: ChatRequest) -> str:
        result = chat.complete(
            request,
            readiness_until=context.readiness_until,
            deadline=context.deadline,
            longest_sleep=None if results else context.park_on_throttle_after,
        )
        results.append(result)
        return result.content

    if len(requests) == 1:
        return parse_answer(run(requests[0]), requests[0]), results
    partials = [run(request) for request in requests]
    final_content, final_request = run_combine(
        partials,
        profile=context.profile,
        questions=list(context.questions),
        filename=context.filename,
        context_tokens=context.context_tokens,
        counter=context.counter,
        run=run,
    )
    return parse_answer(final_content, final_request), results


def readiness_window_end(
    ready_since: datetime | None,
    *,
    now: datetime,
    monotonic_now: float,
    window_seconds: float,
) -> float | None:
    """Until when (monotonic) DeploymentNotFound still means "warming up", or None."""
    if ready_since is None:
        return None
    left = window_seconds - (now - ready_since).total_seconds()
    return monotonic_now + left if left > 0 else None


def failure_record(failure: AnswerFailure) -> tuple[str, str]:
    """The error record's code and reason for an answer that failed for good."""
    if isinstance(failure, RequestRejected):
        return failure.code, failure.reason
    if isinstance(failure, ModelRefusal):
        return "model_refused", failure.reason
    if isinstance(failure, ModelAnswerInvalid):
        return "invalid_model_answer", str(failure)
    return "profile_config", str(failure)


def usage_of(results: Sequence[ChatResult]) -> dict[str, int]:
    """The tokens a document's requests used, for its result's provenance."""
    prompt = sum(r.prompt_tokens for r in results)
    completion = sum(r.completion_tokens for r in results)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
