"""How the operator's command finds its settings: the environment overlaid by a file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.console.errors import ConsoleError, ExitCode
from shared.console.settings_file import load_settings

REQUIRED = {
    "AZURE_SUBSCRIPTION_ID": "sub",
    "AZURE_RESOURCE_GROUP": "rg",
    "AOAI_ACCOUNT_NAME": "acct",
    "AOAI_ENDPOINT": "https://acct.openai.azure.com",
    "FINE_TUNED_MODEL": "gpt-4.1-mini.ft-1",
    "DocumentStorage": "UseDevelopmentStorage=true",
}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (*REQUIRED, "IDLE_GRACE_SECONDS", "HOSTING_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no ./local.settings.json unless a test writes one


def settings_file(path: Path, values: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"IsEncrypted": False, "Values": values}), encoding="utf-8")
    return path


def test_the_file_wins_over_the_environment_which_fills_the_rest(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AOAI_ACCOUNT_NAME", "from-env")
    path = settings_file(
        tmp_path / "ops.json",
        {"AOAI_ACCOUNT_NAME": "from-file", "IDLE_GRACE_SECONDS": 7, "AZURE_CLIENT_ID": ""},
    )
    loaded = load_settings(path)
    assert loaded.settings.aoai_account_name == "from-file"
    assert loaded.settings.idle_grace_seconds == 7
    assert loaded.settings.azure_subscription_id == "sub"
    assert loaded.settings.azure_client_id is None, "an empty value means not set"
    assert loaded.source == f"{path} over the environment"


def test_local_settings_json_in_the_working_directory_is_the_default(tmp_path: Path) -> None:
    settings_file(tmp_path / "local.settings.json", REQUIRED)
    assert load_settings(None).settings.aoai_account_name == "acct"


def test_every_problem_is_listed_in_one_message_for_exit_2(tmp_path: Path) -> None:
    path = settings_file(tmp_path / "ops.json", {"AOAI_ENDPOINT": "https://x"})
    with pytest.raises(ConsoleError) as raised:
        load_settings(path)
    assert raised.value.code is ExitCode.USAGE
    message = raised.value.message
    assert message.startswith(f"the settings from {path} over the environment are unusable")
    for name in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AOAI_ACCOUNT_NAME"):
        assert f"{name}: required, not set" in message


def test_each_problem_of_the_hosted_models_file_is_its_own_line(tmp_path: Path) -> None:
    catalog = tmp_path / "hosting.toml"
    catalog.write_text('[models.a]\ndeployment = "x"\n', encoding="utf-8")
    values = {k: v for k, v in REQUIRED.items() if k != "FINE_TUNED_MODEL"}
    path = settings_file(tmp_path / "ops.json", {**values, "HOSTING_CONFIG_FILE": str(catalog)})
    with pytest.raises(ConsoleError) as raised:
        load_settings(path)
    lines = raised.value.message.splitlines()
    assert len(lines) >= 3
    assert all(
        line.startswith(f"  - HOSTING_CONFIG_FILE ({catalog}): model 'a'") for line in lines[1:]
    )


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("{not json", "is not valid JSON"),
        ('{"IsEncrypted": false}', 'has no "Values" object'),
        ('{"Values": {"A": [1]}}', "A: must be a string, number or boolean, not list"),
    ],
)
def test_an_unusable_file_is_one_clear_message(
    tmp_path: Path, content: str, complaint: str
) -> None:
    path = tmp_path / "ops.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConsoleError) as raised:
        load_settings(path)
    assert raised.value.code is ExitCode.USAGE
    assert complaint in raised.value.message


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConsoleError, match="does not exist"):
        load_settings(tmp_path / "nope.json")


def test_missing_names_storage_and_hosted_models_are_reported_in_one_round(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("DocumentStorage", "DOCUMENT_STORAGE", "FINE_TUNED_MODEL"):
        monkeypatch.delenv(name, raising=False)
    path = settings_file(tmp_path / "ops.json", {"AOAI_ENDPOINT": "https://x"})
    with pytest.raises(ConsoleError) as raised:
        load_settings(path)
    lines = raised.value.message.splitlines()
    assert "(5 problem(s))" in lines[0]
    assert "  - AZURE_SUBSCRIPTION_ID: required, not set" in lines
    assert any(line.startswith("  - no storage configured: set DocumentStorage") for line in lines)
    assert any(line.startswith("  - no hosted model declared") for line in lines)


def test_a_bad_value_beside_a_half_configured_storage_is_one_round(tmp_path: Path) -> None:
    values = {k: v for k, v in REQUIRED.items() if k not in ("DocumentStorage", "FINE_TUNED_MODEL")}
    path = settings_file(
        tmp_path / "ops.json",
        {**values, "DEPLOYMENT_CAPACITY": "0", "DocumentStorage__blobServiceUri": "https://s"},
    )
    with pytest.raises(ConsoleError) as raised:
        load_settings(path)
    message = raised.value.message
    assert "(3 problem(s))" in message
    assert "DEPLOYMENT_CAPACITY: Input should be greater than or equal to 1" in message
    assert "needs DocumentStorage__queueServiceUri too" in message
    assert "no hosted model declared" in message


def test_without_a_settings_file_the_message_says_which_file_to_pass() -> None:
    with pytest.raises(ConsoleError) as raised:
        load_settings(None)
    message = raised.value.message
    assert message.startswith("the settings from the environment are unusable")
    assert message.splitlines()[-1].startswith(
        "no settings file was read: pass one with --settings"
    )
    assert ".local/dev.settings.json" in message
