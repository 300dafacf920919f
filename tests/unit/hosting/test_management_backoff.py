"""The management API failing: one backoff for every instance, recorded in the ledger. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.hosting.holds import (
    LedgerRecord,
    management_backoff_seconds,
    management_paused,
    note_management_answered,
    note_management_failure,
)

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_the_backoff_doubles_from_the_poll_interval_up_to_the_longest_wait() -> None:
    waits = [management_backoff_seconds(n, poll=15, longest=300) for n in range(1, 8)]
    assert waits == [15, 30, 60, 120, 240, 300, 300]


def test_each_failure_pauses_every_caller_and_a_failure_seen_meanwhile_counts_once() -> None:
    record = LedgerRecord(deployment="ft")
    first = note_management_failure(record, now=T0, poll=15, longest=300)
    assert (first.management_failures, first.management_retry_at) == (1, T0 + timedelta(seconds=15))
    assert first.next_check_at == first.management_retry_at, "no provisioning step before it"
    assert management_paused(first, T0 + timedelta(seconds=14))
    # Another instance's look that started before the pause was recorded adds nothing.
    again = note_management_failure(first, now=T0 + timedelta(seconds=1), poll=15, longest=300)
    assert again == first
    later = note_management_failure(first, now=T0 + timedelta(seconds=15), poll=15, longest=300)
    assert later.management_failures == 2
    assert later.management_retry_at == T0 + timedelta(seconds=45)
    assert not management_paused(later, T0 + timedelta(seconds=45))


def test_an_answer_clears_the_record_and_writes_nothing_when_there_was_nothing() -> None:
    failed = note_management_failure(LedgerRecord(deployment="ft"), now=T0, poll=15, longest=300)
    cleared = note_management_answered(failed)
    assert cleared is not None and cleared.management_failures == 0
    assert cleared.management_retry_at is None
    assert note_management_answered(LedgerRecord(deployment="ft")) is None


def test_a_later_next_check_is_kept() -> None:
    waiting = LedgerRecord(deployment="ft", next_check_at=T0 + timedelta(minutes=5))
    noted = note_management_failure(waiting, now=T0, poll=15, longest=300)
    assert noted.next_check_at == T0 + timedelta(minutes=5)
