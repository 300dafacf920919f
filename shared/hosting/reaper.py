"""The reaper: deletes owned deployments that nothing needs any more.

It is the backstop for the fast path in the engine: a deployment whose last hold expired (a
crashed job), whose idle grace passed after the last job left, or that has outlived the
maximum lifetime, each by its own hosted model's settings. One pass covers every deployment
in the account; it only ever touches those tagged as this app's (an owned deployment of a
model no longer declared falls back to the app-wide grace and lifetime), and it corrects a
model's ledger when its deployment vanished behind the app's back.

Listing the account is a management call, and the reaper runs every minute: a pass lists only
when some hosted model's ledger says there may be something to do (a deployment with no live
hold whose grace has passed, one past its lifetime, a state to correct), and otherwise at least
once per `full_sweep_every` (an owned deployment of a model no longer declared, one the
ledgers know nothing of). While every deployment is held, the minute's pass reads blobs only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.hosting.deployments import AzureDeployments
from shared.hosting.holds import KnownState, LedgerRecord, decide_teardown, mark_suspect
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
        full_sweep_every: timedelta = timedelta(hours=1),
    ) -> None:
        self._deployments = deployments
        self._by_deployment = {h.spec.name.lower(): h for h in hosted.values()}
        self._provisioner_for = provisioner_for
        self._owner_tag = owner_tag
        self._idle_grace = idle_grace
        self._max_lifetime = max_lifetime
        self._full_sweep_every = full_sweep_every
        self._last_listed: datetime | None = None

    def run(self, owner: str) -> list[ReapReport]:
        reports: list[ReapReport] = []
        why = self._why_list()
        if why is None:
            # Every pass of a quiet app: DEBUG, so the log shows the passes that did something.
            logger.debug("reaper: every hosted deployment is held or absent; account not listed")
            return reports
        logger.info("reaper lists the account: %s", why)
        snapshots = self._deployments.list()
        self._last_listed = self._now()
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

    def _now(self) -> datetime:
        first = next(iter(self._by_deployment.values()), None)
        return first.ledger.now() if first is not None else datetime.now().astimezone()

    def _why_list(self) -> str | None:
        """Why this pass must list the account, or None when the ledgers say nothing is due."""
        now = self._now()
        if self._last_listed is None or now - self._last_listed >= self._full_sweep_every:
            return "periodic full sweep"
        for hosted in self._by_deployment.values():
            why = why_list_the_account(
                hosted.ledger.read(), now, hosted.idle_grace, hosted.max_lifetime
            )
            if why is not None:
                return f"{hosted.name}: {why}"
        return None

    def _forget_vanished(self, ledger: HoldLedger) -> None:
        """The ledger says ready but Azure has no such deployment: make the next job re-check."""
        record = ledger.read()
        if record.live_lease(ledger.now()) is not None:
            return
        if record.state is KnownState.DELETING:
            # A delete the app sent without following it has finished.
            ledger.change(
                lambda r: (
                    r.model_copy(update={"state": KnownState.ABSENT})
                    if r.state is KnownState.DELETING and r.live_lease(ledger.now()) is None
                    else None
                )
            )
            return
        if record.state is KnownState.UNKNOWN:
            # Never seen yet (a new app or model), or a re-check asked for: Azure has no such
            # deployment, so it is absent, and later passes need not list the account for it.
            seen = record.state_changed
            ledger.change(
                lambda r: (
                    r.model_copy(update={"state": KnownState.ABSENT})
                    if r.state is KnownState.UNKNOWN
                    and r.state_changed == seen
                    and r.live_lease(ledger.now()) is None
                    else None
                )
            )
            return
        if record.state is KnownState.READY:
            logger.warning(
                "deployment %s vanished behind the app's back; ledger corrected", ledger.deployment
            )
            ledger.change(
                lambda r: mark_suspect(r, observed_ready_since=record.ready_since, now=ledger.now())
            )


def why_list_the_account(
    record: LedgerRecord, now: datetime, idle_grace: timedelta, max_lifetime: timedelta
) -> str | None:
    """Whether a model's ledger says the account is worth listing now (pure)."""
    if record.state is KnownState.ABSENT and record.live_lease(now) is None:
        return None
    if record.state is KnownState.DELETING and record.live_lease(now) is None:
        return "a delete was sent; confirming it finished"
    born = record.provisioning_started or record.ready_since
    if born is not None and now - born >= max_lifetime:
        return "may be past its maximum lifetime"
    decision = decide_teardown(record, now=now, idle_grace=idle_grace, exists=True)
    return decision.reason if decision.delete else None
