"""When the reaper's pass is worth a management call: `why_list_the_account` (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.hosting.holds import KnownState, LedgerRecord, place_hold, release_hold, take_lease
from shared.hosting.reaper import listing_due, why_list_the_account

T0 = datetime(2026, 3, 23, 9, 0, tzinfo=UTC)
GRACE = timedelta(minutes=5)
LIFETIME = timedelta(hours=14)


def ready(**fields: object) -> LedgerRecord:
    return LedgerRecord(
        deployment="ft", state=KnownState.READY, ready_since=T0, provisioning_started=T0, **fields
    )


def test_an_absent_deployment_needs_no_list() -> None:
    record = LedgerRecord(deployment="ft", state=KnownState.ABSENT)
    assert why_list_the_account(record, T0, GRACE, LIFETIME) is None


def test_a_held_deployment_needs_no_list() -> None:
    held = place_hold(ready(), hold_id="job:1", kind="job", owner="w", now=T0, ttl=GRACE)
    assert why_list_the_account(held, T0 + timedelta(minutes=1), GRACE, LIFETIME) is None


def test_inside_the_idle_grace_needs_no_list_and_after_it_does() -> None:
    held = place_hold(ready(), hold_id="job:1", kind="job", owner="w", now=T0, ttl=GRACE)
    released = release_hold(held, hold_id="job:1", now=T0 + timedelta(minutes=1))
    assert why_list_the_account(released, T0 + timedelta(minutes=5), GRACE, LIFETIME) is None
    why = why_list_the_account(released, T0 + timedelta(minutes=6, seconds=1), GRACE, LIFETIME)
    assert why is not None and "idle grace passed" in why


def test_an_expired_hold_of_a_crashed_job_makes_the_pass_list() -> None:
    held = place_hold(ready(), hold_id="job:1", kind="job", owner="w", now=T0, ttl=GRACE)
    assert why_list_the_account(held, T0 + GRACE + GRACE, GRACE, LIFETIME) is not None


def test_past_the_lifetime_lists_even_under_a_hold() -> None:
    later = T0 + LIFETIME
    held = place_hold(ready(), hold_id="w:1", kind="window", owner="s", now=later, ttl=GRACE)
    why = why_list_the_account(held, later, GRACE, LIFETIME)
    assert why is not None and "lifetime" in why


def test_a_sent_delete_is_confirmed_once_its_lease_is_over() -> None:
    record = LedgerRecord(deployment="ft", state=KnownState.DELETING)
    assert why_list_the_account(record, T0, GRACE, LIFETIME) is not None


def test_an_operation_under_way_needs_no_list() -> None:
    leased = take_lease(ready(), owner="w", operation="delete", now=T0, ttl=GRACE)
    assert leased is not None
    assert why_list_the_account(leased, T0 + timedelta(seconds=1), GRACE, LIFETIME) is None


def _records_in_every_state() -> list[LedgerRecord]:
    fresh = ready()
    held = place_hold(fresh, hold_id="job:1", kind="job", owner="w", now=T0, ttl=GRACE)
    released = release_hold(held, hold_id="job:1", now=T0 + timedelta(minutes=2))
    deleting = take_lease(released, owner="i", operation="delete", now=T0, ttl=timedelta(minutes=3))
    provisioning = take_lease(fresh, owner="i", operation="provision", now=T0, ttl=GRACE)
    assert deleting is not None and provisioning is not None
    return [
        LedgerRecord(deployment="ft", state=KnownState.ABSENT),
        LedgerRecord(deployment="ft"),  # unknown: never seen
        fresh,
        held,
        released,
        place_hold(released, hold_id="w:1", kind="window", owner="s", now=T0, ttl=LIFETIME * 2),
        deleting,
        provisioning,
        fresh.model_copy(update={"state": KnownState.DELETING}),
    ]


def test_no_pass_before_listing_due_would_list() -> None:
    """The planner skips the reaper's passes before `listing_due`: not one of them may have
    listed. Checked minute by minute over a day, from several moments, for every state."""
    for record in _records_in_every_state():
        for start in (T0, T0 + timedelta(minutes=4), T0 + timedelta(hours=13, minutes=58)):
            due = listing_due(record, start, GRACE, LIFETIME)
            moment = start
            while moment < start + timedelta(days=1) and (due is None or moment < due):
                assert why_list_the_account(record, moment, GRACE, LIFETIME) is None, (
                    record,
                    start,
                    moment,
                )
                moment += timedelta(minutes=1)


def test_listing_due_is_when_the_grace_runs_out() -> None:
    held = place_hold(ready(), hold_id="job:1", kind="job", owner="w", now=T0, ttl=GRACE)
    released = release_hold(held, hold_id="job:1", now=T0 + timedelta(minutes=1))
    assert listing_due(released, T0 + timedelta(minutes=2), GRACE, LIFETIME) == (
        T0 + timedelta(minutes=6)
    )
    assert (
        listing_due(LedgerRecord(deployment="ft", state=KnownState.ABSENT), T0, GRACE, LIFETIME)
        is None
    )
