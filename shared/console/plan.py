"""`hosting plan TRACE.csv`: which hosting strategy fits a traffic trace, before deploying.

Reads the trace (a bad row is refused with its line number), replays it under every strategy
with `shared.planning` (the app's own hosting decisions on a virtual clock), and shows the
comparison as a table (or `--json`), the fitted windows as TOML to paste, the recommendation
with its reason, and optionally a chart (`--chart FILE`, PNG or SVG, drawn with matplotlib).
`--model` takes the capacity, base model, hosting fee, idle grace and declared windows from
the hosted-models file; every option overrides it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from shared.console.display import print_json, stderr_console, stdout_console
from shared.console.errors import ConsoleError, ExitCode
from shared.console.parsing import DURATION_FORMS, parse_duration
from shared.cost.billing import BILLING_READINGS
from shared.cost.prices import CURRENCY, DEFAULT_HOSTING_PER_HOUR
from shared.planning.fitting import windows_toml
from shared.planning.strategies import Plan, PlanInputs, StrategyRow, plan, usable_cpus
from shared.planning.trace import TraceError, load_trace

CHART_SUFFIXES = (".png", ".svg")


def plan_command(
    ctx: typer.Context,
    *,
    trace: Annotated[
        Path, typer.Argument(metavar="TRACE.csv", help="timestamp,prompt_tokens,...,kind rows.")
    ],
    provision_seconds: Annotated[
        float,
        typer.Option(
            "--provision-seconds",
            metavar="P",
            min=1.0,
            help="Seconds from the create until the deployment serves.",
        ),
    ] = 360.0,
    capacity: Annotated[
        int | None,
        typer.Option(
            "--capacity", metavar="C", min=1, help="Capacity units (1,000 tokens/min each)."
        ),
    ] = None,
    max_wait: Annotated[
        timedelta | None,
        typer.Option(
            "--max-wait",
            metavar="W",
            parser=parse_duration,
            help=f"The p95 wait you accept ({DURATION_FORMS}). Default: P.",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            metavar="MODEL",
            help="A hosted model: its capacity, fee, grace and declared windows.",
        ),
    ] = None,
    hourly_fee: Annotated[
        float | None,
        typer.Option(
            "--hourly-fee", metavar="FEE", min=0.0, help=f"Hosting fee in {CURRENCY} per hour."
        ),
    ] = None,
    time_zone: Annotated[
        str | None,
        typer.Option(
            "--time-zone",
            metavar="ZONE",
            help="IANA zone to fit windows in (default: declared windows' or UTC).",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            metavar="N",
            min=1,
            max=64,
            help="Replay up to N strategies at once, in processes (default: one per CPU core).",
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    chart: Annotated[
        Path | None,
        typer.Option("--chart", metavar="FILE", help="Also draw the comparison (.png or .svg)."),
    ] = None,
) -> None:
    """Replay a trace under every hosting strategy and recommend one."""
    if chart is not None and chart.suffix.lower() not in CHART_SUFFIXES:
        raise ConsoleError(
            f"--chart {chart}: the file must end in {' or '.join(CHART_SUFFIXES)}", ExitCode.USAGE
        )
    inputs = _inputs(
        ctx,
        model=model,
        provision_seconds=provision_seconds,
        capacity=capacity,
        max_wait=max_wait,
        hourly_fee=hourly_fee,
        time_zone=time_zone,
        workers=workers if workers is not None else usable_cpus(),
    )
    try:
        loaded = load_trace(trace)
    except TraceError as error:
        raise ConsoleError(f"bad trace: {error}", ExitCode.USAGE) from None
    with _quiet_replays():
        result = plan(loaded, inputs)
    if chart is not None:
        draw_plan_chart(result, chart)
    if json_output:
        print_json(plan_json(result, chart))
        return
    show_plan(result, chart)


def _inputs(
    ctx: typer.Context,
    *,
    model: str | None,
    provision_seconds: float,
    capacity: int | None,
    max_wait: timedelta | None,
    hourly_fee: float | None,
    time_zone: str | None,
    workers: int,
) -> PlanInputs:
    fields: dict[str, Any] = {
        "workers": workers,
        "provision_seconds": provision_seconds,
        "max_wait_seconds": max_wait.total_seconds() if max_wait is not None else None,
        "hourly_fee": DEFAULT_HOSTING_PER_HOUR["Standard"],
    }
    if model is not None:
        hosted = _hosted_model(ctx, model)
        fields.update(
            capacity=hosted.capacity,
            base_model=hosted.fine_tuned_model,
            hourly_fee=hosted.prices.hosting_per_hour.get(hosted.deployment_type, 0.0),
            idle_grace_seconds=hosted.idle_grace_seconds,
            declared_windows=hosted.windows,
            model=hosted.name,
        )
        if hosted.windows:
            fields["time_zone"] = hosted.windows[0].time_zone
    if capacity is not None:
        fields["capacity"] = capacity
    if hourly_fee is not None:
        fields["hourly_fee"] = hourly_fee
    if time_zone is not None:
        fields["time_zone"] = _checked_zone(time_zone)
    return PlanInputs(**fields)


def _hosted_model(ctx: typer.Context, name: str) -> Any:
    # The app's Session (shared/console/app.py), which loads the settings on first use.
    settings = getattr(ctx.obj, "settings", None)
    if settings is None:
        raise ConsoleError("--model needs the app's settings", ExitCode.USAGE)
    models = settings().catalog.models
    if name not in models:
        raise ConsoleError(
            f"unknown hosted model {name!r}; the hosted models are: {', '.join(sorted(models))}",
            ExitCode.USAGE,
        )
    return models[name]


def _checked_zone(name: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # noqa: PLC0415

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConsoleError(
            f"--time-zone {name!r} is not an IANA time zone (e.g. 'Europe/Berlin')",
            ExitCode.USAGE,
        ) from None
    return name


@contextlib.contextmanager
def _quiet_replays() -> Iterator[None]:
    # A replay makes the provisioner log every 409 and wait it meets, thousands of lines that
    # belong to virtual deployments: the table says what they add up to.
    engine = logging.getLogger("shared")
    level = engine.level
    engine.setLevel(logging.ERROR)
    try:
        yield
    finally:
        engine.setLevel(level)


# --- JSON ---------------------------------------------------------------------------------


def plan_json(result: Plan, chart: Path | None = None) -> dict[str, Any]:
    inputs = result.inputs
    bound_hours = result.bound.billed.billed_hours_per_minute
    chosen = result.recommendation.row
    start, until = result.horizon
    return {
        "trace": {
            "source": result.trace.source,
            "documents": len(result.trace.documents),
            "first": _iso(result.trace.start),
            "last": _iso(result.trace.end),
            "horizon_start": _iso(start),
            "horizon_end": _iso(until),
        },
        "assumptions": {
            "provision_seconds": inputs.provision_seconds,
            "capacity": inputs.capacity,
            "tokens_per_minute": inputs.capacity * 1000,
            "max_wait_seconds": inputs.max_wait,
            "hourly_fee": inputs.hourly_fee,
            "currency": CURRENCY,
            "base_model": inputs.base_model,
            "billing_readings": list(BILLING_READINGS),
        },
        "rows": [row.to_json(bound_hours) for row in result.rows],
        "pareto": [row.strategy for row in result.rows if row.on_front],
        "recommended": {
            **chosen.to_json(bound_hours),
            "reason": result.recommendation.reason,
        },
        "fitted_windows_toml": windows_toml(result.fitted_windows, inputs.model),
        "chart": str(chart) if chart is not None else None,
    }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


# --- table --------------------------------------------------------------------------------


def show_plan(result: Plan, chart: Path | None) -> None:
    out = stdout_console()
    inputs = result.inputs
    out.print(
        f"{len(result.trace.documents)} documents from {result.trace.source}; "
        f"P = {inputs.provision_seconds:g} s to serve, R = {inputs.capacity * 1000:,} tokens/min "
        f"(capacity {inputs.capacity}), fee {inputs.hourly_fee:.2f} {CURRENCY}/h, "
        f"{(result.horizon[1] - result.horizon[0]) / 86400:g} days",
        markup=False,
    )
    out.print(plan_table(result))
    out.print(
        f"Recommended for a p95 wait within {inputs.max_wait:g} s: "
        f"{result.recommendation.row.label}.\n{result.recommendation.reason}",
        markup=False,
    )
    if result.fitted_windows:
        out.print("\nFitted windows, to paste into the hosted-models file:", markup=False)
        out.print(windows_toml(result.fitted_windows, inputs.model), markup=False)
    else:
        out.print("\nNo weekly pattern busy enough to fit windows to.", markup=False)
    if chart is not None:
        stderr_console().print(f"chart written to {chart}", markup=False)


def plan_table(result: Plan) -> Table:
    bound_hours = result.bound.billed.billed_hours_per_minute
    chosen = result.recommendation.row.strategy
    table = Table(title="Hosting strategies on this trace (* Pareto front, > recommended)")
    for header in ("", "Strategy", "Billed h", "Started h", "Cost", "Cost (started h)"):
        table.add_column(header, justify="left" if header in ("", "Strategy") else "right")
    for header in ("x bound", "Cycles", "Served", "p50 wait", "p95 wait", "Max wait", "Note"):
        table.add_column(header, justify="left" if header == "Note" else "right")
    for row in result.rows:
        mark = (">" if row.strategy == chosen else " ") + ("*" if row.on_front else " ")
        table.add_row(
            mark,
            row.label,
            f"{row.billed.billed_hours_per_minute:.2f}",
            f"{row.billed.billed_hours_per_started_hour:.0f}",
            f"{row.billed.cost_per_minute:.2f}",
            f"{row.billed.cost_per_started_hour:.2f}",
            _times(row.billed.billed_hours_per_minute, bound_hours),
            str(row.billed.deploy_cycles),
            f"{row.served}/{row.documents}",
            _seconds(row.p50_wait),
            _seconds(row.p95_wait),
            _seconds(row.max_wait),
            row.note,
        )
    return table


def _times(hours: float, bound_hours: float) -> str:
    return f"{hours / bound_hours:.2f}" if bound_hours > 0 else "-"


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value < 600 else f"{value / 60:.0f} min"


# --- chart --------------------------------------------------------------------------------


def draw_plan_chart(result: Plan, path: Path) -> None:
    """Cost against p95 wait (the Pareto front joined), and billed hours per strategy."""
    import matplotlib  # noqa: PLC0415 - a second to import; only `--chart` pays it

    matplotlib.use("Agg")
    from matplotlib import pyplot  # noqa: PLC0415

    rows = result.rows
    chosen = result.recommendation.row
    figure, (scatter, bars) = pyplot.subplots(1, 2, figsize=(13, 5.5))
    for row in rows:
        colour = _colour(row, chosen)
        scatter.scatter(row.p95_wait / 60, row.billed.cost_per_minute, color=colour, s=40)
        scatter.annotate(
            row.label,
            (row.p95_wait / 60, row.billed.cost_per_minute),
            fontsize=7,
            xytext=(4, 3),
            textcoords="offset points",
        )
    front = sorted((r for r in rows if r.on_front), key=lambda r: r.p95_wait)
    scatter.plot(
        [r.p95_wait / 60 for r in front],
        [r.billed.cost_per_minute for r in front],
        color="tab:green",
        linewidth=1,
        label="Pareto front",
    )
    scatter.axvline(result.inputs.max_wait / 60, color="grey", linestyle=":", label="your max wait")
    scatter.set_yscale("log")
    scatter.set_xlabel("p95 wait before a document starts (minutes)")
    scatter.set_ylabel(f"hosting cost, prorated ({CURRENCY}, log scale)")
    scatter.set_title("Cost against wait")
    scatter.legend(fontsize=8, loc="upper right")
    labels = [row.label for row in rows]
    prorated = [row.billed.billed_hours_per_minute for row in rows]
    started = [row.billed.billed_hours_per_started_hour for row in rows]
    positions = range(len(rows))
    bars.barh([p + 0.2 for p in positions], prorated, height=0.4, label="per minute (prorated)")
    bars.barh([p - 0.2 for p in positions], started, height=0.4, label="per started hour")
    bars.set_yticks(list(positions), labels, fontsize=8)
    bars.invert_yaxis()
    bars.set_xscale("log")
    bars.set_xlabel("billed hours (log scale)")
    bars.set_title("Billed hours under both billing readings")
    bars.legend(fontsize=8, loc="lower right")
    figure.suptitle(f"{Path(result.trace.source).name}: recommended {chosen.label}")
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)


def _colour(row: StrategyRow, chosen: StrategyRow) -> str:
    if row is chosen:
        return "tab:red"
    if row.kind == "bound":
        return "black"
    return "tab:green" if row.on_front else "tab:blue"
