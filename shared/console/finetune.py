"""`hosting finetune ...`: fine-tuning jobs on the Azure OpenAI account, ending in a hosted model.

- `start TRAIN.jsonl [VALID.jsonl] --base MODEL`: checks the files (`hosting data check`'s
  rules; errors stop here unless `--skip-check`), uploads them, creates the job, follows its
  status and events with a progress display, and when it succeeds downloads `results.csv`,
  checks the curves, plots them and prints the TOML that hosts the model with this app.
- `status JOB [--follow]`, `list`, `cancel JOB`, `events JOB`: the job's state, with `--json`.

A failed job's error body is printed as Azure sent it. Exit codes: 0 succeeded (or the
command did what it says), 1 the job failed or was cancelled or Azure refused, 2 usage,
4 `--timeout` passed while the job goes on in Azure.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from shared.console.display import print_json, stderr_console, stdout_console
from shared.console.errors import ConsoleError, ExitCode

if TYPE_CHECKING:
    from openai.types.fine_tuning import FineTuningJob, FineTuningJobEvent

    from shared.finetuning.jobs import FineTuning

finetune_app = typer.Typer(
    help="Fine-tuning jobs on the Azure OpenAI account: start, follow, inspect, cancel.",
    rich_markup_mode=None,
    no_args_is_help=False,
)

_JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
_JobArgument = Annotated[str, typer.Argument(metavar="JOB", help="A fine-tuning job id.")]
_PollOption = Annotated[
    float, typer.Option(min=0.01, metavar="SECONDS", help="How often to ask Azure while following.")
]
_OutOption = Annotated[
    Path,
    typer.Option(
        metavar="DIR", file_okay=False, help="Where results.csv and the plot go (DIR/JOB/)."
    ),
]
_TimeoutOption = Annotated[
    float | None,
    typer.Option(
        min=1.0, metavar="SECONDS", help="Stop following after this long (the job goes on)."
    ),
]
# What the printed TOML proposes; the operator edits it to the traffic expected.
HOST_DEPLOYMENT_TYPE = "Standard"
HOST_CAPACITY = 10


def _fine_tuning(ctx: typer.Context, poll_seconds: float) -> FineTuning:
    """The adapter over an openai client built from the app's settings (retries: the client's)."""
    from shared.composition import build_credential, build_openai_client  # noqa: PLC0415
    from shared.finetuning.jobs import FineTuning  # noqa: PLC0415

    session = ctx.find_object(_session_type())
    assert session is not None, "set by the app's callback"
    settings = session.settings()
    client = build_openai_client(settings, build_credential(settings))
    # Uploads can take minutes; the openai client's own retries are the only retry policy.
    return FineTuning(client.with_options(max_retries=2, timeout=600.0), poll_seconds=poll_seconds)


def _session_type() -> type[Any]:
    from shared.console.app import Session  # noqa: PLC0415 - app imports this module

    return Session


@contextmanager
def _azure_refusals() -> Iterator[None]:
    """An error answer from Azure becomes one line with its body as Azure sent it."""
    import openai  # noqa: PLC0415

    from shared.finetuning.jobs import FineTuningError  # noqa: PLC0415

    try:
        yield
    except openai.APIStatusError as error:
        body = json.dumps(error.body, ensure_ascii=False) if error.body is not None else ""
        raise ConsoleError(f"Azure answered {error.status_code}: {body}") from error
    except openai.APIConnectionError as error:
        raise ConsoleError(f"cannot reach the Azure OpenAI endpoint: {error}") from error
    except FineTuningError as error:
        raise ConsoleError(str(error)) from error


def _moment(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _job_json(job: FineTuningJob) -> dict[str, Any]:
    return job.model_dump(mode="json", exclude_unset=False)


def _jobs_table(jobs: Sequence[FineTuningJob]) -> Table:
    table = Table("job", "status", "model", "fine-tuned model", "created")
    for job in jobs:
        table.add_row(
            job.id, job.status, job.model, job.fine_tuned_model or "-", _moment(job.created_at)
        )
    return table


@dataclass
class _ProgressView:
    """The live display while following: status, step bar, and each new event as a line."""

    progress: Progress
    task: TaskID

    def update(self, job: FineTuningJob, events: Sequence[FineTuningJobEvent]) -> None:
        total: int | None = None
        completed: int | None = None
        for event in events:
            self.progress.console.print(
                f"{_moment(event.created_at)}  {event.level:<5} {event.message}",
                markup=False,
                highlight=False,
            )
            data = event.data if isinstance(event.data, dict) else {}
            if isinstance(data.get("step"), int) and isinstance(data.get("total_steps"), int):
                completed, total = data["step"], data["total_steps"]
        if total is not None and completed is not None:
            self.progress.update(
                self.task, total=total, completed=completed, steps=f"{completed}/{total} steps"
            )
        if job.status == "succeeded":
            task = self.progress.tasks[0]
            self.progress.update(self.task, completed=task.total or 1, total=task.total or 1)
        self.progress.update(self.task, description=f"{job.id} {job.status}")


def _follow(
    tuning: FineTuning, job_id: str, err: Console, timeout: float | None, quiet: bool
) -> FineTuningJob:
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[steps]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=quiet,
    )
    with progress:
        view = _ProgressView(progress, progress.add_task(job_id, total=None, steps=""))

        def on_update(job: FineTuningJob, events: Sequence[FineTuningJobEvent]) -> None:
            if not quiet:
                view.update(job, events)

        return tuning.follow(job_id, on_update, max_wait_seconds=timeout)


def _finish(
    tuning: FineTuning,
    job: FineTuningJob,
    *,
    out_dir: Path,
    name: str | None,
    json_output: bool,
    out: Console,
    err: Console,
) -> None:
    """After the job ended: the error body, or results.csv, curve checks, plot and TOML."""
    from shared.finetuning.curves import (  # noqa: PLC0415
        ResultsFileInvalid,
        check_curves,
        parse_results_csv,
    )
    from shared.finetuning.hosting import CheckpointChoice, hosting_toml  # noqa: PLC0415
    from shared.finetuning.jobs import job_error  # noqa: PLC0415
    from shared.finetuning.plot import plot_curves  # noqa: PLC0415

    answer: dict[str, Any] = {"job": _job_json(job)}
    if job.status != "succeeded":
        error = job_error(job)
        answer["error"] = error
        if json_output:
            print_json(answer)
        else:
            err.print(f"job {job.id} {job.status}", markup=False)
            if error is not None:
                # As Azure sent it: code, message and param, untouched.
                out.print(json.dumps({"error": error}, indent=2, ensure_ascii=False), markup=False)
        raise typer.Exit(ExitCode.FAILED)
    job_dir = out_dir / job.id
    job_dir.mkdir(parents=True, exist_ok=True)
    with _azure_refusals():
        results = tuning.results_csv(job)
        checkpoints = tuning.checkpoints(job.id)
    curve_report = None
    if results is not None:
        results_path = job_dir / "results.csv"
        results_path.write_bytes(results)
        answer["results_csv"] = str(results_path)
        try:
            curves = parse_results_csv(results)
        except ResultsFileInvalid as invalid:
            err.print(f"warning: results.csv cannot be read: {invalid}", markup=False)
        else:
            curve_report = check_curves(curves)
            plot_path = plot_curves(
                curves,
                job_dir / "curves.png",
                title=f"{job.id}: {job.fine_tuned_model}",
                warnings=curve_report.warnings,
            )
            answer["plot"] = str(plot_path)
            answer["curves"] = curve_report.to_json()
    else:
        err.print(f"warning: job {job.id} has no result file to check", markup=False)
    choices = [
        CheckpointChoice(
            model=checkpoint.fine_tuned_model_checkpoint,
            step=checkpoint.step_number,
            valid_loss=getattr(checkpoint.metrics, "valid_loss", None),
        )
        for checkpoint in checkpoints
        # The checkpoint at the last step is the fine-tuned model itself.
        if curve_report is None or checkpoint.step_number != curve_report.last_step
    ]
    toml = hosting_toml(
        name or getattr(job, "suffix", None) or job.id.removeprefix("ftjob-")[:12],
        job.fine_tuned_model or "",
        choices,
        deployment_type=HOST_DEPLOYMENT_TYPE,
        capacity=HOST_CAPACITY,
    )
    answer["hosting_toml"] = toml
    answer["checkpoints"] = [checkpoint.model_dump(mode="json") for checkpoint in checkpoints]
    if json_output:
        print_json(answer)
        return
    out.print(f"job {job.id} succeeded: {job.fine_tuned_model}", markup=False)
    if "results_csv" in answer:
        out.print(f"results: {answer['results_csv']}", markup=False)
    if "plot" in answer:
        out.print(f"curves plotted: {answer['plot']}", markup=False)
    if curve_report is not None:
        for warning in curve_report.warnings:
            out.print(
                f"warning {warning.curve} at step {warning.step}: {warning.message}", markup=False
            )
        if curve_report.ok:
            out.print(
                "curves: training loss falls, token accuracy rises, validation loss does not "
                "diverge",
                markup=False,
            )
    out.print("", markup=False)
    out.print(toml, markup=False, highlight=False, end="")


@finetune_app.command("start")
def start(
    ctx: typer.Context,
    training: Annotated[Path, typer.Argument(metavar="TRAIN", exists=True, dir_okay=False)],
    validation: Annotated[
        Path | None, typer.Argument(metavar="VALID", exists=True, dir_okay=False)
    ] = None,
    *,
    base: Annotated[
        str,
        typer.Option(
            "--base",
            metavar="MODEL",
            help="Base model (gpt-4.1-mini-2025-04-14), or a fine-tuned model to go on from.",
        ),
    ],
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, max=50)] = None,
    batch_size: Annotated[int | None, typer.Option(min=1)] = None,
    learning_rate_multiplier: Annotated[float | None, typer.Option(min=0.0)] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    suffix: Annotated[
        str | None, typer.Option(help="Added to the fine-tuned model's name.")
    ] = None,
    training_type: Annotated[
        str | None,
        typer.Option(
            metavar="TYPE",
            help="Azure training type where the API version has it: standard, globalstandard, "
            "developer.",
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="The hosted model's name in the printed TOML.")
    ] = None,
    skip_check: Annotated[
        bool, typer.Option("--skip-check", help="Upload even if the dataset check finds errors.")
    ] = False,
    follow: Annotated[bool, typer.Option("--follow/--no-follow")] = True,
    poll: _PollOption = 10.0,
    timeout: _TimeoutOption = None,
    out_dir: _OutOption = Path("finetune-output"),
    json_output: _JsonOption = False,
) -> None:
    """Check, upload, create the job, follow it, and print the TOML to host the result."""
    from shared.finetuning.dataset import check_dataset  # noqa: PLC0415
    from shared.finetuning.jobs import JobSpec  # noqa: PLC0415
    from shared.finetuning.limits import UnknownBaseModel  # noqa: PLC0415

    out, err = stdout_console(), stderr_console()
    try:
        report = check_dataset(training, validation, base_model=base, epochs=epochs)
    except UnknownBaseModel as error:
        raise ConsoleError(str(error), ExitCode.USAGE) from error
    if not report.ok and not skip_check:
        for line in report.summary_lines():
            err.print(line, markup=False, highlight=False, soft_wrap=True)
        raise ConsoleError(
            "the dataset check found errors; fix them (or pass --skip-check to let Azure judge)"
        )
    if report.estimate is not None and not json_output:
        err.print(report.summary_lines()[-2], markup=False, highlight=False, soft_wrap=True)
    tuning = _fine_tuning(ctx, poll)
    spec = JobSpec(
        model=base,
        n_epochs=epochs,
        batch_size=batch_size,
        learning_rate_multiplier=learning_rate_multiplier,
        seed=seed,
        suffix=suffix,
        training_type=training_type,
    )
    with _azure_refusals():
        train_file = tuning.upload(training)
        err.print(f"uploaded {training.name}: {train_file.id}", markup=False)
        valid_id = None
        if validation is not None:
            valid_id = tuning.upload(validation).id
            err.print(f"uploaded {validation.name}: {valid_id}", markup=False)
        job = tuning.create(spec, train_file.id, valid_id)
        err.print(f"created job {job.id} ({job.status})", markup=False)
        if not follow:
            if json_output:
                print_json({"job": _job_json(job)})
            else:
                out.print(job.id, markup=False)
            return
        job = _follow_or_time_out(tuning, job.id, err, timeout, json_output)
    _finish(tuning, job, out_dir=out_dir, name=name, json_output=json_output, out=out, err=err)


def _follow_or_time_out(
    tuning: FineTuning, job_id: str, err: Console, timeout: float | None, quiet: bool
) -> FineTuningJob:
    from shared.finetuning.jobs import FineTuningError  # noqa: PLC0415

    try:
        return _follow(tuning, job_id, err, timeout, quiet)
    except FineTuningError as error:
        raise ConsoleError(str(error), ExitCode.TIMED_OUT) from error


@finetune_app.command("status")
def status(
    ctx: typer.Context,
    job_id: _JobArgument,
    *,
    follow: Annotated[
        bool, typer.Option("--follow", help="Follow until it ends, then finish as `start` does.")
    ] = False,
    name: Annotated[str | None, typer.Option(help="The hosted model's name in the TOML.")] = None,
    poll: _PollOption = 10.0,
    timeout: _TimeoutOption = None,
    out_dir: _OutOption = Path("finetune-output"),
    json_output: _JsonOption = False,
) -> None:
    """One job's status (and its error body if it failed); `--follow` waits for its end."""
    tuning = _fine_tuning(ctx, poll)
    out, err = stdout_console(), stderr_console()
    with _azure_refusals():
        if follow:
            job = _follow_or_time_out(tuning, job_id, err, timeout, json_output)
            _finish(
                tuning, job, out_dir=out_dir, name=name, json_output=json_output, out=out, err=err
            )
            return
        job = tuning.get(job_id)
        checkpoints = tuning.checkpoints(job_id)
    if json_output:
        print_json(
            {
                "job": _job_json(job),
                "checkpoints": [checkpoint.model_dump(mode="json") for checkpoint in checkpoints],
            }
        )
        return
    table = Table(show_header=False, box=None)
    for label, value in (
        ("job", job.id),
        ("status", job.status),
        ("model", job.model),
        ("fine-tuned model", job.fine_tuned_model or "-"),
        ("created", _moment(job.created_at)),
        ("finished", _moment(job.finished_at)),
        ("hyperparameters", json.dumps(job.hyperparameters.model_dump(exclude_none=True))),
        ("trained tokens", str(job.trained_tokens or "-")),
        ("result files", ", ".join(job.result_files or []) or "-"),
    ):
        table.add_row(label, value)
    out.print(table)
    for checkpoint in checkpoints:
        out.print(
            f"checkpoint step {checkpoint.step_number}: {checkpoint.fine_tuned_model_checkpoint}",
            markup=False,
        )
    if job.error is not None:
        out.print(json.dumps({"error": job.error.model_dump()}, indent=2), markup=False)
    if job.status in ("failed", "cancelled"):
        raise typer.Exit(ExitCode.FAILED)


