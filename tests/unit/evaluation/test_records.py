"""Promotion decisions, the promotion stack and rollback, the set's parsing and the targets."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.evaluation.examples import EvaluationSetError, parse_lines
from shared.evaluation.records import (
    EvaluationResult,
    EvaluationRun,
    PromotionDecision,
    PromotionHistory,
    PromotionRefused,
    SideSummary,
    SideTarget,
    check_promotion,
    evaluation_id,
    promoted,
    rollback_target,
)
from shared.evaluation.targets import (
    candidate_deployment,
    developer_tier_allowed,
    evaluation_deployment_name,
)

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
BASE = "gpt-4.1-mini-2025-04-14"
CATALOG = (f"{BASE}.ft-current", "1")


def _target(side: str, model: str) -> SideTarget:
    return SideTarget.model_validate(
        {
            "side": side,
            "named": model,
            "model": model,
            "version": "1",
            "deployment": f"dep-{side}",
            "sku": "Standard",
            "capacity": 10,
            "ephemeral": side == "candidate",
        }
    )


def _run(verdict: str, *, current: str = CATALOG[0], status: str = "completed") -> EvaluationRun:
    def summary(mean: float, failures: dict[str, int]) -> SideSummary:
        return SideSummary(
            means={"token_f1": mean, "rouge_l": mean, "exact_match": 0.0},
            examples=20,
            answered=20 - sum(failures.values()),
            failures=failures,
        )

    result = EvaluationResult(
        primary_metric="token_f1",
        candidate=summary(0.4 if verdict == "candidate_worse" else 0.8, {"refusal": 2}),
        current=summary(0.7, {}),
        comparisons=[
            {
                "metric": "token_f1",
                "difference": -0.3,
                "ci_low": -0.4,
                "ci_high": -0.2,
                "confidence": 0.95,
                "verdict": verdict,
            }
        ],
        verdict=verdict,
        finished=NOW,
    )
    return EvaluationRun(
        id="ev-1",
        hosted_model="contracts",
        candidate=_target("candidate", f"{BASE}.ft-new"),
        current=_target("current", current),
        set_path="eval.jsonl",
        set_sha256="0" * 64,
        examples=20,
        max_tokens=100,
        primary_metric="token_f1",
        created=NOW,
        updated=NOW,
        by="tester",
        status=status,
        result=result if status == "completed" else None,
    )


def _check(run: EvaluationRun | None) -> EvaluationRun:
    return check_promotion(run, model="contracts", candidate=f"{BASE}.ft-new", serving=CATALOG[0])


def test_a_winning_evaluation_allows_promotion() -> None:
    assert _check(_run("candidate_better")).id == "ev-1"


def test_a_worse_candidate_is_refused_with_the_scores() -> None:
    with pytest.raises(PromotionRefused) as refused:
        _check(_run("candidate_worse"))
    message = str(refused.value)
    assert "lost to" in message and "token_f1 0.400 against 0.700" in message
    assert "[-0.4, -0.2]" in message and "unscored examples 2 against 0" in message
    assert "--force" in message


def test_a_tie_is_refused() -> None:
    with pytest.raises(PromotionRefused, match=r"tied with \(within noise\)"):
        _check(_run("tie"))


def test_no_evaluation_or_a_failed_one_is_refused() -> None:
    with pytest.raises(PromotionRefused, match="never evaluated"):
        _check(None)
    with pytest.raises(PromotionRefused, match="is failed"):
        _check(_run("candidate_better", status="failed"))


def test_an_evaluation_against_an_older_model_is_refused() -> None:
    with pytest.raises(PromotionRefused, match="now promotes"):
        _check(_run("candidate_better", current=f"{BASE}.ft-older"))


def _decision(action: str, serves: str) -> PromotionDecision:
    return PromotionDecision.model_validate(
        {
            "action": action,
            "model": "contracts",
            "serves": serves,
            "version": "1",
            "previous": "?",
            "by": "tester",
            "at": NOW,
            "reason": "test",
        }
    )


def test_promotions_stack_and_rollbacks_pop() -> None:
    history = PromotionHistory(model="contracts")
    assert promoted(history, CATALOG) == CATALOG
    assert rollback_target(history, CATALOG) is None
    history = PromotionHistory(
        model="contracts", decisions=(_decision("promote", "a"), _decision("promote", "b"))
    )
    assert promoted(history, CATALOG) == ("b", "1")
    assert rollback_target(history, CATALOG) == ("a", "1")
    history = history.model_copy(
        update={"decisions": (*history.decisions, _decision("rollback", "a"))}
    )
    assert promoted(history, CATALOG) == ("a", "1")
    assert rollback_target(history, CATALOG) == CATALOG
    history = history.model_copy(
        update={"decisions": (*history.decisions, _decision("rollback", CATALOG[0]))}
    )
    assert promoted(history, CATALOG) == CATALOG


def test_the_same_comparison_is_the_same_run() -> None:
    key = {
        "hosted_model": "m",
        "candidate": "c",
        "current": "d",
        "set_sha256": "s",
        "max_tokens": 5,
    }
    assert evaluation_id(**key) == evaluation_id(**key)  # type: ignore[arg-type]
    assert evaluation_id(**{**key, "set_sha256": "t"}) != evaluation_id(**key)  # type: ignore[arg-type]


def test_set_lines_parse_and_problems_name_their_lines() -> None:
    good = parse_lines(
        [
            b'{"messages": [{"role": "system", "content": "Be brief."}, '
            b'{"role": "user", "content": "Capital of France?"}, '
            b'{"role": "assistant", "content": "Paris"}]}\n',
            b"\n",
            b'{"prompt": "2+2=", "completion": " 4"}\n',
        ],
        "eval.jsonl",
    )
    assert [e.reference for e in good.examples] == ["Paris", "4"]
    assert good.examples[0].prompt()[-1] == {"role": "user", "content": "Capital of France?"}
    assert [e.line for e in good.examples] == [1, 3]
    with pytest.raises(EvaluationSetError) as broken:
        parse_lines(
            [
                b"not json\n",
                b'{"messages": [{"role": "user", "content": "hi"}]}\n',
                b"\xff\n",
            ],
            "bad.jsonl",
        )
    assert broken.value.problems == [
        "line 1: not JSON (Expecting value, column 1)",
        "line 2: the last message must be the assistant's reference answer",
        "line 3: not UTF-8 (byte 0 of the line)",
    ]


def test_developer_tier_only_for_fine_tuned_models_of_listed_bases() -> None:
    assert developer_tier_allowed(f"{BASE}.ft-abc")
    assert developer_tier_allowed("gpt-4.1-2025-04-14.ft-abc")
    assert not developer_tier_allowed("gpt-4o-2024-08-06.ft-abc")
    assert not developer_tier_allowed(BASE)  # a base model: not a fine-tuned deployment
    chosen = candidate_deployment(
        "gpt-4o-mini-2024-07-18.ft-x", settings_sku="GlobalStandard", settings_source="s"
    )
    assert chosen.sku == "GlobalStandard"


def test_evaluation_deployment_names_are_valid_and_stable() -> None:
    long_model = f"{BASE}.ft-" + "x" * 80 + "-suffix_with.dots"
    name = evaluation_deployment_name(long_model)
    assert name == evaluation_deployment_name(long_model)
    assert len(name) <= 64 and name.startswith("eval-")
    assert name != evaluation_deployment_name(f"{BASE}.ft-other")
