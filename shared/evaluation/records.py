"""The evaluation run, its answers and the promotion history as stored records, and the
decisions over them (pure: times are passed in).

- An `EvaluationRun` names both sides (model id, deployment, SKU), the set by its digest, and,
  once scored, the `EvaluationResult`. Its id is a digest of what it compares, so running the
  same evaluation again finds the same run and its stored answers: that is how a killed
  evaluation resumes without asking finished examples again.
- An `Answer` is one example's outcome on one side: the text, or why there is none.
- The `PromotionHistory` of a hosted model is every promotion and rollback; the model served
  at the next deployment is the top of the stack they build (`promoted`).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

Side = Literal["candidate", "current"]
SIDES: tuple[Side, ...] = ("candidate", "current")
# Why an example has no answer. `unavailable` (retries ran out) is recorded so the run can be
# scored, but asked again when the same evaluation runs again; the others are final.
FailureKind = Literal["refusal", "rejected", "truncated", "unavailable"]
RETRIED_FAILURES: frozenset[str] = frozenset({"unavailable"})
RunStatus = Literal["running", "completed", "failed"]
Verdict = Literal["candidate_better", "tie", "candidate_worse"]


class SideTarget(BaseModel):
    model_config = ConfigDict(frozen=True)

    side: Side
    named: str  # what the operator named: a hosted model or a model id
    model: str  # the model id deployed
    version: str
    deployment: str
    sku: str
    capacity: int
    # Deployed for this evaluation only (deleted after it), not a hosted model's deployment.
    ephemeral: bool
    why: str = ""


class Answer(BaseModel):
    model_config = ConfigDict(frozen=True)

    index: int
    side: Side
    text: str | None = None
    failure: FailureKind | None = None
    reason: str | None = None
    seconds: float = 0.0
    served_by: str | None = None  # the model id the data plane said answered
    at: datetime

    @property
    def finished(self) -> bool:
        return self.failure is None or self.failure not in RETRIED_FAILURES


class SideSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    means: dict[str, float]
    examples: int
    answered: int
    failures: dict[str, int]  # by kind; they score 0 and stay in the denominator

    @property
    def unscored(self) -> int:
        return sum(self.failures.values())


class EvaluationResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    primary_metric: str
    candidate: SideSummary
    current: SideSummary
    comparisons: list[dict[str, object]]
    verdict: Verdict
    finished: datetime


class EvaluationRun(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    hosted_model: str  # the hosted model the candidate would replace
    candidate: SideTarget
    current: SideTarget
    set_path: str
    set_sha256: str
    examples: int
    max_tokens: int
    primary_metric: str
    created: datetime
    updated: datetime
    by: str
    status: RunStatus = "running"
    error: str | None = None
    result: EvaluationResult | None = None
    attempts: int = 1

    def target(self, side: Side) -> SideTarget:
        return self.candidate if side == "candidate" else self.current

    @property
    def hold_owner(self) -> str:
        return f"evaluation:{self.id}"

    def hold_id(self, side: Side) -> str:
        return f"evaluation:{self.id}:{side}"


def evaluation_id(
    *, hosted_model: str, candidate: str, current: str, set_sha256: str, max_tokens: int
) -> str:
    """The same comparison on the same set is the same run (and resumes)."""
    key = "\n".join((hosted_model, candidate, current, set_sha256, str(max_tokens)))
    return "ev-" + hashlib.sha256(key.encode()).hexdigest()[:16]


# --- promotion ------------------------------------------------------------------------------

Action = Literal["promote", "rollback"]


class PromotionDecision(BaseModel):
    model_config = ConfigDict(frozen=True)

    action: Action
    model: str  # the hosted model
    serves: str  # the model id deployed at the next deployment after this decision
    version: str
    previous: str  # what it served before
    evaluation_id: str | None = None
    verdict: str | None = None
    scores: dict[str, object] | None = None
    forced: bool = False
    by: str
    at: datetime
    reason: str


class PromotionHistory(BaseModel):
    model_config = ConfigDict(frozen=True)

    model: str
    decisions: tuple[PromotionDecision, ...] = ()


def promoted(history: PromotionHistory | None, default: tuple[str, str]) -> tuple[str, str]:
    """(model id, version) the next deployment serves: each promotion pushes, each rollback
    pops; with nothing left, the catalog's own model."""
    stack: list[tuple[str, str]] = []
    for decision in history.decisions if history else ():
        if decision.action == "promote":
            stack.append((decision.serves, decision.version))
        elif stack:
            stack.pop()
    return stack[-1] if stack else default


def rollback_target(
    history: PromotionHistory | None, default: tuple[str, str]
) -> tuple[str, str] | None:
    """What a rollback would serve, or None when nothing was promoted."""
    stack: list[tuple[str, str]] = []
    for decision in history.decisions if history else ():
        if decision.action == "promote":
            stack.append((decision.serves, decision.version))
        elif stack:
            stack.pop()
    if not stack:
        return None
    stack.pop()
    return stack[-1] if stack else default


def append(
    history: PromotionHistory | None, model: str, decision: PromotionDecision
) -> PromotionHistory:
    decisions = history.decisions if history else ()
    return PromotionHistory(model=model, decisions=(*decisions, decision))


class PromotionRefused(Exception):
    """The candidate may not be promoted; the message says why and what to do."""


def check_promotion(
    run: EvaluationRun | None, *, model: str, candidate: str, serving: str
) -> EvaluationRun:
    """The evaluation that allows promoting `candidate` on `model`, or PromotionRefused.

    It must be the candidate's last evaluation against the model, completed, against the
    model the hosted model promotes now (an evaluation against an older model says nothing
    about beating the current one), and the candidate must have won beyond noise.
    """
    again = f"run `hosting evaluate {candidate} --against {model} --set EVAL.jsonl`"
    if run is None:
        raise PromotionRefused(f"{candidate} was never evaluated against {model}; {again}")
    if run.status != "completed" or run.result is None:
        raise PromotionRefused(
            f"the last evaluation of {candidate} against {model} ({run.id}) is {run.status}"
            f"{': ' + run.error if run.error else ''}; {again}"
        )
    if run.current.model != serving:
        raise PromotionRefused(
            f"the last evaluation ({run.id}) compared {candidate} with {run.current.model}, but "
            f"{model} now promotes {serving}; {again}"
        )
    result = run.result
    if result.verdict != "candidate_better":
        primary = next(
            (c for c in result.comparisons if c.get("metric") == result.primary_metric), {}
        )
        what = "lost to" if result.verdict == "candidate_worse" else "tied with (within noise)"
        raise PromotionRefused(
            f"{candidate} {what} {run.current.model} in evaluation {run.id}: "
            f"{result.primary_metric} {result.candidate.means.get(result.primary_metric, 0):.3f} "
            f"against {result.current.means.get(result.primary_metric, 0):.3f}, difference "
            f"{primary.get('difference')} with {primary.get('confidence')} interval "
            f"[{primary.get('ci_low')}, {primary.get('ci_high')}]; unscored examples "
            f"{result.candidate.unscored} against {result.current.unscored}. Use --force to "
            "promote anyway"
        )
    return run
