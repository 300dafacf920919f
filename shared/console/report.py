"""`hosting report`: what hosting cost and what it saved, as a table, JSON or a chart.

The figures come from `shared.cost.reporting` (the same as `GET /api/report`); this module
parses the options and draws the answer: per period and model the deploy cycles, hosted hours,
cost under both billing readings, documents and tokens, beside always-on and per-document
hosting of the same work, then the totals, what the comparison assumed, and any gap the
hosting log may have.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from shared.console.display import print_json
from shared.console.errors import ConsoleError, ExitCode
from shared.console.parsing import DURATION_FORMS, parse_moment
from shared.cost.report import ALL_MODELS, Billed, PeriodRow, Saving, SavingsReport

if TYPE_CHECKING:
    from shared.console.session import Session

WHEN_HELP = (
    "An ISO 8601 date or date-time (UTC unless it names a zone) or a duration ago "
    f"({DURATION_FORMS})."
)


def report(
    ctx: typer.Context,
    *,
    since: Annotated[
        str | None,
        typer.Option(metavar="WHEN", help=f"Start of the report. {WHEN_HELP} Default: 7 days."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(metavar="WHEN", help=f"End of the report. {WHEN_HELP} Default: now."),
    ] = None,
    model: Annotated[
        str | None, typer.Option(metavar="MODEL", help="One hosted model. Default: every one.")
    ] = None,
    by: Annotated[
        Literal["day", "week"], typer.Option(help="Periods: UTC days or ISO weeks.")
    ] = "day",
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    chart: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            dir_okay=False,
            help="Also draw the report to FILE (.png or .svg): hosted hours per period "
            "against 24x7, and cost per strategy.",
        ),
    ] = None,
) -> None:
    """What hosting cost and saved, per period and model, against 24x7 and per-document."""
    # Imported here: the SDKs and matplotlib take seconds, which a typo should not wait for.
    from shared.cost.chart import ChartError, chart_format, draw_chart  # noqa: PLC0415
    from shared.cost.reporting import ReportInvalid, ReportRequest  # noqa: PLC0415

    session: Session = ctx.obj
    if chart is not None:
        try:
            chart_format(chart)
        except ChartError as error:
            raise ConsoleError(str(error), ExitCode.USAGE) from error
    request = ReportRequest(
        since=parse_moment(since) if since is not None else None,
        until=parse_moment(until) if until is not None else None,
        model=model,
        by=by,
    )
    if model is not None and model not in session.settings().catalog.models:
        known = ", ".join(sorted(session.settings().catalog.models))
        raise ConsoleError(
            f"unknown hosted model {model!r}; the hosted models are: {known}", ExitCode.USAGE
        )
    try:
        built = session.services().reports.report(request)
    except ReportInvalid as invalid:
        raise ConsoleError(str(invalid), ExitCode.USAGE) from invalid
    if chart is not None:
        draw_chart(built, chart)
    if json_output:
        print_json(built.model_dump(mode="json"))
        return
    session.out.print(report_view(built))
    if chart is not None:
        session.out.print(f"chart: {chart}")


def report_view(report: SavingsReport) -> Group:
    """The report for people: periods, totals per strategy, the assumptions, the gaps."""
    parts: list[Table | Text] = [
        Text(
            f"Hosting from {_when(report.since)} to {_when(report.until)}, by {report.by}, in "
            f"{report.currency}; every cost is shown per minute (prorated) / per started hour"
            + (
                f"; times x{report.time_scale:g} (the local simulator's time scale)"
                if report.time_scale != 1
                else ""
            )
        ),
        periods_table(report.periods),
        Text("Totals: the same work under each strategy (hosting + tokens)"),
        strategies_table(report.totals),
        Text("\n".join(_assumptions(report))),
    ]
    if report.gaps:
        parts.append(
            Text(
                "The hosting log may have a gap (figures may be low):\n"
                + "\n".join(f"  - {gap}" for gap in report.gaps),
                style="yellow",
            )
        )
    if report.notes:
        parts.append(Text("\n".join(f"note: {note}" for note in report.notes)))
    return Group(*parts)


def periods_table(rows: tuple[PeriodRow, ...]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for header in (
        "period",
        "model",
        "cycles",
        "hosted h",
        "hosting",
        "docs",
        "tokens in/out",
        "tokens $",
        "24x7 hosting",
        "per-doc hosting",
        "saved vs 24x7",
    ):
        table.add_column(header, justify="left" if header in ("period", "model") else "right")
    for row in rows:
        table.add_row(
            row.period,
            row.model,
            str(row.on_demand.deploy_cycles),
            f"{row.on_demand.hosted_hours:.2f}",
            _both(row.on_demand.hosting_cost),
            str(row.documents)
            + (f" ({row.failed_documents} failed)" if row.failed_documents else ""),
            f"{row.input_tokens:,}/{row.output_tokens:,}",
            f"{row.token_cost:.2f}",
            _both(row.always_on.hosting_cost),
            _both(row.per_document.hosting_cost),
            _saving(row.saving_vs_always_on),
        )
    return table


def strategies_table(totals: tuple[PeriodRow, ...]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for header in (
        "model",
        "strategy",
        "cycles",
        "hosted h",
        "billed h",
        "cost",
        "this app saves",
    ):
        table.add_column(header, justify="left" if header in ("model", "strategy") else "right")
    for row in totals:
        strategies = (
            ("on demand (this app)", row.on_demand, None),
            ("per document", row.per_document, row.saving_vs_per_document),
            ("always on (24x7)", row.always_on, row.saving_vs_always_on),
        )
        for index, (name, cost, saving) in enumerate(strategies):
            table.add_row(
                row.model if index == 0 else "",
                name,
                str(cost.deploy_cycles),
                f"{cost.hosted_hours:.2f}",
                f"{cost.billed_hours.per_minute:.2f} / {cost.billed_hours.per_started_hour:.0f}",
                _both(cost.total_cost),
                _saving(saving) if saving is not None else "-",
                end_section=index == len(strategies) - 1,
            )
    return table


def _assumptions(report: SavingsReport) -> list[str]:
    lines = []
    for basis in report.models:
        lines.append(
            f"{basis.model}: {basis.deployment_type} at {basis.hourly_fee:.2f}/h, tokens "
            f"{basis.input_per_million_tokens:.2f} in / {basis.output_per_million_tokens:.2f} "
            f"out per million; per document: {basis.provision_seconds:.0f} s provisioning "
            f"({basis.provision_seconds_basis}), {basis.delete_seconds:.0f} s deletion "
            f"({basis.delete_seconds_basis})"
        )
    everything = next((row for row in report.totals if row.model == ALL_MODELS), None)
    if everything is not None and everything.unconfirmed_hours > 0:
        lines.append(
            f"of the {everything.on_demand.hosted_hours * 60:.1f} hosted minutes, up to "
            f"{everything.unconfirmed_hours * 60:.1f} fall between a deployment last seen and "
            "its deletion confirmed (the reaper's next pass): the bill may be that much lower"
        )
    lines.append(
        f"prices: hosting fee from {report.price_sources['hosting_fee']}; tokens from "
        f"{report.price_sources['tokens']} (set yours under [models.<name>.prices])"
    )
    return lines


def _both(value: Billed) -> str:
    return f"{value.per_minute:,.2f} / {value.per_started_hour:,.2f}"


def _saving(saving: Saving) -> str:
    def percent(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}%"

    return (
        f"{_both(saving.amount)}\n"
        f"({percent(saving.percent_per_minute)} / {percent(saving.percent_per_started_hour)})"
    )


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")
