"""The whole simulated world behind one object: config, clock, deployments, faults, stats.

`SimulatorState` is what every HTTP handler talks to. It owns no I/O: handlers pass in raw
request bodies and get back plain values or an `ApiError` carrying Azure's exact answer, so
the management and data-plane rules are testable with a `ManualClock` and no server.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from simulator import chat
from simulator.billing import billing_report
from simulator.clock import Clock, iso_timestamp, to_real_seconds
from simulator.config import SimulatorConfig, validate_runtime_changes
from simulator.deployments import (
    Deployment,
    DeploymentStore,
    OperationView,
    PutOutcome,
    parse_deployment_spec,
)
from simulator.errors import ApiError, gateway_error
from simulator.faults import FaultPlan
from simulator.ratelimit import LimitKind, RateDecision, whole_seconds_to_wait

logger = logging.getLogger(__name__)

MANAGEMENT_KINDS = ("PUT", "GET", "LIST", "DELETE", "POLL")
DATA_KINDS = ("chat", "not_found", "throttled", "ok")

DEPLOYMENT_NOT_FOUND_MESSAGE = (
    "The API deployment for this resource does not exist. If you created the deployment within "
    "the last 5 minutes, please wait a moment and try again."
)


@dataclass(frozen=True)
class PutResult:
    outcome: PutOutcome
    gateway_timeout: bool  # the creation started, but the client is told 504


@dataclass(frozen=True)
class ChatResult:
    """A chat request that passed every check, with what the answer needs."""

    deployment: Deployment
    answer: chat.ChatAnswer
    created: int
    rate_headers: dict[str, str]
    # The last user message's text: what a model fine-tuned here recognises (dataplane.py).
    last_user_text: str = ""
    max_tokens: int = 0


class SimulatorState:
    """Everything the simulator knows, and the rules both planes apply."""

    def __init__(self, config: SimulatorConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.store = DeploymentStore(config)
        self.faults = FaultPlan(config.seed)
        self.management_counts: dict[str, int] = dict.fromkeys(MANAGEMENT_KINDS, 0)
        self.data_counts: dict[str, int] = dict.fromkeys(DATA_KINDS, 0)
        self.charged_tokens = 0

    # --- time ----------------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock.now()

    def real_seconds(self, sim_seconds: float) -> float:
        return to_real_seconds(self.clock, sim_seconds)

    # --- administration ------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget deployments, billing, faults, stats and rate windows; keep the config."""
        self.store.clear()
        self.faults.clear()
        self.management_counts = dict.fromkeys(MANAGEMENT_KINDS, 0)
        self.data_counts = dict.fromkeys(DATA_KINDS, 0)
        self.charged_tokens = 0
        logger.info("state reset")

    def configure(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Apply runtime setting changes (all or none); return the new configuration."""
        coerced = validate_runtime_changes(self.config, changes)
        for key, value in coerced.items():
            setattr(self.config, key, value)
        if "time_scale" in coerced:
            self.clock.set_time_scale(coerced["time_scale"])
        if coerced:
            logger.info("configuration changed: %s", coerced)
        return self.config.public_view()

    def stats(self) -> dict[str, Any]:
        return {
            "management": dict(self.management_counts),
            "data": dict(self.data_counts),
            "charged_tokens": self.charged_tokens,
        }

    def count_management(self, kind: str) -> None:
        self.management_counts[kind] = self.management_counts.get(kind, 0) + 1

    def count_data(self, kind: str) -> None:
        self.data_counts[kind] = self.data_counts.get(kind, 0) + 1

    def clock_view(self) -> dict[str, Any]:
        now = self.now()
        return {
            "sim_now": iso_timestamp(now),
            "sim_now_epoch": now,
            "time_scale": self.clock.time_scale,
        }

    def billing(self) -> dict[str, Any]:
        now = self.now()
        self.store.settle(now)
        return billing_report(self.store.history(), now, self.config.hourly_rate)

    def vanish(self, name: str) -> Deployment:
        deployment = self.store.vanish(name, self.now())
        logger.info("deployment %s vanished", name)
        return deployment

    def set_capacity(self, name: str, capacity: int) -> Deployment:
        return self.store.set_capacity(name, capacity, self.now())

    # --- management plane ----------------------------------------------------------------------

    def put_deployment(self, name: str, raw_body: bytes) -> PutResult:
        spec = parse_deployment_spec(raw_body)
        outcome = self.store.put(name, spec, self.now())
        gateway_timeout = False
        if outcome.created:
            outcome.deployment.fails_provisioning = self.faults.take_provisioning_failure()
            gateway_timeout = self.faults.take_gateway_timeout()
            if outcome.deployment.fails_provisioning:
                logger.info("deployment %s will fail provisioning (fault)", name)
        return PutResult(outcome=outcome, gateway_timeout=gateway_timeout)

    def get_deployment(self, name: str) -> Deployment:
        return self.store.get(name, self.now())

    def list_deployments(self) -> list[Deployment]:
        return self.store.list_active(self.now())

    def delete_deployment(self, name: str) -> Deployment | None:
        return self.store.delete(name, self.now())

    def operation(self, operation_id: str) -> OperationView | None:
        return self.store.operation(operation_id, self.now())

    # --- data plane ----------------------------------------------------------------------------

    def rate_headers(self, deployment: Deployment) -> dict[str, str]:
        requests_left, tokens_left = deployment.rate_limiter.remaining(
            self.now(), deployment.spec.capacity
        )
        return _rate_headers(requests_left, tokens_left)

    def chat(self, name: str, raw_body: bytes, api_version: str) -> ChatResult:
        """Admit and answer one chat request, or raise the error Azure would answer with."""
        now = self.now()
        deployment = self.store.find(name, now)
        if deployment is None or not deployment.is_serving(now):
            raise gateway_error(404, "DeploymentNotFound", DEPLOYMENT_NOT_FOUND_MESSAGE)
        capacity = deployment.spec.capacity
        config = self.config
        try:
            request = chat.parse_chat_request(
                raw_body, config.default_max_tokens, config.max_output_tokens
            )
            # Refused before the rate limiter, so an impossible request costs no quota.
            chat.check_context(request, config.context_tokens)
        except ApiError as error:
            error.headers.update(self.rate_headers(deployment))
            raise
        decision = deployment.rate_limiter.admit(now, request.cost, capacity)
        headers = _rate_headers(decision.remaining_requests, decision.remaining_tokens)
        if not decision.allowed:
            raise self._throttled(decision, api_version, headers)
        # What the admitted requests charged against the rate limit (prompt plus max_tokens).
        self.charged_tokens += request.cost
        if chat.trips_content_filter(request):
            refusal = chat.content_filter_error()
            refusal.headers.update(headers)
            raise refusal
        return ChatResult(
            deployment=deployment,
            answer=chat.answer(request),
            created=int(now),
            rate_headers=headers,
            max_tokens=request.max_tokens,
            last_user_text=next(
                (
                    chat.message_text(m)
                    for m in reversed(request.messages)
                    if m.get("role") == "user"
                ),
                "",
            ),
        )

    def _throttled(
        self, decision: RateDecision, api_version: str, headers: Mapping[str, str]
    ) -> ApiError:
        real_wait = self.real_seconds(decision.retry_after_seconds)
        retry_after = whole_seconds_to_wait(real_wait)
        which = "token rate limit" if decision.limit_kind is LimitKind.TOKENS else "call rate limit"
        error = gateway_error(
            429,
            "429",
            f"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
            f"{api_version} have exceeded {which} of your current OpenAI S0 pricing tier. Please "
            f"retry after {retry_after} seconds. Please go here: https://aka.ms/oai/quotaincrease "
            "if you would like to further increase the default rate limit.",
        )
        error.headers.update(headers)
        error.headers["Retry-After"] = str(retry_after)
        error.headers["retry-after-ms"] = str(max(1, round(real_wait * 1000)))
        return error


def _rate_headers(requests_left: int, tokens_left: int) -> dict[str, str]:
    return {
        "x-ratelimit-remaining-requests": str(requests_left),
        "x-ratelimit-remaining-tokens": str(tokens_left),
    }
