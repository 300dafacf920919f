"""Making the deployment ready and tearing it down, one instance at a time.

`DeploymentProvisioner` is the only place that creates or deletes a deployment. Provisioning
goes in short steps (`advance`), none of which sleeps: whoever takes the ledger's operation
lease reads Azure's state once and does what it calls for (send the create, note that it is
still Creating, probe the data plane once), records it and frees the lease; the caller is told
when to look again, so a job waiting for its deployment can park on a queue instead of holding
an invocation. `ensure_ready` repeats the steps for callers that may block (the operator's
command, tests). Every other caller reads the
ledger blob instead of polling Azure, so a burst of documents costs one create and one
poller. Every wait is bounded by a deadline; failures are recorded in the ledger in words.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from shared.hosting.deployments import (
    RECREATE_STATES,
    TRANSITIONAL_STATES,
    AzureDeployments,
    DeploymentSnapshot,
    DeploymentSpec,
    ProvisioningError,
    describe_create_error,
    error_code,
)
from shared.hosting.grace import IdleGrace
from shared.hosting.holds import (
    KeptBecause,
    KnownState,
    LedgerRecord,
    decide_teardown,
    mark_suspect,
    next_look_seconds,
    note_management_answered,
    note_management_failure,
)
from shared.hosting.ledger import HoldLedger
from shared.hosting.lifecycle import LifecycleEvent, LifecycleListener, ignore_lifecycle
from shared.hosting.room import RoomDecision, decide_room
from shared.inference import ChatClient
from shared.renewal import PeriodicRenewal

logger = logging.getLogger(__name__)

Monotonic = Callable[[], float]
# Keeps the operation lease renewed while a step or a delete runs (a LeaseKeeper by default).
KeepLease = Callable[[HoldLedger, str, float], AbstractContextManager[object]]
# Told, in words, why a caller of `ensure_ready` is still waiting (for the job record).
OnWait = Callable[[str], None]


class AccountRoom:
    """Looks for room on the account before a create, making it from this app's idle ones.

    Lists the account's deployments (one management call) and asks `decide_room`. With no
    room, this app's own fine-tuned deployments that no hold needs are torn down at once
    (`teardown_idle` decides that under their ledgers' leases, so a deployment with a live
    hold is never deleted to make room).
    """

    def __init__(
        self,
        deployments: AzureDeployments,
        *,
        account: str,
        limit: int,
        owner_tag: str,
        teardown_idle: Callable[[str, str], bool],
    ) -> None:
        self._deployments = deployments
        self._account = account
        self._limit = limit
        self._owner_tag = owner_tag
        self._teardown_idle = teardown_idle

    def check(self, deployment: str, owner: str) -> RoomDecision:
        decision = self._decide(deployment)
        if decision.has_room:
            return decision
        for name in decision.owned_in_use:
            if self._teardown_idle(name, owner):
                logger.info("tore down idle deployment %s to make room for %s", name, deployment)
                return self._decide(deployment)
        return decision

    def _decide(self, deployment: str) -> RoomDecision:
        return decide_room(
            self._deployments.list(),
            deployment=deployment,
            account=self._account,
            limit=self._limit,
            owner_tag=self._owner_tag,
        )


@dataclass(frozen=True)
class ProvisioningTimings:
    """Bounds on every wait (seconds). Defaults suit Azure; tests shrink them."""

    poll_interval: float = 15.0
    readiness_timeout: float = 600.0
    delete_timeout: float = 600.0
    lease_ttl: float = 120.0
    create_attempts: int = 3
    # How long a provisioning takes when the app has not yet seen one (then: the last one).
    expected_provision_seconds: float = 300.0
    # The longest a waiting job parks before it looks again.
    max_wait_seconds: float = 300.0


@dataclass(frozen=True)
class Readiness:
    """The outcome of a provisioning step: serving (`record`), or when to look again and why."""

    record: LedgerRecord | None
    wait_seconds: float = 0.0
    reason: str = ""
    # Whether this caller took the step (read Azure, sent a create, probed): the one waiter
    # that drives the provisioning looks again at `wait_seconds`; the others need not.
    stepped: bool = False

    @property
    def ready(self) -> bool:
        return self.record is not None


@dataclass(frozen=True)
class TeardownOutcome:
    deleted: bool
    # The reason, or how to word it (built when read: see `TeardownDecision.why`).
    why: str | Callable[[], str]
    # Set when the deployment was kept: why, for callers that act on it (the operator's
    # `down` exits differently for "something needs it" and "it is not ours").
    kept_because: KeptBecause | None = None

    @property
    def reason(self) -> str:
        return self.why if isinstance(self.why, str) else self.why()


class LeaseKeeper(PeriodicRenewal):
    """Renews the operation lease in the background while its holder works.

    A holder that dies stops renewing, its lease lapses, and another instance takes over. A
    renewal only extends a lease its owner still holds: one delayed past the operation's end
    never takes the lease again.
    """

    def __init__(self, ledger: HoldLedger, owner: str, ttl: float) -> None:
        super().__init__(f"lease-{owner}", ttl, self._renew_lease)
        self._ledger = ledger
        self._owner = owner
        self._ttl = ttl
        self.lost = False

    def _renew_lease(self) -> None:
        if (
            not self._ledger.renew_lease(self._owner, timedelta(seconds=self._ttl))
            and not self.lost
        ):
            self.lost = True
            logger.error("%s lost its lease on %s", self._owner, self._ledger.deployment)


def is_transient(error: Exception) -> bool:
    """A failure of the management plane itself (5xx, no connection), not of our request."""
    if isinstance(error, ServiceRequestError | ServiceResponseError):
        return True
    return isinstance(error, HttpResponseError) and (error.status_code or 0) >= 500


class DeploymentProvisioner:
    """Single-flight provisioning and safe teardown of one deployment."""

    def __init__(
        self,
        *,
        spec: DeploymentSpec,
        ledger: HoldLedger,
        deployments: AzureDeployments,
        chat: ChatClient,
        timings: ProvisioningTimings,
        room: AccountRoom | None = None,
        on_settled: Callable[[LedgerRecord, str], None] | None = None,
        on_lifecycle: LifecycleListener = ignore_lifecycle,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Monotonic = time.monotonic,
        keep_lease: KeepLease | None = None,
    ) -> None:
        self.spec = spec
        self._on_settled = on_settled
        self._on_lifecycle = on_lifecycle
        self.ledger = ledger
        self._deployments = deployments
        self._chat = chat
        self._timings = timings
        self._room = room
        self._sleep = sleep
        self._monotonic = monotonic
        # A replay on a virtual clock passes a keeper that does nothing: no time passes
        # during its steps, so no lease can lapse, and a thread per step would be its cost.
        self._keep_lease: KeepLease = keep_lease or LeaseKeeper

    # --- making it ready ------------------------------------------------------------------

    def advance(
        self,
        owner: str,
        *,
        waiting_since: datetime | None = None,
        known: LedgerRecord | None = None,
    ) -> Readiness:
        """One step towards a serving deployment; never sleeps.

        Returns the ready record, or how long to wait before the next step and why. Raises
        ProvisioningError when provisioning failed for good (quota, a missing role, creates
        that keep failing), or when the failure another instance recorded happened after
        `waiting_since` (when the caller started waiting). `known` is a ledger record the
        caller has just written (its hold), which saves a read on the warm path.
        """
        record = known if known is not None else self.ledger.read()
        if record.state is KnownState.READY:
            return Readiness(record)
        now = self.ledger.now()
        lease = record.live_lease(now)
        if (
            record.state is KnownState.FAILED
            and lease is None
            and record.last_error
            and waiting_since is not None
            and record.state_changed is not None
            and record.state_changed >= waiting_since
        ):
            raise ProvisioningError(record.last_error, code="provisioning_failed")
        if lease is not None and lease.owner != owner:
            reason = record.waiting_for or (
                f"deployment {self.spec.name!r}: {lease.operation} under way by {lease.owner}"
            )
            return self._wait(record, now, reason)
        if record.next_check_at is not None and now < record.next_check_at:
            # The last step said when Azure is worth asking again: until then, however many
            # documents come to look, none of them calls the management API.
            return Readiness(
                None,
                max((record.next_check_at - now).total_seconds(), self._timings.poll_interval),
                self._progress(record),
            )
        # `record` may be the caller's own write from moments ago: another step may have made
        # the deployment ready since, and a lease taken over that would mark it provisioning.
        taken = self.ledger.take_lease(
            owner,
            "provision",
            timedelta(seconds=self._timings.lease_ttl),
            only_if=lambda current: current.state is not KnownState.READY,
        )
        if taken is None:
            current = self.ledger.read()
            if current.state is KnownState.READY:
                return Readiness(current)
            return self._wait(current, now, f"deployment {self.spec.name!r}: another step runs")
        with self._keep_lease(self.ledger, owner, self._timings.lease_ttl):
            try:
                step = self._step(owner, taken, before=record)
            except ProvisioningError as error:
                state = KnownState.UNKNOWN if error.retryable else KnownState.FAILED
                finished = self.ledger.finish_lease(owner, state, error.reason)
                if not error.retryable and self._on_settled is not None:
                    self._on_settled(finished, owner)
                raise
            except Exception as error:
                self.ledger.finish_lease(
                    owner, KnownState.UNKNOWN, f"{type(error).__name__}: {error}"
                )
                raise
        if step.record is not None and self._on_settled is not None:
            # Whoever made it ready (a job, a schedule, the operator) wakes what waits for it.
            self._on_settled(step.record, owner)
        return dataclasses.replace(step, stepped=True)

    def ensure_ready(
        self,
        owner: str,
        *,
        deadline: float,
        on_wait: OnWait | None = None,
    ) -> LedgerRecord:
        """Repeat `advance` until the deployment serves; for callers that may block.

        `on_wait` hears, in words, why the deployment is not serving yet each time the reason
        changes. Raises ProvisioningError when it cannot be made ready by `deadline`.
        """
        since = self.ledger.now()
        told = ""
        while True:
            step = self.advance(owner, waiting_since=since)
            if step.record is not None:
                return step.record
            if on_wait is not None and step.reason != told:
                on_wait(step.reason)
            told = step.reason
            left = deadline - self._monotonic()
            if left <= 0:
                raise ProvisioningError(
                    f"deployment {self.spec.name!r} was not ready in time ({step.reason}).",
                    code="waiting_for_room"
                    if "waiting for room" in step.reason
                    else ("provisioning_timeout"),
                    retryable=True,
                )
            self._sleep(min(step.wait_seconds, self._timings.poll_interval, left))

    def mark_suspect(self, observed_ready_since: datetime | None) -> None:
        """The data plane said DeploymentNotFound for a deployment the ledger calls ready."""
        self.ledger.change(
            lambda r: mark_suspect(
                r, observed_ready_since=observed_ready_since, now=self.ledger.now()
            )
        )

    def _step(self, owner: str, record: LedgerRecord, *, before: LedgerRecord) -> Readiness:
        now = self.ledger.now()
        if record.succeeded_at is not None:
            # Azure already said Succeeded for this provisioning: what is left is the endpoint's
            # warm-up, which only the data plane can tell, so no management call is spent on it
            # (a deployment that vanishes meanwhile ends in the readiness timeout and a re-read).
            return self._probe(owner, record, now)
        try:
            snapshot = self._deployments.get(self.spec.name)
        except (HttpResponseError, ServiceRequestError, ServiceResponseError) as error:
            if not is_transient(error):
                raise
            return self._management_failed(owner, record, f"reading {self.spec.name}", error)
        if record.management_failures or record.management_retry_at is not None:
            record = self.ledger.change(note_management_answered) or record
        state = snapshot.provisioning_state if snapshot.exists else None
        logger.info("deployment %s is %s", self.spec.name, state or "absent")
        if state is None and before.state is KnownState.DELETING:
            self._tell(
                "gone",
                record,
                owner,
                "found absent after the delete was sent",
                last_seen=before.state_changed,
            )
        elif state is None and _thought_up(before):
            self._tell("vanished", record, owner, "found absent when a step read its state")
        if state == "Succeeded":
            return self._probe(owner, record, now)
        if state in TRANSITIONAL_STATES:
            return self._end_step(
                owner,
                record,
                f"deployment {self.spec.name!r} is {state}",
                provisioning_started=record.provisioning_started or now,
            )
        return self._create(owner, record, now, state)

    def _probe(self, owner: str, record: LedgerRecord, now: datetime) -> Readiness:
        """Succeeded is not serving: one probe of the data plane per step."""
        succeeded_at = record.succeeded_at or now
        if self._chat.serves():
            ready = self.ledger.finish_lease(owner, KnownState.READY)
            logger.info("deployment %s is ready", self.spec.name)
            self._tell("serving", ready, owner, None)
            return Readiness(ready)
        if (now - succeeded_at).total_seconds() > self._timings.readiness_timeout:
            raise ProvisioningError(
                f"deployment {self.spec.name!r} reached Succeeded but its endpoint did not serve "
                f"within {self._timings.readiness_timeout:.0f} s",
                code="readiness_timeout",
                retryable=True,
            )
        return self._end_step(
            owner,
            record,
            f"deployment {self.spec.name!r} is Succeeded; waiting for its endpoint to serve",
            succeeded_at=succeeded_at,
            provisioning_started=record.provisioning_started or now,
            wait=self._timings.poll_interval,
        )

    def _create(
        self, owner: str, record: LedgerRecord, now: datetime, state: str | None
    ) -> Readiness:
        if record.creates_since_ready >= self._timings.create_attempts:
            raise ProvisioningError(
                f"provisioning deployment {self.spec.name!r} failed "
                f"{record.creates_since_ready} times (last state: {state or 'absent'}). Check "
                "the model name and the account in the Azure portal.",
                code="provisioning_failed",
            )
        if state in RECREATE_STATES:
            logger.warning("deployment %s is %s; creating it again", self.spec.name, state)
        if self._room is not None:
            try:
                decision = self._room.check(self.spec.name, owner)
            except (HttpResponseError, ServiceRequestError, ServiceResponseError) as error:
                if not is_transient(error):
                    raise
                return self._management_failed(owner, record, "listing the account", error)
            if not decision.has_room:
                logger.warning("%s: %s", self.spec.name, decision.message)
                return self._end_step(
                    owner,
                    record,
                    decision.message,
                    waiting_for=decision.message,
                    wait=self._timings.poll_interval,
                )
        try:
            self._deployments.start_create(self.spec)
        except (ServiceRequestError, ServiceResponseError) as error:
            return self._management_failed(owner, record, f"creating {self.spec.name}", error)
        except HttpResponseError as error:
            if is_transient(error):
                # GatewayTimeout and friends: ARM may have started the create anyway, so the
                # next step re-reads the state rather than sending another PUT blindly.
                return self._management_failed(owner, record, f"creating {self.spec.name}", error)
            note = self._on_create_refused(error)
            waiting = note if "waiting for room" in note else None
            return self._end_step(
                owner, record, note, waiting_for=waiting, wait=self._timings.poll_interval
            )
        logger.info("create of %s sent", self.spec.name)
        self._tell("create_sent", record, owner, None)
        return self._end_step(
            owner,
            record,
            f"deployment {self.spec.name!r}: create sent, Azure is provisioning",
            provisioning_started=now,
            creates_since_ready=record.creates_since_ready + 1,
            succeeded_at=None,
        )

    def _on_create_refused(self, error: HttpResponseError) -> str:
        """What a refused PUT means: a note to wait on, or a ProvisioningError to fail with."""
        status = error.status_code or 0
        code = error_code(error) or str(status)
        if status == 409:
            # A delete of the same name finished moments ago, or another operation runs.
            logger.warning("create of %s conflicted (%s); waiting", self.spec.name, code)
            return f"the create conflicted ({code}); waiting for the other operation"
        described = describe_create_error(error, self.spec)
        if described.code == "deployment_limit" and self._room is not None:
            # Another creator took the last place between our look and our create.
            logger.warning("create of %s refused for the account's limit", self.spec.name)
            return f"waiting for room on the account: {described.reason}"
        raise described

    def _management_failed(
        self, owner: str, record: LedgerRecord, doing: str, error: Exception
    ) -> Readiness:
        """The management plane is down or slow, not our request: no instance asks it again
        until the backoff recorded in the ledger has passed, and the documents that wait are
        charged nothing for it."""
        now = self.ledger.now()
        noted = note_management_failure(
            record,
            now=now,
            poll=self._timings.poll_interval,
            longest=self._timings.max_wait_seconds,
        )
        assert noted.management_retry_at is not None
        wait = max((noted.management_retry_at - now).total_seconds(), 0.0)
        logger.warning(
            "%s failed transiently (%d in a row); the management API is left alone for %.0f s: %s",
            doing,
            noted.management_failures,
            wait,
            error,
        )
        return self._end_step(
            owner,
            record,
            f"the management API failed ({type(error).__name__}); looking again in {wait:.0f} s",
            wait=wait,
            management_failures=noted.management_failures,
            management_retry_at=noted.management_retry_at,
        )

    def _end_step(
        self,
        owner: str,
        record: LedgerRecord,
        reason: str,
        *,
        wait: float | None = None,
        **fields: object,
    ) -> Readiness:
        now = self.ledger.now()
        fields.setdefault("waiting_for", None)
        merged = record.model_copy(update=fields)
        seconds = wait if wait is not None else self._next_look(merged, now)
        self.ledger.end_step(
            owner,
            last_checked=now,
            next_check_at=now + timedelta(seconds=seconds),
            **fields,
        )
        return Readiness(None, seconds, reason)

    def _wait(self, record: LedgerRecord, now: datetime, reason: str) -> Readiness:
        return Readiness(None, self._next_look(record, now), reason)

    def _next_look(self, record: LedgerRecord, now: datetime) -> float:
        return next_look_seconds(
            record,
            now,
            poll=self._timings.poll_interval,
            expected=self._timings.expected_provision_seconds,
            longest=self._timings.max_wait_seconds,
        )

    def _progress(self, record: LedgerRecord) -> str:
        if record.waiting_for:
            return record.waiting_for
        if record.succeeded_at is not None:
            return f"deployment {self.spec.name!r} is Succeeded; waiting for its endpoint to serve"
        if record.provisioning_started is not None:
            return f"deployment {self.spec.name!r} is being provisioned"
        return f"deployment {self.spec.name!r} is {record.state.value}"

    # --- tearing it down ------------------------------------------------------------------

    def teardown_if_idle(
        self,
        owner: str,
        *,
        idle_grace: IdleGrace,
        snapshot: DeploymentSnapshot | None = None,
        max_lifetime: timedelta | None = None,
        known: LedgerRecord | None = None,
        follow: bool = False,
    ) -> TeardownOutcome:
        """Delete the deployment if no live hold needs it and its idle grace has passed.

        `known` is a ledger record the caller has just written; the decision to delete is
        re-checked on a fresh read inside the lease's compare-and-swap either way. Unless
        `follow`, the delete is sent and not waited for: Azure finishes it on its own (the
        ledger says `deleting`), and a later step that needs the deployment reads its state
        like any other transition, so no invocation polls the operation.
        """
        record = known if known is not None else self.ledger.read()
        exists = snapshot.exists if snapshot is not None else record.state is not KnownState.ABSENT
        if snapshot is not None and snapshot.provisioning_state == "Deleting":
            return TeardownOutcome(False, "already being deleted", "absent")
        created_at = snapshot.created_at if snapshot is not None else None

        def due(current: LedgerRecord) -> bool:
            return decide_teardown(
                current,
                now=self.ledger.now(),
                idle_grace=idle_grace,
                exists=exists,
                created_at=created_at,
                max_lifetime=max_lifetime,
            ).delete

        decision = decide_teardown(
            record,
            now=self.ledger.now(),
            idle_grace=idle_grace,
            exists=exists,
            created_at=created_at,
            max_lifetime=max_lifetime,
        )
        if not decision.delete:
            return TeardownOutcome(False, decision.why, decision.kept_because)
        taken = self.ledger.take_lease(
            owner, "delete", timedelta(seconds=self._timings.lease_ttl), only_if=due
        )
        if taken is None:
            return TeardownOutcome(False, "a hold or another operation appeared first", "raced")
        with self._keep_lease(self.ledger, owner, self._timings.lease_ttl):
            return self._delete_under_lease(
                owner, due, decision.reason, snapshot, follow=follow, before=record
            )

    def delete_now(self, owner: str, *, force: bool = False) -> TeardownOutcome:
        """Delete the deployment now, without waiting for its idle grace (the operator's `down`).

        Unforced, it is a teardown with no idle grace: never under a live hold. Forced, live
        holds do not stop it; they are kept, so a job that still needs the deployment
        provisions it again when it next calls it. Either way Azure's state is read first
        (the ledger may be behind), the ledger's delete lease is taken (so never during
        another instance's provisioning or delete), a deployment not tagged as this app's is
        refused, and the outcome is recorded in the ledger.
        """
        snapshot = self._deployments.get(self.spec.name)
        if not force:
            return self.teardown_if_idle(
                owner, idle_grace=timedelta(0), snapshot=snapshot, follow=True
            )
        if not snapshot.exists:
            return TeardownOutcome(False, "deployment does not exist", "absent")
        before = self.ledger.read()
        held = before.live_holds(self.ledger.now())
        reason = f"forced by {owner}" + (f" under {len(held)} live hold(s)" if held else "")
        taken = self.ledger.take_lease(owner, "delete", timedelta(seconds=self._timings.lease_ttl))
        if taken is None:
            lease = self.ledger.read().live_lease(self.ledger.now())
            running = f"{lease.owner} is running a {lease.operation}" if lease else "busy"
            return TeardownOutcome(False, running, "busy")
        if held:
            logger.warning(
                "%s deletes %s under %d live hold(s): %s",
                owner,
                self.spec.name,
                len(held),
                ", ".join(f"{h.kind}:{h.owner}" for h in held),
            )
        with self._keep_lease(self.ledger, owner, self._timings.lease_ttl):
            return self._delete_under_lease(
                owner, lambda _record: True, reason, snapshot, follow=True, before=before
            )

    def _delete_under_lease(
        self,
        owner: str,
        due: Callable[[LedgerRecord], bool],
        reason: str,
        snapshot: DeploymentSnapshot | None,
        *,
        follow: bool,
        before: LedgerRecord,
    ) -> TeardownOutcome:
        """Delete under the lease just taken; `before` is the ledger as it was before it."""
        try:
            # The reaper's list is seconds old and carries the tags; the fast path must look.
            current = snapshot if snapshot is not None else self._deployments.get(self.spec.name)
            if not current.exists:
                finished = self.ledger.finish_lease(owner, KnownState.ABSENT)
                if before.state is KnownState.DELETING:
                    self._tell(
                        "gone",
                        finished,
                        owner,
                        "found absent after the delete was sent",
                        last_seen=before.state_changed,
                    )
                elif _thought_up(before):
                    self._tell("vanished", finished, owner, "found absent when about to delete")
                return TeardownOutcome(False, "already absent", "absent")
            if not current.owned_by(self.spec.owner_tag):
                self.ledger.finish_lease(
                    owner, KnownState.UNKNOWN, "deployment is not tagged as ours; not deleting it"
                )
                logger.warning(
                    "refusing to delete %s: it lacks the tag managed-by=%s",
                    self.spec.name,
                    self.spec.owner_tag,
                )
                return TeardownOutcome(False, "not owned by this app", "not_owned")
            if not due(self.ledger.read().model_copy(update={"lease": None})):
                # A job placed a hold after we took the lease: keep the deployment.
                state = (
                    KnownState.READY
                    if current.provisioning_state == "Succeeded"
                    else KnownState.UNKNOWN
                )
                self.ledger.finish_lease(owner, state)
                return TeardownOutcome(False, "a hold arrived before the delete started", "held")
            logger.info("deleting deployment %s: %s", self.spec.name, reason)
            if not follow:
                self._deployments.start_delete(self.spec.name)
                deleting = self.ledger.finish_lease(owner, KnownState.DELETING)
                logger.info("delete of %s sent (%s)", self.spec.name, reason)
                self._tell("delete_sent", deleting, owner, reason)
                return TeardownOutcome(True, reason)
            poller = self._deployments.begin_delete(self.spec.name)
            self._tell("delete_sent", self.ledger.read(), owner, reason)
            poller.result(timeout=self._timings.delete_timeout)
            if not poller.done():
                raise ProvisioningError(
                    f"deleting {self.spec.name!r} did not finish within "
                    f"{self._timings.delete_timeout:.0f} s",
                    code="delete_timeout",
                    retryable=True,
                )
        except Exception as error:
            self.ledger.finish_lease(owner, KnownState.UNKNOWN, f"delete failed: {error}")
            raise
        gone = self.ledger.finish_lease(owner, KnownState.ABSENT)
        logger.info("deployment %s deleted (%s)", self.spec.name, reason)
        self._tell("gone", gone, owner, "the delete finished")
        return TeardownOutcome(True, reason)

    def _tell(
        self,
        event: LifecycleEvent,
        record: LedgerRecord,
        actor: str,
        note: str | None,
        *,
        last_seen: datetime | None = None,
    ) -> None:
        """Tell the lifecycle listener; what it does (the hosting log) never fails the step."""
        try:
            self._on_lifecycle(event, record, actor, note, last_seen=last_seen)
        except Exception:
            logger.exception("lifecycle listener failed on %s of %s", event, self.spec.name)


def _thought_up(record: LedgerRecord) -> bool:
    """Whether the ledger says a deployment should exist (a create was sent, or it served).

    Found absent then, it vanished: Azure removed it (a failed create, a deletion behind the
    app's back). A fresh ledger, or one whose delete was sent, expects nothing.
    """
    if record.state in (KnownState.ABSENT, KnownState.DELETING):
        return False
    return (
        record.provisioning_started is not None
        or record.state is KnownState.READY
        # Marked suspect after serving (the data plane said DeploymentNotFound).
        or (record.state is KnownState.UNKNOWN and record.provision_count > 0)
    )
