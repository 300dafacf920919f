"""Chat completions against the deployment, with the app's one retry policy.

The openai client's own retries are off (`max_retries=0`) so that this tenacity policy is the
only one: it honours `retry-after-ms` / `Retry-After` on 429, backs off on 5xx and timeouts,
and retries `DeploymentNotFound` only inside the readiness window that follows provisioning
(Azure answers it for minutes after `Succeeded`). Bounded in attempts and in total time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import openai
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_any,
    stop_before_delay,
    wait_random,
    wait_random_exponential,
)
from tenacity.stop import stop_base

logger = logging.getLogger(__name__)

Monotonic = Callable[[], float]


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion to send: what the inference adapter needs, nothing more."""

    messages: list[dict[str, str]]
    max_tokens: int
    response_format: dict[str, Any] | None
    temperature: float
    purpose: str  # "single", "chunk 2/5", "combine", ... for logs and error messages


class DeploymentNotServing(Exception):
    """The data plane answered DeploymentNotFound after the readiness window."""


class InferenceUnavailable(Exception):
    """Retries ran out on throttling or server errors; the job should be retried later."""


class ModelRefusal(Exception):
    """The service refused the content (content filter); retrying will not help."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RequestRejected(Exception):
    """The service rejected the request as malformed or too long; retrying will not help."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Throttled(Exception):
    """The deployment asked for a wait longer than the caller will sleep: come back later."""

    def __init__(self, retry_after: float, message: str) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotAuthorized(RequestRejected):
    """The app's identity may not call the deployment: a role is missing, retrying won't help."""

    def __init__(self, reason: str) -> None:
        super().__init__("not_authorized", reason)


# The role infra/ gives the app covers inference too; OpenAI User is inference alone.
INFERENCE_ROLE = (
    "Cognitive Services OpenAI Contributor (a001fd3d-188f-4b5d-821b-7da978bf7442) or, for "
    "inference alone, Cognitive Services OpenAI User (5e0bd9bd-7b93-4f28-af87-19fc36ad61bd)"
)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 20
    max_seconds: float = 300.0
    backoff_max_seconds: float = 30.0
    request_timeout_seconds: float = 120.0


@dataclass(frozen=True)
class ChatResult:
    content: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    attempts: int


# Failures that may pass on their own: worth retrying, and not the request's fault.
_SERVER_TRANSIENT = (openai.InternalServerError, openai.APITimeoutError, openai.APIConnectionError)
_TRANSIENT = (openai.RateLimitError, *_SERVER_TRANSIENT)


def is_deployment_not_found(error: BaseException) -> bool:
    return isinstance(error, openai.NotFoundError) and error.code == "DeploymentNotFound"


def retry_after_seconds(error: BaseException) -> float | None:
    """The wait the service asked for, preferring the precise millisecond header."""
    response = getattr(error, "response", None)
    if response is None:
        return None
    headers = response.headers
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / scale)
        except ValueError:
            continue
    return None


