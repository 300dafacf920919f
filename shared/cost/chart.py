"""The savings report as a picture: hosted hours per period against 24x7, and cost per strategy.

Drawn with matplotlib's object API (a `Figure` of its own, no pyplot state), so it is safe in
a function app and in tests; the format follows the file's extension (`.png` or `.svg`).
"""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from shared.cost.report import ALL_MODELS, PeriodRow, SavingsReport

CHART_FORMATS = (".png", ".svg")
_STRATEGIES = (
    ("on_demand", "on demand (this app)"),
    ("per_document", "per document"),
    ("always_on", "always on (24x7)"),
)
_READINGS = (("per_minute", "per minute (prorated)"), ("per_started_hour", "per started hour"))
# Beyond this ratio between the largest and smallest cost, bars share a log scale so the
# small ones (usually this app's) stay visible.
_LOG_SCALE_RATIO = 30.0


class ChartError(ValueError):
    """The chart cannot be written as asked."""


def chart_format(path: Path) -> str:
    """The image format for `path`, from its extension; ChartError if it is not one we draw."""
    suffix = path.suffix.lower()
    if suffix not in CHART_FORMATS:
        raise ChartError(f"{path}: the chart is drawn as PNG or SVG; name the file *.png or *.svg")
    return suffix.removeprefix(".")


def draw_chart(report: SavingsReport, path: Path) -> Path:
    """Draw the report to `path` (PNG or SVG, by its extension) and return it."""
    image = render_chart(report, chart_format(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image)
    return path


def render_chart(report: SavingsReport, image_format: str) -> bytes:
    """The chart as PNG or SVG bytes (`image_format` "png" or "svg")."""
    if f".{image_format}" not in CHART_FORMATS:
        raise ChartError(f"the chart is drawn as png or svg, not {image_format!r}")
    figure = Figure(figsize=(11, 4.8), layout="constrained")
    hours_axes, cost_axes = figure.subplots(1, 2, width_ratios=(3, 2))
    _hosted_hours(hours_axes, report)
    _cost_per_strategy(cost_axes, report)
    length = (report.until - report.since).total_seconds() * report.time_scale / 3600
    scale = "" if report.time_scale == 1 else f", the app's clock x{report.time_scale:g}"
    figure.suptitle(
        f"Hosting from {report.since:%Y-%m-%d %H:%M:%S} to {report.until:%Y-%m-%d %H:%M:%S} UTC "
        f"({length:,.2f} h{scale})"
    )
    buffer = io.BytesIO()
    figure.savefig(buffer, format=image_format, dpi=110)
    return buffer.getvalue()


def _hosted_hours(axes: Axes, report: SavingsReport) -> None:
    labels = list(dict.fromkeys(row.period for row in report.periods))
    positions = list(range(len(labels)))
    bottoms = [0.0] * len(labels)
    for model in sorted({row.model for row in report.periods}):
        hours = _per_period(report.periods, model, labels, "on_demand")
        axes.bar(positions, hours, bottom=bottoms, label=f"{model} (hosted)", width=0.6)
        bottoms = [b + h for b, h in zip(bottoms, hours, strict=True)]
    always = [0.0] * len(labels)
    for model in sorted({row.model for row in report.periods}):
        model_hours = _per_period(report.periods, model, labels, "always_on")
        always = [a + h for a, h in zip(always, model_hours, strict=True)]
    axes.hlines(
        always,
        [p - 0.4 for p in positions],
        [p + 0.4 for p in positions],
        colors="black",
        linestyles="--",
        label="24x7 (every model up all the time)",
    )
    axes.set_xticks(positions, labels, rotation=30 if len(labels) > 7 else 0)
    # Headroom above the 24x7 line for the legend.
    axes.set_ylim(0, max([*always, *bottoms, 0.01]) * 1.3)
    axes.set_ylabel("hosted hours")
    axes.set_title(f"Hosted hours per {report.by} against 24x7")
    axes.legend(loc="upper left", fontsize="small")
    axes.grid(axis="y", alpha=0.3)


def _per_period(
    rows: tuple[PeriodRow, ...], model: str, labels: list[str], strategy: str
) -> list[float]:
    by_label = {row.period: row for row in rows if row.model == model}
    return [
        getattr(by_label[label], strategy).hosted_hours if label in by_label else 0.0
        for label in labels
    ]


def _cost_per_strategy(axes: Axes, report: SavingsReport) -> None:
    total = next((row for row in report.totals if row.model == ALL_MODELS), None)
    if total is None:
        axes.text(0.5, 0.5, "no hosted model", ha="center", va="center")
        axes.set_axis_off()
        return
    width = 0.38
    values: list[float] = []
    for offset, (reading, label) in enumerate(_READINGS):
        costs = [getattr(total, key).total_cost.get(reading) for key, _ in _STRATEGIES]
        values.extend(costs)
        positions = [i + (offset - 0.5) * width for i in range(len(_STRATEGIES))]
        bars = axes.bar(positions, costs, width=width, label=label)
        axes.bar_label(bars, labels=[f"{c:,.2f}" for c in costs], fontsize="small", padding=2)
    positive = [v for v in values if v > 0]
    if positive and max(positive) / min(positive) > _LOG_SCALE_RATIO:
        axes.set_yscale("log")
        axes.set_ylabel(f"{report.currency} (log scale), hosting + tokens")
    else:
        axes.set_ylabel(f"{report.currency}, hosting + tokens")
    axes.set_xticks(range(len(_STRATEGIES)), [label for _, label in _STRATEGIES])
    axes.set_title("Cost of the same work per strategy")
    axes.legend(loc="upper left", fontsize="small", title="billing reading")
    axes.grid(axis="y", alpha=0.3)
