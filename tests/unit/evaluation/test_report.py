"""The side-by-side report: totals, unscored counts, worst examples, what changed."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.evaluation.examples import parse_lines
from shared.evaluation.flows import score_sides, summarize
from shared.evaluation.records import (
    Answer,
    EvaluationResult,
    EvaluationRun,
    SideTarget,
)
from shared.evaluation.report import html_report, rows_of, sections, text_report
from shared.evaluation.scoring import compare

NOW = datetime(2026, 12, 1, tzinfo=UTC)
QUESTIONS = [("Capital of France?", "Paris"), ("2+2?", "4"), ("Colour of the <sky>?", "blue")]


def _answer(side: str, index: int, text: str | None, failure: str | None = None) -> Answer:
    return Answer.model_validate(
        {"index": index, "side": side, "text": text, "failure": failure, "at": NOW,
         "reason": "filtered" if failure else None}
    )  # fmt: skip


def _target(side: str) -> SideTarget:
    return SideTarget.model_validate(
        {"side": side, "named": side, "model": f"m-{side}", "version": "1",
         "deployment": f"d-{side}", "sku": "Standard", "capacity": 1,
         "ephemeral": side == "candidate"}
    )  # fmt: skip


def test_the_report_shows_totals_failures_and_what_changed() -> None:
    lines = [f'{{"prompt": "{q}", "completion": "{a}"}}\n'.encode() for q, a in QUESTIONS]
    evaluation_set = parse_lines(lines, "eval.jsonl")
    answers = {
        "candidate": {
            0: _answer("candidate", 0, "Paris"),
            1: _answer("candidate", 1, None, "refusal"),
            2: _answer("candidate", 2, "Blue."),
        },
        "current": {
            0: _answer("current", 0, "Lyon"),
            1: _answer("current", 1, "4"),
            2: _answer("current", 2, "blue"),
        },
    }
    scores = score_sides(evaluation_set, answers)  # type: ignore[arg-type]
    assert [s.exact_match for s in scores["candidate"]] == [1.0, 0.0, 1.0]
    assert [s.exact_match for s in scores["current"]] == [0.0, 1.0, 1.0]
    comparison = compare(scores["candidate"], scores["current"], metric="exact_match")
    run = EvaluationRun(
        id="ev-x", hosted_model="current", candidate=_target("candidate"),
        current=_target("current"), set_path="eval.jsonl", set_sha256=evaluation_set.sha256,
        examples=3, max_tokens=10, primary_metric="exact_match", created=NOW, updated=NOW,
        by="t", status="completed",
        result=EvaluationResult(
            primary_metric="exact_match",
            candidate=summarize(scores["candidate"], answers["candidate"], evaluation_set),
            current=summarize(scores["current"], answers["current"], evaluation_set),
            comparisons=[comparison.to_json()], verdict=comparison.verdict, finished=NOW,
        ),
    )  # fmt: skip
    assert run.result is not None and run.result.candidate.failures == {"refusal": 1}
    rows = rows_of(evaluation_set, answers, scores)  # type: ignore[arg-type]
    parts = sections(rows, "exact_match")
    assert [r.example.index for r in parts.improved] == [0]  # Paris fixed
    assert [r.example.index for r in parts.regressed] == [1]  # 4 lost to a refusal
    assert parts.worst["candidate"][0].example.index == 1

    text = text_report(run, rows)
    assert "candidate: 2/3 answered; unscored 1 (1 refusal), scored 0" in text
    assert "(no answer: refusal: filtered)" in text
    assert "What the candidate fixed (largest gains):\n  #1 (line 1)" in text
    assert "Verdict on exact_match: a tie: the difference is within noise." in text
    page = html_report(run, rows)
    assert "Colour of the &lt;sky&gt;?" in page  # text is escaped, never markup
    assert page.startswith("<!doctype html>") and "What the candidate broke" in page
