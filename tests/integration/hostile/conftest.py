"""The app as the Functions host runs it (settings from the environment, services built on
the first invocation) against Azurite and the simulator, and the operator's settings file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared import composition, settings
from shared.composition import AppServices
from simulator.process import RunningSimulator
from tests.integration.batch.helpers import BATCH_PROFILES
from tests.integration.console.test_console import Hosting


@pytest.fixture
def app(
    app_settings: dict[str, str], sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AppServices]:
    for key, value in {**app_settings, "PROCESSING_PROFILES": BATCH_PROFILES}.items():
        monkeypatch.setenv(key, value)
    settings.get_settings.cache_clear()
    composition.reset_services()
    yield composition.get_services()
    settings.get_settings.cache_clear()
    composition.reset_services()


@pytest.fixture
def hosting(tmp_path: Path, app_settings: dict[str, str]) -> Hosting:
    """`hosting --settings <file>` with the same settings as `app`."""
    values = {**app_settings, "PROCESSING_PROFILES": BATCH_PROFILES}
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": values}), encoding="utf-8")
    return Hosting(path)
