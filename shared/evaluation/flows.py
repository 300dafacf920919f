"""Running an evaluation: each side's deployment made ready under a hold, the examples asked
at the deployment's quota, every answer stored as it arrives, then scored and compared.

One side at a time (the candidate first): a side whose answers are all stored needs no
deployment at all, so a resumed evaluation provisions only what still has examples to ask.
For a side that does:

1. an *evaluation hold* (kind `evaluation`, owner `evaluation:<run id>`) is placed on the
   deployment's ledger and renewed while the side runs, so no teardown deletes it under the
   evaluation and a document arriving meanwhile rides the same deployment;
2. the provisioner makes it ready (`ensure_ready`, the same single-flight provisioning every
   caller uses; the candidate's deployment, if it is not a hosted model, is created for the
   evaluation with the owner tag, so the reaper removes it too if this process dies);
3. the examples not yet answered are asked in parallel through the batch pacer
   (`shared.batch.pacing`), at the deployment's token and request budgets;
4. the hold is released and the deployment torn down if nothing else holds it: at once for
   the evaluation's own deployment, after the model's idle grace for a hosted model's.

A failure of the whole side (the deployment could not be made ready or stopped serving, the
identity may not call it, every example unavailable) fails the run: "could not run", never a
verdict. The answers stored so far stay, and running the same evaluation again goes on from
them.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from shared.batch.pacing import RatePacer, budget_for
from shared.batch.processing import PacedChat, Tally
from shared.documents.answering import readiness_window_end
from shared.documents.tokens import TokenCounter
from shared.evaluation.examples import EvaluationExample, EvaluationSet
from shared.evaluation.promotion import Promotions
from shared.evaluation.records import (
    SIDES,
    Answer,
    EvaluationResult,
    EvaluationRun,
    FailureKind,
    Side,
    SideSummary,
    SideTarget,
    evaluation_id,
)
from shared.evaluation.scoring import METRICS, ExampleScores, Metric, compare, means, score
from shared.evaluation.store import EvaluationStore
from shared.evaluation.targets import candidate_deployment
from shared.hosting.deployments import DeploymentSpec, ProvisioningError
from shared.hosting.grace import IdleGrace
from shared.hosting.holds import HoldKind
from shared.hosting.hosted import HostedDeployment
from shared.hosting.provisioner import DeploymentProvisioner
from shared.inference import (
    ChatClient,
    ChatRequest,
    DeploymentNotServing,
    InferenceUnavailable,
    ModelRefusal,
    NotAuthorized,
    RequestRejected,
)
from shared.renewal import PeriodicRenewal

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
HOLD_KIND: HoldKind = "evaluation"


class EvaluationInvalid(ValueError):
    """The evaluation asked for cannot be set up (unknown model, nothing to compare)."""


class EvaluationFailed(Exception):
    """The evaluation could not run to a verdict; the answers stored so far are kept."""


@dataclass(frozen=True)
class EvaluationTimings:
    hold_seconds: float = 600.0
    ready_timeout_seconds: float = 1800.0
    concurrency: int = 4
    # Azure's rate-limit minute on this clock (60; shorter against the faster simulator).
    minute_seconds: float = 60.0
    not_found_retry_seconds: float = 60.0
    # How long one example may take, retries and waits for the budget included.
    example_timeout_seconds: float = 300.0


@dataclass(frozen=True)
class SideDeployment:
    """What asking one side needs: its provisioner (with the ledger), its data-plane client."""

    provisioner: DeploymentProvisioner
    chat: ChatClient
    idle_grace: IdleGrace
    capacity: int


class Progress(Protocol):
    def waiting(self, side: Side, reason: str) -> None: ...

    def asked(self, side: Side, done: int, total: int) -> None: ...


class _Silent:
    def waiting(self, side: Side, reason: str) -> None:
        logger.info("%s: %s", side, reason)

    def asked(self, side: Side, done: int, total: int) -> None:
        pass


class EvaluationRunner:
    def __init__(
        self,
        *,
        store: EvaluationStore,
        promotions: Promotions,
        hosted: Mapping[str, HostedDeployment],
        deployment_for: Callable[[DeploymentSpec], tuple[DeploymentProvisioner, ChatClient]],
        owner_tag: str,
        counter: TokenCounter,
        timings: EvaluationTimings,
        clock: Clock,
        monotonic: Callable[[], float] = time.monotonic,
        instance: str | None = None,
    ) -> None:
        self.store = store
        self.promotions = promotions
        self._hosted = hosted
        self._deployment_for = deployment_for
        self._owner_tag = owner_tag
        self._counter = counter
        self.timings = timings
        self._clock = clock
        self._monotonic = monotonic
        self._instance = instance or uuid.uuid4().hex[:8]

    # --- setting up -----------------------------------------------------------------------

    def plan(
        self,
        candidate: str,
        against: str,
        evaluation_set: EvaluationSet,
        *,
        by: str,
        max_tokens: int,
        primary_metric: Metric = "token_f1",
        fresh: bool = False,
    ) -> EvaluationRun:
        """The run for this comparison: new, or the earlier one with its answers (resumed)."""
        if against not in self._hosted:
            raise EvaluationInvalid(
                f"--against {against!r} is not a hosted model; the hosted models are: "
                f"{', '.join(sorted(self._hosted))}"
            )
        current = self._current_target(against)
        target = self._candidate_target(candidate, current)
        if target.model == current.model:
            raise EvaluationInvalid(
                f"{candidate!r} is {current.model}, what {against} already promotes; name "
                "another model to compare"
            )
        run_id = evaluation_id(
            hosted_model=against,
            candidate=target.model,
            current=current.model,
            set_sha256=evaluation_set.sha256,
            max_tokens=max_tokens,
        )
        now = self._clock()
        run = EvaluationRun(
            id=run_id,
            hosted_model=against,
            candidate=target,
            current=current,
            set_path=evaluation_set.path,
            set_sha256=evaluation_set.sha256,
            examples=len(evaluation_set.examples),
            max_tokens=max_tokens,
            primary_metric=primary_metric,
            created=now,
            updated=now,
            by=by,
        )
        if self.store.create(run):
            logger.info("evaluation %s created", run_id)
            return run
        if fresh:
            forgotten = self.store.forget_answers(run_id)
            logger.info("evaluation %s started afresh (%d answers forgotten)", run_id, forgotten)
        resumed = self.store.change(
            run_id,
            lambda r: r.model_copy(
                update={
                    "status": "running",
                    "error": None,
                    "result": None,
                    "updated": now,
                    "by": by,
                    "primary_metric": primary_metric,
                    "attempts": r.attempts + 1,
                }
            ),
        )
        assert resumed is not None, "the run exists: create was refused"
        self.store.point_latest(resumed)
        return resumed

    def _current_target(self, model: str) -> SideTarget:
        return self._hosted_target("current", model)

    def _hosted_target(self, side: Side, model: str) -> SideTarget:
        """A side asked on a hosted model's own deployment, serving what it promotes now."""
        hosted = self._hosted[model]
        serving, version = self.promotions.serving(model)
        return SideTarget(
            side=side,
            named=model,
            model=serving,
            version=version,
            deployment=hosted.spec.name,
            sku=hosted.model.deployment_type,
            capacity=hosted.model.capacity,
            ephemeral=False,
            why=f"hosted model {model!r}'s own deployment",
        )

    def _candidate_target(self, candidate: str, current: SideTarget) -> SideTarget:
        if candidate == current.named:
            raise EvaluationInvalid(f"the candidate and --against are both {candidate!r}")
        if candidate in self._hosted:
            return self._hosted_target("candidate", candidate)
        chosen = candidate_deployment(
            candidate,
            settings_sku=current.sku,
            settings_source=f"the deployment type of {current.named!r}",
        )
        return SideTarget(
            side="candidate",
            named=candidate,
            model=candidate,
            version="1",
            deployment=chosen.name,
            sku=chosen.sku,
            capacity=current.capacity,
            ephemeral=True,
            why=chosen.why,
        )

    # --- running --------------------------------------------------------------------------

    def run(
        self,
        run: EvaluationRun,
        evaluation_set: EvaluationSet,
        *,
        progress: Progress | None = None,
    ) -> EvaluationRun:
        """Ask what is left on each side, score, store the result; EvaluationFailed if it
        could not run to a verdict (the run is marked failed, its answers kept)."""
        told = progress or _Silent()
        try:
            for side in SIDES:
                self._ask_side(run, side, evaluation_set.examples, told)
            result = self._score(run, evaluation_set)
        except (EvaluationFailed, ProvisioningError) as error:
            reason = error.reason if isinstance(error, ProvisioningError) else str(error)
            self._fail(run, reason)
            raise EvaluationFailed(reason) from error
        except Exception as error:
            self._fail(run, f"{type(error).__name__}: {error}")
            raise
        now = self._clock()
        finished = self.store.change(
            run.id,
            lambda r: r.model_copy(
                update={"status": "completed", "result": result, "updated": now, "error": None}
            ),
        )
        assert finished is not None
        return finished

    def answers(self, run: EvaluationRun) -> dict[Side, dict[int, Answer]]:
        return {side: self.store.answers(run.id, side) for side in SIDES}

    def _fail(self, run: EvaluationRun, reason: str) -> None:
        now = self._clock()
        self.store.change(
            run.id,
            lambda r: r.model_copy(update={"status": "failed", "error": reason, "updated": now}),
        )

    def _side_deployment(self, target: SideTarget) -> SideDeployment:
        if not target.ephemeral:
            hosted = self._hosted[target.named]
            return SideDeployment(
                hosted.provisioner, hosted.chat, hosted.idle_grace, hosted.model.capacity
            )
        spec = DeploymentSpec(
            name=target.deployment,
            model_name=target.model,
            model_version=target.version,
            sku=target.sku,
            capacity=target.capacity,
            owner_tag=self._owner_tag,
            capacity_setting=f"the capacity of {target.named!r}'s evaluation",
        )
        provisioner, chat = self._deployment_for(spec)
        # The evaluation's own deployment serves nothing else: deleted as soon as it is idle.
        return SideDeployment(provisioner, chat, timedelta(0), target.capacity)

    def _ask_side(
        self,
        run: EvaluationRun,
        side: Side,
        examples: tuple[EvaluationExample, ...],
        progress: Progress,
    ) -> None:
        stored = self.store.answers(run.id, side)
        todo = [e for e in examples if e.index not in stored or not stored[e.index].finished]
        done = len(examples) - len(todo)
        progress.asked(side, done, len(examples))
        if not todo:
            return
        target = run.target(side)
        deployment = self._side_deployment(target)
        ledger = deployment.provisioner.ledger
        worker = f"{run.hold_owner}#{self._instance}"
        hold_id = run.hold_id(side)
        ttl = timedelta(seconds=self.timings.hold_seconds)
        ledger.place_hold(hold_id, HOLD_KIND, run.hold_owner, ttl)

        def renew() -> None:
            if not ledger.renew_hold(hold_id, ttl):
                ledger.place_hold(hold_id, HOLD_KIND, run.hold_owner, ttl)

        try:
            with PeriodicRenewal(f"evaluation-{run.id}-{side}", self.timings.hold_seconds, renew):
                ready = deployment.provisioner.ensure_ready(
                    worker,
                    deadline=self._monotonic() + self.timings.ready_timeout_seconds,
                    on_wait=lambda reason: progress.waiting(side, reason),
                )
                self._ask(
                    run,
                    side,
                    todo=todo,
                    deployment=deployment,
                    ready_since=ready.ready_since,
                    done=done,
                    progress=progress,
                )
        finally:
            released = ledger.release_hold(hold_id)
            try:
                outcome = deployment.provisioner.teardown_if_idle(
                    worker, idle_grace=deployment.idle_grace, known=released
                )
                logger.info("after %s's %s side: %s", run.id, side, outcome.reason)
            except Exception:  # the reaper deletes what this could not
                logger.exception("teardown of %s after evaluation failed", target.deployment)

    def _ask(
        self,
        run: EvaluationRun,
        side: Side,
        *,
        todo: list[EvaluationExample],
        deployment: SideDeployment,
        ready_since: datetime | None,
        done: int,
        progress: Progress,
    ) -> None:
        pacer = RatePacer(
            budget_for(deployment.capacity, minute_seconds=self.timings.minute_seconds)
        )
        chat = PacedChat(deployment.chat, pacer, self._counter, Tally())
        readiness_until = readiness_window_end(
            ready_since,
            now=self._clock(),
            monotonic_now=self._monotonic(),
            window_seconds=self.timings.not_found_retry_seconds,
        )
        total = done + len(todo)
        failures: list[Answer] = []

        def one(example: EvaluationExample) -> Answer:
            answer = self._one(run, side, example, chat, readiness_until)
            self.store.save_answer(run.id, answer)
            return answer

        pool = ThreadPoolExecutor(
            max_workers=self.timings.concurrency, thread_name_prefix=f"eval-{side}"
        )
        try:
            for answer in pool.map(one, todo):
                done += 1
                if answer.failure == "unavailable":
                    failures.append(answer)
                progress.asked(side, done, total)
        except DeploymentNotServing as error:
            deployment.provisioner.mark_suspect(ready_since)
            raise EvaluationFailed(
                f"deployment {run.target(side).deployment!r} stopped serving during the "
                f"evaluation ({error}); run it again to go on from the stored answers"
            ) from error
        except NotAuthorized as error:
            raise EvaluationFailed(error.reason) from error
        finally:
            # Interrupted (Ctrl-C, a failure): the examples not yet sent are not sent; those
            # in flight finish and are stored, so nothing answered is lost.
            pool.shutdown(wait=True, cancel_futures=True)
        if failures and len(failures) == len(todo):
            raise EvaluationFailed(
                f"every example asked on the {side} side ({run.target(side).model}) was "
                f"unavailable, e.g. {failures[0].reason}; the deployment is not answering. Run "
                "it again to ask them again"
            )

    def _one(
        self,
        run: EvaluationRun,
        side: Side,
        example: EvaluationExample,
        chat: PacedChat,
        readiness_until: float | None,
    ) -> Answer:
        request = ChatRequest(
            messages=example.prompt(),
            max_tokens=run.max_tokens,
            response_format=None,
            temperature=0.0,
            purpose=f"evaluation example {example.index + 1} (line {example.line})",
        )
        started = self._monotonic()
        failure: FailureKind | None = None
        reason: str | None = None
        try:
            result = chat.complete(
                request,
                readiness_until=readiness_until,
                deadline=started + self.timings.example_timeout_seconds,
            )
        except ModelRefusal as error:
            failure, reason = "refusal", error.reason
        except NotAuthorized:
            raise
        except RequestRejected as error:
            failure = "truncated" if error.code == "answer_truncated" else "rejected"
            reason = error.reason
        except InferenceUnavailable as error:
            failure, reason = "unavailable", str(error)
        else:
            return Answer(
                index=example.index,
                side=side,
                text=result.content,
                seconds=self._monotonic() - started,
                served_by=result.model,
                at=self._clock(),
            )
        return Answer(
            index=example.index,
            side=side,
            failure=failure,
            reason=reason,
            seconds=self._monotonic() - started,
            at=self._clock(),
        )

    # --- scoring --------------------------------------------------------------------------

    def _score(self, run: EvaluationRun, evaluation_set: EvaluationSet) -> EvaluationResult:
        answers = self.answers(run)
        scored = score_sides(evaluation_set, answers)
        metric: Metric = run.primary_metric  # type: ignore[assignment]
        comparisons = [compare(scored["candidate"], scored["current"], metric=m) for m in METRICS]
        primary = next(c for c in comparisons if c.metric == metric)
        return EvaluationResult(
            primary_metric=metric,
            candidate=summarize(scored["candidate"], answers["candidate"], evaluation_set),
            current=summarize(scored["current"], answers["current"], evaluation_set),
            comparisons=[c.to_json() for c in comparisons],
            verdict=primary.verdict,
            finished=self._clock(),
        )


def score_sides(
    evaluation_set: EvaluationSet, answers: Mapping[Side, Mapping[int, Answer]]
) -> dict[Side, list[ExampleScores]]:
    """Each side's scores in the set's order; a missing or failed answer scores 0."""
    scored: dict[Side, list[ExampleScores]] = {}
    for side in SIDES:
        given = answers[side]
        scored[side] = [
            score(given[e.index].text if e.index in given else None, e.reference)
            for e in evaluation_set.examples
        ]
    return scored


def summarize(
    scores: list[ExampleScores], answers: Mapping[int, Answer], evaluation_set: EvaluationSet
) -> SideSummary:
    failures: dict[str, int] = {}
    for example in evaluation_set.examples:
        answer = answers.get(example.index)
        kind = "missing" if answer is None else answer.failure
        if kind is not None:
            failures[kind] = failures.get(kind, 0) + 1
    return SideSummary(
        means={k: round(v, 6) for k, v in means(scores).items()},
        examples=len(scores),
        answered=len(scores) - sum(failures.values()),
        failures=failures,
    )
