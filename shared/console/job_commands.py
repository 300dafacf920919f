"""The commands on documents: `submit` (as POST /api/jobs does), `jobs` and `job`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from shared.console.display import job_detail, job_line, jobs_table, print_json, span
from shared.console.errors import ConsoleError, ExitCode
from shared.console.flows import job_details, recent_jobs, wait_for_job
from shared.console.parsing import DURATION_FORMS, parse_moment
from shared.console.session import PROG, JsonOption, Session, session_of
from shared.documents.jobs import JobStatus
from shared.documents.submissions import (
    Submission,
    SubmissionInvalid,
    job_view,
    parse_questions,
    safe_filename,
)

# How often `submit --wait` reads the job record: one small blob read.
JOB_POLL_SECONDS = 0.5


def register(app: typer.Typer) -> None:
    """Add this module's commands to the console."""
    for command in (submit, jobs, job):
        app.command()(command)


# --- submit ---------------------------------------------------------------------------------


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
    session = session_of(ctx)
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
    session = session_of(ctx)
    services = session.services()
    records = recent_jobs(services.jobs, status=status, since=since, limit=limit)
    if json_output:
        print_json([job_view(record) for record in records])
        return
    session.out.print(jobs_table(records, datetime.now(UTC)))


def job(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="ID", help="A job id (24 hex characters).")],
    json_output: JsonOption = False,
) -> None:
    """One job: its history, and its result or error record."""
    session = session_of(ctx)
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
        session.out.print(job_detail(view, datetime.now(UTC)))
