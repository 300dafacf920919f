"""A batch run's record: who may run it, how pages move its marker, what the summary says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.batch.models import (
    RunCounters,
    RunInvalid,
    claim_run,
    continuation_delay,
    new_run,
    page_done,
    parse_deadline,
    release_claim,
    stalled_run_reason,
    summary_of,
)

NOW = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
TTL = timedelta(seconds=30)


def run(**fields: object):  # type: ignore[no-untyped-def]
    made = new_run(
        run_id="nightly-1",
        model="contracts",
        input_container="batch-in",
        input_prefix="contracts/",
        output_prefix="contracts/",
        deadline=NOW + timedelta(hours=1),
        now=NOW,
    )
    return made.model_copy(update=fields)


def test_one_worker_at_a_time_until_its_claim_lapses() -> None:
    first = claim_run(run(), worker="a", now=NOW, ttl=TTL)
    assert first is not None and first.worker == "a" and first.slices == 1
    assert claim_run(first, worker="b", now=NOW + timedelta(seconds=10), ttl=TTL) is None
    taken = claim_run(first, worker="b", now=NOW + timedelta(seconds=31), ttl=TTL)
    assert taken is not None and taken.worker == "b"
    assert claim_run(run(status="succeeded"), worker="a", now=NOW, ttl=TTL) is None


def test_a_finished_page_moves_the_marker_and_adds_its_counts() -> None:
    claimed = claim_run(run(), worker="a", now=NOW, ttl=TTL)
    assert claimed is not None
    page = RunCounters(listed=100, succeeded=97, failed=1, skipped=2, requests=98)
    moved = page_done(claimed, worker="a", marker="next-page", counters=page)
    assert moved is not None and moved.marker == "next-page" and moved.pages_done == 1
    assert moved.counters.succeeded == 97 and moved.status == "running"
    again = page_done(moved, worker="a", marker=None, counters=page)
    assert again is not None and again.counters.listed == 200 and again.marker is None
    assert page_done(moved, worker="b", marker=None, counters=page) is None, "not b's run"


def test_bad_starts_are_refused_with_the_reason() -> None:
    with pytest.raises(RunInvalid, match="run id"):
        new_run(
            run_id="../x", model="m", input_container="c", input_prefix="", output_prefix="",
            deadline=None, now=NOW,
        )  # fmt: skip
    with pytest.raises(RunInvalid, match=r"'\.\.'"):
        new_run(
            run_id="r", model="m", input_container="c", input_prefix="a/../b", output_prefix="",
            deadline=None, now=NOW,
        )  # fmt: skip
    with pytest.raises(RunInvalid, match="passed"):
        new_run(
            run_id="r", model="m", input_container="c", input_prefix="", output_prefix="",
            deadline=NOW - timedelta(seconds=1), now=NOW,
        )  # fmt: skip


def test_deadlines_are_moments_or_durations_from_now() -> None:
    assert parse_deadline("PT2H", now=NOW) == NOW + timedelta(hours=2)
    assert parse_deadline("3600", now=NOW) == NOW + timedelta(hours=1)
    assert parse_deadline("2026-11-29T06:00:00", now=NOW) == datetime(2026, 11, 29, 6, tzinfo=UTC)
    with pytest.raises(RunInvalid):
        parse_deadline("tomorrow-ish", now=NOW)


def test_continuations_never_wait_past_the_deadline() -> None:
    assert continuation_delay(300, run(), NOW) == 300
    assert continuation_delay(300, run(), NOW + timedelta(minutes=58)) == 120
    assert continuation_delay(300, run(deadline=None), NOW) == 300


def test_the_summary_counts_hosting_from_when_the_batch_needed_the_deployment() -> None:
    ended = run(
        status="deadline_reached",
        needed_since=NOW,
        first_ready_at=NOW + timedelta(minutes=6),
        finished=NOW + timedelta(minutes=60),
        counters=RunCounters(listed=10, succeeded=9, failed=1, prompt_tokens=500),
        left_count=5,
        left_blob="nightly-1/left.txt",
    )
    summary = summary_of(ended, now=NOW + timedelta(hours=2), left_sample=["contracts/x.txt"])
    assert summary["billed_hosting_seconds"] == 3600
    assert summary["durations_seconds"]["waiting_for_deployment"] == 360
    assert summary["documents"] == {
        "listed": 10,
        "succeeded": 9,
        "failed": 1,
        "skipped_already_done": 0,
        "left_at_deadline": 5,
    }
    assert summary["left"]["count"] == 5 and summary["left"]["first"] == ["contracts/x.txt"]


def test_a_new_run_is_due_at_once_and_stalled_only_after_the_grace() -> None:
    fresh = run()
    grace = timedelta(seconds=60)
    assert stalled_run_reason(fresh, NOW, grace) is None
    reason = stalled_run_reason(fresh, NOW + grace, grace)
    assert reason is not None and "never came" in reason


def test_a_claimed_run_is_stalled_only_when_its_worker_stops_renewing() -> None:
    claimed = claim_run(run(), worker="w1", now=NOW, ttl=TTL)
    assert claimed is not None and claimed.next_slice_at is None
    grace = timedelta(seconds=5)
    assert stalled_run_reason(claimed, NOW + TTL, grace) is None
    reason = stalled_run_reason(claimed, NOW + TTL + grace, grace)
    assert reason is not None and "w1" in reason


def test_a_released_run_without_a_next_slice_is_stalled_and_a_final_one_never() -> None:
    claimed = claim_run(run(), worker="w1", now=NOW, ttl=TTL)
    assert claimed is not None
    released = release_claim(claimed, worker="w1")
    assert released is not None
    assert stalled_run_reason(released, NOW, timedelta(0)) == "no next slice is scheduled"
    finished = released.model_copy(update={"status": "succeeded"})
    assert stalled_run_reason(finished, NOW + timedelta(days=1), timedelta(0)) is None
