"""`hosting evaluate` and `hosting promote`: the evaluation gate in front of a hosted model.

- `evaluate CANDIDATE --against MODEL --set EVAL.jsonl [--report FILE] [--json]` runs the
  held-out examples on both models' deployments (made ready and released under evaluation
  holds), scores them and says whether the candidate is better beyond noise. Running the same
  command again resumes the same evaluation from its stored answers (`--fresh` asks again).
- `promote MODEL CANDIDATE [--force]` records the candidate as what MODEL deploys next, only
  if its last evaluation beat what MODEL promotes now; `promote --rollback MODEL` goes back.

Exit codes for a CI gate: 0 the candidate is better (or the promotion was recorded), 5 the
candidate lost or tied, 3 the promotion was refused, 1 the evaluation could not run (a
deployment, Azure or storage failed; nothing was decided), 2 usage.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from shared.console.display import print_json
from shared.console.errors import ConsoleError, ExitCode
from shared.console.flows import current_operator

if TYPE_CHECKING:
    from shared.composition import AppServices
    from shared.evaluation.examples import EvaluationSet
    from shared.evaluation.records import EvaluationRun, PromotionDecision, Side
    from shared.hosting.deployments import DeploymentSnapshot

_JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _session(ctx: typer.Context) -> Any:
    from shared.console.session import Session  # noqa: PLC0415 - imported when needed

    session = ctx.find_object(Session)
    assert session is not None, "set by the app's callback"
    return session


class _Shown:
    """The evaluation's progress on stderr: why a deployment is not serving, and a bar per side."""

    def __init__(self, err: Console) -> None:
        self._err = err
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=err
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> _Shown:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def waiting(self, side: Side, reason: str) -> None:
        self._progress.console.print(f"{side}: {reason}", markup=False, highlight=False)

    def asked(self, side: Side, done: int, total: int) -> None:
        task = self._tasks.get(side)
        if task is None:
            task = self._tasks[side] = self._progress.add_task(f"{side:>9}", total=total)
        self._progress.update(task, completed=done, total=total)


def evaluate(
    ctx: typer.Context,
    *,
    candidate: Annotated[
        str,
        typer.Argument(
            metavar="CANDIDATE",
            help="A model id (e.g. a fine-tuned model) or another hosted model's name.",
        ),
    ],
    against: Annotated[
        str,
        typer.Option("--against", metavar="MODEL", help="The hosted model it would replace."),
    ],
    eval_set: Annotated[
        Path,
        typer.Option(
            "--set",
            metavar="EVAL.jsonl",
            exists=True,
            dir_okay=False,
            help="Held-out examples, chat or prompt/completion JSONL; the last assistant "
            "message is the reference answer.",
        ),
    ],
    report: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            dir_okay=False,
            help="Write the side-by-side report here: HTML if FILE ends in .html, else text.",
        ),
    ] = None,
    max_tokens: Annotated[
        int, typer.Option(min=1, metavar="N", help="max_tokens of each answer.")
    ] = 512,
    metric: Annotated[
        str,
        typer.Option(
            metavar="METRIC", help="The metric that decides: token_f1, rouge_l, exact_match."
        ),
    ] = "token_f1",
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Forget the stored answers and ask every example again.")
    ] = False,
    json_output: _JsonOption = False,
) -> None:
    """Evaluate CANDIDATE against the hosted MODEL on held-out examples (a CI gate)."""
    from shared.evaluation.examples import EvaluationSetError, read_set  # noqa: PLC0415
    from shared.evaluation.flows import EvaluationFailed, EvaluationInvalid  # noqa: PLC0415
    from shared.evaluation.scoring import METRICS  # noqa: PLC0415

    if metric not in METRICS:
        raise ConsoleError(
            f"--metric {metric!r} is not one of: {', '.join(METRICS)}", ExitCode.USAGE
        )
    session = _session(ctx)
    try:
        examples = read_set(eval_set)
    except EvaluationSetError as error:
        raise ConsoleError(str(error), ExitCode.USAGE) from error
    services: AppServices = session.services()
    runner = services.evaluations
    try:
        run = runner.plan(
            candidate,
            against,
            examples,
            by=current_operator().owner,
            max_tokens=max_tokens,
            primary_metric=metric,
            fresh=fresh,
        )
    except EvaluationInvalid as error:
        raise ConsoleError(str(error), ExitCode.USAGE) from error
    if run.attempts > 1 and not fresh:
        session.err.print(
            f"resuming evaluation {run.id} (attempt {run.attempts}) from its stored answers",
            markup=False,
        )
    session.err.print(
        f"evaluation {run.id}: candidate {run.candidate.model} on {run.candidate.deployment} "
        f"({run.candidate.why}); current {run.current.model} on {run.current.deployment}",
        markup=False,
    )
    try:
        with _Shown(session.err) as shown:
            finished = runner.run(run, examples, progress=shown)
    except EvaluationFailed as error:
        if json_output:
            print_json({"run_id": run.id, "status": "failed", "error": str(error)})
        raise ConsoleError(
            f"evaluation {run.id} could not run: {error}", ExitCode.FAILED
        ) from error
    text, page = build_reports(services, finished, examples)
    services.evaluations.store.save_report(finished.id, text, page)
    if report is not None:
        report.write_text(page if report.suffix.lower() in (".html", ".htm") else text, "utf-8")
    assert finished.result is not None
    if json_output:
        print_json(evaluation_json(finished, report))
    else:
        session.out.print(text, markup=False, highlight=False, end="")
        if report is not None:
            session.out.print(f"report written to {report}", markup=False)
    if finished.result.verdict != "candidate_better":
        raise typer.Exit(int(ExitCode.NOT_BETTER))


