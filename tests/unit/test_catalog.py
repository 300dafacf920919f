"""The hosted-models declaration: validation (every problem at once) and routing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.catalog import (
    Catalog,
    CatalogError,
    ModelDefaults,
    catalog_from_data,
    load_catalog,
    single_model_catalog,
)
from shared.documents.profiles import resolve_profile

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = ModelDefaults(idle_grace_seconds=300, max_lifetime_seconds=3600, context_tokens=8000)
PROMPT = {"system_prompt": "You read.", "user_prompt_template": "{document}"}


def model(name: str, **fields: Any) -> dict[str, Any]:
    return {"deployment": f"ft-{name}", "fine_tuned_model": f"base.ft-{name}", **fields}


def catalog(data: dict[str, Any], profiles_json: str | None = None) -> Catalog:
    return catalog_from_data(data, DEFAULTS, source="hosting.toml", profiles_json=profiles_json)


def problems(data: dict[str, Any], profiles_json: str | None = None) -> list[str]:
    with pytest.raises(CatalogError) as raised:
        catalog(data, profiles_json)
    assert str(raised.value).startswith(f"hosting.toml has {len(raised.value.problems)} problem")
    return raised.value.problems


def test_the_example_file_is_valid_and_routes_each_profile() -> None:
    loaded = load_catalog(ROOT / "hosting.example.toml", DEFAULTS, profiles_json=None)
    assert sorted(loaded.models) == ["contracts", "transcripts"]
    assert loaded.model_for(loaded.profiles["calls"]).name == "transcripts"
    assert loaded.model_for(loaded.profiles["contracts"]).deployment == "ft-contracts"
    # The built-in profile names no model and runs on default_model.
    assert loaded.model_for(loaded.profiles["default"]).name == "contracts"
    transcripts = loaded.models["transcripts"]
    assert transcripts.idle_grace_seconds == 120
    assert transcripts.max_lifetime_seconds == 3600, "from the app-wide default"
    assert transcripts.usable_context_tokens == 8000


def test_fields_default_from_the_app_settings_and_context_is_bounded_by_capacity() -> None:
    loaded = catalog({"models": {"a": model("a", capacity=2, context_tokens=128_000)}})
    a = loaded.models["a"]
    assert (a.idle_grace_seconds, a.max_lifetime_seconds) == (300, 3600)
    assert a.usable_context_tokens == 2000, "a request may not exceed the minute's tokens"
    assert loaded.default_model == "a", "one model is the default without saying so"


def test_every_problem_is_reported_at_once_naming_the_model_or_profile_and_field() -> None:
    found = problems(
        {
            "default_model": "nope",
            "extra": 1,
            "models": {
                "a": model("a", capacity=0, colour="red"),
                "b": model("b", deployment_type="Provisioned", fine_tuned_model=""),
                "c": model("A"),  # same deployment as a, in another case
            },
            "profiles": {"r": {**PROMPT, "model": "review"}, "s": {"system_prompt": ""}},
        }
    )
    assert found == [
        "unknown top-level key(s) extra; the keys are: models, profiles, default_model",
        "model 'a', field 'capacity': Input should be greater than or equal to 1 (got 0)",
        "model 'a', field 'colour': is not a model field (the fields are: deployment, "
        "fine_tuned_model, version, deployment_type, capacity, idle_grace_seconds, "
        "idle_grace, max_lifetime_seconds, context_tokens, prices, windows, batches)",
        "model 'b', field 'fine_tuned_model': String should have at least 1 character (got \"\")",
        "model 'b', field 'deployment_type': Input should be 'Standard', 'GlobalStandard', "
        "'DeveloperTier' or 'ProvisionedManaged' (got \"Provisioned\")",
        "default_model: 'nope' is not a declared model; the models are: a, b, c",
        "profile 's', field 'system_prompt': must not be empty: say who the model is and what "
        "it does",
        "profile 's', field 'user_prompt_template': is required",
        "profile 'r', field 'model': 'review' is not a declared model; the models are: a, b, c",
    ]


def test_two_models_may_not_share_a_deployment() -> None:
    found = problems({"models": {"a": model("x"), "b": model("X")}})
    assert found == [
        "model 'b', field 'deployment': 'ft-X' is also the deployment of model 'a'; each model "
        "needs its own deployment"
    ]


@pytest.mark.parametrize(
    ("data", "prefix"),
    [
        ({}, "declares no hosted model: add at least one [models.<name>] table"),
        ({"models": {"a": "x"}}, "model 'a': must be a table of model fields"),
        (
            {"models": {"a b": model("ab")}},
            "model 'a b', field 'name': the model name 'a b' must be 1-64 letters, digits",
        ),
        (
            {"models": {"a": model("a", deployment="-bad")}},
            "model 'a', field 'deployment': '-bad' is not a valid deployment name",
        ),
    ],
)
def test_malformed_models(data: dict[str, Any], prefix: str) -> None:
    assert problems(data)[0].startswith(prefix)


def test_with_several_models_a_profile_must_name_one_or_there_is_a_default() -> None:
    data: dict[str, Any] = {
        "models": {"a": model("a"), "b": model("b")},
        "profiles": {"p": PROMPT},
    }
    assert problems(data) == [
        "profile 'p': names no model and there is no default_model; set its 'model' to one of: a, b"
    ]
    loaded = catalog({**data, "default_model": "b"})
    assert loaded.model_for(loaded.profiles["p"]).name == "b"


def test_without_a_default_model_the_builtin_profile_is_not_offered() -> None:
    loaded = catalog(
        {"models": {"a": model("a"), "b": model("b")}, "profiles": {"p": {**PROMPT, "model": "a"}}}
    )
    assert sorted(loaded.profiles) == ["p"]
    with pytest.raises(LookupError, match="the known profiles are: p"):
        resolve_profile(loaded.profiles, None, "default")


def test_profiles_come_from_the_file_or_the_setting_not_both() -> None:
    data: dict[str, Any] = {"models": {"a": model("a")}, "profiles": {"p": PROMPT}}
    assert problems(data, profiles_json='{"q": {}}') == [
        "profiles are declared both in the file's [profiles] and in PROCESSING_PROFILES; keep "
        "one (the file is the one that is reviewed with the models)"
    ]
    from_setting = catalog(
        {"models": {"a": model("a")}},
        profiles_json='{"q": {"system_prompt": "S", "user_prompt_template": "{document}"}}',
    )
    assert sorted(from_setting.profiles) == ["default", "q"]


def test_a_missing_or_broken_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="the file does not exist"):
        load_catalog(tmp_path / "nope.toml", DEFAULTS, profiles_json=None)
    broken = tmp_path / "broken.toml"
    broken.write_text("[models.a\n")
    with pytest.raises(CatalogError, match="not valid TOML"):
        load_catalog(broken, DEFAULTS, profiles_json=None)


def test_the_single_model_settings_report_their_problems_too() -> None:
    with pytest.raises(CatalogError) as raised:
        single_model_catalog(
            deployment="ft-x",
            fine_tuned_model="base.ft-1",
            version="1",
            deployment_type="Standard",
            capacity=1,
            defaults=DEFAULTS,
            profiles_json='{"p": {"system_prompt": "S", "user_prompt_template": "{document}", '
            '"model": "other"}}',
        )
    assert raised.value.problems == [
        "profile 'p', field 'model': 'other' is not a declared model; the models are: default"
    ]


def test_lookup_by_deployment_ignores_case() -> None:
    loaded = catalog({"models": {"a": model("a")}})
    assert loaded.by_deployment("FT-A") is loaded.models["a"]
    assert loaded.by_deployment("ft-b") is None
