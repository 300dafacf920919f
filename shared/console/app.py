"""The `hosting` console script: the typer app, its global options, and `main`.

The commands live in modules by flow (`model_commands`, `job_commands`, `batch_commands`, ...),
each registering itself below with one line. Each command parses its arguments (typer), loads
the settings and builds the services only once those are valid (so a typo is answered without a
connection), calls `flows`, and draws the answer with `display`: a table or lines for people,
`--json` for scripts.

`main()` runs the typer app without its standalone error handling and turns every failure into
one line on stderr and an exit code from `errors.ExitCode`: usage errors are typer's (exit 2),
the rest are `ConsoleError`s raised by the commands or Azure SDK errors (exit 1).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from azure.core.exceptions import AzureError

from shared.console import batch_commands, job_commands, model_commands, upload_commands
from shared.console.data import data_app
from shared.console.display import log_to
from shared.console.errors import ConsoleError, ExitCode
from shared.console.evaluate import register as register_evaluation
from shared.console.finetune import finetune_app
from shared.console.plan import plan_command
from shared.console.report import report as report_command
from shared.console.session import PROG, Session

app = typer.Typer(
    name=PROG,
    help="Operate the on-demand hosting app: hosted models' deployments and documents.",
    add_completion=False,
    pretty_exceptions_enable=False,
    # Usage errors are printed by main() as one line, not typer's framed panel.
    rich_markup_mode=None,
)

# Each module adds its commands; the order here is the order of `--help`.
model_commands.register(app)
job_commands.register(app)
upload_commands.register(app)
batch_commands.register(app)
app.command("report")(report_command)  # shared/console/report.py
app.command("plan")(plan_command)  # shared/console/plan.py
# Fine-tuning: dataset checks (shared/console/data.py) and jobs (shared/console/finetune.py).
app.add_typer(data_app, name="data")
app.add_typer(finetune_app, name="finetune")
register_evaluation(app)  # evaluate and promote: shared/console/evaluate.py


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
        commands = ", ".join(command_names())
        raise ConsoleError(
            f"missing command; the commands are: {commands} (see '{PROG} --help')",
            ExitCode.USAGE,
        )
    session = Session(settings_file=settings)
    log_to(session.err, verbose=verbose)
    ctx.obj = session


def command_names() -> list[str]:
    """The top-level commands and command groups, in registration order."""
    names = [command.name or (command.callback.__name__ if command.callback else "?")
             for command in app.registered_commands]  # fmt: skip
    names += [group.name or "?" for group in app.registered_groups]
    return names


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
