"""The hold ledger's record and the pure decisions over it.

A deployment's ledger record lists every reason to keep it alive (holds), what the app last
knew of its state, and who is currently allowed to change it (the operation lease). All
functions here are pure: they take a record and a time and return a new record or a
decision, so the safety rules (never delete under a live hold, one provisioner at a time)
are unit-tested without storage. The blob adapter in `ledger.py` applies them under ETags.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.hosting.grace import IdleGrace, resolve_grace

HoldKind = Literal["window", "batch", "job", "operator", "evaluation"]
# Why a teardown kept the deployment, for callers that act on it rather than log it.
KeptBecause = Literal["absent", "busy", "held", "idle_grace", "not_owned", "raced"]


class KnownState(StrEnum):
    """What the app last recorded about the deployment (not Azure's provisioningState)."""

    UNKNOWN = "unknown"
    ABSENT = "absent"
    PROVISIONING = "provisioning"
    READY = "ready"
    DELETING = "deleting"
    FAILED = "failed"


class Hold(BaseModel):
    """One reason to keep the deployment alive until `expires`."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: HoldKind
    owner: str
    created: datetime
    expires: datetime

    def is_live(self, now: datetime) -> bool:
        return self.expires > now


class OperationLease(BaseModel):
    """Exclusive right to provision or delete the deployment, until `expires`."""

    model_config = ConfigDict(frozen=True)

    owner: str
    operation: Literal["provision", "delete"]
    acquired: datetime
    expires: datetime
    # Lets a later leader resume the SDK poller if this one dies mid-provisioning.
    continuation_token: str | None = None

    def is_live(self, now: datetime) -> bool:
        return self.expires > now


class LedgerRecord(BaseModel):
    """Everything the app agrees on about one deployment, stored as one blob."""

    model_config = ConfigDict(frozen=True)

    deployment: str
    holds: tuple[Hold, ...] = ()
    state: KnownState = KnownState.UNKNOWN
    state_changed: datetime | None = None
    lease: OperationLease | None = None
    last_hold_released: datetime | None = None
    ready_since: datetime | None = None
    last_error: str | None = None
    provision_count: int = Field(0, ge=0)
    # Why the provisioning leader is not creating yet (no room on the account), in words.
    waiting_for: str | None = None
    # Step-wise provisioning (one short step per resume, see provisioner.advance): when the
    # current create was sent, how many creates since the last ready, when Azure was last
    # asked, when it first said Succeeded, and how long the last provisioning took.
    provisioning_started: datetime | None = None
    creates_since_ready: int = Field(0, ge=0)
    last_checked: datetime | None = None
    # Azure is not asked again before this, however many waiting jobs come to look.
    next_check_at: datetime | None = None
    succeeded_at: datetime | None = None
    last_provision_seconds: float | None = None
    # The management API failing (5xx, no connection): how many looks in a row failed, and
    # until when no instance asks it anything for this deployment (the reaper included).
    management_failures: int = Field(0, ge=0)
    management_retry_at: datetime | None = None

    def live_holds(self, now: datetime) -> tuple[Hold, ...]:
        # `expires > now` inline (as `Hold.is_live`), as in `place_hold`.
        return tuple(hold for hold in self.holds if hold.expires > now)

    def live_lease(self, now: datetime) -> OperationLease | None:
        return self.lease if self.lease is not None and self.lease.is_live(now) else None


# --- Holds ----------------------------------------------------------------------------------


def place_hold(
    record: LedgerRecord,
    *,
    hold_id: str,
    kind: HoldKind,
    owner: str,
    now: datetime,
    ttl: timedelta,
) -> LedgerRecord:
    """Add (or refresh) a hold; expired holds are dropped on every write so the list stays short."""
    # Comprehensions with `expires > now` inline (as `Hold.is_live`): under a cold burst the
    # list holds one hold per waiting job, and every job re-places its own while it waits.
    kept = [h for h in record.holds if h.expires > now and h.id != hold_id]
    created = next((h.created for h in record.holds if h.id == hold_id), now)
    kept.append(Hold(id=hold_id, kind=kind, owner=owner, created=created, expires=now + ttl))
    return record.model_copy(update={"holds": tuple(kept)})


def renew_hold(
    record: LedgerRecord, *, hold_id: str, now: datetime, ttl: timedelta
) -> LedgerRecord | None:
    """Extend a live hold; None when the hold is gone (expired and dropped by someone else)."""
    hold = next((h for h in record.holds if h.id == hold_id), None)
    if hold is None:
        return None
    return place_hold(record, hold_id=hold.id, kind=hold.kind, owner=hold.owner, now=now, ttl=ttl)


def release_hold(record: LedgerRecord, *, hold_id: str, now: datetime) -> LedgerRecord:
    """Remove a hold and remember when the deployment last lost a reason to live."""
    kept = tuple(h for h in record.holds if h.expires > now and h.id != hold_id)
    released = any(h.id == hold_id for h in record.holds)
    return record.model_copy(
        update={
            "holds": kept,
            "last_hold_released": now if released else record.last_hold_released,
        }
    )


# --- Teardown -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TeardownDecision:
    """Whether the deployment may be deleted now, and the reason in words for the log."""

    delete: bool
    # The reason, or how to word it: words that list every live hold are only built when
    # read (a cold burst's ledger holds one per waiting job, and most decisions go unlogged).
    why: str | Callable[[], str]
    retry_after: timedelta | None = None
    kept_because: KeptBecause | None = None

    @property
    def reason(self) -> str:
        return self.why if isinstance(self.why, str) else self.why()


def idle_since(record: LedgerRecord) -> datetime | None:
    """When the deployment last had a reason to live: the later of ready, the last release,
    and the expiry of any hold still listed.

    A hold that simply expired (a window whose reconciler stopped ticking, a crashed job) was
    never released; counting its expiry means the idle grace runs from its end all the same.
    """
    moments = [m for m in (record.last_hold_released, record.ready_since) if m is not None]
    moments.extend(hold.expires for hold in record.holds)
    return max(moments) if moments else None


def decide_teardown(
    record: LedgerRecord,
    *,
    now: datetime,
    idle_grace: IdleGrace,
    exists: bool,
    created_at: datetime | None = None,
    max_lifetime: timedelta | None = None,
) -> TeardownDecision:
    """May the deployment be deleted now?

    Never under a live hold or while another instance holds the operation lease. A
    deployment past its maximum lifetime is deleted even under holds: that is the backstop
    against a leaked hold keeping a billed deployment up forever. `idle_grace` is fixed or
    the break-even rule, resolved against `record` (see `grace.py`).
    """
    if not exists:
        return TeardownDecision(False, "deployment does not exist", kept_because="absent")
    lease = record.live_lease(now)
    if lease is not None:
        return TeardownDecision(
            False, f"{lease.owner} is running a {lease.operation}", lease.expires - now, "busy"
        )
    if created_at is not None and max_lifetime is not None and now - created_at >= max_lifetime:
        return TeardownDecision(True, f"past its maximum lifetime of {max_lifetime}")
    live = record.live_holds(now)
    if live:
        soonest = min(h.expires for h in live)
        return TeardownDecision(False, lambda: _held_reason(live), soonest - now, "held")
    since = idle_since(record)
    grace = resolve_grace(idle_grace, record)
    if since is not None and now - since < grace:
        remaining = grace - (now - since)
        return TeardownDecision(
            False, f"idle grace running ({remaining} left)", remaining, "idle_grace"
        )
    return TeardownDecision(True, "no live hold and idle grace passed")


def _held_reason(live: tuple[Hold, ...]) -> str:
    kinds = ", ".join(sorted({f"{h.kind}:{h.owner}" for h in live}))
    return f"{len(live)} live hold(s): {kinds}"


# --- Operation lease (single-flight provisioning and deletion) ------------------------------


def take_lease(
    record: LedgerRecord,
    *,
    owner: str,
    operation: Literal["provision", "delete"],
    now: datetime,
    ttl: timedelta,
    continuation_token: str | None = None,
) -> LedgerRecord | None:
    """Take the operation lease, or None if someone else holds a live one."""
    current = record.live_lease(now)
    if current is not None and current.owner != owner:
        return None
    token = continuation_token
    if token is None and record.lease is not None and record.lease.operation == operation:
        # A dead leader's poller token is still the best way to follow its operation.
        token = record.lease.continuation_token
    acquired = current.acquired if current is not None else now
    lease = OperationLease(
        owner=owner,
        operation=operation,
        acquired=acquired,
        expires=now + ttl,
        continuation_token=token,
    )
    state = KnownState.PROVISIONING if operation == "provision" else KnownState.DELETING
    return record.model_copy(
        update={"lease": lease, "state": state, "state_changed": now, "last_error": None}
    )


def finish_lease(
    record: LedgerRecord,
    *,
    owner: str,
    now: datetime,
    state: KnownState,
    error: str | None = None,
) -> LedgerRecord:
    """Record the outcome of a leased operation and free the lease."""
    if record.lease is not None and record.lease.owner != owner and record.lease.is_live(now):
        # Our lease lapsed and another instance took over: its outcome is the one that counts.
        return record
    lease = record.lease if record.lease is not None and record.lease.owner == owner else None
    update: dict[str, object] = {
        "lease": None,
        "state": state,
        "state_changed": now,
        "last_error": error,
        "waiting_for": None,
        # Whatever ended the operation, the next step reads Azure's state afresh.
        "succeeded_at": None,
    }
    if state is KnownState.READY:
        update["ready_since"] = now
        if lease is not None and lease.operation == "provision":
            update["provision_count"] = record.provision_count + 1
        if record.provisioning_started is not None:
            update["last_provision_seconds"] = (now - record.provisioning_started).total_seconds()
        update.update(
            provisioning_started=None, creates_since_ready=0, succeeded_at=None, next_check_at=None
        )
    return record.model_copy(update=update)


def renew_lease(
    record: LedgerRecord, *, owner: str, now: datetime, ttl: timedelta
) -> LedgerRecord | None:
    """Extend the owner's own lease; None (no write) when it no longer holds one.

    A renewal delayed by a storage outage may land after its owner finished the operation:
    it must never take the lease again, which would leave the ledger `provisioning` under a
    leader that has gone.
    """
    lease = record.lease
    if lease is None or lease.owner != owner:
        return None
    return record.model_copy(update={"lease": lease.model_copy(update={"expires": now + ttl})})


def end_step(record: LedgerRecord, *, owner: str, **fields: object) -> LedgerRecord | None:
    """A provisioning step is over: free the lease, keep `provisioning`, record what it saw.

    None (no write) when the lease is no longer the owner's: someone took over.
    """
    if record.lease is None or record.lease.owner != owner:
        return None
    return record.model_copy(update={"lease": None, **fields})


def note_waiting(
    record: LedgerRecord, *, owner: str, now: datetime, note: str | None
) -> LedgerRecord | None:
    """The leader says why it waits; None (no write) when it no longer leads or nothing changed."""
    lease = record.live_lease(now)
    if lease is None or lease.owner != owner or record.waiting_for == note:
        return None
    return record.model_copy(update={"waiting_for": note})


def mark_suspect(
    record: LedgerRecord, *, observed_ready_since: datetime | None, now: datetime
) -> LedgerRecord:
    """The data plane said DeploymentNotFound although the ledger says ready: re-check it.

    Only the first caller to notice changes the record (same ready_since), so a hundred jobs
    that see the same 404 cause one re-check, not a hundred.
    """
    if record.state is not KnownState.READY or record.ready_since != observed_ready_since:
        return record
    return record.model_copy(
        update={"state": KnownState.UNKNOWN, "state_changed": now, "ready_since": None}
    )


# --- The management API failing ------------------------------------------------------------


def management_backoff_seconds(failures: int, *, poll: float, longest: float) -> float:
    """How long every instance leaves the management API alone after `failures` failed looks
    in a row: the poll interval, doubled with each failure, at most `longest`."""
    return float(min(poll * 2.0 ** max(0, failures - 1), longest))


def note_management_failure(
    record: LedgerRecord, *, now: datetime, poll: float, longest: float
) -> LedgerRecord:
    """One more failed look: no instance asks again before the backoff has passed.

    A failure seen by another instance meanwhile (its look started before ours was recorded)
    counts once: the count moves only when the record's pause had already ended.
    """
    retry_at = record.management_retry_at
    if retry_at is not None and now < retry_at:
        return record
    failures = record.management_failures + 1
    until = now + timedelta(
        seconds=management_backoff_seconds(failures, poll=poll, longest=longest)
    )
    return record.model_copy(
        update={
            "management_failures": failures,
            "management_retry_at": until,
            "next_check_at": max(until, record.next_check_at or until),
        }
    )


def management_paused(record: LedgerRecord, now: datetime) -> bool:
    """Whether the management API failed lately and its pause has not passed yet."""
    return record.management_retry_at is not None and now < record.management_retry_at


def note_management_answered(record: LedgerRecord) -> LedgerRecord | None:
    """The management API answered again; None (no write) when no failure was on record."""
    if record.management_failures == 0 and record.management_retry_at is None:
        return None
    return record.model_copy(update={"management_failures": 0, "management_retry_at": None})


# --- Waiting for a provisioning ------------------------------------------------------------


def next_look_seconds(
    record: LedgerRecord, now: datetime, *, poll: float, expected: float, longest: float
) -> float:
    """When a waiting job should look again: at the expected end of the provisioning.

    The expectation is the last provisioning the app saw (else `expected`); before it, wait
    for what remains of it; after it, back off by half the overrun, so a slow provisioning is
    looked at less and less often. Never sooner than `poll`, never later than `longest`.
    """
    started = record.provisioning_started
    if started is None:
        return min(max(poll, 0.0), longest)
    typical = record.last_provision_seconds or expected
    elapsed = (now - started).total_seconds()
    remaining = typical - elapsed
    wait = remaining if remaining > 0 else -remaining / 2
    return min(max(wait, poll), longest)
