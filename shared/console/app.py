"""The `hosting` console script: typer commands over the app's own services.

Each command parses its arguments (typer), loads the settings and builds the services only
once those are valid (so a typo is answered without a connection), calls `flows`, and draws
the answer with `display`: a table or lines for people, `--json` for scripts.

`main()` runs the typer app without its standalone error handling and turns every failure into
one line on stderr and an exit code from `errors.ExitCode`: usage errors are typer's (exit 2),
the rest are `ConsoleError`s raised here or Azure SDK errors (exit 1).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from azure.core.exceptions import AzureError
from rich.console import Console

from shared.console.data import data_app
from shared.console.display import (
    UpProgress,
    batch_detail,
    batch_line,
    batches_table,
    hold_line,
    job_detail,
    job_line,
    jobs_table,
    lease_line,
    log_to,
    moment,
    print_json,
    reconciler_lines,
    schedule_table,
    span,
    status_table,
    stderr_console,
    stdout_console,
)
from shared.console.errors import ConsoleError, ExitCode
from shared.console.evaluate import promotion_lines, promotion_rows
from shared.console.evaluate import register as register_evaluation
from shared.console.finetune import finetune_app
from shared.console.flows import (
    bring_up,
    current_operator,
    drive_batch,
    job_details,
    recent_jobs,
    release_operator_hold,
    take_down,
    wait_for_job,
)
from shared.console.parsing import DURATION_FORMS, parse_duration, parse_instant, parse_moment
from shared.console.schedule import model_schedule
from shared.console.settings_file import LoadedSettings, load_settings
from shared.console.status import model_status
from shared.documents.jobs import JobStatus
from shared.documents.submissions import (
    Submission,
    SubmissionInvalid,
    job_view,
    parse_questions,
    safe_filename,
)
from shared.hosting.deployments import DeploymentSnapshot, ProvisioningError
from shared.hosting.holds import Hold, OperationLease

if TYPE_CHECKING:
    from shared.batch.models import BatchRun
    from shared.composition import AppServices
    from shared.hosting.hosted import HostedDeployment
    from shared.settings import AppSettings

PROG = "hosting"
COMMANDS = (
    "status",
    "schedule",
    "up",
    "down",
    "submit",
    "jobs",
    "job",
    "batch",
    "evaluate",
    "promote",
)
# How often `submit --wait` reads the job record: one small blob read.
JOB_POLL_SECONDS = 0.5
# `up` asks Azure for the state at the app's management poll interval, at most this far apart.
MAX_DISPLAY_POLL_SECONDS = 5.0

app = typer.Typer(
    name=PROG,
    help="Operate the on-demand hosting app: hosted models' deployments and documents.",
    add_completion=False,
    pretty_exceptions_enable=False,
    # Usage errors are printed by main() as one line, not typer's framed panel.
    rich_markup_mode=None,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
ModelArgument = Annotated[
    str, typer.Argument(metavar="MODEL", help="A hosted model's name (see `status`).")
]


@dataclass
class Session:
    """What every command shares: the settings file named, consoles, lazily built services."""

    settings_file: Path | None
    out: Console = field(default_factory=stdout_console)
    err: Console = field(default_factory=stderr_console)
    _loaded: LoadedSettings | None = None
    _services: AppServices | None = None

    def settings(self) -> AppSettings:
        if self._loaded is None:
            self._loaded = load_settings(self.settings_file)
        return self._loaded.settings

    def services(self) -> AppServices:
        if self._services is None:
            # Imported on first use: the SDKs take a second to import, which a mistyped
            # command or model name should not wait for.
            from shared.composition import build_services  # noqa: PLC0415

            self._services = build_services(self.settings())
        return self._services

    def hosted(self, model: str) -> HostedDeployment:
        """The hosted model by name; an unknown name is a usage error naming the known ones."""
        models = self.settings().catalog.models
        if model not in models:
            known = ", ".join(sorted(models))
            raise ConsoleError(
                f"unknown hosted model {model!r}; the hosted models are: {known}", ExitCode.USAGE
            )
        return self.services().hosted[model]


def _session(ctx: typer.Context) -> Session:
    session = ctx.find_object(Session)
    assert session is not None, "set by the app's callback"
    return session


@app.callback(invoke_without_command=True)
def _options(
    ctx: typer.Context,
    settings: Annotated[
        Path | None,
        typer.Option(
            "--settings",
            metavar="FILE",
            exists=True,
            dir_okay=False,
            help="A local.settings.json-shaped file; its Values win over the environment. "
            "Default: ./local.settings.json if it exists.",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the app's logs.")] = False,
) -> None:
    """Operate the on-demand hosting app: hosted models' deployments and documents."""
    if ctx.invoked_subcommand is None:
        raise ConsoleError(
            f"missing command; the commands are: {', '.join(COMMANDS)} (see '{PROG} --help')",
            ExitCode.USAGE,
        )
    session = Session(settings_file=settings)
    log_to(session.err, verbose=verbose)
    ctx.obj = session


