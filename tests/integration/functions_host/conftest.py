"""Fixtures for functions_host's tests: one Azurite for the package, a fresh container each test.

The host runs in-process, so every test also starts from cleared sample-app state.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from azure.storage.blob import BlobServiceClient

from scripts.azurite import RunningAzurite, start_azurite
from tests.conftest import TEST_AZURITE_GC_SECONDS
from tests.integration.functions_host import sample_app as sample
from tests.integration.functions_host.support import NEVER


@pytest.fixture(scope="package")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAzurite]:
    with start_azurite(
        tmp_path_factory.mktemp("functions-host-azurite"),
        gc_interval_seconds=TEST_AZURITE_GC_SECONDS,
    ) as running:
        yield running


@pytest.fixture
def container(storage: RunningAzurite) -> str:
    name = f"dr-{uuid.uuid4().hex[:12]}"
    with BlobServiceClient.from_connection_string(storage.connection_string) as service:
        service.create_container(name)
    return name


@pytest.fixture
def environ(storage: RunningAzurite, container: str) -> dict[str, str]:
    return {
        "SAMPLE_TICK_SCHEDULE": NEVER,
        "SAMPLE_INPUT_CONTAINER": container,
        "SampleStorage": storage.connection_string,
    }


@pytest.fixture(autouse=True)
def _fresh_sample_state() -> Iterator[None]:
    sample.reset()
    yield
    # Let any handler thread still waiting finish, so no test leaves a thread behind.
    sample.SLOW_RELEASE.set()
    sample.TIMER_RELEASE.set()
