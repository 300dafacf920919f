"""Making the deployment ready and tearing it down, one instance at a time.

`DeploymentProvisioner` is the only place that creates or deletes a deployment. Whoever
takes the ledger's operation lease does the management-plane work (reads the state, creates
or waits, follows the SDK poller, probes the data plane); every other caller waits on the
ledger blob instead of polling Azure, so a burst of documents costs one create and one
poller. Every wait is bounded by a deadline; failures are recorded in the ledger in words.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from azure.core.exceptions import HttpResponseError
from azure.core.polling import LROPoller
from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

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
from shared.hosting.holds import (
    KeptBecause,
    KnownState,
    LedgerRecord,
    decide_teardown,
    mark_suspect,
)
from shared.hosting.ledger import HoldLedger
from shared.hosting.room import RoomDecision, decide_room
from shared.inference import ChatClient
from shared.renewal import PeriodicRenewal

logger = logging.getLogger(__name__)

Monotonic = Callable[[], float]
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


@dataclass(frozen=True)
class TeardownOutcome:
    deleted: bool
    reason: str
    # Set when the deployment was kept: why, for callers that act on it (the operator's
    # `down` exits differently for "something needs it" and "it is not ours").
    kept_because: KeptBecause | None = None


class LeaseKeeper(PeriodicRenewal):
    """Renews the operation lease in the background while its holder works.

    A holder that dies stops renewing, its lease lapses, and another instance takes over
    (resuming the SDK poller from the continuation token kept in the lease).
    """

    def __init__(
        self,
        ledger: HoldLedger,
        owner: str,
        operation: Literal["provision", "delete"],
        ttl: float,
    ) -> None:
        super().__init__(f"lease-{owner}", ttl, self._renew_lease)
        self._ledger = ledger
        self._owner = owner
        self._operation: Literal["provision", "delete"] = operation
        self._ttl = ttl
        self.continuation_token: str | None = None
        self.lost = False

    def __enter__(self) -> LeaseKeeper:
        record = self._ledger.read()
        if record.lease is not None and record.lease.owner == self._owner:
            self.continuation_token = record.lease.continuation_token
        super().__enter__()
        return self

    def remember(self, continuation_token: str) -> None:
        self.continuation_token = continuation_token
        self._renew_lease()

    def _renew_lease(self) -> None:
        taken = self._ledger.take_lease(
            self._owner,
            self._operation,
            timedelta(seconds=self._ttl),
            continuation_token=self.continuation_token,
        )
        if taken is None and not self.lost:
            self.lost = True
            logger.error(
                "%s lost the %s lease on %s", self._owner, self._operation, self._ledger.deployment
            )


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
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Monotonic = time.monotonic,
    ) -> None:
        self.spec = spec
        self.ledger = ledger
        self._deployments = deployments
        self._chat = chat
        self._timings = timings
        self._room = room
        self._sleep = sleep
        self._monotonic = monotonic

    # --- making it ready ------------------------------------------------------------------

    def ensure_ready(
        self,
        owner: str,
        *,
        deadline: float,
        known: LedgerRecord | None = None,
        on_wait: OnWait | None = None,
    ) -> LedgerRecord:
        """Return once the deployment serves, provisioning it if this caller wins the lease.

        `known` is a ledger record the caller has just written (its hold), which saves a read
        on the warm path. `on_wait` hears, in words, why the deployment is not being created
        yet (no room on the account). Raises ProvisioningError with a reason when the
        deployment cannot be made ready by `deadline`, or when the provisioning this caller
        waited for failed.
        """
        told: str | None = None

        def tell(note: str | None) -> None:
            nonlocal told
            if note is not None and note != told and on_wait is not None:
                on_wait(note)
            told = note

        saw_other_provisioning = False
        while True:
            record, known = (known, None) if known is not None else (self.ledger.read(), None)
            if record.state is KnownState.READY:
                return record
            now = self.ledger.now()
            lease = record.live_lease(now)
            if (
                record.state is KnownState.FAILED
                and lease is None
                and saw_other_provisioning
                and record.last_error
            ):
                raise ProvisioningError(record.last_error, code="provisioning_failed")
            if self._monotonic() >= deadline:
                waiting = f" ({record.waiting_for})" if record.waiting_for else ""
                raise ProvisioningError(
                    f"deployment {self.spec.name!r} was not ready in time (last known state: "
                    f"{record.state.value}{waiting}); the document stays queued and is retried.",
                    code="waiting_for_room" if record.waiting_for else "provisioning_timeout",
                    retryable=True,
                )
            if lease is not None and lease.owner != owner:
                saw_other_provisioning = saw_other_provisioning or lease.operation == "provision"
                tell(record.waiting_for)
                self._sleep(self._timings.poll_interval)
                continue
            taken = self.ledger.take_lease(
                owner, "provision", timedelta(seconds=self._timings.lease_ttl)
            )
            if taken is None:
                continue
            self._lead_provisioning(owner, deadline, tell)

    def recheck(
        self,
        owner: str,
        *,
        observed_ready_since: datetime | None,
        deadline: float,
        on_wait: OnWait | None = None,
    ) -> LedgerRecord:
        """The data plane (or Azure's state) says the deployment the ledger calls ready is not."""
        self.ledger.change(
            lambda r: mark_suspect(
                r,
                observed_ready_since=observed_ready_since,
                now=self.ledger.now(),
            )
        )
        return self.ensure_ready(owner, deadline=deadline, on_wait=on_wait)

    def _lead_provisioning(self, owner: str, deadline: float, tell: OnWait) -> None:
        logger.info("%s leads provisioning of %s", owner, self.spec.name)
        with LeaseKeeper(self.ledger, owner, "provision", self._timings.lease_ttl) as keeper:
            try:
                self._converge(keeper, owner, deadline, tell)
                self._await_serving(deadline)
            except ProvisioningError as error:
                state = KnownState.UNKNOWN if error.retryable else KnownState.FAILED
                self.ledger.finish_lease(owner, state, error.reason)
                raise
            except Exception as error:
                self.ledger.finish_lease(
                    owner, KnownState.UNKNOWN, f"{type(error).__name__}: {error}"
                )
                raise
        self.ledger.finish_lease(owner, KnownState.READY)
        logger.info("deployment %s is ready", self.spec.name)

    def _converge(self, keeper: LeaseKeeper, owner: str, deadline: float, tell: OnWait) -> None:
        """Drive Azure's state to Succeeded, re-reading it after every step."""
        creates = 0
        last_failure = ""
        while True:
            snapshot = self._deployments.get(self.spec.name)
            state = snapshot.provisioning_state if snapshot.exists else None
            logger.info("deployment %s is %s", self.spec.name, state or "absent")
            if state == "Succeeded":
                return
            if state in TRANSITIONAL_STATES:
                if state != "Deleting" and keeper.continuation_token:
                    self._follow_poller(
                        self._deployments.resume_create(self.spec.name, keeper.continuation_token),
                        deadline,
                    )
                    keeper.continuation_token = None
                else:
                    self._wait_while_transitional(deadline)
                continue
            if creates >= self._timings.create_attempts:
                raise ProvisioningError(
                    f"provisioning deployment {self.spec.name!r} failed {creates} times; last "
                    f"error: {last_failure or state}. Check the model name and the account in "
                    "the Azure portal.",
                    code="provisioning_failed",
                )
            if state in RECREATE_STATES:
                logger.warning("deployment %s is %s; creating it again", self.spec.name, state)
            elif self._room is not None:
                self._wait_for_room(owner, deadline, tell)
            try:
                poller = self._deployments.begin_create(self.spec)
            except HttpResponseError as error:
                # A refused PUT (conflict, gateway timeout) is not a failed provisioning: the
                # deadline bounds how long it is retried.
                last_failure = self._on_create_refused(error, deadline)
                continue
            creates += 1
            keeper.remember(poller.continuation_token())
            try:
                self._follow_poller(poller, deadline)
            except HttpResponseError as error:
                last_failure = getattr(getattr(error, "error", None), "message", None) or str(error)
                logger.warning("provisioning %s failed: %s", self.spec.name, last_failure)
                keeper.continuation_token = None
                continue
            # The poller ends with a GET of the resource: Succeeded needs no second look.
            return

    def _wait_for_room(self, owner: str, deadline: float, tell: OnWait) -> None:
        """Hold the lease, and wait, until the account has room for one more deployment."""
        assert self._room is not None
        waited = False
        while True:
            decision = self._room.check(self.spec.name, owner)
            if decision.has_room:
                if waited:
                    self.ledger.note_waiting(owner, None)
                    logger.info("room for %s: %s", self.spec.name, decision.message)
                return
            if not waited:
                logger.warning("%s: %s", self.spec.name, decision.message)
            waited = True
            self.ledger.note_waiting(owner, decision.message)
            tell(decision.message)
            if self._monotonic() >= deadline:
                raise ProvisioningError(
                    f"{decision.message}; the document stays queued and is retried.",
                    code="waiting_for_room",
                    retryable=True,
                )
            self._sleep(self._timings.poll_interval)

    def _on_create_refused(self, error: HttpResponseError, deadline: float) -> str:
        """Decide what a refused PUT means; return a note, or raise when retrying is pointless."""
        status = error.status_code or 0
        code = error_code(error) or str(status)
        if status >= 500:
            # GatewayTimeout and friends: ARM may have started the create anyway, so re-read
            # the state rather than sending another PUT blindly.
            logger.warning("create of %s answered %s; re-reading its state", self.spec.name, code)
            self._check_deadline(deadline, f"retrying a create that answered {code}")
            self._sleep(self._timings.poll_interval)
            return f"{code} from the management API"
        if status == 409:
            # A delete of the same name finished moments ago, or another operation runs.
            logger.warning("create of %s conflicted (%s); waiting", self.spec.name, code)
            self._check_deadline(deadline, "waiting for a conflicting operation to finish")
            self._sleep(self._timings.poll_interval)
            return f"{code}: {error}"
        described = describe_create_error(error, self.spec)
        if described.code == "deployment_limit" and self._room is not None:
            # Another creator took the last place between our look and our create: the next
            # pass looks again and waits for room like any other.
            logger.warning("create of %s refused for the account's limit; waiting", self.spec.name)
            self._check_deadline(deadline, "waiting for room on the account")
            self._sleep(self._timings.poll_interval)
            return described.reason
        raise described

    def _follow_poller(self, poller: LROPoller[object], deadline: float) -> None:
        while not poller.done():
            remaining = deadline - self._monotonic()
            if remaining <= 0:
                raise ProvisioningError(
                    f"deployment {self.spec.name!r} was still provisioning at the deadline; "
                    "the next attempt resumes it.",
                    code="provisioning_timeout",
                    retryable=True,
                )
            poller.wait(timeout=min(remaining, max(self._timings.poll_interval, 1.0)))
        poller.result()

    def _wait_while_transitional(self, deadline: float) -> DeploymentSnapshot:
        def transitional(snapshot: DeploymentSnapshot) -> bool:
            return snapshot.exists and snapshot.provisioning_state in TRANSITIONAL_STATES

        retrying = Retrying(
            retry=retry_if_result(transitional),
            wait=wait_fixed(self._timings.poll_interval),
            stop=stop_after_delay(max(0.0, deadline - self._monotonic())),
            sleep=self._sleep,
        )
        try:
            return retrying(self._deployments.get, self.spec.name)
        except RetryError as error:
            raise ProvisioningError(
                f"deployment {self.spec.name!r} stayed in a transitional state past the deadline",
                code="provisioning_timeout",
                retryable=True,
            ) from error

    def _await_serving(self, deadline: float) -> None:
        """Succeeded is not serving: probe the data plane until it answers."""
        limit = max(0.0, min(deadline - self._monotonic(), self._timings.readiness_timeout))
        retrying = Retrying(
            retry=retry_if_result(lambda served: not served),
            wait=wait_fixed(self._timings.poll_interval),
            stop=stop_after_delay(limit),
            sleep=self._sleep,
        )
        try:
            retrying(self._chat.serves)
        except RetryError as error:
            raise ProvisioningError(
                f"deployment {self.spec.name!r} reached Succeeded but its endpoint did not serve "
                f"within {limit:.0f} s",
                code="readiness_timeout",
                retryable=True,
            ) from error

    def _check_deadline(self, deadline: float, doing: str) -> None:
        if self._monotonic() >= deadline:
            raise ProvisioningError(
                f"deployment {self.spec.name!r}: deadline passed while {doing}",
                code="provisioning_timeout",
                retryable=True,
            )

    # --- tearing it down ------------------------------------------------------------------

    def teardown_if_idle(
        self,
        owner: str,
        *,
        idle_grace: timedelta,
        snapshot: DeploymentSnapshot | None = None,
        max_lifetime: timedelta | None = None,
        known: LedgerRecord | None = None,
    ) -> TeardownOutcome:
        """Delete the deployment if no live hold needs it and its idle grace has passed.

        `known` is a ledger record the caller has just written; the decision to delete is
        re-checked on a fresh read inside the lease's compare-and-swap either way.
        """
        record = known if known is not None else self.ledger.read()
        exists = snapshot.exists if snapshot is not None else record.state is not KnownState.ABSENT
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
            return TeardownOutcome(False, decision.reason, decision.kept_because)
        taken = self.ledger.take_lease(
            owner, "delete", timedelta(seconds=self._timings.lease_ttl), only_if=due
        )
        if taken is None:
            return TeardownOutcome(False, "a hold or another operation appeared first", "raced")
        with LeaseKeeper(self.ledger, owner, "delete", self._timings.lease_ttl):
            return self._delete_under_lease(owner, due, decision.reason, snapshot)

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
            return self.teardown_if_idle(owner, idle_grace=timedelta(0), snapshot=snapshot)
        if not snapshot.exists:
            return TeardownOutcome(False, "deployment does not exist", "absent")
        held = self.ledger.read().live_holds(self.ledger.now())
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
        with LeaseKeeper(self.ledger, owner, "delete", self._timings.lease_ttl):
            return self._delete_under_lease(owner, lambda _record: True, reason, snapshot)

    def _delete_under_lease(
        self,
        owner: str,
        due: Callable[[LedgerRecord], bool],
        reason: str,
        snapshot: DeploymentSnapshot | None,
    ) -> TeardownOutcome:
        try:
            # The reaper's list is seconds old and carries the tags; the fast path must look.
            current = snapshot if snapshot is not None else self._deployments.get(self.spec.name)
            if not current.exists:
                self.ledger.finish_lease(owner, KnownState.ABSENT)
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
            poller = self._deployments.begin_delete(self.spec.name)
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
        self.ledger.finish_lease(owner, KnownState.ABSENT)
        logger.info("deployment %s deleted (%s)", self.spec.name, reason)
        return TeardownOutcome(True, reason)