class _WaitRetryAfter:
    """tenacity wait: the server's Retry-After plus a little jitter, else jittered backoff.

    Workers that saw the same 429 were told the same wait; the jitter (up to a tenth of it,
    at least 50 ms, at most 1 s) keeps them from all coming back in the same millisecond.
    """

    def __init__(self, backoff_max: float) -> None:
        self._fallback = wait_random_exponential(multiplier=0.5, max=backoff_max)

    def __call__(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        asked = retry_after_seconds(error) if error is not None else None
        if asked is None:
            return float(self._fallback(state))
        return asked + float(wait_random(0, min(1.0, max(0.05, asked / 10)))(state))


class _AttemptsSpentUnlessThrottled(stop_base):
    """Count attempts against failures only: throttling is bounded by time alone, since a
    storm of short Retry-After waits would use up any count long before the time budget."""

    def __init__(self, max_attempts: int) -> None:
        self._spent = stop_after_attempt(max_attempts)

    def __call__(self, retry_state: RetryCallState) -> bool:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        return not isinstance(error, openai.RateLimitError) and self._spent(retry_state)


class ChatClient:
    """Chat completions on one deployment with bounded retries."""

    def __init__(
        self,
        client: openai.AzureOpenAI,
        deployment: str,
        policy: RetryPolicy,
        *,
        account: str = "the Azure OpenAI account",
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Monotonic = time.monotonic,
    ) -> None:
        self._client = client
        self.deployment = deployment
        self._account = account
        self._policy = policy
        self._sleep = sleep
        self._monotonic = monotonic

    def complete(
        self,
        request: ChatRequest,
        *,
        readiness_until: float | None = None,
        deadline: float | None = None,
        longest_sleep: float | None = None,
    ) -> ChatResult:
        """One chat completion with the retry policy.

        `readiness_until` (monotonic) bounds DeploymentNotFound retries; `deadline`
        (monotonic) is the caller's own limit, which the retries never sleep past. With
        `longest_sleep`, a 429 asking for a longer wait raises `Throttled` instead of
        sleeping, so the caller can park rather than hold an invocation.
        """
        budget = self._policy.max_seconds
        if deadline is not None:
            budget = min(budget, deadline - self._monotonic())
            if budget <= 0:
                raise InferenceUnavailable(
                    "this delivery's time (JOB_TIMEOUT_SECONDS) ran out before the request "
                    "could be sent"
                )

        def retryable(error: BaseException) -> bool:
            if isinstance(error, openai.RateLimitError) and longest_sleep is not None:
                asked = retry_after_seconds(error)
                if asked is not None and asked > longest_sleep:
                    return False
            if isinstance(error, _TRANSIENT):
                return True
            if is_deployment_not_found(error):
                return readiness_until is not None and self._monotonic() < readiness_until
            return False

        retrying = Retrying(
            retry=retry_if_exception(retryable),
            wait=_WaitRetryAfter(self._policy.backoff_max_seconds),
            # stop_before_delay: a Retry-After that would end past the budget is not slept.
            stop=stop_any(
                _AttemptsSpentUnlessThrottled(self._policy.max_attempts),
                stop_before_delay(budget),
            ),
            sleep=self._sleep,
            before_sleep=_log_retry,
            reraise=True,
        )
        started = self._monotonic()
        try:
            for attempt in retrying:
                with attempt:
                    response = self._send(request, self._request_timeout(deadline))
        except openai.NotFoundError as error:
            if is_deployment_not_found(error):
                raise DeploymentNotServing(str(error)) from error
            raise
        except openai.RateLimitError as error:
            asked = retry_after_seconds(error)
            if longest_sleep is not None and asked is not None and asked > longest_sleep:
                raise Throttled(asked, f"the deployment asked to wait {asked:.0f} s") from error
            raise self._unavailable(error, retrying.statistics, started, budget) from error
        except _TRANSIENT as error:
            raise self._unavailable(error, retrying.statistics, started, budget) from error
        except (openai.AuthenticationError, openai.PermissionDeniedError) as error:
            raise self._not_authorized(error) from error
        except openai.BadRequestError as error:
            raise _describe_bad_request(error) from error
        usage = response.usage
        choice = response.choices[0]
        _check_complete(choice.finish_reason, request)
        return ChatResult(
            content=choice.message.content or "",
            model=response.model,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            seconds=self._monotonic() - started,
            attempts=retrying.statistics.get("attempt_number", 1),
        )

    def serves(self) -> bool:
        """Whether the deployment answers on the data plane (a 1-token request)."""
        probe = ChatRequest(
            messages=[{"role": "user", "content": "ping"}],
            max_tokens=1,
            response_format=None,
            temperature=0.0,
            purpose="readiness probe",
        )
        # One attempt, no retry policy: the caller polls, and a 429 already proves the
        # deployment is routed, so riding out a throttling storm here would only delay.
        try:
            self._send(probe, self._request_timeout(None))
        except openai.NotFoundError as error:
            if is_deployment_not_found(error):
                return False
            raise
        except openai.RateLimitError:
            return True
        except (openai.AuthenticationError, openai.PermissionDeniedError) as error:
            raise self._not_authorized(error) from error
        except _SERVER_TRANSIENT:
            logger.info("readiness probe of %s failed transiently; polling again", self.deployment)
            return False
        return True

    def _unavailable(
        self, error: Exception, statistics: dict[str, Any], started: float, budget: float
    ) -> InferenceUnavailable:
        attempts = statistics.get("attempt_number", 1)
        spent = self._monotonic() - started
        return InferenceUnavailable(
            f"the deployment stayed throttled or unavailable for {spent:.0f} s "
            f"({attempts} attempt(s), budget {budget:.0f} s): {type(error).__name__}: {error}"
        )

    def _not_authorized(self, error: openai.APIStatusError) -> NotAuthorized:
        return NotAuthorized(
            f"the data plane refused the app's identity ({error.status_code} "
            f"{error.code or ''}: {error.message}). Give the app's managed identity the "
            f"{INFERENCE_ROLE} role on {self._account}, then upload the document again."
        )

    def _request_timeout(self, deadline: float | None) -> float:
        """One call's HTTP timeout: the policy's, cut to what the caller has left."""
        timeout = self._policy.request_timeout_seconds
        if deadline is not None:
            timeout = min(timeout, max(1.0, deadline - self._monotonic()))
        return timeout

    def _send(self, request: ChatRequest, timeout: float) -> Any:
        kwargs: dict[str, Any] = {
            "model": self.deployment,
            "timeout": timeout,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.response_format is not None:
            kwargs["response_format"] = request.response_format
        return self._client.chat.completions.create(**kwargs)


def _check_complete(finish_reason: str | None, request: ChatRequest) -> None:
    """An answer cut short is not an answer: never pass it on as if it were whole."""
    if finish_reason == "length":
        raise RequestRejected(
            "answer_truncated",
            f"the model's answer ({request.purpose}) was cut off at max_tokens "
            f"{request.max_tokens}. Raise the profile's max_output_tokens (longer documents "
            "are then split into smaller parts) and upload the document again.",
        )
    if finish_reason == "content_filter":
        raise ModelRefusal(
            f"Azure's content filter withheld the model's answer ({request.purpose}). Review "
            "the document, or the deployment's content filter policy."
        )


def _describe_bad_request(error: openai.BadRequestError) -> Exception:
    code = str(error.code or "bad_request")
    body = error.body if isinstance(error.body, dict) else {}
    message = str(body.get("message") or error.message)
    if code == "content_filter":
        return ModelRefusal(
            "the model refused to process this document: Azure's content filter flagged it "
            f"({message}). Review the document, or the deployment's content filter policy."
        )
    return RequestRejected(code, f"the model rejected the request ({code}): {message}")


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    logger.warning(
        "chat attempt %d failed (%s); retrying in %.2f s",
        state.attempt_number,
        type(error).__name__,
        wait,
    )
