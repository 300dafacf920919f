"""Every hosting strategy on one trace, side by side: the comparison the planner shows.

Replays the trace under each strategy the app can run (windows declared or fitted, an idle
grace swept over `GRACE_MINUTES`, the break-even grace, the Developer tier where the base
model allows it), adds the fixed baselines (always-on, per-document) and the clairvoyant
bound, bills each under both readings, marks the (cost, p95 wait) Pareto front and
recommends the cheapest strategy whose p95 wait is within the user's limit.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from shared.cost.billing import BilledHosting
from shared.hosting.deployments import base_model
from shared.planning.baselines import BaselineResult, always_on, clairvoyant_bound, per_document
from shared.planning.fitting import fit_windows
from shared.planning.replay import ReplayConfig, ReplayResult, replay
from shared.planning.stand_in import AzureTimings
from shared.planning.trace import Trace, TraceDocument
from shared.planning.waits import Waits
from shared.schedules.models import WindowSettings

GRACE_MINUTES: tuple[float, ...] = (0, 1, 2, 5, 10, 30, 60)
# Base models Azure offers the Developer tier for (2025-07): not gpt-4o / gpt-4o-mini.
DEVELOPER_TIER_BASES = ("o4-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano")
DEVELOPER_TIER_NOTE = "no SLA, deleted after 24 h, for evaluation"
WEEK_SECONDS = 7 * 86400.0
RowKind = Literal["bound", "baseline", "replayed"]


@dataclass(frozen=True)
class PlanInputs:
    """What the user told the planner (the command's options) and what the app declares."""

    provision_seconds: float = 360.0
    capacity: int = 10
    max_wait_seconds: float | None = None  # None: one provisioning time
    hourly_fee: float = 1.70
    base_model: str = "gpt-4.1-mini-2025-04-14"
    idle_grace_seconds: float = 300.0  # the grace that goes with windows
    declared_windows: tuple[WindowSettings, ...] = ()
    time_zone: str = "UTC"  # for fitting windows
    model: str = "MODEL"  # the name the fitted windows' TOML is written for
    grace_minutes: tuple[float, ...] = GRACE_MINUTES
    # Strategies replayed at once, each in its own process (1: all in this one; the
    # command's default is one per usable core).
    workers: int = 1
    # Changes every replayed strategy (tests shrink or vary the engine's settings).
    adjust: Callable[[ReplayConfig], ReplayConfig] = field(default=lambda config: config)

    @property
    def max_wait(self) -> float:
        return self.provision_seconds if self.max_wait_seconds is None else self.max_wait_seconds

    @property
    def tokens_per_second(self) -> float:
        return self.capacity * 1000.0 / 60.0


@dataclass(frozen=True)
class StrategyRow:
    strategy: str
    label: str
    kind: RowKind
    billed: BilledHosting
    documents: int
    served: int
    failed: int
    waits: Waits = field(repr=False)
    note: str = ""
    recommendable: bool = True
    on_front: bool = False

    @property
    def p50_wait(self) -> float:
        return self.waits.percentile(50)

    @property
    def p95_wait(self) -> float:
        return self.waits.percentile(95)

    @property
    def max_wait(self) -> float:
        return self.waits.longest

    def to_json(self, bound_hours: float) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "label": self.label,
            "kind": self.kind,
            "billed_hours": round(self.billed.billed_hours_per_minute, 4),
            "billed_hours_per_started_hour": self.billed.billed_hours_per_started_hour,
            "cost": round(self.billed.cost_per_minute, 2),
            "cost_per_started_hour": round(self.billed.cost_per_started_hour, 2),
            "hourly_fee": self.billed.hourly_fee,
            "ratio_to_bound": _ratio(self.billed.billed_hours_per_minute, bound_hours),
            "deploy_cycles": self.billed.deploy_cycles,
            "documents": self.documents,
            "documents_served": self.served,
            "documents_failed": self.failed,
            "p50_wait_seconds": round(self.p50_wait, 1),
            "p95_wait_seconds": round(self.p95_wait, 1),
            "max_wait_seconds": round(self.max_wait, 1),
            "pareto": self.on_front,
            "recommendable": self.recommendable,
            "note": self.note,
        }


