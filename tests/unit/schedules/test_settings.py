"""Window and batch declarations in the hosted-models file: every problem at once, named."""

from __future__ import annotations

from datetime import date, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.catalog import Catalog, CatalogError, ModelDefaults, catalog_from_data, load_catalog

ROOT = Path(__file__).resolve().parents[3]
DEFAULTS = ModelDefaults(idle_grace_seconds=300, max_lifetime_seconds=50400, context_tokens=8000)
OFFICE = {
    "time_zone": "Europe/Berlin",
    "weekdays": ["mon", "tue", "wed", "thu", "fri"],
    "opens": "08:00",
    "closes": "18:00",
}
NIGHTLY = {
    "time_zone": "Europe/Berlin",
    "weekdays": ["mon"],
    "starts": time(2, 0),
    "deadline": "PT4H",
    "input_prefix": "batches/in/",
    "output_prefix": "batches/out/",
}


def catalog(**model_fields: Any) -> Catalog:
    data = {
        "models": {
            "contracts": {
                "deployment": "ft-contracts",
                "fine_tuned_model": "base.ft-1",
                **model_fields,
            }
        }
    }
    return catalog_from_data(data, DEFAULTS, source="hosting.toml", profiles_json=None)


def problems(**model_fields: Any) -> list[str]:
    with pytest.raises(CatalogError) as raised:
        catalog(**model_fields)
    return raised.value.problems


def test_the_example_file_declares_a_window_and_a_batch() -> None:
    loaded = load_catalog(ROOT / "hosting.example.toml", DEFAULTS, profiles_json=None)
    contracts = loaded.models["contracts"]
    (office,) = contracts.windows
    assert (office.name, office.opens, office.closes) == ("office", time(8), time(18))
    assert (office.holiday_country, office.holiday_subdivision) == ("DE", "BY")
    assert date(2026, 12, 24) in office.closed_dates
    (nightly,) = contracts.batches
    assert nightly.deadline == timedelta(hours=4)
    assert loaded.models["transcripts"].windows == ()


def test_windows_and_batches_are_named_by_position_unless_named() -> None:
    loaded = catalog(
        windows=[OFFICE, {**OFFICE, "name": "late", "opens": "18:00", "closes": "22:00"}]
    )
    assert [w.name for w in loaded.models["contracts"].windows] == ["window-1", "late"]
    assert loaded.models["contracts"].windows[1].lead == timedelta(minutes=10), "default lead"


def test_every_problem_names_the_model_the_window_and_the_field() -> None:
    found = problems(
        windows=[
            {**OFFICE, "weekdays": []},
            {**OFFICE, "name": "same", "opens": "09:00", "closes": "09:00"},
            {**OFFICE, "name": "zone", "time_zone": "europe/berlin"},
            {**OFFICE, "name": "nowhere", "time_zone": "Mars/Olympus"},
            {**OFFICE, "name": "country", "holiday_country": "XX"},
            {**OFFICE, "name": "state", "holiday_country": "DE", "holiday_subdivision": "ZZ"},
            {**OFFICE, "name": "dates", "closed_dates": ["2026-02-30"], "weekdays": ["monday"]},
        ],
        batches=[{**NIGHTLY, "deadline": "PT0S", "input_prefix": ""}],
    )
    assert found[0] == (
        "model 'contracts', window 'window-1' (windows[0]), field 'weekdays': no weekday given: "
        "list at least one of mon, tue, wed, thu, fri, sat, sun"
    )
    assert found[1] == (
        "model 'contracts', window 'same' (windows[1]): opens and closes are both 09:00: a "
        "window needs a length (a closing time earlier than the opening time closes the next day)"
    )
    assert found[2] == (
        "model 'contracts', window 'zone' (windows[2]), field 'time_zone': 'europe/berlin' is "
        "not an IANA time zone; did you mean 'Europe/Berlin'?"
    )
    assert found[3].startswith(
        "model 'contracts', window 'nowhere' (windows[3]), field 'time_zone': 'Mars/Olympus' is "
        "not an IANA time zone"
    )
    assert found[4].startswith(
        "model 'contracts', window 'country' (windows[4]), field 'holiday_country': 'XX' is not "
        "a country the holidays package knows"
    )
    assert found[5].startswith(
        "model 'contracts', window 'state' (windows[5]), field 'holiday_subdivision': "
        "holiday_subdivision 'ZZ' is not a subdivision of DE; they are: BB, BE, BW, BY"
    )
    assert found[6].startswith(
        "model 'contracts', window 'dates' (windows[6]), field 'weekdays.0': Input should be "
        "'mon', 'tue'"
    )
    assert found[7].startswith(
        "model 'contracts', window 'dates' (windows[6]), field 'closed_dates.0': Input should be "
        "a valid date"
    )
    assert found[8].startswith(
        "model 'contracts', batch 'batch-1' (batches[0]), field 'deadline': the deadline is a "
        "duration after the start"
    )
    assert found[9].startswith(
        "model 'contracts', batch 'batch-1' (batches[0]), field 'input_prefix': String should"
    )
    assert len(found) == 10


