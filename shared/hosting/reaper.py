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

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from shared.hosting.deployments import AzureDeployments
from shared.hosting.grace import IdleGrace
from shared.hosting.holds import (
    KnownState,
    LedgerRecord,
    decide_teardown,
    management_paused,
    mark_suspect,
    note_management_answered,
    note_management_failure,
)
from shared.hosting.hosted import HostedDeployment
from shared.hosting.ledger import HoldLedger
from shared.hosting.lifecycle import LifecycleEvent, LifecycleListener, ignore_lifecycle
from shared.hosting.provisioner import DeploymentProvisioner, is_transient
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
        idle_grace: IdleGrace,
        max_lifetime: timedelta,
        full_sweep_every: timedelta = timedelta(hours=1),
        poll_seconds: float = 15.0,
        longest_pause_seconds: float = 300.0,
        on_lifecycle: Callable[[str], LifecycleListener] = lambda _model: ignore_lifecycle,
    ) -> None:
        # The lifecycle listener of a hosted model, by model name (the hosting log's writer).
        self._on_lifecycle = on_lifecycle
        self._deployments = deployments
        self._by_deployment = {h.spec.name.lower(): h for h in hosted.values()}
        self._provisioner_for = provisioner_for
        self._owner_tag = owner_tag
        self._idle_grace = idle_grace
        self._max_lifetime = max_lifetime
        self._full_sweep_every = full_sweep_every
        self._last_listed: datetime | None = None
        # The backoff after a failed listing: as a provisioning step's (see holds.py).
        self._poll_seconds = poll_seconds
        self._longest_pause = longest_pause_seconds
        # When each deployment was last in a listing (sent time): a deployment missing from the
        # next one went between then and now.
        self._listed_present: dict[str, datetime] = {}

    def run(self, owner: str) -> list[ReapReport]:
        reports: list[ReapReport] = []
        records = {key: hosted.ledger.read() for key, hosted in self._by_deployment.items()}
        now = self._now()
        paused = [r for r in records.values() if management_paused(r, now)]
        if paused:
            # Another look (any instance's) found the management API failing: wait out the
            # backoff in the ledger instead of adding calls to the outage.
            until = max(r.management_retry_at for r in paused if r.management_retry_at)
            logger.warning("reaper: the management API failed lately; not listing before %s", until)
            return reports
        why = self._why_list(records, now)
        if why is None:
            # Every pass of a quiet app: DEBUG, so the log shows the passes that did something.
            logger.debug("reaper: every hosted deployment is held or absent; account not listed")
            return reports
        logger.info("reaper lists the account: %s", why)
        asked = self._now()
        try:
            snapshots = self._deployments.list()
        except (HttpResponseError, ServiceRequestError, ServiceResponseError) as error:
            if not is_transient(error):
                raise
            self._note_failure(error)
            return reports
        for key, hosted in self._by_deployment.items():
            if records[key].management_failures or records[key].management_retry_at:
                hosted.ledger.change(note_management_answered)
        self._last_listed = self._now()
        names = {s.name.lower() for s in snapshots}
        for key, hosted in self._by_deployment.items():
            if key not in names:
                self._forget_vanished(
                    hosted.ledger,
                    hosted.name,
                    owner,
                    listed_present=self._listed_present.pop(key, None),
                    listed_absent=self._last_listed,
                )
        self._listed_present.update(dict.fromkeys(names, asked))
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

    def next_pass_due(self) -> datetime:
        """The first moment a pass may list the account or change anything, the ledgers as
        they are now: passes before it only read the ledgers (see `listing_due`).

        The planner's replay runs the pass once per virtual minute, as the timer does, and
        skips the passes this says cannot matter until some ledger changes.
        """
        now = self._now()
        if self._last_listed is None:
            return now
        due = self._last_listed + self._full_sweep_every
        for hosted in self._by_deployment.values():
            record = hosted.ledger.read()
            if management_paused(record, now):
                # Every pass is a no-op while any model's pause lasts.
                assert record.management_retry_at is not None
                due = min(due, record.management_retry_at)
                continue
            at = listing_due(record, now, hosted.idle_grace, hosted.max_lifetime)
            if at is not None:
                due = min(due, at)
        return due

    def _now(self) -> datetime:
        first = next(iter(self._by_deployment.values()), None)
        return first.ledger.now() if first is not None else datetime.now().astimezone()

    def _why_list(self, records: Mapping[str, LedgerRecord], now: datetime) -> str | None:
        """Why this pass must list the account, or None when the ledgers say nothing is due."""
        if self._last_listed is None or now - self._last_listed >= self._full_sweep_every:
            return "periodic full sweep"
        for key, hosted in self._by_deployment.items():
            why = why_list_the_account(records[key], now, hosted.idle_grace, hosted.max_lifetime)
            if why is not None:
                return f"{hosted.name}: {why}"
        return None

    def _note_failure(self, error: Exception) -> None:
        """The listing failed for the management API's sake: every model's ledger says so,
        so no instance's reaper or provisioning step asks again before the backoff."""
        for hosted in self._by_deployment.values():
            ledger = hosted.ledger

            def failed(record: LedgerRecord, ledger: HoldLedger = ledger) -> LedgerRecord | None:
                noted = note_management_failure(
                    record, now=ledger.now(), poll=self._poll_seconds, longest=self._longest_pause
                )
                return noted if noted != record else None

            noted = ledger.change(failed) or ledger.read()
            logger.warning(
                "reaper: listing the account failed transiently (%d in a row); not before %s: %s",
                noted.management_failures,
                noted.management_retry_at,
                error,
            )

    def _forget_vanished(
        self,
        ledger: HoldLedger,
        model: str,
        owner: str,
        *,
        listed_present: datetime | None,
        listed_absent: datetime,
    ) -> None:
        """The ledger says ready but Azure has no such deployment: make the next job re-check."""
        record = ledger.read()
        if record.live_lease(ledger.now()) is not None:
            return
        tell = self._on_lifecycle(model)
        if record.state is KnownState.DELETING:
            # A delete the app sent without following it has finished.
            gone = ledger.change(
                lambda r: (
                    r.model_copy(update={"state": KnownState.ABSENT})
                    if r.state is KnownState.DELETING and r.live_lease(ledger.now()) is None
                    else None
                )
            )
            if gone is not None:
                # Known present until the delete was sent, or the last listing that showed it.
                seen = [m for m in (record.state_changed, listed_present) if m is not None]
                _tell(
                    tell,
                    "gone",
                    gone,
                    owner,
                    "absent from the account's listing",
                    last_seen=max(seen) if seen else None,
                    observed=listed_absent,
                )
            return
        if record.state is KnownState.UNKNOWN:
            # Never seen yet (a new app or model), or a re-check asked for: Azure has no such
            # deployment, so it is absent, and later passes need not list the account for it.
            changed = record.state_changed
            ledger.change(
                lambda r: (
                    r.model_copy(update={"state": KnownState.ABSENT})
                    if r.state is KnownState.UNKNOWN
                    and r.state_changed == changed
                    and r.live_lease(ledger.now()) is None
                    else None
                )
            )
            return
        if record.state is KnownState.READY:
            logger.warning(
                "deployment %s vanished behind the app's back; ledger corrected", ledger.deployment
            )
            corrected = ledger.change(
                lambda r: mark_suspect(r, observed_ready_since=record.ready_since, now=ledger.now())
            )
            if corrected is not None and corrected.state is not KnownState.READY:
                _tell(
                    tell,
                    "vanished",
                    corrected,
                    owner,
                    "absent from the account's listing",
                    observed=listed_absent,
                )


