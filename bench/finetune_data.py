"""Benchmark: `check_dataset`'s peak memory on a 1 GB training file against a small one.

`python -m bench.finetune_data [--large-mb 1024] [--small-mb 64]` writes two JSONL files of
chat examples (about 860 bytes each, one in a hundred a duplicate, so the duplicate search has
work) into a temporary directory, then checks each in a fresh process (`--worker`), which
reports its peak RSS (`ru_maxrss`), its time and its throughput. The figure that matters is
the ratio of the two peaks: memory flat in the file's size means a ratio near 1 although the
file is 16 times larger. Results go to bench/results/ as JSON; BENCHMARKS.md records them.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
DUPLICATE_EVERY = 100


def write_dataset(path: Path, size_bytes: int) -> int:
    """Chat examples of about 860 bytes until the file is `size_bytes`; returns the count."""
    filler = "The customer writes about an invoice that does not match the order. " * 10
    written = examples = 0
    with path.open("wb") as handle:
        while written < size_bytes:
            number = examples - 1 if examples % DUPLICATE_EVERY == 1 else examples
            line = (
                json.dumps(
                    {
                        "messages": [
                            {"role": "system", "content": "You classify support tickets."},
                            {"role": "user", "content": f"Ticket {number}: {filler}"},
                            {"role": "assistant", "content": f"billing ({number})"},
                        ]
                    }
                ).encode()
                + b"\n"
            )
            handle.write(line)
            written += len(line)
            examples += 1
    return examples


def worker(path: Path) -> dict[str, Any]:
    """Check one file in this process; report time, throughput and peak RSS."""
    from shared.documents.tokens import EstimatingTokenCounter  # noqa: PLC0415
    from shared.finetuning.dataset import check_dataset  # noqa: PLC0415

    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    report = check_dataset(path, base_model="gpt-4o-mini", counter=EstimatingTokenCounter())
    seconds = time.perf_counter() - started
    size = path.stat().st_size
    return {
        "file_mb": round(size / 2**20, 1),
        "examples": report.files[0].examples,
        "seconds": round(seconds, 1),
        "mb_per_second": round(size / 2**20 / seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_after_imports_mb": round(baseline_kb / 1024, 1),
        "duplicates_found": report.to_json()["counts"]["warning"].get("duplicate", 0),
        "errors": report.to_json()["counts"]["error"],
    }


def _run_worker(path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.finetune_data", "--worker", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--large-mb", type=int, default=1024)
    parser.add_argument("--small-mb", type=int, default=64)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.worker is not None:
        print(json.dumps(worker(arguments.worker)))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-finetune-") as scratch:
        results: dict[str, Any] = {"benchmark": "finetune-data"}
        for label, megabytes in (("small", arguments.small_mb), ("large", arguments.large_mb)):
            path = Path(scratch) / f"{label}.jsonl"
            print(f"writing {megabytes} MB to {path}", file=sys.stderr, flush=True)
            write_dataset(path, megabytes * 2**20)
            print(f"checking {path}", file=sys.stderr, flush=True)
            results[label] = _run_worker(path)
            path.unlink()
        results["size_ratio"] = round(results["large"]["file_mb"] / results["small"]["file_mb"], 1)
        results["peak_rss_ratio"] = round(
            results["large"]["peak_rss_mb"] / results["small"]["peak_rss_mb"], 3
        )
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "finetune_data.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
