"""Prices per hosted model: the documented defaults, partial overrides and bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.catalog import CatalogError, ModelDefaults, load_catalog
from shared.cost.prices import DEFAULT_PRICES, ModelPrices

DEFAULTS = ModelDefaults(idle_grace_seconds=300, max_lifetime_seconds=50400, context_tokens=128000)

MODEL = """
[models.contracts]
deployment = "ft-contracts"
fine_tuned_model = "gpt-4.1-mini-2025-04-14.ft-abc"
deployment_type = "GlobalStandard"
"""


def _load(tmp_path: Path, text: str) -> ModelPrices:
    path = tmp_path / "hosting.toml"
    path.write_text(text, encoding="utf-8")
    return load_catalog(path, DEFAULTS, profiles_json=None).models["contracts"].prices


def test_defaults_are_the_documented_public_prices() -> None:
    assert DEFAULT_PRICES.hourly_fee("Standard") == 1.70
    assert DEFAULT_PRICES.hourly_fee("GlobalStandard") == 1.70
    assert DEFAULT_PRICES.hourly_fee("DeveloperTier") == 0.0
    assert DEFAULT_PRICES.hourly_fee("SomethingNew") == 0.0
    assert DEFAULT_PRICES.token_cost(1_000_000, 1_000_000) == pytest.approx(0.80 + 3.20)


def test_a_model_without_prices_gets_the_defaults(tmp_path: Path) -> None:
    assert _load(tmp_path, MODEL) == DEFAULT_PRICES


def test_a_partial_fee_table_keeps_the_other_types_defaults(tmp_path: Path) -> None:
    prices = _load(
        tmp_path,
        MODEL
        + """
[models.contracts.prices]
output_per_million_tokens = 6.0
[models.contracts.prices.hosting_per_hour]
GlobalStandard = 2.10
""",
    )
    assert prices.hourly_fee("GlobalStandard") == 2.10
    assert prices.hourly_fee("Standard") == 1.70
    assert prices.hourly_fee("DeveloperTier") == 0.0
    assert prices.input_per_million_tokens == 0.80
    assert prices.token_cost(0, 500_000) == pytest.approx(3.0)


def test_bad_prices_are_named_with_the_model_and_field(tmp_path: Path) -> None:
    with pytest.raises(CatalogError) as raised:
        _load(
            tmp_path,
            MODEL
            + """
[models.contracts.prices]
input_per_million_tokens = -1
per_hour = 3
""",
        )
    text = str(raised.value)
    assert "model 'contracts', field 'prices.input_per_million_tokens'" in text
    assert "field 'prices.per_hour': is not a price field" in text


def test_a_negative_fee_is_refused_naming_the_deployment_type(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="hosting_per_hour for Standard is negative"):
        _load(tmp_path, MODEL + "[models.contracts.prices.hosting_per_hour]\nStandard = -2\n")