@finetune_app.command("list")
def list_jobs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
    json_output: _JsonOption = False,
) -> None:
    """The account's fine-tuning jobs, newest first."""
    tuning = _fine_tuning(ctx, 10.0)
    with _azure_refusals():
        jobs = tuning.list_jobs(limit)
    if json_output:
        print_json([_job_json(job) for job in jobs])
        return
    stdout_console().print(_jobs_table(jobs))


@finetune_app.command("cancel")
def cancel(ctx: typer.Context, job_id: _JobArgument, json_output: _JsonOption = False) -> None:
    """Cancel a job that has not ended."""
    tuning = _fine_tuning(ctx, 10.0)
    with _azure_refusals():
        job = tuning.cancel(job_id)
    if json_output:
        print_json(_job_json(job))
        return
    stdout_console().print(f"job {job.id}: {job.status}", markup=False)


@finetune_app.command("events")
def events(
    ctx: typer.Context,
    job_id: _JobArgument,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 100,
    json_output: _JsonOption = False,
) -> None:
    """A job's latest events, oldest first."""
    tuning = _fine_tuning(ctx, 10.0)
    with _azure_refusals():
        listed = tuning.events(job_id, limit)
    if json_output:
        print_json([event.model_dump(mode="json") for event in listed])
        return
    out = stdout_console()
    for event in listed:
        out.print(
            f"{_moment(event.created_at)}  {event.level:<5} {event.message}",
            markup=False,
            highlight=False,
        )
