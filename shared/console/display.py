"""How the operator's command shows things: rich tables and progress for people, JSON for
scripts, and log lines kept above any live display.

Data goes to stdout, progress and messages to stderr, so `hosting ... --json | jq` sees only
JSON. The benchmarks (`bench/`) use `log_to` and `step_progress` too, so their progress and
log lines look the same and never share a terminal line.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from shared.batch.models import BatchRun
from shared.console.schedule import ModelSchedule
from shared.console.status import ModelStatus
from shared.documents.jobs import JobRecord
from shared.hosting.holds import Hold, OperationLease

# Loggers that narrate every HTTP request at INFO; their warnings still show.
NOISY_LOGGERS = ("azure", "urllib3", "httpx", "httpx2", "openai")


# Tables written to a file or a pipe are this wide unless COLUMNS says otherwise (rich's own
# default there, 80, folds every cell of a status table).
PIPED_WIDTH = 160


def stdout_console() -> Console:
    return _console(stderr=False)


def stderr_console() -> Console:
    return _console(stderr=True)


def _console(*, stderr: bool) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() or "COLUMNS" in os.environ else PIPED_WIDTH
    # soft_wrap: a line of text is never broken by rich (a terminal wraps it; a log keeps it
    # whole); tables are still laid out to the width.
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


def log_to(console: Console, *, verbose: bool = False) -> None:
    """Send log records through `console`, so they print above a live progress display."""
    handler = RichHandler(
        console=console,
        show_path=False,
        show_time=verbose,
        markup=False,
        rich_tracebacks=False,
        log_time_format=log_time,
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def step_progress(console: Console, *, transient: bool = False) -> Progress:
    """A progress display counting steps (documents, provisioning stages)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
    )


def print_json(data: Any) -> None:
    """JSON for scripts: plain text on stdout, never wrapped or coloured."""
    print(json.dumps(data, indent=2, default=str), flush=True)


# --- times ----------------------------------------------------------------------------------


def span(delta: timedelta) -> str:
    """A compact duration: 45s, 12m05s, 2h03m, 3d04h."""
    seconds = int(abs(delta).total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def moment(at: datetime, now: datetime, *, zone: tzinfo | None = None) -> str:
    """One time format everywhere: to the second, local time beside UTC, and how far from now.

    `14:15:18 CET / 13:15:18Z (3s ago)`; the date is added when it is not today, and UTC is
    shown once when the local zone is UTC. `zone` is the local zone (default: this machine's).
    """
    utc = whole_second(at).astimezone(UTC)
    local = utc.astimezone(zone) if zone is not None else utc.astimezone()
    today = utc.date() == now.astimezone(UTC).date()
    pattern = "%H:%M:%S" if today else "%Y-%m-%d %H:%M:%S"
    shown = f"{utc.strftime(pattern)}Z"
    if local.utcoffset() != utc.utcoffset():
        local_today = local.date() == now.astimezone(local.tzinfo).date()
        local_pattern = "%H:%M:%S" if local_today else "%Y-%m-%d %H:%M:%S"
        shown = f"{local.strftime(local_pattern)} {local.tzname()} / {shown}"
    distance = span(at - now)
    return f"{shown} (in {distance})" if at > now else f"{shown} ({distance} ago)"


def instant(at: datetime, *, zone: tzinfo | None = None) -> str:
    """A date and time in the same format, without the distance: `2027-01-05 07:05:00Z`."""
    utc = whole_second(at).astimezone(UTC)
    local = utc.astimezone(zone) if zone is not None else utc.astimezone()
    shown = f"{utc:%Y-%m-%d %H:%M:%S}Z"
    if local.utcoffset() != utc.utcoffset():
        shown = f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()} / {shown}"
    return shown


def whole_second(at: datetime) -> datetime:
    """`at` rounded to the nearest second (what people read; `--json` keeps the exact value)."""
    return (at + timedelta(microseconds=500_000)).replace(microsecond=0)


def moment_text(text: str, now: datetime) -> str:
    """An ISO 8601 time from a JSON view in the one format; other text is shown as it is."""
    try:
        at = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return text
    return moment(at if at.tzinfo else at.replace(tzinfo=UTC), now)


def number(value: object) -> str:
    """A counter for people: whole numbers as they are, seconds and rates to one decimal."""
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def log_time(at: datetime) -> Text:
    """The time column of `-v` log lines: the same clock as every table, local with its zone."""
    local = whole_second(at).astimezone()
    return Text(local.strftime("%Y-%m-%d %H:%M:%S %Z"))


# --- status ---------------------------------------------------------------------------------


