"""Benchmarks of the planner (`hosting plan`): its answers on the reference traces, its speed.

`python -m bench.plan [quality|speed|all]`; no local Azure is needed (the planner replays on
a virtual clock against its in-process stand-in).

- `quality`: for each reference trace in docs/traces/, the recommended strategy at the
  default p95 wait limit (one provisioning time, P), its billed hours against the clairvoyant
  bound (target at most 1.1), its cost against always-on and per-document, per document;
- `speed`: the whole plan (every strategy) of the largest week-long reference trace (target
  under 10 s), and of a generated 100,000-document trace (target under 60 s) in one process
  and as `hosting plan` runs it (one replay process per usable core), with the
  replay's traced memory peak and the state it holds at its end, for 10,000 documents over
  4 weeks against 100,000 over 40 weeks (the same traffic, ten times longer: flat, it
  should not grow with the trace), and for the 100,000 of the timing (ten times denser).

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
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from shared.planning.replay import Replay, ReplayConfig
from shared.planning.strategies import Plan, PlanInputs, horizon_of, plan, usable_cpus
from shared.planning.trace import Trace, TraceDocument, load_trace

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


def replay_memory(trace: Trace, capacity: int) -> tuple[int, int, float]:
    """One replay's traced memory peak (the trace itself allocated before), what its state
    still holds once it ended (the replay object alive, garbage collected), and its seconds.

    The peak includes CPython's free lists (tuples, dicts and the like kept for reuse rather
    than freed), which fill up to a fixed size as a run goes on; the state held at the end is
    the replay's own.
    """
    start, until = horizon_of(trace)
    config = ReplayConfig(capacity=capacity, idle_grace_seconds=300)
    gc.collect()
    tracemalloc.start()
    try:
        began = time.perf_counter()
        running = Replay(trace.documents, config, start=start, until=until)
        running.run()
        seconds = time.perf_counter() - began
        _, peak = tracemalloc.get_traced_memory()
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
        del running
    finally:
        tracemalloc.stop()
    return peak, held, seconds


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
    # Memory against the trace's length at the same traffic: 10,000 documents over 4 weeks and
    # 100,000 over 40 weeks; and the 100,000 of the timing above (4 weeks, ten times denser).
    short = replay_memory(generated_trace(10_000), LARGE_CAPACITY)
    long = replay_memory(generated_trace(100_000, weeks=40), LARGE_CAPACITY)
    dense = replay_memory(large, LARGE_CAPACITY)
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
        "replay_memory_10000_over_4_weeks": memory_figures(short),
        "replay_memory_100000_over_40_weeks": memory_figures(long),
        "replay_memory_100000_over_4_weeks": memory_figures(dense),
        "replay_peak_ratio_100000_to_10000_same_traffic": round(long[0] / short[0], 2),
        "replay_held_ratio_100000_to_10000_same_traffic": round(long[1] / short[1], 2),
    }


def memory_figures(measured: tuple[int, int, float]) -> dict[str, Any]:
    peak, held, seconds = measured
    return {"peak_bytes": peak, "held_at_end_bytes": held, "seconds_traced": round(seconds, 2)}


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
