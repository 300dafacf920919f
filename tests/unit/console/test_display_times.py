"""One time format in every table and line, ids that are never folded, counters for people."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from rich.console import Console

from shared.console.display import batch_detail, job_detail, jobs_table, log_time, moment, number
from shared.documents.jobs import new_job

NOW = datetime(2026, 12, 3, 17, 15, 21, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")


def rendered(renderable: object, width: int = 80) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def test_a_moment_is_to_the_second_local_beside_utc_and_how_far() -> None:
    at = NOW - timedelta(seconds=3, microseconds=271_828)
    assert moment(at, NOW, zone=PARIS) == "18:15:18 CET / 17:15:18Z (3s ago)"
    assert moment(at, NOW, zone=UTC) == "17:15:18Z (3s ago)"
    later = NOW + timedelta(days=2, microseconds=600_000)
    assert moment(later, NOW, zone=PARIS) == (
        "2026-12-05 18:15:22 CET / 2026-12-05 17:15:22Z (in 2d00h)"
    )


def test_a_job_id_stays_whole_at_80_columns() -> None:
    records = [
        new_job(
            job_id="e98c6fce19798a0e0e94ec3a",
            container="documents-in",
            blob_name="submitted/2026-11-29/8d6fef4bf0fb-rfp-lisbon-with-a-long-name.txt",
            now=NOW - timedelta(microseconds=123_456),
            profile="rfps",
        )
    ]
    text = rendered(jobs_table(records, NOW))
    assert "e98c6fce19798a0e0e94ec3a" in text
    assert ".876" not in text and "123456" not in text


def test_job_history_and_batch_times_and_counters_are_rounded() -> None:
    view = {
        "job_id": "e98c6fce19798a0e0e94ec3a",
        "status": "succeeded",
        "history": [{"status": "queued", "at": "2026-12-03T17:15:17.734512+00:00"}],
    }
    assert "17:15:18Z (3s ago)" in rendered(job_detail(view, NOW), width=120)
    run = {
        "run_id": "r1",
        "created": "2026-12-03T17:15:17.734512+00:00",
        "counters": {"succeeded": 3, "processing_seconds": 3.842734072999974},
    }
    text = rendered(batch_detail(run, NOW), width=120)
    assert "processing_seconds 3.8" in text and "3.84" not in text
    assert "17:15:18Z" in text and ".734" not in text
    assert number(12) == "12"


def test_verbose_log_lines_use_the_same_clock_to_the_second() -> None:
    shown = log_time(datetime(2026, 12, 3, 17, 15, 17, 734_512, tzinfo=UTC)).plain
    local = datetime(2026, 12, 3, 17, 15, 18, tzinfo=UTC).astimezone()
    assert shown == local.strftime("%Y-%m-%d %H:%M:%S %Z")
    assert "/" not in shown, "not the 12/03/26 of the default log format"
