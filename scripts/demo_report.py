"""The end of `make demo`: the app's own savings report of the run, as a table and a chart.

Read back the way an operator would (`hosting report --since ... --chart ...`): from the
hosting log the provisioner and the reaper appended to during the run, and the jobs' results.
Printed beside the simulator's billing meter, so the reader sees how close the log comes to
what Azure would bill.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from shared.composition import AppServices
from shared.console.display import stdout_console
from shared.console.report import report_view
from shared.cost.chart import draw_chart
from shared.cost.report import ALL_MODELS
from shared.cost.reporting import ReportRequest

CHART = Path(".local/demo/savings-report.png")


def show_run_report(
    services: AppServices, meter: dict[str, Any], *, since: datetime, until: datetime
) -> dict[str, Any]:
    """Print the run's report and its comparison with the meter; draw the chart to CHART."""
    report = services.reports.report(ReportRequest(since=since, until=until))
    console = stdout_console()
    console.print()
    console.print("The app's own savings report of this run (`hosting report`):")
    console.print(report_view(report))
    chart = draw_chart(report, CHART)
    total = next(row for row in report.totals if row.model == ALL_MODELS)
    logged = total.on_demand.hosted_seconds
    metered = float(meter["billed_hosted_seconds"])
    difference = 100 * (logged - metered) / metered if metered else 0.0
    unconfirmed = total.unconfirmed_hours * 3600
    console.print(
        f"hosted time in the report (hosting log): {logged / 60:.1f} min, of which up to "
        f"{unconfirmed / 60:.1f} min before deletions were confirmed; on the billing meter: "
        f"{metered / 60:.1f} min ({difference:+.1f}%)"
    )
    console.print(f"chart: {chart.resolve()}")
    return {"logged_seconds": logged, "metered_seconds": metered, "chart": chart}