def status_table(rows: Sequence[ModelStatus], now: datetime) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for header in ("model", "deployment"):
        table.add_column(header, no_wrap=True)
    for header in ("Azure", "ledger", "up since", "why up", "live holds"):
        table.add_column(header, overflow="fold")
    notes = [_notes(row) for row in rows]
    if any(notes):  # waiting notes and errors are rare: no empty column for them
        table.add_column("notes", overflow="fold", max_width=60)
    for row, note in zip(rows, notes, strict=True):
        cells = [
            row.model,
            row.deployment,
            row.azure_state or "absent",
            _ledger_cell(row, now),
            moment(row.ready_since, now) if row.ready_since else "-",
            _why_up(row, now),
            "\n".join(hold_line(hold, now) for hold in row.holds) or "-",
        ]
        table.add_row(*cells, *([note or "-"] if any(notes) else []))
    return table


def schedule_table(rows: Sequence[ModelSchedule], now: datetime) -> Table:
    """Each model's next windows and batch runs, local time beside UTC."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for header in ("model", "kind", "name", "local", "UTC", "provision from / run id"):
        table.add_column(header, overflow="fold")
    for row in rows:
        for item in row.upcoming:
            occurrence = item.occurrence
            table.add_row(
                row.model,
                item.kind,
                item.name,
                f"{item.local(occurrence.opens)}\n-> {item.local(occurrence.closes)}",
                f"{moment(occurrence.opens, now)}\n-> {moment(occurrence.closes, now)}",
                moment(item.provision_from, now) if item.provision_from else item.run_id or "-",
            )
    return table


def reconciler_lines(rows: Sequence[ModelSchedule], now: datetime) -> list[str]:
    """What a reconcile tick at `now` would do, a line per model."""
    at = instant(now)
    return [f"{row.model} at {at}: {'; '.join(row.actions())}" for row in rows]


def hold_line(hold: Hold, now: datetime) -> str:
    return f"{hold.kind} by {hold.owner}, until {moment(hold.expires, now)}"


def lease_line(lease: OperationLease, now: datetime) -> str:
    return f"{lease.operation} by {lease.owner}, lease until {moment(lease.expires, now)}"


def _ledger_cell(row: ModelStatus, now: datetime) -> str:
    if row.lease is None:
        return row.ledger_state.value
    return f"{row.ledger_state.value}\n({lease_line(row.lease, now)})"


def _why_up(row: ModelStatus, now: datetime) -> str:
    if row.why_up is None:
        return "-"
    if row.why_up == "held":
        counts = Counter(hold.kind for hold in row.holds)
        kinds = (kind if n == 1 else f"{n} {kind}" for kind, n in sorted(counts.items()))
        return f"held by {', '.join(kinds)}"
    if row.why_up == "operation":
        return f"a {row.lease.operation if row.lease else 'management'} is running"
    if row.why_up == "idle_grace" and row.idle_until is not None:
        return f"idle grace until {moment(row.idle_until, now)}"
    return "nothing: the next teardown check deletes it"


def _notes(row: ModelStatus) -> str:
    notes = []
    if row.waiting_for:
        notes.append(f"waiting: {row.waiting_for}")
    if row.last_error:
        notes.append(f"last error: {row.last_error}")
    return "\n".join(notes)


# --- up -------------------------------------------------------------------------------------

UP_STAGES = ("Accepted", "Creating", "Succeeded", "serving")


class UpProgress:
    """Draws a deployment's way to serving: one line per stage seen, and a step bar."""

    def __init__(self, console: Console, model: str, deployment: str) -> None:
        self._progress = step_progress(console, transient=True)
        self._console = console
        self._deployment = deployment
        self._task = self._progress.add_task(f"{model} ({deployment})", total=len(UP_STAGES))
        self._started = time.monotonic()

    def __enter__(self) -> UpProgress:
        # The bar only where it can be redrawn; a log or a pipe gets the stage lines alone.
        if self._console.is_terminal:
            self._progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._progress.stop()

    def azure_state(self, state: str | None) -> None:
        shown = state or "absent"
        self._line(f"Azure: {shown}")
        if state in UP_STAGES:
            # A stage not seen (polls are seconds apart) was passed all the same.
            self._progress.update(self._task, completed=UP_STAGES.index(state) + 1)

    def waiting(self, note: str) -> None:
        self._line(f"waiting: {note}")

    def serving(self) -> None:
        self._progress.update(self._task, completed=len(UP_STAGES))
        self._line("serving (the data plane answers)")

    def _line(self, text: str) -> None:
        elapsed = time.monotonic() - self._started
        self._progress.console.print(f"[{elapsed:6.1f} s] {self._deployment}: {text}", markup=False)


class DownProgress:
    """Draws a delete being followed: a spinner with the time taken, a line per Azure state."""

    def __init__(self, console: Console, deployment: str) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._console = console
        self._deployment = deployment
        self._task = self._progress.add_task(f"{deployment}: deleting", total=None)
        self._started = time.monotonic()

    def __enter__(self) -> DownProgress:
        if self._console.is_terminal:
            self._progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._progress.live.is_started:  # stopping one never started prints a blank line
            self._progress.stop()

    def azure_state(self, state: str | None) -> None:
        shown = state or "absent"
        self._progress.update(self._task, description=f"{self._deployment}: Azure: {shown}")
        elapsed = time.monotonic() - self._started
        self._progress.console.print(
            f"[{elapsed:6.1f} s] {self._deployment}: Azure: {shown}", markup=False
        )