def _ratio(hours: float, bound_hours: float) -> float | None:
    return round(hours / bound_hours, 3) if bound_hours > 0 else None


@dataclass(frozen=True)
class _Replayed:
    """One strategy to replay: its row's name and label, and the app's declaration of it."""

    strategy: str
    label: str
    config: ReplayConfig
    note: str = ""


# Below this many documents replayed in all (documents x strategies), starting processes
# costs more than it saves: the replays run in this process.
PARALLEL_FROM_DOCUMENT_REPLAYS = 100_000


def usable_cpus() -> int:
    """The CPU cores this process may run on (the default number of replay processes)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _replay_all(
    trace: Trace, configs: list[ReplayConfig], start: float, until: float, workers: int
) -> list[ReplayResult]:
    """Each strategy's replay; in up to `workers` processes when more than one (they are
    independent), unless the whole is too small to gain from it."""
    workers = min(workers, len(configs))
    if workers <= 1 or len(trace.documents) * len(configs) < PARALLEL_FROM_DOCUMENT_REPLAYS:
        return [replay(trace.documents, config, start=start, until=until) for config in configs]
    # Spawned, not forked: a fork copies whatever locks the caller's other threads hold, and
    # macOS cannot fork safely at all. Each process is sent the trace once.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_receive_trace,
        initargs=(trace.documents, logging.getLogger("shared").getEffectiveLevel()),
    ) as pool:
        futures = [pool.submit(_replay_in_worker, config, start, until) for config in configs]
        return [future.result() for future in futures]


# The trace a replay process replays, received once when the process starts.
_worker_documents: list[Sequence[TraceDocument]] = []


def _receive_trace(documents: Sequence[TraceDocument], engine_log_level: int) -> None:
    _worker_documents[:] = [documents]
    # As quiet as the caller made the engine's log (`hosting plan` silences the thousands of
    # lines the virtual deployments' provisioner writes): a spawned process starts afresh.
    logging.getLogger("shared").setLevel(engine_log_level)


def _replay_in_worker(config: ReplayConfig, start: float, until: float) -> ReplayResult:
    return replay(_worker_documents[0], config, start=start, until=until)


@dataclass(frozen=True)
class Recommendation:
    row: StrategyRow
    reason: str


@dataclass(frozen=True)
class Plan:
    trace: Trace
    inputs: PlanInputs
    horizon: tuple[float, float]
    rows: tuple[StrategyRow, ...]
    recommendation: Recommendation
    fitted_windows: tuple[WindowSettings, ...]

    @property
    def bound(self) -> StrategyRow:
        return next(row for row in self.rows if row.kind == "bound")

    def row(self, strategy: str) -> StrategyRow:
        return next(row for row in self.rows if row.strategy == strategy)


def horizon_of(trace: Trace) -> tuple[float, float]:
    """Whole weeks from the UTC midnight of the first document's day, covering the trace."""
    start = math.floor(trace.start / 86400.0) * 86400.0
    weeks = max(1, math.ceil((trace.end - start + 1.0) / WEEK_SECONDS))
    return start, start + weeks * WEEK_SECONDS


def developer_tier_allowed(model_name: str) -> bool:
    base = base_model(model_name).lower()
    return any(base == name or base.startswith(f"{name}-") for name in DEVELOPER_TIER_BASES)


