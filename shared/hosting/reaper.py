"""The reaper: deletes owned deployments that nothing needs any more.

It is the backstop for the fast path in the engine: a deployment whose last hold expired (a
crashed job), whose idle grace passed after the last job left, or that has outlived the
maximum lifetime. It only ever touches deployments tagged as this app's, and it corrects the
ledger when a deployment vanished behind the app's back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from shared.hosting.deployments import AzureDeployments
from shared.hosting.holds import KnownState, mark_suspect
from shared.hosting.provisioner import DeploymentProvisioner

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReapReport:
    deployment: str
    deleted: bool
    reason: str


class DeploymentReaper:
    """One pass over the account's deployments."""

    def __init__(
        self,
        *,
        deployments: AzureDeployments,
        provisioner_for: Callable[[str], DeploymentProvisioner],
        owner_tag: str,
        managed_name: str,
        idle_grace: timedelta,
        max_lifetime: timedelta,
    ) -> None:
        self._deployments = deployments
        self._provisioner_for = provisioner_for
        self._owner_tag = owner_tag
        self._managed_name = managed_name
        self._idle_grace = idle_grace
        self._max_lifetime = max_lifetime

    def run(self, owner: str) -> list[ReapReport]:
        reports: list[ReapReport] = []
        snapshots = self._deployments.list()
        names = {s.name for s in snapshots}
        if self._managed_name not in names:
            self._forget_vanished(self._managed_name)
        for snapshot in snapshots:
            if not snapshot.owned_by(self._owner_tag):
                continue
            if snapshot.provisioning_state == "Deleting":
                reports.append(ReapReport(snapshot.name, False, "already being deleted"))
                continue
            provisioner = self._provisioner_for(snapshot.name)
            outcome = provisioner.teardown_if_idle(
                owner,
                idle_grace=self._idle_grace,
                snapshot=snapshot,
                max_lifetime=self._max_lifetime,
            )
            if outcome.deleted:
                logger.info("reaper deleted %s: %s", snapshot.name, outcome.reason)
            else:
                logger.info("reaper kept %s: %s", snapshot.name, outcome.reason)
            reports.append(ReapReport(snapshot.name, outcome.deleted, outcome.reason))
        return reports

    def _forget_vanished(self, name: str) -> None:
        """The ledger says ready but Azure has no such deployment: make the next job re-check."""
        ledger = self._provisioner_for(name).ledger
        record = ledger.read()
        if record.state is KnownState.READY and record.live_lease(ledger.now()) is None:
            logger.warning("deployment %s vanished behind the app's back; ledger corrected", name)
            ledger.change(
                lambda r: mark_suspect(r, observed_ready_since=record.ready_since, now=ledger.now())
            )
