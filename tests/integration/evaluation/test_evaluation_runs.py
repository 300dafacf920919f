"""Evaluations on the local Azure: both sides' deployments made ready under evaluation holds and
released, a tie within noise not promoted, forced promotion and rollback recorded and applied at
the next create, and a killed evaluation resumed without asking finished examples again."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from pathlib import Path

import openai
import pytest

from scripts.demo_finetune import BASE, write_datasets
from shared.composition import AppServices
from shared.evaluation.examples import EvaluationSet, read_set
from shared.evaluation.flows import EvaluationRunner
from shared.evaluation.records import PromotionRefused, Side
from shared.finetuning.jobs import FineTuning, JobSpec
from simulator.process import RunningSimulator
from tests.integration.azure_state import deployment_gone
from tests.integration.conftest import ServicesFactory

CANDIDATE = "gpt-4.1-mini-2025-04-14.ft-candidate01"
EXAMPLES = 8


def _write_set(path: Path, count: int = EXAMPLES) -> EvaluationSet:
    lines = [
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": f"Question number {i}: what is {i} plus {i}?"},
                    {"role": "assistant", "content": f"{2 * i}"},
                ]
            }
        )
        for i in range(count)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return read_set(path)


def _services(make_services: ServicesFactory) -> AppServices:
    return make_services(
        EVALUATIONS_CONTAINER=f"eval-{id(make_services):x}"[:40], BATCH_CONCURRENCY=2
    )


def _ok_chats(sim: RunningSimulator) -> int:
    return int(sim.admin.stats()["data"].get("ok", 0))


def _no_evaluation_holds(services: AppServices, deployment: str) -> bool:
    record = services.provisioner_for(deployment).ledger.read()
    now = services.provisioner_for(deployment).ledger.now()
    return not [h for h in record.live_holds(now) if h.kind == "evaluation"]


def test_a_tie_is_not_promoted_and_deployments_are_released(
    make_services: ServicesFactory, sim: RunningSimulator, tmp_path: Path
) -> None:
    services = _services(make_services)
    runner = services.evaluations
    examples = _write_set(tmp_path / "eval.jsonl")
    run = runner.plan(CANDIDATE, "default", examples, by="tester", max_tokens=64)
    assert run.candidate.sku == "DeveloperTier" and run.candidate.ephemeral
    before = _ok_chats(sim)

    finished = runner.run(run, examples)

    # The simulator answers both models alike: every example answered, the verdict a tie.
    assert finished.status == "completed" and finished.result is not None
    assert finished.result.verdict == "tie"
    assert finished.result.candidate.answered == EXAMPLES == finished.result.current.answered
    # Each example asked once per side, plus one readiness probe per deployment made ready.
    assert _ok_chats(sim) - before == 2 * EXAMPLES + 2
    for target in (finished.candidate, finished.current):
        assert _no_evaluation_holds(services, target.deployment)
        assert deployment_gone(services, target.deployment), target.deployment

    with pytest.raises(PromotionRefused, match=r"tied with \(within noise\)"):
        services.promotions.promote("default", CANDIDATE, evaluations=runner.store, by="tester")
    assert services.promotions.serving("default") == services.promotions.catalog_model("default")

    # Forced: recorded as forced, with the evaluation it overrode; applied at the next create.
    decision = services.promotions.promote(
        "default", CANDIDATE, evaluations=runner.store, by="tester", force=True
    )
    assert decision.forced and decision.evaluation_id == finished.id
    assert "FORCED" in decision.reason and decision.verdict == "tie"
    hosted = services.hosted["default"]
    hosted.ledger.place_hold("test", "operator", "tester", timedelta(seconds=30))
    hosted.provisioner.ensure_ready("tester", deadline=_later(30))
    assert services.deployments.get(hosted.spec.name).model_name == CANDIDATE

    # Rolled back: the running deployment keeps serving; the next create uses the catalog's.
    back = services.promotions.rollback("default", by="tester")
    assert back.serves == services.promotions.catalog_model("default")[0]
    assert services.deployments.get(hosted.spec.name).model_name == CANDIDATE
    history = services.promotions.history("default")
    assert history is not None and [d.action for d in history.decisions] == [
        "promote",
        "rollback",
    ]
    with pytest.raises(PromotionRefused, match="no promotion to roll back"):
        services.promotions.rollback("default", by="tester")


def _later(seconds: float) -> float:
    return time.monotonic() + seconds


class _KillAfter:
    """Progress that interrupts the evaluation like Ctrl-C once `count` answers arrived."""

    def __init__(self, side: Side, count: int) -> None:
        self._side = side
        self._count = count
        self._seen = 0

    def waiting(self, side: Side, reason: str) -> None:
        pass

    def asked(self, side: Side, done: int, total: int) -> None:
        if side == self._side and done > 0:
            self._seen += 1
            if self._seen >= self._count:
                raise KeyboardInterrupt


def test_a_killed_evaluation_resumes_without_asking_finished_examples(
    make_services: ServicesFactory, sim: RunningSimulator, tmp_path: Path
) -> None:
    services = _services(make_services)
    runner: EvaluationRunner = services.evaluations
    examples = _write_set(tmp_path / "eval.jsonl")
    run = runner.plan(CANDIDATE, "default", examples, by="tester", max_tokens=64)

    with pytest.raises(KeyboardInterrupt):
        runner.run(run, examples, progress=_KillAfter("candidate", 3))
    stored = runner.answers(run)
    asked_before = len(stored["candidate"])
    assert 3 <= asked_before < EXAMPLES and not stored["current"]
    # Interrupted, its hold is released at once (not left to expire).
    assert _no_evaluation_holds(services, run.candidate.deployment)

    again = runner.plan(CANDIDATE, "default", examples, by="tester", max_tokens=64)
    assert again.id == run.id and again.attempts == 2
    before = _ok_chats(sim)
    finished = runner.run(again, examples)

    assert finished.status == "completed"
    asked_now = _ok_chats(sim) - before
    still_to_ask = (EXAMPLES - asked_before) + EXAMPLES
    # Only what was left, plus at most one readiness probe per side: asking the finished ones
    # again would be at least `asked_before` more.
    assert still_to_ask <= asked_now <= still_to_ask + 2
    answers = runner.answers(finished)
    assert len(answers["candidate"]) == len(answers["current"]) == EXAMPLES
    # The first run's answers are kept as they were.
    for index, answer in stored["candidate"].items():
        assert answers["candidate"][index].at == answer.at

    # A finished evaluation run again asks nothing and provisions nothing.
    before = _ok_chats(sim)
    runner.run(runner.plan(CANDIDATE, "default", examples, by="tester", max_tokens=64), examples)
    assert _ok_chats(sim) == before


def test_a_fine_tuned_model_that_wins_is_promoted_and_deployed_next(
    make_services: ServicesFactory, aoai_client: openai.AzureOpenAI, tmp_path: Path
) -> None:
    train, valid, held_out = write_datasets(tmp_path)
    tuning = FineTuning(aoai_client, poll_seconds=0.02)
    job = tuning.create(
        JobSpec(model=BASE, suffix="win"), tuning.upload(train).id, tuning.upload(valid).id
    )
    deadline = time.monotonic() + 60
    while (job := tuning.get(job.id)).status != "succeeded":
        assert job.status not in ("failed", "cancelled") and time.monotonic() < deadline
        time.sleep(0.05)
    candidate = str(job.fine_tuned_model)
    services = make_services(
        FINE_TUNED_MODEL=BASE,
        EVALUATIONS_CONTAINER=f"eval-{uuid.uuid4().hex[:8]}",
        BATCH_CONCURRENCY=2,
    )
    examples = read_set(held_out)
    run = services.evaluations.plan(candidate, "default", examples, by="ci", max_tokens=100)
    finished = services.evaluations.run(run, examples)

    # The simulator's fine-tuned model answers what it learnt; the base answers with an echo.
    assert finished.result is not None and finished.result.verdict == "candidate_better"
    assert finished.result.candidate.means["exact_match"] == 1.0
    assert finished.result.current.means["exact_match"] == 0.0
    decision = services.promotions.promote(
        "default", candidate, evaluations=services.evaluations.store, by="ci"
    )
    assert not decision.forced and decision.previous == BASE
    assert decision.scores is not None and decision.evaluation_id == finished.id
    # Its next deployment is created with the promoted model.
    hosted = services.hosted["default"]
    hosted.ledger.place_hold("test", "operator", "ci", timedelta(seconds=30))
    hosted.provisioner.ensure_ready("ci", deadline=_later(30))
    assert services.deployments.get(hosted.spec.name).model_name == candidate
