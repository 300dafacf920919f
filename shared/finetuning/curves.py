"""A finished job's `results.csv`: parsing it and judging its curves (pure).

Azure writes one row per training step: `step, train_loss, train_mean_token_accuracy,
valid_loss, validation_mean_token_accuracy, full_valid_loss, full_valid_mean_token_accuracy`
(validation columns are empty on steps without a validation pass; the `full_valid_*` ones
usually only at the end of each epoch).

The checks follow the fine-tuning guide's advice on reading these curves:

- training loss should fall: the mean of the last fifth of the steps is compared with the
  first fifth; a fall under `min_relative_fall` is a warning;
- training token accuracy should rise, compared the same way;
- validation loss should not diverge: past its lowest point (smoothed over a window), a rise
  of more than `divergence_ratio` by the end means the model is learning the training set
  rather than the task (overfitting); the warning names the step where it turned, which is
  where a checkpoint or fewer epochs would have stopped.

Each warning says which curve and where, so a reviewer can look at the plot there.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from typing import Any

COLUMNS = (
    "step",
    "train_loss",
    "train_mean_token_accuracy",
    "valid_loss",
    "validation_mean_token_accuracy",
    "full_valid_loss",
    "full_valid_mean_token_accuracy",
)


class ResultsFileInvalid(ValueError):
    """The file is not a results.csv this module can read."""


@dataclass(frozen=True)
class Series:
    """One column's (step, value) points, skipping steps where it is empty."""

    name: str
    steps: tuple[int, ...]
    values: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class Curves:
    columns: dict[str, Series]

    def series(self, name: str) -> Series:
        return self.columns.get(name) or Series(name, (), ())

    @property
    def last_step(self) -> int | None:
        steps = self.series("train_loss").steps
        return steps[-1] if steps else None


def _number(text: str, column: str, row: int) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ResultsFileInvalid(f"row {row}: {column} is {text!r}, not a number") from None
    return value if math.isfinite(value) else None


def parse_results_csv(content: str | bytes) -> Curves:
    """Parse results.csv; raise `ResultsFileInvalid` naming the row when it cannot."""
    text = content.decode("utf-8-sig") if isinstance(content, bytes) else content
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip() for name in reader.fieldnames or []]
    if "step" not in header or "train_loss" not in header:
        raise ResultsFileInvalid(
            f"no step and train_loss columns (the header is {', '.join(header) or 'empty'})"
        )
    points: dict[str, tuple[list[int], list[float]]] = {
        name: ([], []) for name in header if name != "step"
    }
    for row_number, row in enumerate(reader, start=2):
        cleaned = {(key or "").strip(): (value or "") for key, value in row.items()}
        step_value = _number(cleaned.get("step", ""), "step", row_number)
        if step_value is None:
            raise ResultsFileInvalid(f"row {row_number}: no step")
        for name, (steps, values) in points.items():
            value = _number(cleaned.get(name, ""), name, row_number)
            if value is not None:
                steps.append(int(step_value))
                values.append(value)
    return Curves(
        {
            name: Series(name, tuple(steps), tuple(values))
            for name, (steps, values) in points.items()
        }
    )


@dataclass(frozen=True)
class CurveWarning:
    curve: str
    step: int | None
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"curve": self.curve, "step": self.step, "message": self.message}


@dataclass(frozen=True)
class CurveThresholds:
    window_fraction: float = 0.2
    min_relative_fall: float = 0.05
    min_accuracy_rise: float = 0.01
    divergence_ratio: float = 0.10
    min_points: int = 5


@dataclass
class CurveReport:
    last_step: int | None
    final: dict[str, float] = field(default_factory=dict)
    warnings: list[CurveWarning] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.warnings

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "last_step": self.last_step,
            "final": self.final,
            "warnings": [warning.to_json() for warning in self.warnings],
        }


def _mean(values: tuple[float, ...] | list[float]) -> float:
    return sum(values) / len(values)


def _window(series: Series, thresholds: CurveThresholds) -> int:
    return max(1, round(len(series) * thresholds.window_fraction))


def _ends(series: Series, thresholds: CurveThresholds) -> tuple[float, float, int] | None:
    """Mean of the first and of the last window of the series, and the window's size."""
    if len(series) < thresholds.min_points:
        return None
    size = _window(series, thresholds)
    return _mean(series.values[:size]), _mean(series.values[-size:]), size


def _trend_warning(
    series: Series, size: int, verdict: str, first: float, last: float
) -> CurveWarning:
    return CurveWarning(
        series.name,
        series.steps[-size],
        f"{verdict}: {first:.4f} on average over steps {series.steps[0]}-"
        f"{series.steps[size - 1]}, {last:.4f} over steps {series.steps[-size]}-{series.steps[-1]}",
    )


def _check_falls(series: Series, thresholds: CurveThresholds, report: CurveReport) -> None:
    ends = _ends(series, thresholds)
    if ends is not None and ends[1] > ends[0] * (1 - thresholds.min_relative_fall):
        warning = _trend_warning(series, ends[2], "training loss did not fall", *ends[:2])
        report.warnings.append(
            CurveWarning(
                warning.curve,
                warning.step,
                warning.message + "; check the data and the learning rate multiplier",
            )
        )


def _check_rises(series: Series, thresholds: CurveThresholds, report: CurveReport) -> None:
    ends = _ends(series, thresholds)
    if ends is not None and ends[1] < ends[0] + thresholds.min_accuracy_rise:
        report.warnings.append(
            _trend_warning(series, ends[2], "token accuracy did not rise", *ends[:2])
        )


def _smoothed(values: tuple[float, ...], size: int) -> list[float]:
    return [_mean(values[max(0, i - size + 1) : i + 1]) for i in range(len(values))]


def _check_diverges(series: Series, thresholds: CurveThresholds, report: CurveReport) -> None:
    if len(series) < thresholds.min_points:
        return
    size = max(1, _window(series, thresholds) // 2)
    smooth = _smoothed(series.values, size)
    lowest = min(range(len(smooth)), key=smooth.__getitem__)
    if lowest == len(smooth) - 1 or smooth[lowest] <= 0:
        return
    rise = smooth[-1] / smooth[lowest] - 1
    if rise > thresholds.divergence_ratio:
        turn = series.steps[lowest]
        report.warnings.append(
            CurveWarning(
                series.name,
                turn,
                f"validation loss diverges: lowest {smooth[lowest]:.4f} at step {turn}, then "
                f"up {rise:.0%} to {smooth[-1]:.4f} at step {series.steps[-1]} while training "
                f"went on (overfitting); use the checkpoint nearest step {turn} or train fewer "
                "epochs",
            )
        )


def check_curves(curves: Curves, thresholds: CurveThresholds | None = None) -> CurveReport:
    """Judge the curves; a warning per curve that does not behave, naming the step."""
    thresholds = thresholds or CurveThresholds()
    report = CurveReport(last_step=curves.last_step)
    for name, series in curves.columns.items():
        if len(series):
            report.final[name] = series.values[-1]
    _check_falls(curves.series("train_loss"), thresholds, report)
    _check_rises(curves.series("train_mean_token_accuracy"), thresholds, report)
    validation = curves.series("valid_loss")
    if len(validation) < thresholds.min_points:
        validation = curves.series("full_valid_loss")
    _check_diverges(validation, thresholds, report)
    return report
