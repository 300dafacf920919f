"""Session fixtures for the local Azure: Azurite and the simulator on free loopback ports.

Both are started once per test session and stopped at its end; per-test fixtures reset the
simulator's state and faults so tests do not see each other's deployments.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from azure.core.credentials import AccessToken
from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient

from scripts.azurite import RunningAzurite, start_azurite
from simulator.config import RUNTIME_SETTABLE, SimulatorConfig
from simulator.process import RunningSimulator, start_simulator

# Fast simulated timings: 600 simulated seconds per real second, so a 300 s provisioning
# takes 0.5 s of wall time while every state transition still happens.
SIMULATOR_TEST_ARGS: tuple[str, ...] = (
    "--time-scale", "600",
    "--provisioning-seconds", "300",
    "--accepted-seconds", "10",
    "--warmup-seconds", "60",
    "--deletion-seconds", "30",
    "--recreate-cooldown-seconds", "20",
    "--poll-retry-after-seconds", "10",
)  # fmt: skip

# Azurite's garbage collection once in six hours, not every ten minutes: a pass over a
# session's tens of thousands of blobs stopped Azurite answering for over a minute.
TEST_AZURITE_GC_SECONDS = 6 * 3600.0

_TEST_TIMINGS: dict[str, Any] = {
    "time_scale": 600.0,
    "provisioning_seconds": 300.0,
    "accepted_seconds": 10.0,
    "warmup_seconds": 60.0,
    "deletion_seconds": 30.0,
    "recreate_cooldown_seconds": 20.0,
    "poll_retry_after_seconds": 10.0,
}
SIMULATOR_TEST_CONFIG: dict[str, Any] = {
    **_TEST_TIMINGS,
    # The simulator's own defaults for everything else a test may change at run time, restored
    # so that no test sees what an earlier one set (the order differs between runs).
    **{
        name: getattr(SimulatorConfig(), name)
        for name in sorted(RUNTIME_SETTABLE)
        if name not in _TEST_TIMINGS
    },
}


class StaticTokenCredential:
    """A TokenCredential for the simulator, which accepts any bearer token."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("local-simulator-token", 4102444800)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAzurite]:
    with start_azurite(
        tmp_path_factory.mktemp("azurite"), gc_interval_seconds=TEST_AZURITE_GC_SECONDS
    ) as running:
        yield running


@pytest.fixture(scope="session")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSimulator]:
    state_dir: Path = tmp_path_factory.mktemp("simulator")
    with start_simulator(state_dir=state_dir, extra_args=SIMULATOR_TEST_ARGS) as running:
        yield running


@pytest.fixture
def sim(simulator: RunningSimulator) -> RunningSimulator:
    simulator.admin.reset()
    simulator.admin.clear_faults()
    simulator.admin.configure(**SIMULATOR_TEST_CONFIG)
    return simulator


@pytest.fixture
def mgmt_client(sim: RunningSimulator) -> Iterator[CognitiveServicesManagementClient]:
    client = CognitiveServicesManagementClient(
        StaticTokenCredential(),
        sim.subscription_id,
        base_url=sim.base_url,
        connection_verify=str(sim.ca_path),
        polling_interval=0.05,
    )
    with client:
        yield client


@pytest.fixture
def aoai_client(sim: RunningSimulator) -> Iterator[openai.AzureOpenAI]:
    http_client = httpx2.Client(verify=ssl.create_default_context(cafile=str(sim.ca_path)))
    client = openai.AzureOpenAI(
        azure_endpoint=sim.base_url,
        api_key=sim.api_key,
        api_version="2024-10-21",
        max_retries=0,
        http_client=http_client,
    )
    yield client
    client.close()


@pytest.fixture(autouse=True)
def piped_console_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator's command lays tables out as it does into a pipe, whatever runs the tests:
    some runners (pytest-xdist's workers) set COLUMNS=80, which folds the tables' cells."""
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)
