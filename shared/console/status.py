"""A hosted model's status as plain values: Azure's state beside the ledger's, and why it is up.

Pure: built from a deployment snapshot, a ledger record, the model's idle grace and the time,
so what `hosting status` says is unit-tested without Azure or storage. "Why it is up" follows
the teardown rule (`shared.hosting.holds`): live holds keep it, else a running operation, else
the idle grace until it passes, else nothing (the next teardown check or the reaper deletes it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from shared.hosting.deployments import DeploymentSnapshot
from shared.hosting.grace import IdleGrace, resolve_grace
from shared.hosting.holds import Hold, KnownState, LedgerRecord, OperationLease, idle_since

WhyUp = Literal["held", "operation", "idle_grace", "nothing"]


@dataclass(frozen=True)
class ModelStatus:
    model: str
    deployment: str
    azure_state: str | None  # Azure's provisioningState; None when the deployment is absent
    ledger_state: KnownState
    holds: tuple[Hold, ...]  # live ones only
    lease: OperationLease | None  # live only
    why_up: WhyUp | None  # None when the deployment is absent
    idle_until: datetime | None
    ready_since: datetime | None  # only while the ledger says ready
    last_error: str | None
    waiting_for: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "deployment": self.deployment,
            "azure_state": self.azure_state,
            "ledger_state": self.ledger_state.value,
            "holds": [hold.model_dump(mode="json") for hold in self.holds],
            "lease": self.lease.model_dump(mode="json", exclude={"continuation_token"})
            if self.lease
            else None,
            "why_up": self.why_up,
            "idle_until": _iso(self.idle_until),
            "ready_since": _iso(self.ready_since),
            "last_error": self.last_error,
            "waiting_for": self.waiting_for,
        }


def model_status(
    *,
    model: str,
    snapshot: DeploymentSnapshot,
    record: LedgerRecord,
    idle_grace: IdleGrace,
    now: datetime,
) -> ModelStatus:
    holds = tuple(sorted(record.live_holds(now), key=lambda hold: hold.expires))
    lease = record.live_lease(now)
    why_up: WhyUp | None = None
    idle_until: datetime | None = None
    if snapshot.exists:
        since = idle_since(record)
        if holds:
            why_up = "held"
        elif lease is not None:
            why_up = "operation"
        elif since is not None and since + resolve_grace(idle_grace, record) > now:
            why_up, idle_until = "idle_grace", since + resolve_grace(idle_grace, record)
        else:
            why_up = "nothing"
    return ModelStatus(
        model=model,
        deployment=snapshot.name,
        azure_state=snapshot.provisioning_state if snapshot.exists else None,
        ledger_state=record.state,
        holds=holds,
        lease=lease,
        why_up=why_up,
        idle_until=idle_until,
        # After a delete the record keeps its last ready_since; it says nothing then.
        ready_since=record.ready_since if record.state is KnownState.READY else None,
        last_error=record.last_error,
        waiting_for=record.waiting_for,
    )


def _iso(moment: datetime | None) -> str | None:
    # The same form as the ledger's own times (pydantic writes UTC as Z).
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None
