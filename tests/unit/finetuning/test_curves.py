"""Judging a job's results.csv, plotting it, and the TOML that hosts the model it made."""

from __future__ import annotations

import base64
import tomllib
from pathlib import Path

import pytest

from shared.catalog import ModelDefaults, catalog_from_data
from shared.finetuning.curves import (
    ResultsFileInvalid,
    check_curves,
    parse_results_csv,
)
from shared.finetuning.hosting import CheckpointChoice, hosting_toml, model_key
from shared.finetuning.jobs import decode_results_file
from shared.finetuning.plot import plot_curves

DATASETS = Path(__file__).parent / "datasets"


def _curves(name: str) -> str:
    return (DATASETS / name).read_text()


def test_good_curves_pass() -> None:
    report = check_curves(parse_results_csv(_curves("results_good.csv")))
    assert report.ok, report.warnings
    assert report.last_step == 100
    assert report.final["train_loss"] == pytest.approx(0.36114)
    assert report.final["full_valid_loss"] == pytest.approx(0.46114)


def test_diverging_validation_loss_is_a_warning_naming_where_it_turned() -> None:
    report = check_curves(parse_results_csv(_curves("results_diverging.csv")))
    assert [(w.curve, w.step) for w in report.warnings] == [("valid_loss", 40)]
    assert report.warnings[0].message == (
        "validation loss diverges: lowest 0.7372 at step 40, then up 98% to 1.4632 at step 100 "
        "while training went on (overfitting); use the checkpoint nearest step 40 or train "
        "fewer epochs"
    )


def test_flat_training_loss_and_accuracy_are_warnings() -> None:
    rows = ["step,train_loss,train_mean_token_accuracy"]
    rows += [f"{step},1.0{step % 3},0.6{step % 2}" for step in range(1, 41)]
    report = check_curves(parse_results_csv("\n".join(rows)))
    assert [(w.curve, w.step) for w in report.warnings] == [
        ("train_loss", 33),
        ("train_mean_token_accuracy", 33),
    ]
    assert report.warnings[0].message.startswith("training loss did not fall: ")
    assert report.warnings[1].message.startswith("token accuracy did not rise: ")


def test_a_results_file_without_steps_is_refused_with_its_header() -> None:
    with pytest.raises(ResultsFileInvalid, match="the header is loss, acc"):
        parse_results_csv("loss,acc\n1,2\n")
    with pytest.raises(ResultsFileInvalid, match="row 3: train_loss is 'abc', not a number"):
        parse_results_csv("step,train_loss\n1,0.5\n2,abc\n")


def test_a_base64_results_file_is_decoded() -> None:
    plain = _curves("results_good.csv").encode()
    assert decode_results_file(base64.b64encode(plain)) == plain
    assert decode_results_file(plain) == plain


def test_the_plot_is_an_image(tmp_path: Path) -> None:
    curves = parse_results_csv(_curves("results_diverging.csv"))
    report = check_curves(curves)
    path = plot_curves(
        curves, tmp_path / "out" / "curves.png", title="job", warnings=report.warnings
    )
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert path.stat().st_size > 10_000


def test_the_printed_toml_is_a_hosting_file_the_app_accepts() -> None:
    toml = hosting_toml(
        "support tickets!",
        "gpt-4.1-mini-2025-04-14.ft-abc-support",
        [CheckpointChoice("gpt-4.1-mini-2025-04-14.ft-abc:ckpt-step-40", 40, 0.7372)],
    )
    data = tomllib.loads(toml)
    catalog = catalog_from_data(
        data,
        ModelDefaults(idle_grace_seconds=300, max_lifetime_seconds=3600, context_tokens=128_000),
        source="printed",
        profiles_json=None,
    )
    model = catalog.models["support-tickets"]
    assert model.fine_tuned_model == "gpt-4.1-mini-2025-04-14.ft-abc-support"
    assert model.deployment == "ft-support-tickets"
    assert "# [models.support-tickets-step-40]" in toml
    # Uncommenting the checkpoint's table gives a second model the app accepts too.
    uncommented = "\n".join(
        line.removeprefix("# ") if line.startswith("# [") or "=" in line else line
        for line in toml.splitlines()
    )
    both = catalog_from_data(
        tomllib.loads(uncommented),
        ModelDefaults(idle_grace_seconds=300, max_lifetime_seconds=3600, context_tokens=128_000),
        source="printed",
        profiles_json=None,
    )
    assert both.models["support-tickets-step-40"].fine_tuned_model.endswith(":ckpt-step-40")


def test_model_keys_are_safe_names() -> None:
    assert model_key("my model/v2") == "my-model-v2"
    assert model_key("///") == "finetuned"
