"""Fixtures that build the real app services against Azurite and the simulator."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scripts.azurite import RunningAzurite
from scripts.local_azure import LOCAL_MODEL
from shared.composition import AppServices, build_services, utc_now
from shared.settings import AppSettings
from simulator.process import RunningSimulator

# Timings for tests: waits in tens of milliseconds, leases and holds in seconds.
FAST_APP_SETTINGS: dict[str, Any] = {
    "IDLE_GRACE_SECONDS": 0,
    "JOB_HOLD_SECONDS": 6,
    "PROVISION_TIMEOUT_SECONDS": 30,
    "READINESS_TIMEOUT_SECONDS": 10,
    "MANAGEMENT_POLL_SECONDS": 0.05,
    "OPERATION_LEASE_SECONDS": 6,
    "NOT_FOUND_RETRY_SECONDS": 0.3,
    "INFERENCE_MAX_SECONDS": 30,
    "INFERENCE_MAX_ATTEMPTS": 12,
    "DEPLOYMENT_CAPACITY": 10,
    # The simulator provisions in half a real second: parked jobs look again that soon.
    "EXPECTED_PROVISION_SECONDS": 0.5,
    "PARK_MAX_SECONDS": 1,
    # Batch runs: claims and holds in seconds, and the simulator's rate-limit minute (60
    # simulated seconds at its time scale of 600).
    "BATCH_HOLD_SECONDS": 3,
    "RATE_LIMIT_MINUTE_SECONDS": 0.1,
    "BATCH_CONCURRENCY": 4,
    "BATCH_PAGE_SIZE": 25,
}

ServicesFactory = Callable[..., AppServices]


class ShiftedClock:
    """The wall clock moved forward on demand: a test that needs a hold or a grace to pass
    gives it a long lifetime and moves this clock past it, instead of a short lifetime and a
    sleep that a busy machine can outrun before the test looks ("still held") or after."""

    def __init__(self) -> None:
        self._offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += timedelta(seconds=seconds)


def local_app_settings(
    azurite: RunningAzurite, sim: RunningSimulator, **overrides: Any
) -> dict[str, str]:
    """App settings for a test: fresh containers and deployment name, fast timings."""
    suffix = uuid.uuid4().hex[:8]
    values: dict[str, Any] = {
        "AZURE_AUTH_MODE": "local",
        "AZURE_SUBSCRIPTION_ID": sim.subscription_id,
        "AZURE_RESOURCE_GROUP": sim.resource_group,
        "AOAI_ACCOUNT_NAME": sim.account,
        "ARM_ENDPOINT": sim.base_url,
        "AOAI_ENDPOINT": sim.base_url,
        "AZURE_CA_BUNDLE": str(sim.ca_path),
        "FINE_TUNED_MODEL": LOCAL_MODEL,
        "DocumentStorage": azurite.connection_string,
        "DEPLOYMENT_NAME": f"ft-{suffix}",
        "INPUT_CONTAINER": f"in-{suffix}",
        "OUTPUT_CONTAINER": f"out-{suffix}",
        "LEDGER_CONTAINER": f"ledger-{suffix}",
        "JOBS_CONTAINER": f"jobs-{suffix}",
        "RESUME_QUEUE": f"resumes-{suffix}",
        "BATCH_CONTAINER": f"batch-{suffix}",
        "BATCH_OUTPUT_CONTAINER": f"batch-out-{suffix}",
        "BATCH_RUNS_CONTAINER": f"runs-{suffix}",
        "BATCH_QUEUE": f"batches-{suffix}",
        "HOSTING_LOG_CONTAINER": f"hosting-log-{suffix}",
        **FAST_APP_SETTINGS,
        **overrides,
    }
    return {key: str(value) for key, value in values.items()}


@pytest.fixture
def app_settings(azurite: RunningAzurite, sim: RunningSimulator) -> dict[str, str]:
    return local_app_settings(azurite, sim)


@pytest.fixture
def make_services(app_settings: dict[str, str]) -> Iterator[ServicesFactory]:
    built: list[AppServices] = []

    def factory(clock: Callable[[], datetime] = utc_now, **overrides: Any) -> AppServices:
        """Services for the test's settings changed by `overrides` (None removes a setting)."""
        values = {**app_settings, **{k: str(v) for k, v in overrides.items() if v is not None}}
        for key in [k for k, v in overrides.items() if v is None]:
            values.pop(key, None)
        services = build_services(AppSettings.model_validate(values), clock=clock)
        built.append(services)
        return services

    yield factory
    for services in built:
        services.blob_service.close()
