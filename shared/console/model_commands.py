"""The commands on hosted models' deployments: `status`, `schedule`, `up` and `down`."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from shared.console.display import (
    DownProgress,
    UpProgress,
    hold_line,
    lease_line,
    moment,
    print_json,
    reconciler_lines,
    schedule_table,
    status_table,
)
from shared.console.errors import ConsoleError, ExitCode
from shared.console.evaluate import promotion_lines, promotion_rows
from shared.console.flows import bring_up, current_operator, release_operator_hold, take_down
from shared.console.parsing import DURATION_FORMS, parse_duration, parse_instant
from shared.console.schedule import model_schedule
from shared.console.session import PROG, JsonOption, ModelArgument, Session, session_of
from shared.console.status import model_status
from shared.hosting.deployments import DeploymentSnapshot, ProvisioningError
from shared.hosting.holds import Hold, OperationLease

if TYPE_CHECKING:
    from shared.hosting.hosted import HostedDeployment

# `up` asks Azure for the state at the app's management poll interval, at most this far apart.
MAX_DISPLAY_POLL_SECONDS = 5.0


def register(app: typer.Typer) -> None:
    """Add this module's commands to the console."""
    for command in (status, schedule, up, down):
        app.command()(command)


# --- status ---------------------------------------------------------------------------------


def status(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Every hosted model: Azure's state, the ledger's, live holds and why it is up."""
    session = session_of(ctx)
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
    session = session_of(ctx)
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
    session = session_of(ctx)
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
    session = session_of(ctx)
    hosted = session.hosted(model)
    services = session.services()
    operator = current_operator()
    released = release_operator_hold(hosted)
    if force:
        _confirm_force(session, hosted, released.live_holds(hosted.ledger.now()), yes=yes)
    display = DownProgress(session.err, hosted.spec.name)
    with display:
        result = take_down(
            hosted,
            services.deployments,
            operator=operator,
            force=force,
            poll_seconds=min(services.settings.management_poll_seconds, MAX_DISPLAY_POLL_SECONDS),
            on_state=display.azure_state,
        )
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
                "was_being_deleted": result.was_being_deleted,
                "kept_because": outcome.kept_because,
                "reason": outcome.reason,
                "holds": [hold.model_dump(mode="json") for hold in holds],
                "lease": lease.model_dump(mode="json", exclude={"continuation_token"})
                if lease
                else None,
            }
        )
    elif result.was_being_deleted and (outcome.deleted or outcome.kept_because == "absent"):
        session.out.print(
            f"{hosted.spec.name} was already being deleted (Azure said Deleting); it is gone now",
            markup=False,
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