def test_shape_errors_and_duplicate_names() -> None:
    assert problems(windows={"opens": "08:00"}) == [
        "model 'contracts', field 'windows': must be an array of tables "
        "([[models.contracts.windows]])"
    ]
    found = problems(windows=[{**OFFICE, "name": "a"}, {**OFFICE, "name": "a", "colour": 1}])
    assert found[0] == (
        "model 'contracts', window 'a' (windows[1]), field 'name': 'a' is used twice; names "
        "must differ"
    )
    assert found[1].startswith(
        "model 'contracts', window 'a' (windows[1]), field 'colour': is not a window field"
    )


def test_a_window_longer_than_the_maximum_lifetime_is_refused() -> None:
    found = problems(max_lifetime_seconds=8 * 3600, windows=[OFFICE])
    assert found == [
        "model 'contracts', window 'window-1': lasts up to 10:10:00 with its lead time, longer "
        "than the model's max_lifetime_seconds (28800); the reaper would delete the deployment "
        "during the window. Raise max_lifetime_seconds (or MAX_DEPLOYMENT_LIFETIME_SECONDS)"
    ]


def test_a_day_window_no_clock_change_crosses_is_measured_by_its_wall_clock_length() -> None:
    # 08:00-18:00 plus a 600 s lead lasts at most 10 h 10 min: Berlin's clocks change at
    # 02:00/03:00, never inside it, so no hour is added.
    fits = catalog(max_lifetime_seconds=39000, windows=[{**OFFICE, "lead_seconds": 600}])
    assert fits.models["contracts"].windows[0].name == "window-1"
    found = problems(max_lifetime_seconds=36599, windows=[{**OFFICE, "lead_seconds": 600}])
    assert found[0].startswith("model 'contracts', window 'window-1': lasts up to 10:10:00 ")


def test_a_night_window_over_a_clock_change_counts_the_hour_it_gains() -> None:
    night = {**OFFICE, "opens": "22:00", "closes": "06:00", "lead_seconds": 600}
    # 8 h 10 min on most nights, 9 h 10 min the night the clocks go back.
    found = problems(max_lifetime_seconds=8 * 3600 + 600, windows=[night])
    assert found[0].startswith("model 'contracts', window 'window-1': lasts up to 9:10:00 ")
    assert catalog(max_lifetime_seconds=9 * 3600 + 600, windows=[night]).models["contracts"]


def test_a_lower_case_holiday_subdivision_is_stored_as_the_calendar_spells_it() -> None:
    loaded = catalog(
        windows=[{**OFFICE, "holiday_country": "de", "holiday_subdivision": "by"}],
        batches=[{**NIGHTLY, "holiday_country": "us", "holiday_subdivision": "ny"}],
    )
    office = loaded.models["contracts"].windows[0]
    assert (office.holiday_country, office.holiday_subdivision) == ("DE", "BY")
    nightly = loaded.models["contracts"].batches[0]
    assert (nightly.holiday_country, nightly.holiday_subdivision) == ("US", "NY")


def test_a_window_crossing_midnight_is_valid_and_its_length_wraps() -> None:
    night = catalog(windows=[{**OFFICE, "opens": "22:00", "closes": "06:00", "lead_seconds": 0}])
    assert night.models["contracts"].windows[0].nominal_length == timedelta(hours=8)


def test_two_scheduled_batches_that_would_share_outcome_names_are_refused() -> None:
    found = problems(
        batches=[
            {**NIGHTLY, "name": "nightly", "input_prefix": "a/", "output_prefix": "out/"},
            {**NIGHTLY, "name": "weekly", "input_prefix": "b/", "output_prefix": "out/"},
        ]
    )
    assert found == [
        "model 'contracts', batch 'weekly' writes outcomes under 'out/' (for 'b/'), which "
        "overlaps model 'contracts', batch 'nightly''s 'out/' (for 'a/'): two different "
        "documents would share an outcome name. Choose an output prefix neither inside nor "
        "around the other"
    ]
    nested = catalog(
        batches=[
            {**NIGHTLY, "name": "all", "input_prefix": "in/", "output_prefix": "out/"},
            {**NIGHTLY, "name": "year", "input_prefix": "in/2026/", "output_prefix": "out/2026/"},
        ]
    )
    assert len(nested.models["contracts"].batches) == 2
