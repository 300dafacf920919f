"""Benchmarks of the planner (`hosting plan`): its answers on the reference traces, its speed.

`python -m bench.plan [quality|speed|all]`; no local Azure is needed (the planner replays on
a virtual clock against its in-process stand-in).

- `quality`: for each reference trace in docs/traces/, the recommended strategy at the
  default p95 wait limit (one provisioning time, P), its billed hours against the clairvoyant
  bound (target at most 1.1), its cost against always-on and per-document, per document;
- `speed`: the whole plan (every strategy) of the largest week-long reference trace (target
  under 10 s), and of a generated 100,000-document trace (target under 60 s) in one process
  and as `hosting plan` runs it (one replay process per usable core); then memory, which
  should not grow with the trace's length: one replay's traced memory for 10,000 documents
  over 4 weeks, the same 4 weeks played ten times in a row, 100,000 drawn over 40 weeks, and
  the 100,000 of the timing (4 weeks, ten times denser), each with CPython's free lists
  emptied once a virtual week and without (see `MeasuredReplay`); and the peak RSS of a
  whole plan in a fresh process, 10,000 against 100,000 documents.

Wall and CPU seconds are both reported: the machine is shared, so CPU time is the steadier
figure. Results print as JSON and go to bench/results/.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from shared.planning.replay import Replay, ReplayConfig
from shared.planning.strategies import (
    WEEK_SECONDS,
    Plan,
    PlanInputs,
    horizon_of,
    plan,
    usable_cpus,
)
from shared.planning.trace import COLUMNS, Trace, TraceDocument, load_trace

ROOT = Path(__file__).resolve().parent.parent
TRACES = ROOT / "docs" / "traces"
RESULTS = Path(__file__).resolve().parent / "results"
# The zone each reference trace's weekly pattern lives in (its README), for fitting windows.
ZONES = {
    "office-hours.csv": "America/New_York",
    "sparse-adhoc.csv": "UTC",
    "nightly-batch.csv": "Europe/London",
}
# 100,000 documents over four weeks of office hours need more than capacity 10's 10,000
# tokens a minute (about 24,000 at the busiest): capacity 50 serves them without a backlog.
LARGE_CAPACITY = 50
T = TypeVar("T")


def timed(work: Callable[[], T]) -> tuple[T, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def quality_of(result: Plan) -> dict[str, Any]:
    chosen = result.recommendation.row
    bound = result.bound.billed.billed_hours_per_minute
    always = result.row("always-on").billed
    per_doc = result.row("per-document").billed
    documents = len(result.trace.documents)
    return {
        "trace": Path(result.trace.source).name,
        "documents": documents,
        "provision_seconds": result.inputs.provision_seconds,
        "tokens_per_minute": result.inputs.capacity * 1000,
        "max_wait_seconds": result.inputs.max_wait,
        "recommended": chosen.strategy,
        "reason": result.recommendation.reason,
        "p95_wait_seconds": chosen.p95_wait,
        "billed_hours": round(chosen.billed.billed_hours_per_minute, 3),
        "billed_hours_per_started_hour": chosen.billed.billed_hours_per_started_hour,
        "bound_hours": round(bound, 3),
        "ratio_to_bound": round(chosen.billed.billed_hours_per_minute / bound, 3),
        "cost": round(chosen.billed.cost_per_minute, 2),
        "cost_always_on": round(always.cost_per_minute, 2),
        "cost_per_document_strategy": round(per_doc.cost_per_minute, 2),
        "cost_vs_always_on": round(chosen.billed.cost_per_minute / always.cost_per_minute, 3),
        "cost_vs_per_document": round(chosen.billed.cost_per_minute / per_doc.cost_per_minute, 3),
        "hosting_cost_per_document": round(chosen.billed.cost_per_minute / documents, 4),
        "started_hour_cost": round(chosen.billed.cost_per_started_hour, 2),
        "started_hour_cost_always_on": round(always.cost_per_started_hour, 2),
        "started_hour_cost_per_document_strategy": round(per_doc.cost_per_started_hour, 2),
    }


def bench_quality() -> list[dict[str, Any]]:
    figures = []
    for name, zone in ZONES.items():
        trace = load_trace(TRACES / name)
        result, wall, cpu = timed(lambda: plan(trace, PlanInputs(time_zone=zone)))  # noqa: B023
        figures.append(
            {
                **quality_of(result),
                "plan_wall_seconds": round(wall, 2),
                "plan_cpu_seconds": round(cpu, 2),
            }
        )
    return figures


def generated_trace(documents: int, *, weeks: int = 4, seed: int = 19) -> Trace:
    """Office-hours traffic (New York, weekdays 09-17) with a sixth of it at any hour."""
    chooser = random.Random(seed)
    zone = ZoneInfo("America/New_York")
    first = datetime(2026, 3, 2, tzinfo=zone)
    moments: list[float] = []
    while len(moments) < documents:
        day = first + timedelta(days=chooser.randrange(weeks * 7))
        if chooser.random() < 5 / 6:
            if day.weekday() >= 5:
                continue
            moment = day + timedelta(hours=9 + chooser.random() * 8)
        else:
            moment = day + timedelta(hours=chooser.random() * 24)
        moments.append(moment.astimezone(UTC).timestamp())
    moments.sort()
    return Trace(
        f"generated-{documents}",
        tuple(
            TraceDocument(at, chooser.randint(500, 4000), chooser.randint(100, 500), "adhoc")
            for at in moments
        ),
    )


def repeated(trace: Trace, times: int, *, weeks: int) -> Trace:
    """`trace` (spanning `weeks`) played `times` times in a row: the same traffic, longer."""
    shift = weeks * WEEK_SECONDS
    return Trace(
        f"{trace.source}x{times}",
        [d._replace(at=d.at + turn * shift) for turn in range(times) for d in trace.documents],
    )


class MeasuredReplay(Replay):
    """A replay that empties CPython's free lists once a virtual week (`gc.collect` does), and
    samples what it holds then.

    Freed tuples, dicts and floats are kept by CPython for reuse, up to fixed counts per type
    and size, and tracemalloc counts them as allocated: over a long run they fill up towards
    those caps, so the raw traced peak creeps up whatever the replay itself holds. Emptied
    once a week, the peak says what the replay needs within a week of traffic.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.week_ends = 0
        self.most_held_at_a_week_end = 0
        self._next_week = self.clock.now + WEEK_SECONDS

    def _tick(self) -> None:
        super()._tick()
        if self.clock.now >= self._next_week:
            self._next_week += WEEK_SECONDS
            gc.collect()
            held, _ = tracemalloc.get_traced_memory()
            self.week_ends += 1
            self.most_held_at_a_week_end = max(self.most_held_at_a_week_end, held)