def build_reports(
    services: AppServices, run: EvaluationRun, examples: EvaluationSet
) -> tuple[str, str]:
    from shared.evaluation.flows import score_sides  # noqa: PLC0415
    from shared.evaluation.report import html_report, rows_of, text_report  # noqa: PLC0415

    answers = services.evaluations.answers(run)
    rows = rows_of(examples, answers, score_sides(examples, answers))
    return text_report(run, rows), html_report(run, rows)


def evaluation_json(run: EvaluationRun, report: Path | None) -> dict[str, Any]:
    result = run.result
    assert result is not None
    return {
        "run_id": run.id,
        "status": run.status,
        "verdict": result.verdict,
        "primary_metric": result.primary_metric,
        "hosted_model": run.hosted_model,
        "candidate": {
            **run.candidate.model_dump(mode="json"),
            **result.candidate.model_dump(mode="json"),
            "unscored": result.candidate.unscored,
        },
        "current": {
            **run.current.model_dump(mode="json"),
            **result.current.model_dump(mode="json"),
            "unscored": result.current.unscored,
        },
        "comparisons": result.comparisons,
        "examples": run.examples,
        "set_sha256": run.set_sha256,
        "report": str(report) if report is not None else None,
        "report_blobs": [f"reports/{run.id}.txt", f"reports/{run.id}.html"],
        "exit_code": int(
            ExitCode.OK if result.verdict == "candidate_better" else ExitCode.NOT_BETTER
        ),
    }


def promote(
    ctx: typer.Context,
    *,
    model: Annotated[str, typer.Argument(metavar="MODEL", help="A hosted model's name.")],
    candidate: Annotated[
        str | None,
        typer.Argument(metavar="CANDIDATE", help="The evaluated model id to deploy next."),
    ] = None,
    rollback: Annotated[
        bool, typer.Option("--rollback", help="Go back to what MODEL deployed before.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Promote even without a winning evaluation (recorded)."),
    ] = False,
    json_output: _JsonOption = False,
) -> None:
    """Make MODEL deploy CANDIDATE from its next deployment on, if it won its evaluation."""
    from shared.evaluation.records import PromotionRefused  # noqa: PLC0415

    session = _session(ctx)
    session.hosted(model)  # an unknown model is a usage error
    if rollback == (candidate is not None):
        raise ConsoleError("name a CANDIDATE to promote, or --rollback without one", ExitCode.USAGE)
    services: AppServices = session.services()
    by = current_operator().owner
    try:
        if rollback:
            decision = services.promotions.rollback(model, by=by)
        else:
            assert candidate is not None
            if force:
                session.err.print(
                    f"WARNING: --force promotes {candidate} on {model} WITHOUT a winning "
                    "evaluation; the decision is recorded as forced, with who and when",
                    markup=False,
                    style="bold red",
                )
            decision = services.promotions.promote(
                model, candidate, evaluations=services.evaluations.store, by=by, force=force
            )
    except PromotionRefused as refused:
        if json_output:
            print_json({"model": model, "promoted": False, "reason": str(refused)})
        raise ConsoleError(f"promotion refused: {refused}", ExitCode.REFUSED) from refused
    if json_output:
        print_json({"promoted": True, **decision.model_dump(mode="json")})
        return
    session.out.print(decision_line(decision), markup=False)


def decision_line(decision: PromotionDecision) -> str:
    forced = " (FORCED)" if decision.forced else ""
    evaluation = f", evaluation {decision.evaluation_id}" if decision.evaluation_id else ""
    return (
        f"{decision.model}: {decision.action}{forced} {decision.previous} -> {decision.serves} "
        f"by {decision.by} at {decision.at.isoformat()}{evaluation}. Running work is not "
        "interrupted: the next deployment of the model serves it."
    )


# --- for `hosting status` -------------------------------------------------------------------


def promotion_rows(
    services: AppServices, listed: Mapping[str, DeploymentSnapshot]
) -> list[dict[str, Any]]:
    """Per hosted model: what its deployment serves now (Azure's word) and what it promotes."""
    rows: list[dict[str, Any]] = []
    for hosted in services.hosted.values():
        snapshot = listed.get(hosted.spec.name.lower())
        promoted, version = services.promotions.serving(hosted.name)
        serving = snapshot.model_name if snapshot is not None and snapshot.exists else None
        serving_version = snapshot.model_version if snapshot is not None else None
        rows.append(
            {
                "model": hosted.name,
                "serving": serving,
                "serving_version": serving_version,
                "promoted": promoted,
                "promoted_version": version,
                "swap_pending": serving is not None and serving != promoted,
            }
        )
    return rows


def promotion_lines(rows: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for row in rows:
        serving = (
            f"serving {row['serving']} (version {row['serving_version']})"
            if row["serving"]
            else "not deployed"
        )
        pending = "; the next deployment swaps to it" if row["swap_pending"] else ""
        lines.append(
            f"{row['model']}: {serving}; promoted {row['promoted']} "
            f"(version {row['promoted_version']}){pending}"
        )
    return lines


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
    app.command("promote")(promote)