def _tell(
    listener: LifecycleListener,
    event: LifecycleEvent,
    record: LedgerRecord,
    owner: str,
    note: str,
    *,
    last_seen: datetime | None = None,
    observed: datetime | None = None,
) -> None:
    try:
        listener(event, record, owner, note, last_seen=last_seen, observed=observed)
    except Exception:
        logger.exception("lifecycle listener failed on %s of %s", event, record.deployment)


def why_list_the_account(
    record: LedgerRecord, now: datetime, idle_grace: IdleGrace, max_lifetime: timedelta
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


def listing_due(
    record: LedgerRecord, now: datetime, idle_grace: IdleGrace, max_lifetime: timedelta
) -> datetime | None:
    """A moment at or before which `why_list_the_account` gives no reason, `record` unchanged
    (pure); at or before `now` when it may give one now, None when it never will.

    Each of its reasons only comes with time (a lease lapses, holds expire, the grace runs
    out, the lifetime ends), so the soonest of those moments is safe to wait for; it may come
    early, never late.
    """
    lease = record.live_lease(now)
    if record.state is KnownState.ABSENT and lease is None:
        return None
    if record.state is KnownState.DELETING and lease is None:
        return now
    candidates: list[datetime] = []
    if lease is not None:
        candidates.append(lease.expires)
    born = record.provisioning_started or record.ready_since
    if born is not None:
        candidates.append(born + max_lifetime)
    decision = decide_teardown(record, now=now, idle_grace=idle_grace, exists=True)
    if decision.delete:
        return now
    if decision.retry_after is not None:
        candidates.append(now + decision.retry_after)
    return min(candidates, default=None)
