"""The planner's answer comes from the engine's own rules: change one, the answer changes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.hosting import holds
from shared.planning.strategies import PlanInputs, plan
from shared.planning.trace import Trace, TraceDocument

NINE = datetime(2026, 3, 23, 9, tzinfo=UTC).timestamp()
# A document every 3 minutes for two hours on a Monday morning.
TRACE = Trace(
    "every-3-minutes",
    tuple(TraceDocument(NINE + 180.0 * i, 1500, 300, "adhoc") for i in range(40)),
)
INPUTS = PlanInputs(max_wait_seconds=60.0, grace_minutes=(0, 30))


def test_the_idle_grace_rule_decides_the_recommendation(monkeypatch: pytest.MonkeyPatch) -> None:
    real = plan(TRACE, INPUTS)
    # Under the real rule a 30-minute grace keeps the deployment through the 3-minute gaps.
    assert real.row("grace-30m").billed.deploy_cycles == 1
    assert real.row("grace-30m").p95_wait == 0.0

    # The rule changed: idleness no longer counts from the last hold's release, so the idle
    # grace never runs and every release tears the deployment down at once.
    monkeypatch.setattr(holds, "idle_since", lambda record: None)
    changed = plan(TRACE, INPUTS)

    assert changed.row("grace-30m").billed.deploy_cycles > 10
    assert changed.row("grace-30m").p95_wait >= INPUTS.provision_seconds
    assert changed.recommendation.row.strategy != real.recommendation.row.strategy
    # The baselines, computed without the engine, do not move.
    assert changed.row("always-on").billed == real.row("always-on").billed
    assert changed.bound.billed == real.bound.billed
