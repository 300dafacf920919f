"""The side-by-side report of an evaluation, as text and as a self-contained HTML page (pure).

What a reviewer needs to trust or reject a verdict: the totals with their confidence
interval, how many examples each side could not answer and why, the worst examples of each
model, and the examples where the two differ most (what the candidate fixed, what it broke),
each with the prompt, the reference and both answers.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass

from shared.evaluation.examples import EvaluationExample, EvaluationSet
from shared.evaluation.records import SIDES, Answer, EvaluationRun, Side
from shared.evaluation.scoring import ExampleScores, Metric

SHOWN = 5
CLIP = 300
VERDICT_WORDS = {
    "candidate_better": "the candidate is better beyond noise",
    "tie": "a tie: the difference is within noise",
    "candidate_worse": "the candidate is worse beyond noise",
}


@dataclass(frozen=True)
class Row:
    example: EvaluationExample
    answers: dict[Side, Answer | None]
    scores: dict[Side, ExampleScores]

    def value(self, side: Side, metric: Metric) -> float:
        return self.scores[side].get(metric)


def rows_of(
    evaluation_set: EvaluationSet,
    answers: Mapping[Side, Mapping[int, Answer]],
    scores: Mapping[Side, list[ExampleScores]],
) -> list[Row]:
    return [
        Row(
            example,
            {side: answers[side].get(example.index) for side in SIDES},
            {side: scores[side][position] for side in SIDES},
        )
        for position, example in enumerate(evaluation_set.examples)
    ]


def _clip(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= CLIP else flat[: CLIP - 1] + "…"


def _answer_text(answer: Answer | None) -> str:
    if answer is None:
        return "(not asked)"
    if answer.text is None:
        return f"(no answer: {answer.failure}: {answer.reason or ''})"
    return answer.text


@dataclass(frozen=True)
class Sections:
    worst: dict[Side, list[Row]]
    improved: list[Row]
    regressed: list[Row]


def sections(rows: list[Row], metric: Metric) -> Sections:
    def lowest(side: Side) -> list[Row]:
        return sorted(rows, key=lambda r: (r.value(side, metric), r.example.index))[:SHOWN]

    worst = {side: lowest(side) for side in SIDES}

    def delta(row: Row) -> float:
        return row.value("candidate", metric) - row.value("current", metric)

    improved = [r for r in sorted(rows, key=lambda r: -delta(r)) if delta(r) > 0][:SHOWN]
    regressed = [r for r in sorted(rows, key=delta) if delta(r) < 0][:SHOWN]
    return Sections(worst, improved, regressed)


def _summary_lines(run: EvaluationRun) -> list[str]:
    result = run.result
    assert result is not None
    lines = [
        f"Evaluation {run.id} ({run.status}), {run.examples} example(s) from {run.set_path} "
        f"(sha256 {run.set_sha256[:12]})",
        f"  candidate: {run.candidate.model} on {run.candidate.deployment} ({run.candidate.sku})",
        f"  current:   {run.current.model} on {run.current.deployment} ({run.current.sku}), "
        f"hosted model {run.hosted_model!r}",
        "",
        f"  {'metric':<12} {'candidate':>9} {'current':>9} {'diff':>8}  95% interval       verdict",
    ]
    for comparison in result.comparisons:
        metric = str(comparison["metric"])
        lines.append(
            f"  {metric:<12} {result.candidate.means[metric]:>9.3f} "
            f"{result.current.means[metric]:>9.3f} {float(str(comparison['difference'])):>+8.3f}"
            f"  [{float(str(comparison['ci_low'])):+.3f}, {float(str(comparison['ci_high'])):+.3f}]"
            f"  {comparison['verdict']}{'  (primary)' if metric == result.primary_metric else ''}"
        )
    for side, summary in (("candidate", result.candidate), ("current", result.current)):
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(summary.failures.items()))
        lines.append(
            f"  {side}: {summary.answered}/{summary.examples} answered; unscored "
            f"{summary.unscored}{' (' + kinds + ')' if kinds else ''}, scored 0"
        )
    lines += ["", f"Verdict on {result.primary_metric}: {VERDICT_WORDS[result.verdict]}."]
    return lines


def text_report(run: EvaluationRun, rows: list[Row]) -> str:
    assert run.result is not None
    metric: Metric = run.result.primary_metric  # type: ignore[assignment]
    parts = sections(rows, metric)
    lines = _summary_lines(run)

    def block(title: str, chosen: list[Row]) -> None:
        lines.extend(["", title])
        if not chosen:
            lines.append("  (none)")
        for row in chosen:
            lines.append(
                f"  #{row.example.index + 1} (line {row.example.line}): "
                f"candidate {row.value('candidate', metric):.2f}, "
                f"current {row.value('current', metric):.2f}"
            )
            lines.append(f"    prompt:    {_clip(row.example.question)}")
            lines.append(f"    reference: {_clip(row.example.reference)}")
            lines.append(f"    candidate: {_clip(_answer_text(row.answers['candidate']))}")
            lines.append(f"    current:   {_clip(_answer_text(row.answers['current']))}")

    block(f"Worst examples of the candidate ({metric}):", parts.worst["candidate"])
    block(f"Worst examples of the current model ({metric}):", parts.worst["current"])
    block("What the candidate fixed (largest gains):", parts.improved)
    block("What the candidate broke (largest losses):", parts.regressed)
    return "\n".join(lines) + "\n"


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:75em}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;"
    "vertical-align:top;text-align:left}th{background:#f4f4f4}.num{text-align:right}"
    ".better{color:#060}.worse{color:#a00}.tie{color:#555}pre{white-space:pre-wrap;margin:0}"
)


def html_report(run: EvaluationRun, rows: list[Row]) -> str:
    result = run.result
    assert result is not None
    metric: Metric = result.primary_metric  # type: ignore[assignment]
    parts = sections(rows, metric)
    e = html.escape
    css = {"candidate_better": "better", "candidate_worse": "worse", "tie": "tie"}
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Evaluation {e(run.id)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Evaluation {e(run.id)}</h1>",
        f"<p>{run.examples} example(s) from <code>{e(run.set_path)}</code> "
        f"(sha256 <code>{e(run.set_sha256[:12])}</code>).<br>",
        f"Candidate: <code>{e(run.candidate.model)}</code> on {e(run.candidate.deployment)} "
        f"({e(run.candidate.sku)})<br>Current: <code>{e(run.current.model)}</code> on "
        f"{e(run.current.deployment)} ({e(run.current.sku)}), hosted model "
        f"<b>{e(run.hosted_model)}</b></p>",
        f"<h2 class='{css[result.verdict]}'>Verdict on {e(metric)}: "
        f"{e(VERDICT_WORDS[result.verdict])}</h2>",
        "<table><tr><th>metric</th><th>candidate</th><th>current</th><th>difference</th>"
        "<th>95% interval</th><th>verdict</th></tr>",
    ]
    for c in result.comparisons:
        name = str(c["metric"])
        out.append(
            f"<tr><td>{e(name)}{' (primary)' if name == metric else ''}</td>"
            f"<td class='num'>{result.candidate.means[name]:.3f}</td>"
            f"<td class='num'>{result.current.means[name]:.3f}</td>"
            f"<td class='num'>{float(str(c['difference'])):+.3f}</td>"
            f"<td>[{float(str(c['ci_low'])):+.3f}, {float(str(c['ci_high'])):+.3f}]</td>"
            f"<td class='{css[str(c['verdict'])]}'>{e(str(c['verdict']))}</td></tr>"
        )
    out.append("</table><table><tr><th>side</th><th>answered</th><th>unscored (scored 0)</th></tr>")
    for side, summary in (("candidate", result.candidate), ("current", result.current)):
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(summary.failures.items()))
        out.append(
            f"<tr><td>{side}</td><td>{summary.answered}/{summary.examples}</td>"
            f"<td>{summary.unscored}{' (' + e(kinds) + ')' if kinds else ''}</td></tr>"
        )
    out.append("</table>")

    def block(title: str, chosen: list[Row]) -> None:
        out.append(f"<h2>{e(title)}</h2>")
        if not chosen:
            out.append("<p>(none)</p>")
            return
        out.append(
            "<table><tr><th>#</th><th>prompt</th><th>reference</th><th>candidate</th>"
            "<th>current</th></tr>"
        )
        for row in chosen:
            out.append(
                f"<tr><td>{row.example.index + 1}<br>line {row.example.line}</td>"
                f"<td><pre>{e(_clip(row.example.question))}</pre></td>"
                f"<td><pre>{e(_clip(row.example.reference))}</pre></td>"
                f"<td><pre>{e(_clip(_answer_text(row.answers['candidate'])))}</pre>"
                f"<b>{row.value('candidate', metric):.2f}</b></td>"
                f"<td><pre>{e(_clip(_answer_text(row.answers['current'])))}</pre>"
                f"<b>{row.value('current', metric):.2f}</b></td></tr>"
            )
        out.append("</table>")

    block(f"Worst examples of the candidate ({metric})", parts.worst["candidate"])
    block(f"Worst examples of the current model ({metric})", parts.worst["current"])
    block("What the candidate fixed (largest gains)", parts.improved)
    block("What the candidate broke (largest losses)", parts.regressed)
    out.append("</body></html>")
    return "\n".join(out) + "\n"
