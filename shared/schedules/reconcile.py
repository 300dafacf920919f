"""What a model's schedules want right now, from the clock and its ledger record alone. Pure.

Level-triggered, like KEDA's cron scaler: each tick derives the wanted state afresh instead of
remembering what an earlier tick did, so a missed, late, doubled or concurrent tick, or a
restart, converges to the same ledger:

- every window occurrence whose provisioning lead has begun and which has not closed
  (`opens - lead <= now < closes`) wants a window hold with a deterministic id
  (`window:<name>:<opening in UTC>`) that expires exactly at the occurrence's close. If the
  timers stop altogether, the hold still ends at closing time and the reaper tears the
  deployment down after the idle grace.
- window holds of occurrences that have closed, or that the schedule no longer has (a window
  removed or changed, a closed date added), are ended; the idle grace counts from the close
  (or from now, for a hold ended early), not from whenever a tick noticed.
- a model with a wanted hold should be serving: the flow takes one provisioning step.
- a batch occurrence is due from its start to its deadline, with a deterministic run id.

The lead is the window's `lead_seconds`, or the provisioning time the app last observed for
the model's deployment (`LedgerRecord.last_provision_seconds`) times `LEAD_SAFETY_FACTOR`,
whichever is longer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from shared.catalog import HostedModel
from shared.hosting.holds import Hold, KnownState, LedgerRecord
from shared.schedules.models import WindowSettings
from shared.schedules.occurrences import Occurrence, occurrences_around

WINDOW_HOLD_PREFIX = "window:"
WINDOW_HOLD_OWNER = "schedule"
# Provisioning times vary from one create to the next; the last observed one times 1.5 starts
# early enough for a provisioning half again as slow, and the reconcile interval (a minute)
# plus the readiness probe fit in the margin. Ten minutes observed start fifteen early.
LEAD_SAFETY_FACTOR = 1.5


@lru_cache(maxsize=1024)  # asked for every occurrence in reach on every tick
def window_hold_id(occurrence: Occurrence) -> str:
    return f"{WINDOW_HOLD_PREFIX}{occurrence.name}:{occurrence.opens:%Y-%m-%dT%H:%M:%SZ}"


def batch_run_id(model: str, occurrence: Occurrence) -> str:
    """Plain characters only: the run id may name blobs and queue messages."""
    return f"{model}-{occurrence.name}-{occurrence.opens:%Y%m%dT%H%M%SZ}"


def provisioning_lead(window: WindowSettings, record: LedgerRecord | None) -> timedelta:
    """How long before opening provisioning starts: configured, or observed x safety factor."""
    observed = record.last_provision_seconds if record is not None else None
    if observed is None:
        return window.lead
    return max(window.lead, timedelta(seconds=observed * LEAD_SAFETY_FACTOR))


@dataclass(frozen=True)
class WindowNeed:
    """A window occurrence that wants the deployment held until it closes."""

    occurrence: Occurrence
    hold_id: str
    lead: timedelta

    @property
    def provision_from(self) -> datetime:
        return self.occurrence.opens - self.lead


@dataclass(frozen=True)
class DueBatch:
    """A batch occurrence due now: start its run (idempotently, by `run_id`)."""

    model: str
    name: str
    run_id: str
    input_prefix: str
    output_prefix: str
    starts: datetime
    deadline: datetime


@dataclass(frozen=True)
class ModelPlan:
    """What the reconciler wants for one model at `now`, against its ledger record."""

    model: str
    now: datetime
    needs: tuple[WindowNeed, ...]
    # Window hold ids the schedule may still keep (occurrences not closed yet): a hold placed
    # under a longer lead is not ended just because the lead has since become shorter.
    keepable: frozenset[str]
    place: tuple[str, ...]  # wanted, not in the ledger
    refresh: tuple[str, ...]  # wanted, in the ledger with another expiry
    keep: tuple[str, ...]  # wanted and already right
    end: tuple[str, ...]  # window holds to end
    serving: bool  # the ledger says the deployment serves
    batches_due: tuple[DueBatch, ...]

    @property
    def wants_serving(self) -> bool:
        return bool(self.needs)

    @property
    def provision(self) -> bool:
        """Whether a provisioning step is called for (wanted, and not known to serve)."""
        return self.wants_serving and not self.serving

    @property
    def changes_ledger(self) -> bool:
        return bool(self.place or self.refresh or self.end)


def plan_model(model: HostedModel, record: LedgerRecord, now: datetime) -> ModelPlan:
    """The reconciler's decision for one model at `now`."""
    needs: list[WindowNeed] = []
    keepable: set[str] = set()
    for window in model.windows:
        lead = provisioning_lead(window, record)
        for occurrence in occurrences_around(window, now, reach=lead + timedelta(days=1)):
            if occurrence.closes <= now:
                continue
            hold_id = window_hold_id(occurrence)
            keepable.add(hold_id)
            if occurrence.opens - lead <= now:
                needs.append(WindowNeed(occurrence, hold_id, lead))
    held = {h.id: h for h in record.holds if h.kind == "window" and h.is_live(now)}
    place = tuple(n.hold_id for n in needs if n.hold_id not in held)
    refresh = tuple(
        n.hold_id
        for n in needs
        if n.hold_id in held and held[n.hold_id].expires != n.occurrence.closes
    )
    keep = tuple(n.hold_id for n in needs if n.hold_id not in place and n.hold_id not in refresh)
    end = tuple(h.id for h in _ended(record.holds, keepable, now))
    due = tuple(_due_batches(model, now))
    return ModelPlan(
        model=model.name,
        now=now,
        needs=tuple(needs),
        keepable=frozenset(keepable),
        place=place,
        refresh=refresh,
        keep=keep,
        end=end,
        serving=record.state is KnownState.READY,
        batches_due=due,
    )


