"""`hosting plan`: the whole command on small traces, its JSON, its chart and its refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.console.app import main

HEADER = "timestamp,prompt_tokens,completion_tokens,kind\n"


def write_trace(path: Path, rows: list[str]) -> Path:
    path.write_text(HEADER + "".join(f"{row}\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def small_trace(tmp_path: Path) -> Path:
    rows = [
        f"2026-03-2{3 + day}T{hour:02d}:15:00+00:00,2000,300,adhoc"
        for day in range(3)
        for hour in (9, 9, 10, 14)
    ]
    return write_trace(tmp_path / "small.csv", rows)


def test_json_carries_every_row_and_the_recommendation(
    small_trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chart = tmp_path / "plan.png"
    code = main(["plan", str(small_trace), "--json", "--max-wait", "PT10M", "--chart", str(chart)])
    assert code == 0
    answer = json.loads(capsys.readouterr().out)
    strategies = {row["strategy"] for row in answer["rows"]}
    assert {"bound", "always-on", "per-document", "grace-auto", "developer-tier"} <= strategies
    assert {f"grace-{m}m" for m in (0, 1, 2, 5, 10, 30, 60)} <= strategies
    recommended = answer["recommended"]
    for key in ("strategy", "billed_hours", "billed_hours_per_started_hour", "p95_wait_seconds"):
        assert key in recommended
    assert recommended["reason"].endswith(".")
    assert recommended["p95_wait_seconds"] <= 600
    assert recommended["strategy"] in answer["pareto"]
    assert answer["assumptions"]["max_wait_seconds"] == 600
    developer = next(r for r in answer["rows"] if r["strategy"] == "developer-tier")
    assert developer["cost"] == 0 and not developer["recommendable"]
    assert "no SLA" in developer["note"]
    assert chart.read_bytes().startswith(b"\x89PNG")


def test_the_table_shows_the_recommendation_and_fitted_windows(
    small_trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", str(small_trace), "--capacity", "20", "--provision-seconds", "600"]) == 0
    out = capsys.readouterr().out
    assert "Clairvoyant bound" in out
    assert "Recommended for a p95 wait within 600 s" in out
    assert "R = 20,000 tokens/min" in out


def test_a_bad_trace_is_refused_with_its_line_and_nothing_else_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write_trace(
        tmp_path / "bad.csv",
        ["2026-03-23T09:00:00+00:00,10,10,adhoc", "2026-03-23T09:05:00,10,10,adhoc"],
    )
    assert main(["plan", str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "line 3" in captured.err and "has no UTC offset" in captured.err


def test_a_chart_with_another_suffix_is_a_usage_error(
    small_trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", str(small_trace), "--chart", str(tmp_path / "plan.gif")]) == 2
    assert ".png or .svg" in capsys.readouterr().err


def test_model_brings_its_capacity_fee_grace_and_declared_windows(
    small_trace: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("IDLE_GRACE_SECONDS", "HOSTING_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    catalog = tmp_path / "hosting.toml"
    catalog.write_text(
        """
[models.contracts]
deployment = "ft-contracts"
fine_tuned_model = "gpt-4o-mini-2024-07-18.ft-0123"
capacity = 20
idle_grace = "auto"
idle_grace_seconds = 120

[models.contracts.prices.hosting_per_hour]
Standard = 2.50

[[models.contracts.windows]]
name = "office"
time_zone = "Europe/Berlin"
weekdays = ["mon", "tue", "wed"]
opens = "10:00"
closes = "12:00"
""",
        encoding="utf-8",
    )
    values = {
        "AZURE_SUBSCRIPTION_ID": "sub",
        "AZURE_RESOURCE_GROUP": "rg",
        "AOAI_ACCOUNT_NAME": "acct",
        "AOAI_ENDPOINT": "https://acct.openai.azure.com",
        "DocumentStorage": "UseDevelopmentStorage=true",
        "HOSTING_CONFIG_FILE": str(catalog),
    }
    settings = tmp_path / "ops.json"
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": values}), encoding="utf-8")
    code = main(
        ["--settings", str(settings), "plan", str(small_trace), "--model", "contracts", "--json"]
    )
    assert code == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["assumptions"]["capacity"] == 20
    assert answer["assumptions"]["hourly_fee"] == 2.50
    declared = next(r for r in answer["rows"] if r["strategy"] == "windows-declared")
    assert "idle grace 120 s" in declared["note"]
    # gpt-4o-mini has no Developer tier.
    assert "developer-tier" not in {r["strategy"] for r in answer["rows"]}
    assert main(["--settings", str(settings), "plan", str(small_trace), "--model", "nope"]) == 2
    assert "unknown hosted model 'nope'" in capsys.readouterr().err
