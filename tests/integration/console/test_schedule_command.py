"""`hosting schedule`: next windows and batches in local time and UTC, and the reconciler's
intent, from a subprocess against the local Azure (the ledger is read from Azurite)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from tests.integration.console.test_console import Hosting, one_line

CATALOG = """
default_model = "contracts"

[models.contracts]
deployment = "ft-contracts-{suffix}"
fine_tuned_model = "gpt-4.1-mini-2025-04-14.ft-contracts"

[[models.contracts.windows]]
name = "office"
time_zone = "Europe/Berlin"
weekdays = ["mon", "tue", "wed", "thu", "fri"]
opens = "08:00"
closes = "18:00"
holiday_country = "DE"
holiday_subdivision = "BY"
lead_seconds = 600

[[models.contracts.batches]]
name = "nightly"
time_zone = "America/New_York"
weekdays = ["tue"]
starts = "02:00"
deadline = "PT4H"
input_prefix = "batches/in/"
output_prefix = "batches/out/"

[models.plain]
deployment = "ft-plain-{suffix}"
fine_tuned_model = "gpt-4.1-mini-2025-04-14.ft-plain"
"""


def hosting(tmp_path: Path, app_settings: dict[str, str], catalog: str | None) -> Hosting:
    values = dict(app_settings)
    if catalog is not None:
        path = tmp_path / "hosting.toml"
        path.write_text(catalog.format(suffix=uuid.uuid4().hex[:8]), encoding="utf-8")
        values.pop("FINE_TUNED_MODEL")
        values["HOSTING_CONFIG_FILE"] = str(path)
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": values}), encoding="utf-8")
    return Hosting(settings)


def test_schedule_shows_next_windows_and_batches_and_what_the_reconciler_would_do(
    tmp_path: Path, app_settings: dict[str, str]
) -> None:
    run = hosting(tmp_path, app_settings, CATALOG)
    # Tuesday 5 January 2027, 08:05 in Berlin (the window has opened, nothing holds it yet)
    # and 02:05 in New York (the nightly batch is due).
    shown: Any = run.json("schedule", "--at", "2027-01-05T07:05:00Z", "--count", "2")
    (model,) = shown["models"]
    assert model["model"] == "contracts", "models without windows or batches are left out"
    windows = [u for u in model["upcoming"] if u["kind"] == "window"]
    assert [(w["opens_local"], w["closes_utc"]) for w in windows] == [
        ("2027-01-05T08:00:00+01:00", "2027-01-05T17:00:00+00:00"),
        # 6 January is Epiphany, a public holiday in Bavaria.
        ("2027-01-07T08:00:00+01:00", "2027-01-07T17:00:00+00:00"),
    ]
    assert windows[0]["provision_from_utc"] == "2027-01-05T06:50:00+00:00"
    batches = [u for u in model["upcoming"] if u["kind"] == "batch"]
    assert batches[0]["starts_local"] == "2027-01-05T02:00:00-05:00"
    assert batches[0]["run_id"] == "contracts-nightly-20270105T070000Z"
    reconciler = model["reconciler"]
    assert reconciler["place"] == ["window:office:2027-01-05T07:00:00Z"]
    assert reconciler["provision"] is True and reconciler["ledger_state"] == "unknown"
    assert [b["run_id"] for b in reconciler["batches_due"]] == [
        "contracts-nightly-20270105T070000Z"
    ]

    table = run("schedule", "--at", "2027-01-05T07:05:00Z")
    assert table.returncode == 0, table.stderr
    assert "Tue 2027-01-05 08:00 CET" in table.stdout
    assert (
        "contracts at 2027-01-05 07:05:00Z: place window hold window:office:2027-01-05T07:00:00Z; "
        "take a provisioning step (ledger: unknown); start batch run "
        "contracts-nightly-20270105T070000Z"
    ) in table.stdout


def test_schedule_without_windows_says_so_and_a_bad_instant_exits_2(
    tmp_path: Path, app_settings: dict[str, str]
) -> None:
    run = hosting(tmp_path, app_settings, None)
    done = run("schedule")
    assert done.returncode == 0 and "no hosted model declares windows or batches" in done.stdout
    bad = run("schedule", "--at", "tomorrow")
    assert bad.returncode == 2
    assert "'tomorrow' is not a date-time" in one_line(bad)
