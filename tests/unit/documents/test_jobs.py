"""Job records: stable ids, claims and transitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.documents.jobs import claim_job, job_id_for, move_job, new_job, park_job, release_job

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


def test_parking_gives_the_claim_back_and_waiting_for_the_deployment_spends_no_attempt() -> None:
    record = new_job(job_id="j", container="in", blob_name="a.txt", now=T0)
    claimed = claim_job(record, worker="w1", now=T0, ttl=TTL)
    assert claimed is not None and claimed.attempts == 1
    until = T0 + timedelta(minutes=5)
    parked = park_job(
        claimed, worker="w1", now=T0, until=until, reason="Creating", for_deployment=True
    )
    assert parked is not None
    assert (parked.status, parked.worker, parked.parked_until) == (
        "waiting_for_deployment",
        None,
        until,
    )
    assert parked.waiting_reason == "Creating" and parked.waiting_since == T0
    resumed = claim_job(parked, worker="w2", now=until, ttl=TTL)
    assert resumed is not None and resumed.attempts == 1, "a resume from waiting is free"
    assert resumed.parked_until is None and not resumed.parked_for_deployment
    again = park_job(
        resumed, worker="w2", now=until, until=until, reason="still", for_deployment=True
    )
    assert again is not None and again.waiting_since == T0, "waiting counts from the start"


def test_a_retry_park_and_a_dead_workers_claim_each_spend_an_attempt() -> None:
    record = new_job(job_id="j", container="in", blob_name="a.txt", now=T0)
    claimed = claim_job(record, worker="w1", now=T0, ttl=TTL)
    assert claimed is not None
    retry = park_job(claimed, worker="w1", now=T0, until=T0, reason="503", for_deployment=False)
    assert retry is not None and retry.status == "queued" and retry.waiting_since is None
    second = claim_job(retry, worker="w2", now=T0, ttl=TTL)
    assert second is not None and second.attempts == 2
    third = claim_job(second, worker="w3", now=T0 + TTL, ttl=TTL)  # w2 died
    assert third is not None and third.attempts == 3


def test_only_the_claim_holder_parks_a_job() -> None:
    record = new_job(job_id="j", container="in", blob_name="a.txt", now=T0)
    claimed = claim_job(record, worker="w1", now=T0, ttl=TTL)
    assert claimed is not None
    assert park_job(claimed, worker="w2", now=T0, until=T0, reason="x", for_deployment=True) is None