def replay_memory(trace: Trace, capacity: int, *, weekly_collect: bool) -> dict[str, Any]:
    """One replay's traced memory (the trace itself allocated before): its peak, the most it
    held at a week's end (free lists emptied) and what it holds once ended (the replay object
    alive, garbage collected). With `weekly_collect`, the free lists are emptied at each
    virtual week's end (`MeasuredReplay`); without, the peak counts them as CPython fills them.
    """
    start, until = horizon_of(trace)
    config = ReplayConfig(capacity=capacity, idle_grace_seconds=300)
    kind = MeasuredReplay if weekly_collect else Replay
    gc.collect()
    tracemalloc.start()
    try:
        began = time.perf_counter()
        running = kind(trace.documents, config, start=start, until=until)
        running.run()
        seconds = time.perf_counter() - began
        _, peak = tracemalloc.get_traced_memory()
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
        figures: dict[str, Any] = {
            "documents": len(trace.documents),
            "weeks": round((until - start) / WEEK_SECONDS),
            "peak_bytes": peak,
            "held_at_end_bytes": held,
            "seconds_traced": round(seconds, 2),
        }
        if isinstance(running, MeasuredReplay):
            figures["most_held_at_a_week_end_bytes"] = running.most_held_at_a_week_end
            figures["week_ends_sampled"] = running.week_ends
        del running
    finally:
        tracemalloc.stop()
    return figures


def write_trace(trace: Trace, path: Path) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(COLUMNS) + "\n")
        for d in trace.documents:
            stamp = datetime.fromtimestamp(d.at, UTC).isoformat()
            handle.write(f"{stamp},{d.prompt_tokens},{d.completion_tokens},{d.kind}\n")
    return path


