"""How long a cold deployment is expected to take, as the portal and the operations view say it.

Pure: from a hosted model's ledger record, the time, and the provisioning time assumed until
one has been observed (`EXPECTED_PROVISION_SECONDS`). The expectation is the same one waiting
jobs park by (`shared.hosting.holds.next_look_seconds`): the last provisioning the app saw for
this deployment, else the setting. Nothing is invented: when no provisioning has started
there is no "ready at", and a provisioning slower than the last one is reported as overdue
rather than counted down below zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from shared.hosting.holds import LedgerRecord

ExpectationBasis = Literal["observed", "setting"]


@dataclass(frozen=True)
class DeploymentWait:
    """Where a deployment's provisioning stands, and when it should serve."""

    ledger_state: str
    expected_seconds: float
    basis: ExpectationBasis  # observed: the last provisioning the app saw; setting: a default
    provisioning_started: datetime | None
    expected_ready_at: datetime | None
    remaining_seconds: float | None  # None when not started, 0 once overdue
    overdue_seconds: float | None  # how far past the expectation, once it is passed
    waiting_for: str | None  # why the create is not sent yet (no room on the account)
    last_error: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "ledger_state": self.ledger_state,
            "expected_seconds": round(self.expected_seconds, 3),
            "basis": self.basis,
            "provisioning_started": _iso(self.provisioning_started),
            "expected_ready_at": _iso(self.expected_ready_at),
            "remaining_seconds": _rounded(self.remaining_seconds),
            "overdue_seconds": _rounded(self.overdue_seconds),
            "waiting_for": self.waiting_for,
            "last_error": self.last_error,
        }


def deployment_wait(
    record: LedgerRecord, now: datetime, *, default_seconds: float
) -> DeploymentWait:
    observed = record.last_provision_seconds
    expected = observed if observed is not None else default_seconds
    started = record.provisioning_started
    ready_at = remaining = overdue = None
    if started is not None:
        ready_at = started + timedelta(seconds=expected)
        left = (ready_at - now).total_seconds()
        remaining, overdue = (left, None) if left >= 0 else (0.0, -left)
    return DeploymentWait(
        ledger_state=record.state.value,
        expected_seconds=expected,
        basis="observed" if observed is not None else "setting",
        provisioning_started=started,
        expected_ready_at=ready_at,
        remaining_seconds=remaining,
        overdue_seconds=overdue,
        waiting_for=record.waiting_for,
        last_error=record.last_error,
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def _rounded(seconds: float | None) -> float | None:
    return round(seconds, 3) if seconds is not None else None
