"""The reconciler's pure decision: window holds, lead time, provisioning, due batches.

Ticks are simulated by applying `plan_model` + `apply_window_holds` to a record, as the flow
does inside the ledger's compare-and-swap; the same ledger state must come out whether ticks
are missed, late, doubled or interleaved.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shared.catalog import HostedModel
from shared.hosting.holds import (
    Hold,
    KnownState,
    LedgerRecord,
    decide_teardown,
    place_hold,
    release_hold,
)
from shared.schedules.models import WEEKDAYS, BatchSchedule, WindowSettings
from shared.schedules.reconcile import (
    LEAD_SAFETY_FACTOR,
    apply_window_holds,
    plan_model,
    provisioning_lead,
)

# 2026-06-15 is a Monday; windows in UTC keep the arithmetic plain (the zones are tested in
# test_occurrences.py).
MONDAY = datetime(2026, 6, 15, tzinfo=UTC)
OPENS = MONDAY + timedelta(hours=8)
CLOSES = MONDAY + timedelta(hours=18)
HOLD_ID = "window:office:2026-06-15T08:00:00Z"


def window(name: str = "office", **fields: Any) -> WindowSettings:
    values: dict[str, Any] = {
        "name": name,
        "time_zone": "UTC",
        "weekdays": WEEKDAYS,
        "opens": "08:00",
        "closes": "18:00",
        "lead_seconds": 600,
        **fields,
    }
    return WindowSettings.model_validate(values)


def hosted(*windows: WindowSettings, batches: tuple[BatchSchedule, ...] = ()) -> HostedModel:
    return HostedModel(
        name="contracts",
        deployment="ft-contracts",
        fine_tuned_model="base.ft-1",
        idle_grace_seconds=300,
        max_lifetime_seconds=50400,
        context_tokens=8000,
        windows=windows,
        batches=batches,
    )


def empty() -> LedgerRecord:
    return LedgerRecord(deployment="ft-contracts")


def tick(model: HostedModel, record: LedgerRecord, now: datetime) -> LedgerRecord:
    """One reconcile tick's ledger write (or none)."""
    changed = apply_window_holds(record, plan_model(model, record, now))
    return changed if changed is not None else record


def window_holds(record: LedgerRecord) -> list[tuple[str, datetime]]:
    return sorted((h.id, h.expires) for h in record.holds if h.kind == "window")


def test_nothing_is_wanted_before_the_lead_begins() -> None:
    plan = plan_model(hosted(window()), empty(), OPENS - timedelta(minutes=11))
    assert not plan.wants_serving and not plan.changes_ledger and not plan.provision
    assert apply_window_holds(empty(), plan) is None


def test_a_window_hold_is_placed_at_the_lead_and_expires_at_the_close() -> None:
    plan = plan_model(hosted(window()), empty(), OPENS - timedelta(minutes=10))
    assert plan.place == (HOLD_ID,) and plan.provision
    record = apply_window_holds(empty(), plan)
    assert record is not None
    (hold,) = record.holds
    assert (hold.id, hold.kind, hold.owner, hold.expires) == (
        HOLD_ID,
        "window",
        "schedule:office",
        CLOSES,
    )


def test_the_observed_provisioning_time_lengthens_the_lead() -> None:
    office = window()
    assert provisioning_lead(office, empty()) == timedelta(minutes=10)
    observed = empty().model_copy(update={"last_provision_seconds": 1000.0})
    lead = provisioning_lead(office, observed)
    assert lead == timedelta(seconds=1000 * LEAD_SAFETY_FACTOR) == timedelta(minutes=25)
    twenty_before = OPENS - timedelta(minutes=20)
    assert plan_model(hosted(office), observed, twenty_before).provision
    assert not plan_model(hosted(office), empty(), twenty_before).provision
    # A quick last provisioning never shortens the configured lead.
    quick = empty().model_copy(update={"last_provision_seconds": 60.0})
    assert provisioning_lead(office, quick) == timedelta(minutes=10)


