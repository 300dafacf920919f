"""The sweeper's decision: which open jobs need a resume now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.documents.jobs import JobRecord, claim_job, new_job, park_job
from shared.documents.sweeper import stalled_reason

T0 = datetime(2026, 3, 23, 9, 0, tzinfo=UTC)
TTL = timedelta(minutes=10)
GRACE = timedelta(minutes=1)


def fresh() -> JobRecord:
    return new_job(job_id="j", container="in", blob_name="a", now=T0)


def test_a_live_claim_is_in_hand_and_an_expired_one_is_stalled() -> None:
    claimed = claim_job(
        new_job(job_id="j", container="in", blob_name="a", now=T0), worker="w", now=T0, ttl=TTL
    )
    assert claimed is not None
    assert stalled_reason(claimed, T0 + TTL, GRACE) is None, "within the grace"
    reason = stalled_reason(claimed, T0 + TTL + GRACE, GRACE)
    assert reason == "its worker w stopped renewing its claim"


def test_a_parked_job_is_stalled_only_when_its_resume_is_overdue() -> None:
    claimed = claim_job(
        new_job(job_id="j", container="in", blob_name="a", now=T0), worker="w", now=T0, ttl=TTL
    )
    assert claimed is not None
    until = T0 + timedelta(minutes=5)
    parked = park_job(claimed, worker="w", now=T0, until=until, reason="x", for_deployment=True)
    assert parked is not None
    assert stalled_reason(parked, until + GRACE / 2, GRACE) is None
    assert stalled_reason(parked, until + GRACE, GRACE) == "its resume is overdue"


def test_a_job_never_claimed_is_stalled_after_the_grace() -> None:
    queued = new_job(job_id="j", container="in", blob_name="a", now=T0, source="http")
    assert stalled_reason(queued, T0 + GRACE / 2, GRACE) is None
    assert (
        stalled_reason(queued, T0 + GRACE, GRACE) == "it has been queued unclaimed since 09:00:00"
    )
