"""Benchmark of the savings report (`hosting report`): its time over a month of records.

`python -m bench.report [--jobs N] [--days D]` starts Azurite (no simulator is needed: the
report reads storage only), writes D days of a busy model's records as the app writes them
(N finished jobs, each a job record and a result with its usage; two deployment cycles a day
in the hosting log), then times the report over those days with the job records and results
read one at a time and `workers` at a time (the app's default, 16). The figure is the ratio
of the two, measured in one run (the machine is shared and noisy). The report's figures are
checked on the way: every job's tokens counted, every cycle found. Results print as JSON and
go to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from azure.storage.blob import BlobServiceClient

from scripts.azurite import start_azurite
from shared.batch.store import RunStore
from shared.catalog import ModelDefaults, catalog_from_data
from shared.cost.log import HostingLog, HostingLogReader, new_event
from shared.cost.reporting import ReportRequest, SavingsReports
from shared.cost.usage import UsageReader
from shared.documents.jobs import JobRecord, StatusChange
from shared.hosting.lifecycle import LifecycleEvent

RESULTS = Path(__file__).resolve().parent / "results"
MODEL = "contracts"
DEFAULTS = ModelDefaults(idle_grace_seconds=300, max_lifetime_seconds=50400, context_tokens=128000)


def _fill(blobs: BlobServiceClient, start: datetime, days: int, jobs: int) -> None:
    """D days of records: two cycles a day in the log, N jobs spread over the cycles."""
    log = HostingLog(blobs.get_container_client("hosting-log"), lambda: start)
    for day in range(days):
        for opens in (9, 14):
            moments: list[tuple[LifecycleEvent, float]] = [
                ("create_sent", opens),
                ("serving", opens + 0.1),
                ("delete_sent", opens + 2),
                ("gone", opens + 2.01),
            ]
            for kind, hour in moments:
                log.append(
                    new_event(
                        kind,
                        at=start + timedelta(days=day, hours=hour),
                        model=MODEL,
                        deployment="ft-contracts",
                        sku="Standard",
                        capacity=10,
                        record=None,
                        actor="bench",
                    )
                )
    records = blobs.get_container_client("jobs")
    results = blobs.get_container_client("documents-out")
    for container in (records, results):
        container.create_container()

    def write(index: int) -> None:
        day, slot = divmod(index, max(1, jobs // days))
        finished = start + timedelta(days=min(day, days - 1), hours=9.5, seconds=slot)
        job_id = f"{index:024x}"
        result = f"versions/{MODEL}/doc-{index}.txt/{job_id}.result.json"
        record = JobRecord(
            id=job_id,
            status="succeeded",
            input_container="documents-in",
            input_blob=f"{MODEL}/doc-{index}.txt",
            created=finished - timedelta(seconds=30),
            history=(StatusChange(status="succeeded", at=finished),),
            model=MODEL,
            result_blob=result,
        )
        records.upload_blob(f"{job_id}.json", record.model_dump_json())
        provenance = {"usage": {"prompt_tokens": 1000, "completion_tokens": 200}}
        results.upload_blob(
            result, json.dumps({"provenance": {**provenance, "inference_seconds": 2.0}})
        )

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(write, range(jobs)))


def bench_report(blobs: BlobServiceClient, jobs: int, days: int) -> dict[str, Any]:
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
        days=days
    )
    filled = time.perf_counter()
    _fill(blobs, start, days, jobs)
    filled = time.perf_counter() - filled
    catalog = catalog_from_data(
        {"models": {MODEL: {"deployment": "ft-contracts", "fine_tuned_model": "m.ft-x"}}},
        DEFAULTS,
        source="bench",
        profiles_json=None,
    )
    timings: dict[str, float] = {}
    for workers in (1, 16):
        reports = SavingsReports(
            log=HostingLogReader(blobs.get_container_client("hosting-log")),
            usage=UsageReader(
                blobs.get_container_client("jobs"),
                blobs.get_container_client("documents-out"),
                RunStore(blobs.get_container_client("batch-runs")),
                workers=workers,
            ),
            catalog=catalog,
            clock=lambda: datetime.now(UTC),
            time_scale=1.0,
            expected_provision_seconds=300.0,
        )
        began = time.perf_counter()
        report = reports.report(ReportRequest(since=start, until=start + timedelta(days=days)))
        timings[f"workers_{workers}"] = time.perf_counter() - began
        (total,) = [row for row in report.totals if row.model == MODEL]
        assert total.documents == jobs, (total.documents, jobs)
        assert total.input_tokens == 1000 * jobs
        assert total.on_demand.deploy_cycles == 2 * days
    return {
        "jobs": jobs,
        "days": days,
        "fill_seconds": round(filled, 2),
        "report_seconds_one_at_a_time": round(timings["workers_1"], 2),
        "report_seconds_16_at_a_time": round(timings["workers_16"], 2),
        "speed_up": round(timings["workers_1"] / timings["workers_16"], 2),
        "jobs_per_second_16_at_a_time": round(jobs / timings["workers_16"]),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="bench-report-") as folder,
        start_azurite(Path(folder)) as azurite,
    ):
        blobs = BlobServiceClient.from_connection_string(azurite.connection_string)
        for name in ("hosting-log", "batch-runs"):
            blobs.create_container(name)
        results = {
            "started": datetime.now(UTC).isoformat(),
            "report": bench_report(blobs, args.jobs, args.days),
        }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"report-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(json.dumps(results, indent=2))
    print(f"written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
