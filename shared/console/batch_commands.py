"""The `batch` commands: run a batch over a model's waiting documents here, and list runs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from shared.console.display import batch_detail, batch_line, batches_table, print_json
from shared.console.errors import ConsoleError, ExitCode
from shared.console.flows import drive_batch
from shared.console.session import JsonOption, ModelArgument, session_of

if TYPE_CHECKING:
    from shared.batch.models import BatchRun


def register(app: typer.Typer) -> None:
    """Add the `batch` command group to the console."""
    app.add_typer(batch_app, name="batch")


# --- batch ----------------------------------------------------------------------------------

batch_app = typer.Typer(
    help="Batch runs: every document waiting under a prefix of the batch container.",
    rich_markup_mode=None,
    no_args_is_help=False,
)
# How often `batch run` reads the run record for its progress line.
BATCH_POLL_SECONDS = 1.0


@batch_app.command("run")
def batch_run(
    ctx: typer.Context,
    *,
    model: ModelArgument,
    input_prefix: Annotated[
        str | None,
        typer.Option(
            metavar="PREFIX", help="Prefix in BATCH_CONTAINER to process. Default: 'MODEL/'."
        ),
    ] = None,
    output_prefix: Annotated[
        str | None,
        typer.Option(
            metavar="PREFIX",
            help="Prefix of the outcomes in BATCH_OUTPUT_CONTAINER. Default: input's.",
        ),
    ] = None,
    deadline: Annotated[
        str | None,
        typer.Option(
            metavar="WHEN",
            help="Stop starting documents then and list what is left: an ISO 8601 date-time "
            "(UTC unless it names a zone) or a duration from now (PT2H, 3600).",
        ),
    ] = None,
    run_id: Annotated[
        str | None,
        typer.Option(
            metavar="ID", help="The run's id (default: a new one). An existing id resumes it."
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Run a batch over MODEL's waiting documents here, showing progress until it ends."""
    from shared.api.batches import new_run_id  # noqa: PLC0415 - imports the SDKs
    from shared.batch.models import RunInvalid, parse_deadline  # noqa: PLC0415

    session = session_of(ctx)
    hosted = session.hosted(model)
    runner = session.services().batches
    prefix = input_prefix if input_prefix is not None else f"{model}/"
    try:
        run = runner.start(
            hosted.name,
            run_id or new_run_id(),
            prefix,
            output_prefix if output_prefix is not None else prefix,
            parse_deadline(deadline, now=runner.clock()) if deadline else None,
            queue_first_slice=False,
        )
    except RunInvalid as invalid:
        raise ConsoleError(str(invalid), ExitCode.USAGE) from invalid
    session.err.print(
        f"batch {run.run_id} on {model}: {run.input_container}/{run.input_prefix} -> "
        f"{session.settings().batch_output_container}/{run.output_prefix}",
        markup=False,
    )
    with session.err.status(f"batch {run.run_id}: starting") as spinner:
        shown: list[str] = []

        def changed(current: BatchRun) -> None:
            line = batch_line(current)
            spinner.update(line)
            if not shown or shown[-1].split(";")[0] != line.split(";")[0]:
                session.err.print(line, markup=False)  # each status change stays on screen
            shown.append(line)

        ended = drive_batch(runner, run.run_id, on_change=changed, poll_seconds=BATCH_POLL_SECONDS)
    view = runner.status(ended.run_id) or {}
    if json_output:
        print_json(view)
    else:
        session.out.print(batch_detail(view, datetime.now(UTC)))
    if ended.status == "deadline_reached":
        raise typer.Exit(ExitCode.TIMED_OUT)
    if ended.status != "succeeded":
        raise typer.Exit(ExitCode.FAILED)


@batch_app.command("status")
def batch_status(
    ctx: typer.Context,
    run_id: Annotated[
        str | None, typer.Argument(metavar="RUN_ID", help="One run (default: recent runs).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many runs.")] = 20,
    json_output: JsonOption = False,
) -> None:
    """Batch runs, newest first; or one run with its summary."""
    from shared.batch.models import run_id_problem  # noqa: PLC0415 - imports pydantic

    session = session_of(ctx)
    problem = run_id_problem(run_id) if run_id is not None else None
    if problem is not None:
        raise ConsoleError(problem, ExitCode.USAGE)
    runner = session.services().batches
    if run_id is None:
        runs = runner.recent(limit)
        if json_output:
            print_json([run.model_dump(mode="json") for run in runs])
        else:
            session.out.print(batches_table(runs, datetime.now(UTC)))
        return
    view = runner.status(run_id)
    if view is None:
        raise ConsoleError(f"no batch run {run_id!r}", ExitCode.FAILED)
    if json_output:
        print_json(view)
    else:
        session.out.print(batch_detail(view, datetime.now(UTC)))
