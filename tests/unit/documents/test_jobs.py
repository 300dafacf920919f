"""Job records: stable ids, claims and transitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.documents.jobs import claim_job, job_id_for, move_job, new_job, release_job

T0 = datetime(2026, 3, 23, 9, 0, tzinfo=UTC)
TTL = timedelta(minutes=10)


def test_job_id_is_stable_for_path_and_content() -> None:
    assert job_id_for("in", "a.txt", b"x") == job_id_for("in", "a.txt", b"x")
    assert job_id_for("in", "a.txt", b"x") != job_id_for("in", "a.txt", b"y")
    assert job_id_for("in", "a.txt", b"x") != job_id_for("in", "b.txt", b"x")
    assert len(job_id_for("in", "a.txt", b"x")) == 24


def test_finished_jobs_are_never_claimed_again() -> None:
    record = new_job(job_id="j", container="in", blob_name="a.txt", now=T0)
    done = move_job(record, "succeeded", now=T0, result_blob="a.txt.result.json")
    assert claim_job(done, worker="w2", now=T0, ttl=TTL) is None
    failed = move_job(record, "failed", now=T0)
    assert claim_job(failed, worker="w2", now=T0, ttl=TTL) is None


def test_a_live_claim_blocks_others_and_an_expired_one_does_not() -> None:
    record = new_job(job_id="j", container="in", blob_name="a.txt", now=T0)
    claimed = claim_job(record, worker="w1", now=T0, ttl=TTL)
    assert claimed is not None and claimed.attempts == 1
    assert claim_job(claimed, worker="w2", now=T0 + TTL / 2, ttl=TTL) is None
    retaken = claim_job(claimed, worker="w2", now=T0 + 2 * TTL, ttl=TTL)
    assert retaken is not None and retaken.worker == "w2" and retaken.attempts == 2


def test_terminal_move_frees_the_claim_and_keeps_history() -> None:
    record = claim_job(
        new_job(job_id="j", container="in", blob_name="a", now=T0), worker="w", now=T0, ttl=TTL
    )
    assert record is not None
    running = move_job(record, "running", now=T0 + TTL / 4)
    done = move_job(running, "succeeded", now=T0 + TTL / 2)
    assert done.worker is None
    assert [c.status for c in done.history] == ["queued", "running", "succeeded"]
    assert done.entered("running") == T0 + TTL / 4


def test_release_lets_a_retry_claim_at_once() -> None:
    record = claim_job(
        new_job(job_id="j", container="in", blob_name="a", now=T0), worker="w", now=T0, ttl=TTL
    )
    assert record is not None
    released = release_job(record, worker="w", now=T0, note="timed out waiting")
    assert released.worker is None
    assert released.history[-1].note == "timed out waiting"
    assert claim_job(released, worker="w2", now=T0, ttl=TTL) is not None
