"""`GET /api/ops`: what the operations view shows, from the code behind `hosting status` and
`hosting schedule`.

For each hosted model: Azure's state beside the ledger's, the live holds and why the
deployment is up (`shared.console.status.model_status`), its next window and batch run and
what the reconciler would do now (`shared.console.schedule.model_schedule`, the same functions
the timer uses), and how long a provisioning is expected to take (`shared.api.waits`). Then
every batch run that is not final, with its counters. One management call lists the
account's deployments; each model costs one ledger read. When the management API fails the
view still answers, from the ledger, saying so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import azure.functions as func
from azure.core.exceptions import AzureError

from shared.api.jobs import json_response
from shared.api.waits import deployment_wait
from shared.batch.models import BatchRun, run_view
from shared.batch.store import RunStore
from shared.catalog import HostedModel
from shared.console.schedule import model_schedule
from shared.console.status import model_status
from shared.hosting.deployments import AzureDeployments, DeploymentSnapshot, ProvisioningError
from shared.hosting.holds import KnownState, LedgerRecord
from shared.hosting.hosted import HostedDeployment

logger = logging.getLogger(__name__)

# Ledger states in which the deployment exists in Azure, for when Azure cannot be asked.
_EXISTS_BY_LEDGER = frozenset({KnownState.PROVISIONING, KnownState.READY, KnownState.DELETING})


def model_operations(
    model: HostedModel,
    snapshot: DeploymentSnapshot,
    record: LedgerRecord,
    now: datetime,
    *,
    default_provision_seconds: float,
) -> dict[str, Any]:
    """One hosted model's card in the operations view (pure)."""
    status = model_status(
        model=model.name,
        snapshot=snapshot,
        record=record,
        idle_grace=timedelta(seconds=model.idle_grace_seconds),
        now=now,
    ).to_json()
    view: dict[str, Any] = {
        **status,
        "deployment_type": model.deployment_type,
        "capacity": model.capacity,
        "idle_grace_seconds": model.idle_grace_seconds,
        "provisioning": deployment_wait(
            record, now, default_seconds=default_provision_seconds
        ).to_json(),
        "windows": len(model.windows),
        "batch_schedules": len(model.batches),
        "next_window": None,
        "next_batch": None,
        "reconciler_now": [],
    }
    if model.windows or model.batches:
        schedule = model_schedule(model, record, now, count=1)
        for upcoming in schedule.upcoming:
            key = "next_window" if upcoming.kind == "window" else "next_batch"
            shown = upcoming.to_json()
            shown["under_way"] = upcoming.occurrence.opens <= now
            if view[key] is None or upcoming.occurrence.opens < _opens(view[key]):
                view[key] = shown
        view["reconciler_now"] = schedule.actions()
    return view


def _opens(shown: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(shown.get("opens_utc") or shown["starts_utc"])


def operations_view(
    models: Iterable[dict[str, Any]],
    running: Iterable[BatchRun],
    now: datetime,
    *,
    azure_error: str | None,
) -> dict[str, Any]:
    return {
        "checked_at": now.isoformat(),
        "azure_error": azure_error,
        "models": list(models),
        "batches": [run_view(run) for run in sorted(running, key=lambda r: r.created)],
    }


class OperationsApi:
    """Handles GET /api/ops."""

    def __init__(
        self,
        *,
        deployments: AzureDeployments,
        hosted: Mapping[str, HostedDeployment],
        runs: RunStore,
        clock: Callable[[], datetime],
        default_provision_seconds: float,
    ) -> None:
        self._deployments = deployments
        self._hosted = hosted
        self._runs = runs
        self._clock = clock
        self._default_provision_seconds = default_provision_seconds

    def get(self) -> func.HttpResponse:
        return json_response(self.view(), 200)

    def view(self) -> dict[str, Any]:
        now = self._clock()
        azure_error: str | None = None
        listed: dict[str, DeploymentSnapshot] | None = None
        try:
            listed = {s.name.lower(): s for s in self._deployments.list()}
        except (AzureError, ProvisioningError) as error:
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            azure_error = f"the management API could not list the deployments: {first_line}"
            logger.warning("operations view: %s", azure_error)
        models = []
        for hosted in self._hosted.values():
            record = hosted.ledger.read()
            name = hosted.spec.name
            if listed is not None:
                snapshot = listed.get(name.lower(), DeploymentSnapshot(name, exists=False))
            else:
                snapshot = DeploymentSnapshot(name, exists=record.state in _EXISTS_BY_LEDGER)
            models.append(
                model_operations(
                    hosted.model,
                    snapshot,
                    record,
                    now,
                    default_provision_seconds=self._default_provision_seconds,
                )
            )
        running = [
            run for run in (self._runs.get(i) for i in self._runs.open_run_ids()) if run is not None
        ]
        return operations_view(models, running, now, azure_error=azure_error)
