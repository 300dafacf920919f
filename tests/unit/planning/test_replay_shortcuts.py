"""The planner's shortcuts change how fast it answers, never what it answers.

Two exist: the replay skips the reaper's passes that can only read the ledger (until the ledger
changes or `DeploymentReaper.next_pass_due`), and `plan` replays strategies in several
processes. Each is run both ways here on traffic that exercises every rule the reaper acts on
(idle graces running out, cold starts, the lifetime limit, windows, the Developer tier's
removal after 24 hours) and must give the same lifetimes, waits, failures and calls.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, time

import pytest

from shared.cost.billing import Lifetime
from shared.planning import strategies
from shared.planning.replay import Replay, ReplayConfig, ReplayResult
from shared.planning.strategies import PlanInputs, plan
from shared.planning.trace import Trace, TraceDocument
from shared.schedules.models import WindowSettings

MONDAY = datetime(2026, 3, 23, tzinfo=UTC).timestamp()
WEEK = 7 * 86400.0


def _week_of_traffic(seed: int = 7) -> tuple[TraceDocument, ...]:
    """Busy weekday mornings, a quiet rest, a few batch runs: 600 documents in a week."""
    chooser = random.Random(seed)
    moments = [
        MONDAY + day * 86400.0 + 9 * 3600.0 + chooser.random() * 3 * 3600.0
        for day in range(5)
        for _ in range(90)
    ]
    moments += [MONDAY + chooser.random() * WEEK for _ in range(120)]
    documents = [TraceDocument(at, chooser.randint(500, 3000), 200, "adhoc") for at in moments]
    night = MONDAY + 2 * 86400.0 + 2 * 3600.0
    documents += [TraceDocument(night, 1000, 200, "batch") for _ in range(30)]
    return tuple(sorted(documents, key=lambda d: d.at))


CONFIGS = {
    "grace 0": ReplayConfig(capacity=10, idle_grace_seconds=0),
    "grace 2 min": ReplayConfig(capacity=10, idle_grace_seconds=120),
    "grace 1 h, 3 h lifetime": ReplayConfig(
        capacity=10, idle_grace_seconds=3600, max_lifetime_seconds=3 * 3600
    ),
    "auto grace": ReplayConfig(capacity=10, adaptive_grace=True),
    "developer tier": ReplayConfig(
        capacity=10, adaptive_grace=True, deployment_type="DeveloperTier", idle_grace_seconds=86400
    ),
    "a window": ReplayConfig(
        capacity=10,
        idle_grace_seconds=300,
        windows=(
            WindowSettings(
                name="mornings",
                time_zone="UTC",
                weekdays=("mon", "tue", "wed", "thu", "fri"),
                opens=time(9),
                closes=time(12),
            ),
        ),
    ),
}


def _replayed(config: ReplayConfig, *, skip: bool) -> tuple[ReplayResult, list[Lifetime]]:
    lifetimes: list[Lifetime] = []
    replay = Replay(
        _week_of_traffic(),
        config,
        start=MONDAY,
        until=MONDAY + WEEK,
        skip_quiet_passes=skip,
        on_lifetime=lifetimes.append,
    )
    return replay.run(), lifetimes


@pytest.mark.parametrize("name", CONFIGS)
def test_skipping_quiet_reaper_passes_changes_nothing(name: str) -> None:
    skipping, skipping_lifetimes = _replayed(CONFIGS[name], skip=True)
    every_minute, every_minute_lifetimes = _replayed(CONFIGS[name], skip=False)
    assert skipping_lifetimes == every_minute_lifetimes
    assert skipping.hosting == every_minute.hosting
    assert skipping.waits == every_minute.waits
    assert skipping.failed == every_minute.failed
    assert skipping.calls == every_minute.calls
    assert (
        skipping.hosting.deploy_cycles
    )  # the traffic did make it create (and the check mean something)


def test_replays_in_several_processes_answer_as_one(monkeypatch: pytest.MonkeyPatch) -> None:
    trace = Trace("a week", _week_of_traffic())
    inputs = PlanInputs(capacity=10, grace_minutes=(0, 5, 60))
    alone = plan(trace, inputs)
    # This trace is below the size worth processes: lower the bar so two are used.
    monkeypatch.setattr(strategies, "PARALLEL_FROM_DOCUMENT_REPLAYS", 0)
    together = plan(trace, replace(inputs, workers=2))
    assert together.rows == alone.rows
    assert together.recommendation == alone.recommendation
