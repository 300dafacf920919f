"""What `hosting schedule` shows, as plain values: each model's next windows and batch runs in
local time and UTC, and what the reconciler would do at the moment asked about.

Pure: built from the hosted model, its ledger record and the instant, with the same
functions the reconcile timer uses (`shared.schedules`), so what the command says is what
the timer would do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from shared.catalog import HostedModel
from shared.hosting.holds import LedgerRecord
from shared.schedules.occurrences import Occurrence, next_occurrences
from shared.schedules.reconcile import ModelPlan, batch_run_id, plan_model, provisioning_lead


@dataclass(frozen=True)
class Upcoming:
    """One occurrence of a window or a batch, in its own zone and in UTC."""

    kind: str  # "window" or "batch"
    name: str
    time_zone: str
    occurrence: Occurrence
    provision_from: datetime | None  # windows: open minus the lead
    run_id: str | None  # batches

    def local(self, at: datetime) -> str:
        return at.astimezone(ZoneInfo(self.time_zone)).strftime("%a %Y-%m-%d %H:%M %Z")

    def to_json(self) -> dict[str, Any]:
        start, end = ("opens", "closes") if self.kind == "window" else ("starts", "deadline")
        zone = ZoneInfo(self.time_zone)
        opens, closes = self.occurrence.opens, self.occurrence.closes
        shown: dict[str, Any] = {
            "kind": self.kind,
            "name": self.name,
            "time_zone": self.time_zone,
            f"{start}_local": opens.astimezone(zone).isoformat(),
            f"{end}_local": closes.astimezone(zone).isoformat(),
            f"{start}_utc": opens.isoformat(),
            f"{end}_utc": closes.isoformat(),
        }
        if self.provision_from is not None:
            shown["provision_from_utc"] = self.provision_from.isoformat()
        if self.run_id is not None:
            shown["run_id"] = self.run_id
        return shown


@dataclass(frozen=True)
class ModelSchedule:
    model: str
    deployment: str
    upcoming: tuple[Upcoming, ...]
    plan: ModelPlan
    ledger_state: str

    def actions(self) -> list[str]:
        """What a reconcile tick at the plan's instant would do, in words."""
        plan = self.plan
        said = [f"place window hold {h}" for h in plan.place]
        said += [f"refresh window hold {h}" for h in plan.refresh]
        said += [f"keep window hold {h}" for h in plan.keep]
        said += [f"end window hold {h}" for h in plan.end]
        if plan.provision:
            said.append(f"take a provisioning step (ledger: {self.ledger_state})")
        elif plan.wants_serving:
            said.append("nothing to provision: the deployment serves")
        said += [f"start batch run {b.run_id}" for b in plan.batches_due]
        return said or ["nothing: no window or batch wants the deployment now"]

    def to_json(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "model": self.model,
            "deployment": self.deployment,
            "upcoming": [u.to_json() for u in self.upcoming],
            "reconciler": {
                "at": plan.now.isoformat(),
                "wants_serving": plan.wants_serving,
                "place": list(plan.place),
                "refresh": list(plan.refresh),
                "keep": list(plan.keep),
                "end": list(plan.end),
                "provision": plan.provision,
                "ledger_state": self.ledger_state,
                "batches_due": [
                    {
                        "name": b.name,
                        "run_id": b.run_id,
                        "input_prefix": b.input_prefix,
                        "output_prefix": b.output_prefix,
                        "deadline": b.deadline.isoformat(),
                    }
                    for b in plan.batches_due
                ],
            },
        }


def model_schedule(
    model: HostedModel, record: LedgerRecord, now: datetime, *, count: int
) -> ModelSchedule:
    """A model's next `count` occurrences of each window and batch, and the plan at `now`."""
    upcoming: list[Upcoming] = []
    for window in model.windows:
        lead = provisioning_lead(window, record)
        upcoming.extend(
            Upcoming("window", window.name, window.time_zone, o, o.opens - lead, None)
            for o in next_occurrences(window, now, count)
        )
    for batch in model.batches:
        upcoming.extend(
            Upcoming("batch", batch.name, batch.time_zone, o, None, batch_run_id(model.name, o))
            for o in next_occurrences(batch, now, count)
        )
    upcoming.sort(key=lambda u: (u.occurrence.opens, u.kind, u.name))
    return ModelSchedule(
        model=model.name,
        deployment=model.deployment,
        upcoming=tuple(upcoming),
        plan=plan_model(model, record, now),
        ledger_state=record.state.value,
    )
