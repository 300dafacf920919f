"""Settings: lazy loading, clear errors, and every setting documented everywhere."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.settings import AppSettings

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = {
    "AZURE_SUBSCRIPTION_ID": "sub",
    "AZURE_RESOURCE_GROUP": "rg",
    "AOAI_ACCOUNT_NAME": "acct",
    "AOAI_ENDPOINT": "https://acct.openai.azure.com",
    "FINE_TUNED_MODEL": "gpt-4.1-mini.ft-1",
    "DocumentStorage": "UseDevelopmentStorage=true",
}


def setting_names() -> set[str]:
    names: set[str] = set()
    for field in AppSettings.model_fields.values():
        if field.alias:
            names.add(field.alias)
        elif field.validation_alias is not None:
            names.add(str(field.validation_alias.choices[0]))  # type: ignore[union-attr]
    return names


def test_every_setting_is_in_the_sample_and_the_readme() -> None:
    sample = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    readme = (ROOT / "README.md").read_text()
    names = setting_names()
    assert len(names) > 30
    assert names - set(sample) == set()
    assert {n for n in names if f"`{n}`" not in readme} == set()


def test_importing_the_function_app_needs_no_settings() -> None:
    env = {"PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", "import function_app; print(len(function_app.app.get_functions()))"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) >= 4


def test_missing_settings_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in REQUIRED:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValidationError) as raised:
        AppSettings()
    assert "AZURE_SUBSCRIPTION_ID" in str(raised.value)


def test_a_hosted_model_must_be_declared(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("FINE_TUNED_MODEL")
    with pytest.raises(ValidationError) as raised:
        AppSettings()
    assert "no hosted model declared: set HOSTING_CONFIG_FILE" in str(raised.value)
    assert "or FINE_TUNED_MODEL for a single model" in str(raised.value)


def test_the_single_model_settings_are_one_hosted_model(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DEPLOYMENT_NAME", "ft-one")
    monkeypatch.setenv("DEPLOYMENT_CAPACITY", "7")
    catalog = AppSettings().catalog
    assert list(catalog.models) == ["default"]
    model = catalog.models["default"]
    assert (model.deployment, model.fine_tuned_model, model.capacity) == (
        "ft-one",
        "gpt-4.1-mini.ft-1",
        7,
    )
    assert catalog.model_for(catalog.profiles["default"]) is model


def test_the_file_and_the_single_model_settings_are_not_mixed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HOSTING_CONFIG_FILE", "hosting.example.toml")
    with pytest.raises(ValidationError, match="both HOSTING_CONFIG_FILE and FINE_TUNED_MODEL"):
        AppSettings()
    monkeypatch.delenv("FINE_TUNED_MODEL")
    assert sorted(AppSettings().catalog.models) == ["contracts", "transcripts"]


def test_storage_must_be_configured_one_way_or_the_other(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DocumentStorage")
    with pytest.raises(ValidationError, match="DocumentStorage__blobServiceUri"):
        AppSettings()
    monkeypatch.setenv("DocumentStorage__blobServiceUri", "https://acct.blob.core.windows.net")
    with pytest.raises(ValidationError, match="needs DocumentStorage__queueServiceUri too"):
        AppSettings()
    monkeypatch.setenv("DocumentStorage__queueServiceUri", "https://acct.queue.core.windows.net")
    assert AppSettings().storage_blob_service_uri == "https://acct.blob.core.windows.net"


def test_empty_values_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AOAI_API_KEY", "")
    monkeypatch.setenv("IDLE_GRACE_SECONDS", "0")
    settings = AppSettings()
    assert settings.aoai_api_key is None
    assert settings.idle_grace_seconds == 0


def test_bad_values_say_which_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DEPLOYMENT_CAPACITY", "zero")
    with pytest.raises(ValidationError, match="DEPLOYMENT_CAPACITY"):
        AppSettings()


def test_overlapping_output_locations_are_refused_naming_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    defaults = AppSettings()
    assert defaults.batch_output_container == "batch-out" != defaults.output_container
    monkeypatch.setenv("BATCH_OUTPUT_CONTAINER", "documents-out")
    with pytest.raises(ValidationError) as refused:
        AppSettings()
    message = str(refused.value)
    assert "OUTPUT_CONTAINER and BATCH_OUTPUT_CONTAINER are both 'documents-out'" in message
    assert "a batch's outcome could replace a document's" in message
    monkeypatch.setenv("BATCH_OUTPUT_CONTAINER", "batch-out")
    monkeypatch.setenv("BATCH_CONTAINER", "documents-in")
    with pytest.raises(ValidationError, match="INPUT_CONTAINER and BATCH_CONTAINER are both"):
        AppSettings()
