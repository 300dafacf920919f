"""The reaper: deletes owned deployments that nothing needs any more.

It is the backstop for the fast path in the engine: a deployment whose last hold expired (a
crashed job), whose idle grace passed after the last job left, or that has outlived the
maximum lifetime, each by its own hosted model's settings. One pass covers every deployment
in the account; it only ever touches those tagged as this app's (an owned deployment of a
model no longer declared falls back to the app-wide grace and lifetime), and it corrects a
model's ledger when its deployment vanished behind the app's back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from shared.hosting.deployments import AzureDeployments
from shared.hosting.holds import KnownState, mark_suspect
from shared.hosting.hosted import HostedDeployment
from shared.hosting.ledger import HoldLedger
from shared.hosting.provisioner import DeploymentProvisioner
from shared.observability import log_fields

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
        hosted: Mapping[str, HostedDeployment],
        provisioner_for: Callable[[str], DeploymentProvisioner],
        owner_tag: str,
        idle_grace: timedelta,
        max_lifetime: timedelta,
    ) -> None:
        self._deployments = deployments
        self._by_deployment = {h.spec.name.lower(): h for h in hosted.values()}
        self._provisioner_for = provisioner_for
        self._owner_tag = owner_tag
        self._idle_grace = idle_grace
        self._max_lifetime = max_lifetime

    def run(self, owner: str) -> list[ReapReport]:
        reports: list[ReapReport] = []
        snapshots = self._deployments.list()
        names = {s.name.lower() for s in snapshots}
        for key, hosted in self._by_deployment.items():
            if key not in names:
                self._forget_vanished(hosted.ledger)
        for snapshot in snapshots:
            if not snapshot.owned_by(self._owner_tag):
                continue
            if snapshot.provisioning_state == "Deleting":
                reports.append(ReapReport(snapshot.name, False, "already being deleted"))
                continue
            owner_model = self._by_deployment.get(snapshot.name.lower())
            if owner_model is not None:
                provisioner = owner_model.provisioner
                idle_grace, max_lifetime = owner_model.idle_grace, owner_model.max_lifetime
            else:
                provisioner = self._provisioner_for(snapshot.name)
                idle_grace, max_lifetime = self._idle_grace, self._max_lifetime
            with log_fields(
                deployment=snapshot.name, model=owner_model.name if owner_model else None
            ):
                outcome = provisioner.teardown_if_idle(
                    owner, idle_grace=idle_grace, snapshot=snapshot, max_lifetime=max_lifetime
                )
            if outcome.deleted:
                logger.info("reaper deleted %s: %s", snapshot.name, outcome.reason)
            else:
                logger.info("reaper kept %s: %s", snapshot.name, outcome.reason)
            reports.append(ReapReport(snapshot.name, outcome.deleted, outcome.reason))
        return reports

    def _forget_vanished(self, ledger: HoldLedger) -> None:
        """The ledger says ready but Azure has no such deployment: make the next job re-check."""
        record = ledger.read()
        if record.state is KnownState.READY and record.live_lease(ledger.now()) is None:
            logger.warning(
                "deployment %s vanished behind the app's back; ledger corrected", ledger.deployment
            )
            ledger.change(
                lambda r: mark_suspect(r, observed_ready_since=record.ready_since, now=ledger.now())
            )