def test_a_serving_deployment_needs_no_provisioning_step() -> None:
    ready = empty().model_copy(update={"state": KnownState.READY})
    plan = plan_model(hosted(window()), ready, OPENS)
    assert plan.wants_serving and plan.serving and not plan.provision


def test_doubled_ticks_write_once() -> None:
    model = hosted(window())
    first = tick(model, empty(), OPENS)
    again = plan_model(model, first, OPENS + timedelta(seconds=1))
    assert again.keep == (HOLD_ID,) and not again.changes_ledger
    assert apply_window_holds(first, again) is None, "no write: a doubled tick costs a read"


def test_missed_and_late_ticks_converge_to_the_same_ledger() -> None:
    model = hosted(window())
    every_minute = empty()
    moment = OPENS - timedelta(minutes=10)
    while moment < OPENS + timedelta(hours=3):
        every_minute = tick(model, every_minute, moment)
        moment += timedelta(minutes=1)
    # The timer stopped for hours and its first tick is past due.
    one_late_tick = tick(model, empty(), OPENS + timedelta(hours=3))
    assert window_holds(every_minute) == window_holds(one_late_tick) == [(HOLD_ID, CLOSES)]


def test_interleaved_ticks_on_stale_reads_converge() -> None:
    # Two instances plan from the same read; each applies to what is stored when it writes.
    model = hosted(window())
    read = empty()
    plan_a = plan_model(model, read, OPENS)
    plan_b = plan_model(model, read, OPENS + timedelta(seconds=2))
    after_a = apply_window_holds(read, plan_a)
    assert after_a is not None
    assert apply_window_holds(after_a, plan_b) is None, "B finds A's hold and writes nothing"


def test_after_the_close_the_hold_ends_and_the_grace_counts_from_the_close() -> None:
    model = hosted(window())
    held = tick(model, empty(), OPENS).model_copy(
        update={"state": KnownState.READY, "ready_since": OPENS - timedelta(minutes=5)}
    )
    late = CLOSES + timedelta(minutes=7)  # the first tick after the close is late
    plan = plan_model(model, held, late)
    assert plan.end == (HOLD_ID,) and not plan.wants_serving
    ended = apply_window_holds(held, plan)
    assert ended is not None and window_holds(ended) == []
    assert ended.last_hold_released == CLOSES
    grace = timedelta(minutes=10)
    assert not decide_teardown(ended, now=late, idle_grace=grace, exists=True).delete
    assert decide_teardown(ended, now=CLOSES + grace, idle_grace=grace, exists=True).delete


def test_with_the_timers_stopped_the_hold_still_ends_at_the_close() -> None:
    held = tick(hosted(window()), empty(), OPENS).model_copy(
        update={"state": KnownState.READY, "ready_since": OPENS - timedelta(minutes=5)}
    )
    grace = timedelta(minutes=10)
    assert (
        decide_teardown(
            held, now=CLOSES - timedelta(seconds=1), idle_grace=grace, exists=True
        ).kept_because
        == "held"
    )
    # No tick ended it: the grace still runs from the hold's expiry, the close.
    assert (
        decide_teardown(
            held, now=CLOSES + timedelta(minutes=5), idle_grace=grace, exists=True
        ).kept_because
        == "idle_grace"
    )
    assert decide_teardown(held, now=CLOSES + grace, idle_grace=grace, exists=True).delete


def test_a_window_removed_from_the_settings_is_ended_now() -> None:
    held = tick(hosted(window()), empty(), OPENS)
    now = OPENS + timedelta(hours=1)
    plan = plan_model(hosted(), held, now)
    assert plan.end == (HOLD_ID,)
    ended = apply_window_holds(held, plan)
    assert ended is not None and ended.holds == () and ended.last_hold_released == now


def test_a_changed_closing_time_refreshes_the_hold() -> None:
    held = tick(hosted(window()), empty(), OPENS)
    plan = plan_model(hosted(window(closes="20:00")), held, OPENS + timedelta(hours=1))
    assert plan.refresh == (HOLD_ID,)
    refreshed = apply_window_holds(held, plan)
    assert refreshed is not None
    assert window_holds(refreshed) == [(HOLD_ID, MONDAY + timedelta(hours=20))]
    assert refreshed.holds[0].created == OPENS, "a refresh keeps when the hold was placed"


