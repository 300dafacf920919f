"""The demo's last part: the planner's answer for one reference trace (table and chart).

What `hosting plan docs/traces/office-hours.csv --time-zone America/New_York --chart FILE`
prints, without going through the command (whose logging setup would replace the demo's).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from shared.console.plan import draw_plan_chart, show_plan
from shared.planning.strategies import PlanInputs, plan
from shared.planning.trace import load_trace

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_TRACE = ROOT / "docs" / "traces" / "office-hours.csv"
CHART = ROOT / ".local" / "demo" / "plan-office-hours.png"


def show_plan_for_reference_trace(chart: Path = CHART) -> None:
    """Replay the office-hours reference trace under every strategy and show the plan."""
    print()
    print(f"Which strategy fits a week of office-hours traffic ({REFERENCE_TRACE.name})?")
    trace = load_trace(REFERENCE_TRACE)
    engine = logging.getLogger("shared")
    level = engine.level
    # The replays' virtual 409s and waits would flood the demo's log.
    engine.setLevel(logging.ERROR)
    try:
        result = plan(trace, PlanInputs(time_zone="America/New_York"))
    finally:
        engine.setLevel(level)
    with contextlib.suppress(OSError):
        chart.parent.mkdir(parents=True, exist_ok=True)
    draw_plan_chart(result, chart)
    show_plan(result, chart)
