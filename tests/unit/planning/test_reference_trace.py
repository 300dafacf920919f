"""The office-hours reference trace: the answer the benchmarks record, and its two readings."""

from __future__ import annotations

from pathlib import Path

from shared.planning.strategies import PlanInputs, plan
from shared.planning.trace import load_trace

TRACE = Path(__file__).resolve().parents[3] / "docs" / "traces" / "office-hours.csv"


def test_office_hours_recommendation_is_near_the_bound_and_names_the_other_reading() -> None:
    result = plan(load_trace(TRACE), PlanInputs(time_zone="America/New_York"))
    chosen = result.recommendation.row
    assert chosen.p95_wait <= result.inputs.provision_seconds
    assert (
        chosen.billed.billed_hours_per_minute <= 1.1 * result.bound.billed.billed_hours_per_minute
    )
    assert chosen.on_front and chosen.kind == "replayed" and chosen.failed == 0
    # Fitted to 09:00-17:00 New York on weekdays, the windows start fewer hours than any
    # short grace, which the reason says for the per-started-hour reading.
    fitted = result.row("windows-fitted")
    assert [(w.opens.hour, w.closes.hour) for w in result.fitted_windows] == [(9, 17)]
    assert fitted.billed.billed_hours_per_started_hour < chosen.billed.billed_hours_per_started_hour
    assert "billed per started hour, Fitted windows + grace would cost less" in (
        result.recommendation.reason
    )
    # Every document was served under every replayed strategy.
    assert all(row.served == row.documents == 246 for row in result.rows)