def plan(trace: Trace, inputs: PlanInputs) -> Plan:
    """Every strategy on `trace`, the Pareto front and the recommendation."""
    start, until = horizon_of(trace)
    documents = trace.documents
    timings = AzureTimings.serving_after_seconds(inputs.provision_seconds)
    rate = inputs.tokens_per_second
    fee = inputs.hourly_fee

    def fixed(result: BaselineResult) -> tuple[BilledHosting, Waits]:
        return result.hosting.billed(fee), result.waits

    rows: list[StrategyRow] = []
    bound_bill, bound_waits = fixed(
        clairvoyant_bound(documents, serving_after=inputs.provision_seconds, tokens_per_second=rate)
    )
    rows.append(
        _row(
            "bound",
            label="Clairvoyant bound (zero wait)",
            kind="bound",
            billed=bound_bill,
            documents=documents,
            waits=bound_waits,
        )
    )
    rows[-1] = replace(rows[-1], note="knows every arrival in advance")
    always_bill, always_waits = fixed(always_on(documents, start=start, until=until))
    rows.append(
        _row(
            "always-on",
            label="Always on (24x7)",
            kind="baseline",
            billed=always_bill,
            documents=documents,
            waits=always_waits,
        )
    )
    per_doc_bill, per_doc_waits = fixed(
        per_document(
            documents,
            serving_after=inputs.provision_seconds,
            deletion_seconds=timings.deletion_seconds,
            tokens_per_second=rate,
        )
    )
    rows.append(
        _row(
            "per-document",
            label="Per document",
            kind="baseline",
            billed=per_doc_bill,
            documents=documents,
            waits=per_doc_waits,
        )
    )

    base = ReplayConfig(
        capacity=inputs.capacity,
        base_model=inputs.base_model,
        idle_grace_seconds=inputs.idle_grace_seconds,
        azure=timings,
    )

    specs: list[_Replayed] = []
    if inputs.declared_windows:
        specs.append(
            _Replayed(
                "windows-declared",
                "Declared windows + grace",
                replace(base, windows=inputs.declared_windows),
                f"the model's windows, idle grace {inputs.idle_grace_seconds:g} s",
            )
        )
    weeks = (until - start) / WEEK_SECONDS
    fitted = fit_windows(documents, weeks=weeks, tokens_per_second=rate, time_zone=inputs.time_zone)
    if fitted:
        specs.append(
            _Replayed(
                "windows-fitted",
                "Fitted windows + grace",
                replace(base, windows=fitted),
                f"windows fitted to the trace ({inputs.time_zone}), idle grace "
                f"{inputs.idle_grace_seconds:g} s",
            )
        )
    for minutes in inputs.grace_minutes:
        specs.append(
            _Replayed(
                f"grace-{minutes:g}m",
                f"Idle grace {minutes:g} min",
                replace(base, idle_grace_seconds=minutes * 60.0),
            )
        )
    auto = replace(base, adaptive_grace=True)
    specs.append(
        _Replayed(
            "grace-auto",
            "Break-even grace (auto)",
            auto,
            'idle_grace = "auto": keep idle for one observed provisioning time',
        )
    )
    developer = developer_tier_allowed(inputs.base_model)
    if developer:
        specs.append(
            _Replayed(
                "developer-tier",
                "Developer tier (auto grace)",
                replace(auto, deployment_type="DeveloperTier"),
                DEVELOPER_TIER_NOTE,
            )
        )
    configs = [inputs.adjust(spec.config) for spec in specs]
    for spec, result in zip(
        specs, _replay_all(trace, configs, start, until, inputs.workers), strict=True
    ):
        row = _replayed_row(
            spec.strategy,
            label=spec.label,
            result=result,
            fee=0.0 if spec.strategy == "developer-tier" else fee,
            documents=len(documents),
            note=spec.note,
        )
        if spec.strategy == "developer-tier":
            row = replace(row, recommendable=False)
        rows.append(row)
    marked = mark_front(rows)
    return Plan(
        trace=trace,
        inputs=inputs,
        horizon=(start, until),
        rows=tuple(marked),
        recommendation=recommend(marked, inputs),
        fitted_windows=fitted,
    )


