"""Drawing a job's curves to an image (matplotlib, no display needed).

Two panels sharing the step axis: losses (training, validation, full validation) and token
accuracies. A curve warning's step is marked with a dotted line so the eye goes where the
warning points.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: servers, CI and the function app have none

import matplotlib.pyplot as plt

from shared.finetuning.curves import Curves, CurveWarning

_LOSSES = (
    ("train_loss", "training loss"),
    ("valid_loss", "validation loss"),
    ("full_valid_loss", "full validation loss"),
)
_ACCURACIES = (
    ("train_mean_token_accuracy", "training token accuracy"),
    ("validation_mean_token_accuracy", "validation token accuracy"),
    ("full_valid_mean_token_accuracy", "full validation token accuracy"),
)


def plot_curves(
    curves: Curves, path: Path, *, title: str, warnings: Sequence[CurveWarning] = ()
) -> Path:
    """Write the curves to `path` (PNG, SVG or PDF by its suffix) and return it."""
    figure, (losses, accuracies) = plt.subplots(2, 1, sharex=True, figsize=(9, 7))
    try:
        for axes, columns, label in (
            (losses, _LOSSES, "loss"),
            (accuracies, _ACCURACIES, "token accuracy"),
        ):
            for column, name in columns:
                series = curves.series(column)
                if len(series):
                    axes.plot(
                        series.steps,
                        series.values,
                        label=name,
                        marker="." if len(series) < 30 else None,
                    )
            for warning in warnings:
                if warning.step is not None:
                    axes.axvline(warning.step, linestyle=":", color="tab:red")
            axes.set_ylabel(label)
            axes.grid(visible=True, alpha=0.3)
            if axes.get_legend_handles_labels()[0]:
                axes.legend(loc="best")
        accuracies.set_xlabel("step")
        figure.suptitle(title)
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path)
    finally:
        plt.close(figure)
    return path
