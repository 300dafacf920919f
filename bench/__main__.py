"""Benchmarks of the on-demand engine on the local Azure (BENCHMARKS.md records the figures).

Run with `make bench` (all) or `python -m bench warm|burst|post|all`:

- `warm`: the warm path's time and storage round trips per document, through the engine
  (bench/warm.py); with `--against COMMIT`, this checkout's against COMMIT's, side by side in
  one run, as a ratio (bench/against.py);
- `import`: cold start, what `import function_app` costs a new instance and which SDKs it
  loads; with `--against COMMIT`, against COMMIT's as a ratio (bench/imports.py);
- `burst`: a cold burst of documents through the real triggers under the local Functions
  host: function execution per document, upload-to-result times, deployments and management
  calls, and the per-document strategy beside it (bench/burst.py);
- `post`: `POST /api/jobs` p95 during a burst of submissions, cold against warm
  (bench/post.py);
- `batch-throughput`: a batch run's tokens per minute against its deployment's token limit,
  and its share of 429 answers (bench/batch.py);
- `batch-memory`: a batch run's peak memory over 100,000 waiting documents against 1,000
  (bench/batch.py; not part of `all`: uploading 100,000 blobs takes minutes).

Each run starts its own Azurite and simulator, prints the figures as JSON and writes them to
bench/results/. Figures come from one run on a shared, noisy machine: compare ratios and
medians within a run. Progress is drawn by rich, with the app's warnings printed above it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.against import bench_against
from bench.batch import bench_batch_memory, bench_batch_throughput
from bench.burst import bench_burst
from bench.common import BURST_CAPACITY, DEFAULT_TIME_SCALE
from bench.imports import bench_imports
from bench.post import bench_post
from bench.warm import WARM_CAPACITY, bench_warm
from scripts.local_azure import local_azure
from shared.console.display import log_to, stderr_console, step_progress

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n", 1)[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "which",
        choices=["warm", "import", "burst", "post", "batch-throughput", "batch-memory", "all"],
        nargs="?",
        default="all",
    )
    parser.add_argument("--warm-documents", type=int, default=50)
    parser.add_argument(
        "--against",
        metavar="COMMIT",
        help="warm only: run this checkout's warm path and COMMIT's side by side, alternating, "
        "and print the ratio of their medians (bench/against.py)",
    )
    parser.add_argument("--against-rounds", type=int, default=3)
    parser.add_argument("--import-runs", type=int, default=10)
    parser.add_argument(
        "--against-python",
        metavar="PATH",
        help="the interpreter to run COMMIT's tree with (default: this one)",
    )
    parser.add_argument(
        "--warm-capacity",
        type=int,
        default=WARM_CAPACITY,
        help="the warm path's deployment capacity (10 gets throttled: see bench/warm.py)",
    )
    parser.add_argument("--burst-documents", type=int, default=100)
    parser.add_argument(
        "--burst-capacity",
        type=int,
        default=BURST_CAPACITY,
        help="the cold burst's deployment capacity (units of 1,000 tokens a minute)",
    )
    parser.add_argument(
        "--per-document-sample",
        type=int,
        default=10,
        help="documents of the per-document strategy measured beside the burst (0: none)",
    )
    parser.add_argument("--post-submissions", type=int, default=200)
    parser.add_argument("--post-clients", type=int, default=40)
    parser.add_argument("--batch-documents", type=int, default=120)
    parser.add_argument("--memory-small", type=int, default=1_000)
    parser.add_argument("--memory-large", type=int, default=100_000)
    parser.add_argument(
        "--memory-deadline",
        type=float,
        default=60.0,
        help="real seconds the 100,000-document run works before its deadline",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=DEFAULT_TIME_SCALE,
        help="simulated seconds per real second (the app's timings follow)",
    )
    args = parser.parse_args(argv)
    results: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(),
        "time_scale": args.time_scale,
    }
    console = stderr_console()
    log_to(console)  # warnings print above the progress bars, not inside their line
    if args.which == "import":
        results["import"] = bench_imports(
            runs=args.import_runs,
            against=args.against,
            python=args.against_python,
            console=console,
        )
        return _write(results)
    if args.against is not None:
        if args.which != "warm":
            parser.error("--against compares the warm path and imports: `warm|import --against`")
        results["warm_against"] = bench_against(
            args.against,
            rounds=args.against_rounds,
            documents=args.warm_documents,
            python=args.against_python,
            console=console,
        )
        return _write(results)
    with (
        local_azure(simulator_args=["--time-scale", str(args.time_scale)]) as azure,
        step_progress(console) as progress,
    ):
        if args.which in ("warm", "all"):
            results["warm_path"] = bench_warm(
                azure, args.warm_documents, progress, args.warm_capacity
            )
        if args.which in ("burst", "all"):
            results["burst"] = bench_burst(
                azure, args.burst_documents, args.per_document_sample, progress, args.burst_capacity
            )
        if args.which in ("post", "all"):
            results["post_during_burst"] = bench_post(
                azure, args.post_submissions, args.post_clients, progress
            )
        if args.which in ("batch-throughput", "all"):
            results["batch_throughput"] = bench_batch_throughput(
                azure, args.batch_documents, progress
            )
        if args.which == "batch-memory":
            results["batch_memory"] = bench_batch_memory(
                azure, args.memory_small, args.memory_large, args.memory_deadline, progress
            )
    return _write(results)


def _write(results: dict[str, Any]) -> int:
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"bench-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(json.dumps(results, indent=2))
    print(f"written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
