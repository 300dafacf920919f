"""Listing job records newest first against Azurite, as `hosting jobs` does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.documents.jobs import new_job
from tests.integration.conftest import ServicesFactory


def test_records_come_newest_first_by_their_own_time_and_since_filters_them(
    make_services: ServicesFactory,
) -> None:
    jobs = make_services().jobs
    now = datetime.now(UTC)
    # Written within one second, so the listing's creation times (to the second) tie and
    # the records' own `created` must decide the order.
    ages = {"a" * 24: 3, "b" * 24: 1, "c" * 24: 2}
    for job_id, hours in ages.items():
        jobs.create(
            new_job(
                job_id=job_id, container="in", blob_name=job_id, now=now - timedelta(hours=hours)
            )
        )
    assert [r.id for r in jobs.newest_first()] == ["b" * 24, "c" * 24, "a" * 24]
    recent = jobs.newest_first(since=now - timedelta(hours=2, minutes=30))
    assert [r.id for r in recent] == ["b" * 24, "c" * 24]
    assert list(jobs.newest_first(since=now + timedelta(minutes=1))) == []