def _row(
    strategy: str,
    *,
    label: str,
    kind: RowKind,
    billed: BilledHosting,
    documents: Sequence[object],
    waits: Waits,
) -> StrategyRow:
    # The baselines are yardsticks: the app runs neither (always-on would be cut by the
    # maximum lifetime; per-document is what a zero grace does, shared by documents that
    # arrive together). They stand on the Pareto front; the recommendation is a setting.
    return StrategyRow(
        strategy, label, kind, billed, len(documents), len(waits), 0, waits, recommendable=False
    )


def _replayed_row(
    strategy: str, *, label: str, result: ReplayResult, fee: float, documents: int, note: str
) -> StrategyRow:
    return StrategyRow(
        strategy=strategy,
        label=label,
        kind="replayed",
        billed=result.hosting.billed(fee),
        documents=documents,
        served=len(result.waits),
        failed=result.failed,
        waits=result.waits,
        note=note,
        # A strategy that lost documents is no answer, whatever it costs.
        recommendable=result.failed == 0,
    )


def mark_front(rows: Sequence[StrategyRow]) -> list[StrategyRow]:
    """Mark the rows no other one beats on both cost and p95 wait: the strategies the app can
    run and the baselines, not the bound (it cannot be run) nor the Developer tier (no SLA)."""

    def comparable(row: StrategyRow) -> bool:
        return row.kind == "baseline" or row.recommendable

    candidates = [row for row in rows if comparable(row)]

    def dominated(row: StrategyRow) -> bool:
        return any(
            other.billed.cost_per_minute <= row.billed.cost_per_minute
            and other.p95_wait <= row.p95_wait
            and (
                other.billed.cost_per_minute < row.billed.cost_per_minute
                or other.p95_wait < row.p95_wait
            )
            for other in candidates
        )

    return [replace(row, on_front=comparable(row) and not dominated(row)) for row in rows]


def recommend(rows: Sequence[StrategyRow], inputs: PlanInputs) -> Recommendation:
    """The cheapest recommendable strategy whose p95 wait is within `max_wait`."""
    # Should every strategy have lost documents (a provisioning longer than the engine's ready
    # timeout), the least bad is still named, with its failures in its row.
    candidates = [row for row in rows if row.recommendable] or [
        row for row in rows if row.kind == "replayed"
    ]
    limit = inputs.max_wait
    within = [row for row in candidates if row.p95_wait <= limit + 1e-9]
    bound = next((row for row in rows if row.kind == "bound"), None)
    always = next((row for row in rows if row.strategy == "always-on"), None)
    if within:
        best = min(within, key=lambda row: (row.billed.cost_per_minute, row.p95_wait))
        why = f"the cheapest strategy whose p95 wait is within your {_duration(limit)} limit"
    else:
        best = min(candidates, key=lambda row: (row.p95_wait, row.billed.cost_per_minute))
        why = f"no strategy keeps the p95 wait within {_duration(limit)}; this one waits least"
    hours = best.billed.billed_hours_per_minute
    parts = [f"{hours:.1f} billed hours"]
    if bound is not None and bound.billed.billed_hours_per_minute > 0:
        parts.append(f"{hours / bound.billed.billed_hours_per_minute:.2f}x the clairvoyant bound")
    if always is not None and always.billed.billed_hours_per_minute > 0 and best is not always:
        saved = 1 - hours / always.billed.billed_hours_per_minute
        parts.append(f"{saved:.0%} less than 24x7")
    reason = (
        f"{best.label} costs {', '.join(parts)} with a p95 wait of {_duration(best.p95_wait)}: "
        f"{why}"
    )
    if within:
        # Azure may bill each started hour: say so when that reading would choose otherwise.
        hourly = min(
            within, key=lambda row: (row.billed.billed_hours_per_started_hour, row.p95_wait)
        )
        if hourly.billed.billed_hours_per_started_hour < best.billed.billed_hours_per_started_hour:
            reason += (
                f" (billed per started hour, {hourly.label} would cost less: "
                f"{hourly.billed.billed_hours_per_started_hour:.0f} against "
                f"{best.billed.billed_hours_per_started_hour:.0f} hours)"
            )
    return Recommendation(best, reason + ".")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
