"""Which parked jobs a settled provisioning wakes: `jobs_to_wake` (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.documents.parking import jobs_to_wake
from shared.hosting.holds import KnownState, LedgerRecord, place_hold

T0 = datetime(2026, 3, 23, 9, 0, tzinfo=UTC)
TTL = timedelta(minutes=10)


def held(state: KnownState) -> LedgerRecord:
    record = LedgerRecord(deployment="ft", state=state)
    for job, worker in (("a", "w-a"), ("b", "w-b"), ("c", "w-c")):
        record = place_hold(record, hold_id=f"job:{job}", kind="job", owner=worker, now=T0, ttl=TTL)
    return place_hold(record, hold_id="window:x", kind="window", owner="schedule", now=T0, ttl=TTL)


def test_ready_wakes_every_other_waiting_job_but_not_windows() -> None:
    assert jobs_to_wake(held(KnownState.READY), settled_by="w-b", now=T0) == ["a", "c"]


def test_a_failure_for_good_wakes_them_too_so_they_fail_at_once() -> None:
    assert jobs_to_wake(held(KnownState.FAILED), settled_by="op", now=T0) == ["a", "b", "c"]


def test_still_provisioning_wakes_nobody() -> None:
    assert jobs_to_wake(held(KnownState.PROVISIONING), settled_by="w-a", now=T0) == []


def test_expired_holds_are_not_woken() -> None:
    assert jobs_to_wake(held(KnownState.READY), settled_by="x", now=T0 + TTL) == []
