"""The hold ledger's pure rules: holds, teardown decisions and the operation lease."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.hosting.holds import (
    KnownState,
    LedgerRecord,
    decide_teardown,
    end_step,
    finish_lease,
    mark_suspect,
    next_look_seconds,
    place_hold,
    release_hold,
    renew_hold,
    renew_lease,
    take_lease,
)

T0 = datetime(2026, 3, 23, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
GRACE = timedelta(minutes=5)


def ready_record() -> LedgerRecord:
    return LedgerRecord(deployment="ft", state=KnownState.READY, ready_since=T0)


def test_place_hold_adds_and_refreshes_without_duplicates() -> None:
    record = place_hold(ready_record(), hold_id="a", kind="job", owner="w1", now=T0, ttl=MINUTE)
    record = place_hold(
        record, hold_id="a", kind="job", owner="w1", now=T0 + MINUTE / 2, ttl=MINUTE
    )
    assert len(record.holds) == 1
    assert record.holds[0].created == T0
    assert record.holds[0].expires == T0 + MINUTE * 1.5


def test_expired_holds_are_dropped_on_write() -> None:
    record = place_hold(ready_record(), hold_id="old", kind="job", owner="w", now=T0, ttl=MINUTE)
    record = place_hold(
        record, hold_id="new", kind="batch", owner="b", now=T0 + 2 * MINUTE, ttl=MINUTE
    )
    assert [h.id for h in record.holds] == ["new"]


def test_renew_of_a_dropped_hold_reports_it_gone() -> None:
    assert renew_hold(ready_record(), hold_id="ghost", now=T0, ttl=MINUTE) is None


def test_release_records_when_the_last_reason_left() -> None:
    record = place_hold(ready_record(), hold_id="a", kind="job", owner="w", now=T0, ttl=MINUTE)
    record = release_hold(record, hold_id="a", now=T0 + MINUTE / 2)
    assert record.holds == ()
    assert record.last_hold_released == T0 + MINUTE / 2


def test_no_teardown_under_a_live_hold_even_after_grace() -> None:
    record = place_hold(
        ready_record(), hold_id="w", kind="window", owner="9-17", now=T0, ttl=timedelta(hours=8)
    )
    decision = decide_teardown(record, now=T0 + timedelta(hours=1), idle_grace=GRACE, exists=True)
    assert not decision.delete
    assert "window:9-17" in decision.reason


def test_teardown_waits_for_the_idle_grace_after_the_last_release() -> None:
    record = place_hold(ready_record(), hold_id="a", kind="job", owner="w", now=T0, ttl=MINUTE)
    record = release_hold(record, hold_id="a", now=T0 + MINUTE / 2)
    early = decide_teardown(record, now=T0 + 2 * MINUTE, idle_grace=GRACE, exists=True)
    assert not early.delete
    assert early.retry_after == GRACE - (2 * MINUTE - MINUTE / 2)
    late = decide_teardown(record, now=T0 + MINUTE / 2 + GRACE, idle_grace=GRACE, exists=True)
    assert late.delete


def test_zero_grace_deletes_as_soon_as_the_last_hold_is_released() -> None:
    record = place_hold(ready_record(), hold_id="a", kind="job", owner="w", now=T0, ttl=MINUTE)
    record = release_hold(record, hold_id="a", now=T0 + MINUTE / 2)
    assert decide_teardown(record, now=T0 + MINUTE / 2, idle_grace=timedelta(0), exists=True).delete


def test_crashed_job_hold_expires_and_then_allows_teardown() -> None:
    record = place_hold(
        ready_record(), hold_id="crashed", kind="job", owner="w", now=T0, ttl=MINUTE
    )
    assert not decide_teardown(
        record, now=T0 + MINUTE / 2, idle_grace=timedelta(0), exists=True
    ).delete
    assert decide_teardown(record, now=T0 + 2 * MINUTE, idle_grace=timedelta(0), exists=True).delete


def test_max_lifetime_overrides_holds() -> None:
    record = place_hold(
        ready_record(), hold_id="leak", kind="job", owner="w", now=T0, ttl=timedelta(days=2)
    )
    decision = decide_teardown(
        record,
        now=T0 + timedelta(hours=15),
        idle_grace=GRACE,
        exists=True,
        created_at=T0,
        max_lifetime=timedelta(hours=14),
    )
    assert decision.delete
    assert "maximum lifetime" in decision.reason


def test_nothing_to_tear_down_when_absent() -> None:
    assert not decide_teardown(ready_record(), now=T0, idle_grace=GRACE, exists=False).delete


def test_lease_is_exclusive_until_it_expires() -> None:
    first = take_lease(ready_record(), owner="a", operation="provision", now=T0, ttl=MINUTE)
    assert first is not None and first.state is KnownState.PROVISIONING
    assert (
        take_lease(first, owner="b", operation="provision", now=T0 + MINUTE / 2, ttl=MINUTE) is None
    )
    taken_over = take_lease(
        first, owner="b", operation="provision", now=T0 + 2 * MINUTE, ttl=MINUTE
    )
    assert taken_over is not None and taken_over.lease is not None
    assert taken_over.lease.owner == "b"


def test_a_new_leader_inherits_the_dead_leaders_poller_token() -> None:
    first = take_lease(
        ready_record(),
        owner="a",
        operation="provision",
        now=T0,
        ttl=MINUTE,
        continuation_token="tok",
    )
    assert first is not None
    second = take_lease(first, owner="b", operation="provision", now=T0 + 2 * MINUTE, ttl=MINUTE)
    assert second is not None and second.lease is not None
    assert second.lease.continuation_token == "tok"


def test_teardown_refused_while_another_instance_holds_the_lease() -> None:
    leased = take_lease(ready_record(), owner="a", operation="provision", now=T0, ttl=MINUTE)
    assert leased is not None
    decision = decide_teardown(leased, now=T0, idle_grace=timedelta(0), exists=True)
    assert not decision.delete
    assert "provision" in decision.reason


def test_finish_lease_records_ready_and_counts_provisionings() -> None:
    leased = take_lease(
        LedgerRecord(deployment="ft"), owner="a", operation="provision", now=T0, ttl=MINUTE
    )
    assert leased is not None
    done = finish_lease(leased, owner="a", now=T0 + MINUTE / 2, state=KnownState.READY)
    assert done.lease is None
    assert done.state is KnownState.READY
    assert done.ready_since == T0 + MINUTE / 2
    assert done.provision_count == 1


def test_finish_lease_by_a_superseded_leader_changes_nothing() -> None:
    leased = take_lease(
        LedgerRecord(deployment="ft"), owner="a", operation="provision", now=T0, ttl=MINUTE
    )
    assert leased is not None
    taken = take_lease(leased, owner="b", operation="provision", now=T0 + 2 * MINUTE, ttl=MINUTE)
    assert taken is not None
    after = finish_lease(taken, owner="a", now=T0 + 2 * MINUTE, state=KnownState.FAILED, error="x")
    assert after == taken


def test_mark_suspect_only_once_for_the_same_ready_period() -> None:
    record = ready_record()
    suspect = mark_suspect(record, observed_ready_since=T0, now=T0 + MINUTE)
    assert suspect.state is KnownState.UNKNOWN
    reprovisioned = suspect.model_copy(
        update={"state": KnownState.READY, "ready_since": T0 + 2 * MINUTE}
    )
    # A job that saw the old ready period must not knock down the new one.
    assert (
        mark_suspect(reprovisioned, observed_ready_since=T0, now=T0 + 3 * MINUTE) == reprovisioned
    )


def test_a_kept_deployment_says_why_in_a_word_callers_can_act_on() -> None:
    held = place_hold(ready_record(), hold_id="j", kind="job", owner="w", now=T0, ttl=MINUTE)
    leased = take_lease(ready_record(), owner="a", operation="provision", now=T0, ttl=MINUTE)
    assert leased is not None
    released = release_hold(held, hold_id="j", now=T0)

    def why(record: LedgerRecord, *, exists: bool = True, grace: timedelta = GRACE) -> str | None:
        return decide_teardown(record, now=T0, idle_grace=grace, exists=exists).kept_because

    assert why(held) == "held"
    assert why(leased) == "busy"
    assert why(released) == "idle_grace"
    assert why(released, exists=False) == "absent"
    assert why(released, grace=timedelta(0)) is None


# --- step-wise provisioning and renewals -------------------------------------------------------


def leased(owner: str = "w1") -> LedgerRecord:
    record = take_lease(ready_record(), owner=owner, operation="provision", now=T0, ttl=MINUTE)
    assert record is not None
    return record


def test_a_renewal_extends_only_its_owners_live_or_lapsed_lease() -> None:
    record = leased()
    renewed = renew_lease(record, owner="w1", now=T0 + MINUTE / 2, ttl=MINUTE)
    assert renewed is not None and renewed.lease is not None
    assert renewed.lease.expires == T0 + MINUTE * 1.5
    assert renew_lease(record, owner="w2", now=T0, ttl=MINUTE) is None


def test_a_renewal_landing_after_the_operation_finished_never_takes_the_lease_again() -> None:
    finished = finish_lease(leased(), owner="w1", now=T0 + MINUTE, state=KnownState.READY)
    assert renew_lease(finished, owner="w1", now=T0 + MINUTE * 2, ttl=MINUTE) is None
    assert finished.state is KnownState.READY


def test_ending_a_step_frees_the_lease_keeps_provisioning_and_records_what_it_saw() -> None:
    record = leased()
    ended = end_step(record, owner="w1", provisioning_started=T0, last_checked=T0)
    assert ended is not None
    assert ended.lease is None and ended.state is KnownState.PROVISIONING
    assert ended.provisioning_started == T0
    assert end_step(record, owner="w2", last_checked=T0) is None, "not the leader's any more"


def test_ready_records_how_long_the_provisioning_took() -> None:
    record = end_step(leased(), owner="w1", provisioning_started=T0)
    assert record is not None
    taken = take_lease(record, owner="w1", operation="provision", now=T0, ttl=MINUTE)
    assert taken is not None
    ready = finish_lease(taken, owner="w1", now=T0 + 4 * MINUTE, state=KnownState.READY)
    assert ready.last_provision_seconds == 240
    assert ready.provisioning_started is None and ready.creates_since_ready == 0


def test_a_waiting_job_looks_again_when_the_provisioning_should_be_done_then_backs_off() -> None:
    record = LedgerRecord(deployment="ft", state=KnownState.PROVISIONING, provisioning_started=T0)

    def look(after: timedelta, **kw: float) -> float:
        return next_look_seconds(
            record, T0 + after, poll=15, expected=kw.get("expected", 300), longest=300
        )

    assert look(timedelta(seconds=60)) == 240, "the rest of the expected five minutes"
    assert look(timedelta(seconds=295)) == 15, "never sooner than the poll interval"
    assert look(timedelta(seconds=400)) == 50, "half the overrun"
    assert look(timedelta(seconds=2000)) == 300, "never later than the longest wait"
    seen = record.model_copy(update={"last_provision_seconds": 120.0})
    assert next_look_seconds(seen, T0, poll=15, expected=300, longest=300) == 120
    idle = LedgerRecord(deployment="ft")
    assert next_look_seconds(idle, T0, poll=15, expected=300, longest=300) == 15
