"""`idle_grace = "auto"`: the break-even rule, from the file to the teardown decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.catalog import CatalogError, ModelDefaults, catalog_from_data
from shared.hosting.grace import BreakEvenGrace, break_even_grace, resolve_grace
from shared.hosting.holds import KnownState, LedgerRecord, decide_teardown

NOW = datetime(2026, 3, 23, 12, tzinfo=UTC)
DEFAULTS = ModelDefaults(idle_grace_seconds=300, max_lifetime_seconds=50400, context_tokens=8192)


def model_data(**fields: object) -> dict[str, object]:
    return {
        "models": {"m": {"deployment": "ft-m", "fine_tuned_model": "gpt-4.1-mini.ft-1", **fields}}
    }


def test_the_grace_is_the_observed_provisioning_time_or_the_fixed_one_before_any() -> None:
    fallback = timedelta(minutes=5)
    assert break_even_grace(None, fallback=fallback) == fallback
    assert break_even_grace(0.0, fallback=fallback) == fallback
    assert break_even_grace(412.5, fallback=fallback) == timedelta(seconds=412.5)
    observed = LedgerRecord(deployment="d", last_provision_seconds=900.0)
    assert resolve_grace(BreakEvenGrace(fallback), observed) == timedelta(seconds=900)
    assert resolve_grace(timedelta(seconds=7), observed) == timedelta(seconds=7)


def test_the_teardown_keeps_an_idle_deployment_for_one_observed_provisioning() -> None:
    record = LedgerRecord(
        deployment="d",
        state=KnownState.READY,
        ready_since=NOW - timedelta(hours=1),
        last_hold_released=NOW - timedelta(seconds=500),
        last_provision_seconds=600.0,
    )
    grace = BreakEvenGrace(timedelta(seconds=60))
    kept = decide_teardown(record, now=NOW, idle_grace=grace, exists=True)
    assert not kept.delete and kept.kept_because == "idle_grace"
    assert kept.retry_after == timedelta(seconds=100)
    later = decide_teardown(record, now=NOW + timedelta(seconds=100), idle_grace=grace, exists=True)
    assert later.delete


def test_the_hosted_models_file_accepts_auto_and_explains_anything_else() -> None:
    catalog = catalog_from_data(
        model_data(idle_grace="auto"), DEFAULTS, source="f.toml", profiles_json=None
    )
    assert catalog.models["m"].idle_grace == "auto"
    with pytest.raises(CatalogError) as refused:
        catalog_from_data(
            model_data(idle_grace="sometimes"), DEFAULTS, source="f.toml", profiles_json=None
        )
    assert 'idle_grace must be "auto"' in str(refused.value)
    assert "idle_grace_seconds" in str(refused.value)