# --- status ---------------------------------------------------------------------------------


@app.command()
def status(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Every hosted model: Azure's state, the ledger's, live holds and why it is up."""
    session = _session(ctx)
    services = session.services()
    # One management call for all models, then one ledger read each.
    listed = {snapshot.name.lower(): snapshot for snapshot in services.deployments.list()}
    now = datetime.now(UTC)
    rows = [
        model_status(
            model=hosted.name,
            snapshot=listed.get(
                hosted.spec.name.lower(), DeploymentSnapshot(hosted.spec.name, exists=False)
            ),
            record=hosted.ledger.read(),
            idle_grace=hosted.idle_grace,
            now=now,
        )
        for hosted in services.hosted.values()
    ]
    promotions = promotion_rows(services, listed)
    if json_output:
        models = [row.to_json() for row in rows]
        print_json({"checked_at": now.isoformat(), "models": models, "promotions": promotions})
        return
    session.out.print(status_table(rows, now))
    for line in promotion_lines(promotions):
        session.out.print(line, markup=False, highlight=False)


# --- schedule -------------------------------------------------------------------------------


@app.command()
def schedule(
    ctx: typer.Context,
    at: Annotated[
        datetime | None,
        typer.Option(
            metavar="WHEN",
            parser=parse_instant,
            help="Ask about this instant instead of now: ISO 8601, UTC unless a zone is given.",
        ),
    ] = None,
    count: Annotated[
        int, typer.Option(min=1, max=50, help="Occurrences of each window and batch.")
    ] = 3,
    json_output: JsonOption = False,
) -> None:
    """Each model's next windows and batch runs, and what the reconciler would do now."""
    session = _session(ctx)
    settings = session.settings()
    scheduled = [m for m in settings.catalog.models.values() if m.windows or m.batches]
    now = at or datetime.now(UTC)
    if not scheduled:
        # Nothing is wrong: the app then runs on documents alone.
        if json_output:
            print_json({"at": now.isoformat(), "models": []})
        else:
            session.out.print(
                f"no hosted model declares windows or batches (in {settings.catalog.source})",
                markup=False,
            )
        return
    services = session.services()
    rows = [
        model_schedule(model, services.hosted[model.name].ledger.read(), now, count=count)
        for model in scheduled
    ]
    if json_output:
        print_json({"at": now.isoformat(), "models": [row.to_json() for row in rows]})
        return
    session.out.print(schedule_table(rows, now))
    for line in reconciler_lines(rows, now):
        # Hold ids hold colons: ':office:' must not become an emoji.
        session.out.print(line, markup=False, emoji=False)


# --- up -------------------------------------------------------------------------------------


@app.command()
def up(
    ctx: typer.Context,
    model: ModelArgument,
    hold_for: Annotated[
        timedelta,
        typer.Option(
            "--for",
            metavar="DURATION",
            parser=parse_duration,
            help=f"How long the operator hold keeps it up: {DURATION_FORMS}.",
        ),
    ] = timedelta(hours=1),
    timeout: Annotated[
        float | None,
        typer.Option(
            min=1,
            metavar="SECONDS",
            help="How long to wait for it to serve. Default: PROVISION_TIMEOUT_SECONDS.",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Hold MODEL's deployment up for a while, creating it if needed, until it serves."""
    session = _session(ctx)
    hosted = session.hosted(model)
    services = session.services()
    settings = services.settings
    operator = current_operator()
    display = UpProgress(session.err, hosted.name, hosted.spec.name)
    try:
        with display:
            result = bring_up(
                hosted,
                services.deployments,
                operator=operator,
                hold_for=hold_for,
                timeout=timeout or settings.provision_timeout_seconds,
                poll_seconds=min(settings.management_poll_seconds, MAX_DISPLAY_POLL_SECONDS),
                report=display,
            )
            display.serving()
    except ProvisioningError as error:
        hold = f"the operator hold stays until it expires or `{PROG} down {model}`"
        code = ExitCode.TIMED_OUT if error.retryable else ExitCode.FAILED
        raise ConsoleError(f"{model}: {error.reason} ({hold})", code) from error
    now = datetime.now(UTC)
    if json_output:
        print_json(
            {
                "model": hosted.name,
                "deployment": hosted.spec.name,
                "serving": True,
                "ready_since": result.ready.ready_since.isoformat()
                if result.ready.ready_since
                else None,
                "hold": result.hold.model_dump(mode="json"),
            }
        )
        return
    session.out.print(
        f"{hosted.name} is serving on deployment {hosted.spec.name}; "
        f"operator hold until {moment(result.hold.expires, now)}",
        markup=False,
    )


# --- down -----------------------------------------------------------------------------------


@app.command()
def down(
    ctx: typer.Context,
    model: ModelArgument,
    force: Annotated[
        bool, typer.Option("--force", help="Delete it even under live holds (asks first).")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before --force.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Release the operator hold on MODEL and delete its deployment if nothing else needs it."""
    session = _session(ctx)
    hosted = session.hosted(model)
    operator = current_operator()
    released = release_operator_hold(hosted)
    if force:
        _confirm_force(session, hosted, released.live_holds(hosted.ledger.now()), yes=yes)
    result = take_down(hosted, operator=operator, force=force)
    outcome = result.outcome
    now = hosted.ledger.now()
    holds = result.after.live_holds(now)
    lease = result.after.live_lease(now)
    if json_output:
        print_json(
            {
                "model": hosted.name,
                "deployment": hosted.spec.name,
                "deleted": outcome.deleted,
                "kept_because": outcome.kept_because,
                "reason": outcome.reason,
                "holds": [hold.model_dump(mode="json") for hold in holds],
                "lease": lease.model_dump(mode="json", exclude={"continuation_token"})
                if lease
                else None,
            }
        )
    elif outcome.deleted:
        # Unforced, the teardown's reason speaks of an idle grace `down` does not wait for.
        why = outcome.reason if force else "nothing else holds it"
        session.out.print(f"{hosted.spec.name} deleted: {why}", markup=False)
        if holds:
            lines = "; ".join(hold_line(hold, now) for hold in holds)
            session.out.print(
                f"still live: {lines}. A job among them provisions it again when it needs it.",
                markup=False,
            )
    elif outcome.kept_because == "absent":
        session.out.print(f"{hosted.spec.name} is absent; nothing to delete", markup=False)
    else:
        _say_what_keeps_it(
            session, hosted.spec.name, reason=outcome.reason, holds=holds, lease=lease, now=now
        )
    if outcome.deleted or outcome.kept_because == "absent":
        return
    if outcome.kept_because == "not_owned":
        raise typer.Exit(ExitCode.FAILED)
    raise typer.Exit(ExitCode.REFUSED)


def _confirm_force(
    session: Session, hosted: HostedDeployment, holds: Sequence[Hold], *, yes: bool
) -> None:
    if not holds or yes:
        return
    now = hosted.ledger.now()
    listed = "; ".join(hold_line(hold, now) for hold in holds)
    if not sys.stdin.isatty():
        raise ConsoleError(
            f"{hosted.spec.name} has {len(holds)} live hold(s) ({listed}); "
            "confirm --force with --yes when not at a terminal",
            ExitCode.USAGE,
        )
    session.err.print(f"{hosted.spec.name} has {len(holds)} live hold(s):", markup=False)
    for hold in holds:
        session.err.print(f"  {hold_line(hold, now)}", markup=False)
    if not typer.confirm("Delete it anyway? Jobs among them will provision it again", err=True):
        raise ConsoleError(f"{hosted.spec.name} not deleted", ExitCode.REFUSED)


def _say_what_keeps_it(
    session: Session,
    deployment: str,
    *,
    reason: str,
    holds: Sequence[Hold],
    lease: OperationLease | None,
    now: datetime,
) -> None:
    session.out.print(f"{deployment} not deleted: {reason}", markup=False)
    for hold in holds:
        session.out.print(f"  held: {hold_line(hold, now)}", markup=False)
    if lease is not None:
        session.out.print(f"  running: {lease_line(lease, now)}", markup=False)


# --- submit ---------------------------------------------------------------------------------


@app.command()
def submit(
    ctx: typer.Context,
    *,
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE", exists=True, dir_okay=False, readable=True, help="The document."
        ),
    ],
    profile: Annotated[
        str | None, typer.Option(help="The processing profile (default: DEFAULT_PROFILE).")
    ] = None,
    question: Annotated[
        list[str] | None,
        typer.Option("--question", "-q", metavar="Q", help="A question to ask (repeatable)."),
    ] = None,
    wait: Annotated[
        bool, typer.Option(help="Wait until the job is final and print its result.")
    ] = False,
    timeout: Annotated[
        float, typer.Option(min=0, metavar="SECONDS", help="How long --wait waits.")
    ] = 3600.0,
    json_output: JsonOption = False,
) -> None:
    """Submit FILE for processing, exactly as POST /api/jobs does."""
    session = _session(ctx)
    try:
        data = file.read_bytes()
        submission = Submission(
            filename=safe_filename(file.name),
            data=data,
            profile=profile,
            questions=parse_questions(list(question or [])),
        )
        submitted = session.services().submissions.submit(submission)
    except SubmissionInvalid as invalid:
        # 400/413: what is wrong with the document or arguments; 503: storage failed.
        code = ExitCode.FAILED if invalid.status >= 500 else ExitCode.USAGE
        raise ConsoleError(invalid.message, code) from invalid
    except OSError as error:
        raise ConsoleError(f"cannot read {file}: {error.strerror}", ExitCode.USAGE) from error
    if not wait:
        if json_output:
            print_json({"job_id": submitted.job_id, "input": submitted.input_blob})
        else:
            session.out.print(
                f"job {submitted.job_id} submitted as {submitted.input_blob}", markup=False
            )
        return
    session.err.print(f"job {submitted.job_id} submitted as {submitted.input_blob}", markup=False)
    _wait_and_show(session, submitted.job_id, timeout=timeout, json_output=json_output)


def _wait_and_show(session: Session, job_id: str, *, timeout: float, json_output: bool) -> None:
    submissions = session.services().submissions
    with session.err.status(f"job {job_id}: waiting") as spinner:

        def changed(view: dict[str, Any]) -> None:
            line = job_line(view)
            spinner.update(line)
            session.err.print(line, markup=False)

        waited = wait_for_job(
            submissions,
            job_id,
            timeout=timeout,
            poll_seconds=JOB_POLL_SECONDS,
            on_change=changed,
        )
    if not waited.finished:
        waited_for = span(timedelta(seconds=timeout))
        raise ConsoleError(
            f"job {job_id} is still {waited.view['status']} after {waited_for}; it goes on "
            f"in the app (`{PROG} job {job_id}` shows it)",
            ExitCode.TIMED_OUT,
        )
    _show_job(session, waited.view, json_output=json_output)
    if waited.view["status"] != "succeeded":
        raise typer.Exit(ExitCode.FAILED)


# --- jobs -----------------------------------------------------------------------------------


@app.command()
def jobs(
    ctx: typer.Context,
    status: Annotated[
        JobStatus | None, typer.Option("--status", metavar="STATUS", help="Only jobs in it.")
    ] = None,
    since: Annotated[
        datetime | None,
        typer.Option(
            metavar="WHEN",
            parser=parse_moment,
            help="Only jobs created since: a date/time (UTC unless a zone is given) or a "
            f"duration ago ({DURATION_FORMS}).",
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many.")] = 20,
    json_output: JsonOption = False,
) -> None:
    """Job records, newest first."""
    session = _session(ctx)
    services = session.services()
    records = recent_jobs(services.jobs, status=status, since=since, limit=limit)
    if json_output:
        print_json([job_view(record) for record in records])
        return
    session.out.print(jobs_table(records, datetime.now(UTC)))


@app.command()
def job(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="ID", help="A job id (24 hex characters).")],
    json_output: JsonOption = False,
) -> None:
    """One job: its history, and its result or error record."""
    session = _session(ctx)
    try:
        view = job_details(session.services().submissions, job_id)
    except SubmissionInvalid as invalid:
        code = ExitCode.USAGE if invalid.status == 400 else ExitCode.FAILED
        raise ConsoleError(invalid.message, code) from invalid
    _show_job(session, view, json_output=json_output)


def _show_job(session: Session, view: dict[str, Any], *, json_output: bool) -> None:
    if json_output:
        print_json(view)
    else:
        session.out.print(job_detail(view))


# --- batch ----------------------------------------------------------------------------------

batch_app = typer.Typer(
    help="Batch runs: every document waiting under a prefix of the batch container.",
    rich_markup_mode=None,
    no_args_is_help=False,
)
app.add_typer(batch_app, name="batch")
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
            metavar="PREFIX", help="Prefix of the outcomes in OUTPUT_CONTAINER. Default: input's."
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

    session = _session(ctx)
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
        f"{session.settings().output_container}/{run.output_prefix}",
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
        session.out.print(batch_detail(view))
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
    session = _session(ctx)
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
        session.out.print(batch_detail(view))


# Fine-tuning: dataset checks (shared/console/data.py) and jobs (shared/console/finetune.py).
app.add_typer(data_app, name="data")
app.add_typer(finetune_app, name="finetune")
register_evaluation(app)


# --- entry point ----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: run a command, return its exit code; every error is one line."""
    try:
        result = app(args=argv, prog_name=PROG, standalone_mode=False)
    except ConsoleError as error:
        _say(error.message)
        return int(error.code)
    except typer.TyperException as error:
        # typer's usage errors (exit 2): unknown command or option, bad value, missing file.
        _say(_one_line(error))
        return error.exit_code
    except typer.Abort:
        _say("aborted")
        return int(ExitCode.FAILED)
    except AzureError as error:
        _say(f"an Azure or storage call failed: {_first_line(error)}")
        return int(ExitCode.FAILED)
    if result == ExitCode.INTERRUPTED:
        _say("interrupted")
    return int(result) if isinstance(result, int) else int(ExitCode.OK)


def _say(message: str) -> None:
    # Plain print: never wrapped, never read as markup.
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def _one_line(error: typer.TyperException) -> str:
    message = " ".join(error.format_message().split()).replace("Value error, ", "")
    context = getattr(error, "ctx", None)
    if context is not None:
        message += f" (see '{context.command_path} --help')"
    return message


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