def test_a_hold_placed_under_a_longer_lead_is_kept_when_the_lead_shrinks() -> None:
    slow = empty().model_copy(update={"last_provision_seconds": 3600.0})
    early = OPENS - timedelta(minutes=80)
    held = tick(hosted(window()), slow, early)
    assert window_holds(held) == [(HOLD_ID, CLOSES)]
    # A fast provisioning since: the lead is 10 minutes again, and it is 60 minutes early.
    fast = held.model_copy(update={"last_provision_seconds": 30.0})
    plan = plan_model(hosted(window()), fast, early + timedelta(minutes=20))
    assert plan.end == () and not plan.wants_serving


def test_overlapping_windows_hold_until_the_last_close() -> None:
    model = hosted(window("morning", closes="12:00"), window("day", opens="11:00"))
    record = tick(model, empty(), MONDAY + timedelta(hours=11, minutes=30))
    assert window_holds(record) == [
        ("window:day:2026-06-15T11:00:00Z", CLOSES),
        ("window:morning:2026-06-15T08:00:00Z", MONDAY + timedelta(hours=12)),
    ]
    after_noon = tick(model, record, MONDAY + timedelta(hours=12, minutes=1))
    assert window_holds(after_noon) == [("window:day:2026-06-15T11:00:00Z", CLOSES)]
    assert after_noon.live_holds(MONDAY + timedelta(hours=13)), "still held by the day window"


def test_a_midnight_window_is_held_across_midnight_and_other_holds_are_untouched() -> None:
    night = hosted(window("night", opens="22:00", closes="06:00", weekdays=["mon"]))
    job = place_hold(
        empty(), hold_id="job:1", kind="job", owner="w", now=MONDAY, ttl=timedelta(days=2)
    )
    after_midnight = MONDAY + timedelta(days=1, hours=2)
    record = tick(night, job, after_midnight)
    assert window_holds(record) == [
        ("window:night:2026-06-15T22:00:00Z", MONDAY + timedelta(days=1, hours=6))
    ]
    assert any(h.id == "job:1" for h in record.holds)
    closed = tick(night, record, MONDAY + timedelta(days=1, hours=7))
    assert [h.id for h in closed.holds] == ["job:1"]
    released = release_hold(closed, hold_id="job:1", now=MONDAY + timedelta(days=1, hours=8))
    assert isinstance(released.holds, tuple) and released.holds == ()


def test_batches_are_due_from_start_to_deadline_with_a_stable_run_id() -> None:
    nightly = BatchSchedule.model_validate(
        {
            "name": "nightly",
            "time_zone": "Europe/Berlin",
            "weekdays": ["mon"],
            "starts": "02:00",
            "deadline": "PT4H",
            "input_prefix": "in/",
            "output_prefix": "out/",
        }
    )
    model = hosted(batches=(nightly,))
    start = datetime(2026, 6, 15, 0, 0, tzinfo=UTC)  # 02:00 CEST
    assert plan_model(model, empty(), start - timedelta(seconds=1)).batches_due == ()
    due = plan_model(model, empty(), start).batches_due
    later = plan_model(model, empty(), start + timedelta(hours=3)).batches_due
    assert due == later and len(due) == 1
    assert due[0].run_id == "contracts-nightly-20260615T000000Z"
    assert (due[0].deadline, due[0].input_prefix) == (start + timedelta(hours=4), "in/")
    assert plan_model(model, empty(), start + timedelta(hours=4)).batches_due == ()
    assert not plan_model(model, empty(), start).wants_serving, "a batch holds its own"


def test_hold_ids_of_other_kinds_named_like_windows_are_not_the_reconcilers() -> None:
    operator = Hold(
        id="window:by-hand",
        kind="operator",
        owner="operator:me",
        created=MONDAY,
        expires=MONDAY + timedelta(days=1),
    )
    record = empty().model_copy(update={"holds": (operator,)})
    assert plan_model(hosted(), record, OPENS).end == ()