def _ended(holds: Iterable[Hold], keepable: frozenset[str] | set[str], now: datetime) -> list[Hold]:
    return [
        h
        for h in holds
        if h.kind == "window"
        and h.id.startswith(WINDOW_HOLD_PREFIX)
        and (not h.is_live(now) or h.id not in keepable)
    ]


def _due_batches(model: HostedModel, now: datetime) -> Iterable[DueBatch]:
    for batch in model.batches:
        for occurrence in occurrences_around(batch, now, reach=timedelta(0)):
            if occurrence.covers(now):
                yield DueBatch(
                    model=model.name,
                    name=batch.name,
                    run_id=batch_run_id(model.name, occurrence),
                    input_prefix=batch.input_prefix,
                    output_prefix=batch.output_prefix,
                    starts=occurrence.opens,
                    deadline=occurrence.closes,
                )


def apply_window_holds(record: LedgerRecord, plan: ModelPlan) -> LedgerRecord | None:
    """The ledger record with the plan's window holds in place; None when nothing changes.

    Applied to the freshly read record inside the ledger's compare-and-swap, so it re-derives
    what to write from what is stored now: a concurrent tick that already wrote leaves nothing
    to do (no write), and holds of other kinds are never touched.
    """
    now = plan.now
    held = {h.id: h for h in record.holds}
    ended = _ended(record.holds, plan.keepable, now)
    ended_ids = {h.id for h in ended}
    holds: list[Hold] = [h for h in record.holds if h.id not in ended_ids]
    changed = bool(ended)
    for need in plan.needs:
        closes = need.occurrence.closes
        current = held.get(need.hold_id)
        if current is not None and current.expires == closes and current.id not in ended_ids:
            continue
        wanted = Hold(
            id=need.hold_id,
            kind="window",
            owner=f"{WINDOW_HOLD_OWNER}:{need.occurrence.name}",
            created=current.created if current is not None else now,
            expires=closes,
        )
        holds = [h for h in holds if h.id != need.hold_id] + [wanted]
        changed = True
    if not changed:
        return None
    update: dict[str, object] = {"holds": tuple(holds)}
    if ended:
        # The idle grace runs from when the window ended: its close, or now if ended early.
        last_end = max(min(h.expires, now) for h in ended)
        previous = record.last_hold_released
        update["last_hold_released"] = last_end if previous is None else max(previous, last_end)
    return record.model_copy(update=update)