# --- jobs -----------------------------------------------------------------------------------


def jobs_table(records: Iterable[JobRecord], now: datetime) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    # An id is copied whole: never folded, however narrow the terminal.
    table.add_column("job", no_wrap=True, min_width=24)
    for header in ("status", "created", "model", "profile", "input"):
        table.add_column(header, overflow="fold")
    table.add_column("note", overflow="fold", max_width=48)
    for record in records:
        note = record.waiting_reason or (record.error.reason if record.error else "")
        table.add_row(
            record.id,
            record.status,
            moment(record.created, now),
            record.model or "-",
            record.profile or "-",
            f"{record.input_container}/{record.input_blob}",
            note or "-",
        )
    return table


def job_detail(view: dict[str, Any], now: datetime) -> Group:
    """One job for people: its fields, its history, then its result or error record."""
    fields = Table.grid(padding=(0, 2))
    for name in ("job_id", "status", "input", "profile", "model", "attempts", "waiting_reason"):
        if view.get(name) not in (None, ""):
            fields.add_row(Text(name.replace("_", " "), style="bold"), str(view[name]))
    if view.get("questions"):
        fields.add_row(Text("questions", style="bold"), "\n".join(view["questions"]))
    history = Table(
        box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, title="history", title_justify="left"
    )
    for header in ("status", "at", "note"):
        history.add_column(header, overflow="fold")
    for change in view.get("history", []):
        history.add_row(change["status"], moment_text(change["at"], now), change.get("note") or "")
    parts: list[Any] = [fields, history]
    if view.get("result") is not None:
        parts.append(Text(f"result ({view['result_blob']}):", style="bold"))
        parts.append(_json_text(view["result"]))
    if view.get("error"):
        parts += [Text("error:", style="bold"), _json_text(view["error"])]
    if view.get("error_record") is not None:
        parts += [Text(f"error record ({view['error_blob']}):", style="bold")]
        parts.append(_json_text(view["error_record"]))
    return Group(*parts)


def job_line(view: dict[str, Any]) -> str:
    line = f"job {view['job_id']}: {view['status']}"
    if view.get("waiting_reason"):
        line += f" ({view['waiting_reason']})"
    if view.get("attempts"):
        line += f", attempt {view['attempts']}"
    return line


def _json_text(data: Any) -> Text:
    return Text(json.dumps(data, indent=2, ensure_ascii=False))


# --- batches --------------------------------------------------------------------------------


def batch_line(run: BatchRun) -> str:
    """A run's progress in one line: what is done, what it waits for."""
    counters = run.counters
    line = (
        f"batch {run.run_id} on {run.model}: {run.status}; {counters.succeeded} succeeded, "
        f"{counters.failed} failed, {counters.skipped} skipped of {counters.listed} listed; "
        f"{counters.requests} requests, {counters.throttled} answered 429"
    )
    if run.waiting_reason:
        line += f" (waiting: {run.waiting_reason})"
    if run.left_count:
        line += f"; {run.left_count} left at the deadline ({run.left_blob})"
    return line


def batches_table(runs: Iterable[BatchRun], now: datetime) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("run", no_wrap=True)
    for header in ("model", "status", "input", "done", "failed", "skipped", "left"):
        table.add_column(header, overflow="fold")
    table.add_column("started", overflow="fold")
    table.add_column("note", overflow="fold", max_width=48)
    for run in runs:
        table.add_row(
            run.run_id,
            run.model,
            run.status,
            f"{run.input_container}/{run.input_prefix}",
            str(run.counters.succeeded),
            str(run.counters.failed),
            str(run.counters.skipped),
            str(run.left_count) if run.left_count is not None else "-",
            moment(run.created, now),
            run.waiting_reason or run.error or "-",
        )
    return table


BATCH_TIMES = frozenset({"deadline", "created", "finished"})


def batch_detail(view: dict[str, Any], now: datetime) -> Group:
    """One run for people: its fields, then its summary once it ended."""
    fields = Table.grid(padding=(0, 2))
    for name in (
        "run_id",
        "model",
        "status",
        "input_prefix",
        "output_prefix",
        "deadline",
        "created",
        "finished",
        "waiting_reason",
        "error",
        "left_count",
        "left_blob",
        "summary_blob",
    ):
        if view.get(name) not in (None, ""):
            value = view[name]
            shown = moment_text(value, now) if name in BATCH_TIMES else str(value)
            fields.add_row(Text(name.replace("_", " "), style="bold"), shown)
    counts = ", ".join(f"{k} {number(v)}" for k, v in view.get("counters", {}).items())
    fields.add_row(Text("counters", style="bold"), counts)
    parts: list[Any] = [fields]
    if view.get("summary") is not None:
        parts += [Text("summary:", style="bold"), _json_text(view["summary"])]
    return Group(*parts)
