"""The warm path's storage round trips, counted at the SDK's HTTP pipeline (as the warm
benchmark counts them), and what a parked job leaves behind once it is final."""

from __future__ import annotations

from collections import Counter

from bench.roundtrips import RoundTripCounter, per_document
from bench.warm import roles_of
from scripts.azurite import RunningAzurite
from shared.composition import build_services
from shared.documents.job_store import OPEN_PREFIX, PAYLOAD_PREFIX
from shared.documents.jobs import move_job, new_job
from shared.settings import AppSettings
from simulator.process import RunningSimulator
from tests.integration.conftest import local_app_settings
from tests.integration.drive import process_to_end

# The input's version (read while the record is created), the claim (the record created with
# its model, tagged open), the hold, the outcome (its own blob, the input's and the other
# name's properties, the current name), the release, and the record's end (with the version,
# tagged final). No management call, no open marker, no parked payload.
WARM_PATH = Counter(
    {
        "input document: read properties": 2,
        "job record: create if absent": 1,
        "ledger (holds): replace if unchanged": 2,
        "outcome, own version: create if absent": 1,
        "outcome, current name: read properties": 1,
        "outcome, current name: create if absent": 1,
        "job record: replace if unchanged": 1,
    }
)


def test_a_document_on_a_serving_deployment_makes_nine_round_trips(
    azurite: RunningAzurite, sim: RunningSimulator
) -> None:
    settings = AppSettings.model_validate(local_app_settings(azurite, sim, IDLE_GRACE_SECONDS=3600))
    counter = RoundTripCounter(roles_of(settings))
    services = build_services(settings, request_policy=counter)
    try:
        first = process_to_end(services, "first.txt", b"Supply agreement.")
        assert first.status == "succeeded"
        before = counter.snapshot()
        outcome = services.engine.process_blob(
            settings.input_container, "second.txt", b"Lease agreement."
        )
        made = per_document(before, counter.snapshot())
        record = services.jobs.get(outcome.job_id)
    finally:
        services.blob_service.close()
    assert outcome.status == "succeeded"
    assert made == WARM_PATH, made
    assert record is not None and record.status == "succeeded"
    # The run's `running` is in the history though it was not written on its own.
    assert [change.status for change in record.history] == ["queued", "running", "succeeded"]
    assert record.input_uploaded_at is not None and record.model is not None


def test_a_parked_job_leaves_no_payload_once_final_and_the_sweeper_finds_nothing_open(
    azurite: RunningAzurite, sim: RunningSimulator
) -> None:
    settings = AppSettings.model_validate(local_app_settings(azurite, sim))
    services = build_services(settings)
    try:
        outcome = process_to_end(services, "cold.txt", b"Supply agreement.")
        jobs = services.blob_service.get_container_client(settings.jobs_container)
        left = [
            blob.name
            for blob in jobs.list_blobs()
            if blob.name.startswith((OPEN_PREFIX, PAYLOAD_PREFIX))
        ]
        record = services.jobs.get(outcome.job_id)
        swept = services.sweeper.run()
    finally:
        services.blob_service.close()
    assert outcome.status == "succeeded"
    assert record is not None and "waiting_for_deployment" in [h.status for h in record.history]
    assert left == []
    assert swept.open_jobs == 0


def test_a_job_not_final_is_found_by_its_tag_and_a_marker_from_before_the_tag_too(
    azurite: RunningAzurite, sim: RunningSimulator
) -> None:
    settings = AppSettings.model_validate(local_app_settings(azurite, sim))
    services = build_services(settings)
    try:
        now = services.model().ledger.now()
        tagged = new_job(job_id="tagged", container="in", blob_name="a.txt", now=now)
        assert services.jobs.create(tagged)
        legacy = new_job(job_id="legacy", container="in", blob_name="b.txt", now=now)
        assert services.jobs.create(legacy)
        services.jobs.change("legacy", lambda r: move_job(r, "failed", now=now) if r else None)
        services.jobs.mark_open("legacy")  # written by a version that marked open jobs
        assert sorted(services.jobs.open_job_ids()) == ["legacy", "tagged"]
        services.jobs.change("tagged", lambda r: move_job(r, "succeeded", now=now) if r else None)
        report = services.sweeper.run()
        assert (report.open_jobs, report.closed) == (1, 1), "the legacy marker is removed"
        assert list(services.jobs.open_job_ids()) == []
    finally:
        services.blob_service.close()