def plan_process_memory(trace: Trace, inputs: PlanInputs, folder: Path) -> dict[str, Any]:
    """`hosting plan FILE --workers 1 --json` on the trace written as a file, in a process of
    its own: its peak resident memory (its high-water mark in /proc, read while it runs)."""
    path = write_trace(trace, folder / f"{trace.source}.csv")
    command = [
        str(Path(sys.executable).with_name("hosting")),
        "plan",
        str(path),
        "--capacity",
        str(inputs.capacity),
        "--time-zone",
        inputs.time_zone,
        "--workers",
        "1",
        "--json",
    ]
    began = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, cwd=ROOT)
    # The child's own high-water mark, read while it runs: the kernel's maxrss for a child
    # starts from its parent's resident size at the fork (this benchmark's, with its traces).
    status = Path(f"/proc/{child.pid}/status")
    peak = 0
    while child.poll() is None:
        with suppress(OSError):
            peak = max(peak, _high_water_bytes(status.read_text()))
        time.sleep(0.05)
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {child.returncode}")
    return {
        "documents": len(trace.documents),
        "file_bytes": path.stat().st_size,
        "peak_rss_bytes": peak,
        "seconds": round(time.perf_counter() - began, 2),
    }


def _high_water_bytes(status: str) -> int:
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def bench_speed() -> dict[str, Any]:
    week = load_trace(TRACES / "nightly-batch.csv")
    _, week_wall, week_cpu = timed(lambda: plan(week, PlanInputs(time_zone="Europe/London")))
    large = generated_trace(100_000)
    inputs = PlanInputs(capacity=LARGE_CAPACITY, time_zone="America/New_York")
    large_plan, large_wall, large_cpu = timed(lambda: plan(large, inputs))
    # As `hosting plan` runs it by default: one replay process per usable core. CPU seconds
    # here are this process's and its finished children's.
    workers = usable_cpus()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    _, parallel_wall, parallel_cpu = timed(lambda: plan(large, replace(inputs, workers=workers)))
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    parallel_cpu += (children_after.ru_utime + children_after.ru_stime) - (
        children_before.ru_utime + children_before.ru_stime
    )
    # Memory against the trace's length at the same traffic: four weeks of 10,000 documents,
    # and the same four weeks played ten times in a row (100,000 over 40 weeks); 100,000
    # drawn over 40 weeks; and the 100,000 of the timing above (4 weeks, ten times denser).
    short = generated_trace(10_000)
    traces = {
        "10000_over_4_weeks": short,
        "the_same_4_weeks_10_times": repeated(short, 10, weeks=4),
        "100000_drawn_over_40_weeks": generated_trace(100_000, weeks=40),
        "100000_over_4_weeks": large,
    }
    memory = {
        name: {
            "free_lists_emptied_weekly": replay_memory(trace, LARGE_CAPACITY, weekly_collect=True),
            "raw": replay_memory(trace, LARGE_CAPACITY, weekly_collect=False),
        }
        for name, trace in traces.items()
    }
    with tempfile.TemporaryDirectory() as folder:
        processes = {
            name: plan_process_memory(trace, inputs, Path(folder))
            for name, trace in (("10000_over_4_weeks", short), ("100000_over_4_weeks", large))
        }
    return {
        "week_trace": "nightly-batch.csv",
        "week_documents": len(week.documents),
        "week_strategies": len(plan(week, PlanInputs(time_zone="Europe/London")).rows),
        "week_plan_wall_seconds": round(week_wall, 2),
        "week_plan_cpu_seconds": round(week_cpu, 2),
        "large_documents": len(large.documents),
        "large_strategies": len(large_plan.rows),
        "large_plan_wall_seconds": round(large_wall, 2),
        "large_plan_cpu_seconds": round(large_cpu, 2),
        "large_recommended": large_plan.recommendation.row.strategy,
        "large_plan_workers": workers,
        "large_plan_parallel_wall_seconds": round(parallel_wall, 2),
        "large_plan_parallel_cpu_seconds": round(parallel_cpu, 2),
        "replay_memory": memory,
        "plan_process_memory": processes,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("which", choices=["quality", "speed", "all"], nargs="?", default="all")
    which = parser.parse_args(argv).which
    # The replays' provisioners log every virtual 409 and wait: not this benchmark's output.
    logging.getLogger("shared").setLevel(logging.ERROR)
    figures: dict[str, Any] = {}
    if which in ("quality", "all"):
        figures["quality"] = bench_quality()
    if which in ("speed", "all"):
        figures["speed"] = bench_speed()
    text = json.dumps(figures, indent=2)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"plan-{which}-{stamp}.json").write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
