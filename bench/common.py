"""What every benchmark shares: the time scale, the app's settings at that scale, small stats.

The simulator runs faster than Azure (60x by default), and the app's own timings (poll
interval, expected provisioning, parking bounds, leases, holds, idle grace, the reaper's
cadence) are scaled by the same factor, so the app makes the calls, in the same order, that it
would make against Azure, only sooner. A figure in real seconds that comes from waiting on a
simulated interval is multiplied by the time scale to read it at Azure's timings; one that
only does I/O or CPU work is the same figure in Azure (give or take the machine), which also
means that in simulated seconds the app's own I/O and CPU time counts time-scale times over.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from rich.progress import Progress

from scripts.local_azure import LocalAzure

# Simulated seconds per real second, unless `--time-scale` says otherwise: the simulator's
# provisioning (300 s to Succeeded, then 60 s of warm-up before the data plane serves) takes
# 6 real seconds.
DEFAULT_TIME_SCALE = 60.0
# Capacity 50 (50,000 tokens a minute) lets 100 documents through in about two simulated
# minutes; at capacity 10 the burst needs ten.
BURST_CAPACITY = 50
DOCUMENT = (
    "MASTER SERVICES AGREEMENT\n\nThe Supplier shall deliver the services in Schedule 1.\n\n"
    "Payment is due within 30 days of invoice. Either party may terminate on 90 days notice.\n"
)


def time_scale(azure: LocalAzure) -> float:
    """The running simulator's simulated seconds per real second."""
    return float(azure.simulator.admin.config()["time_scale"])


def scaled(azure: LocalAzure, azure_value: float) -> str:
    """An app setting of `azure_value` seconds at Azure's timings, at the simulator's pace."""
    return f"{azure_value / time_scale(azure):g}"


def scenario_settings(azure: LocalAzure, **overrides: Any) -> dict[str, str]:
    """App settings for one scenario: its own containers, queue and deployment name.

    `LocalAzure.app_settings` scales the poll interval, the expected provisioning time, the
    parking bound, the sweeper's grace and the not-found window; the leases, holds and
    timeouts below are Azure's defaults scaled the same way, so no bound is looser than it
    would be in Azure. The reaper (and the sweeper, on the same schedule) runs once a
    simulated minute as by default (`0 * * * * *`), or every real second if that is sooner.
    """
    suffix = uuid.uuid4().hex[:8]
    minute = max(1, round(60 / time_scale(azure)))
    schedule = "0 * * * * *" if minute >= 60 else f"*/{minute} * * * * *"
    settings = azure.app_settings(
        DEPLOYMENT_NAME=f"ft-bench-{suffix}",
        INPUT_CONTAINER=f"in-{suffix}",
        OUTPUT_CONTAINER=f"out-{suffix}",
        LEDGER_CONTAINER=f"ledger-{suffix}",
        JOBS_CONTAINER=f"jobs-{suffix}",
        RESUME_QUEUE=f"resumes-{suffix}",
        REAPER_SCHEDULE=schedule,
        JOB_HOLD_SECONDS=scaled(azure, 600),
        OPERATION_LEASE_SECONDS=scaled(azure, 120),
        PROVISION_TIMEOUT_SECONDS=scaled(azure, 1200),
        READINESS_TIMEOUT_SECONDS=scaled(azure, 600),
    )
    settings.update({key: str(value) for key, value in overrides.items()})
    return settings


def real_timeout(azure: LocalAzure, azure_seconds: float, slack: float = 30.0) -> float:
    """A bound on a wait of `azure_seconds` at Azure's timings, in real seconds, with `slack`
    for the machine's own work (which the time scale does not shorten)."""
    return azure_seconds / time_scale(azure) + slack


def management_calls(azure: LocalAzure) -> int:
    return sum(int(v) for v in azure.simulator.admin.stats()["management"].values())


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (`fraction` in 0..1) of `values`; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def counter(progress: Progress, label: str, total: int) -> Callable[[], None]:
    """One step of `label` done; safe from many threads (rich's progress takes a lock)."""
    task = progress.add_task(label, total=total)
    return lambda: progress.advance(task)


class ThrottleWaits(logging.Handler):
    """Adds up the waits the chat client announces before retrying a 429 (real seconds).

    Read from the client's own `retrying in %.2f s` warnings, which carry the job's id as a
    record attribute, so nothing in the app changes; the records are kept from the console
    (there are hundreds in a burst).
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.by_job: dict[str, float] = {}
        self.retries = 0

    @property
    def seconds(self) -> float:
        return sum(self.by_job.values())

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args
        if isinstance(args, tuple) and len(args) == 3 and "retrying in" in str(record.msg):
            wait = args[2]
            job = str(getattr(record, "job_id", ""))
            self.by_job[job] = self.by_job.get(job, 0.0) + (
                float(wait) if isinstance(wait, int | float) else 0.0
            )
            self.retries += 1

    def __enter__(self) -> ThrottleWaits:
        source = logging.getLogger("shared.inference")
        source.addHandler(self)
        source.propagate = False
        return self

    def __exit__(self, *exc_info: object) -> None:
        source = logging.getLogger("shared.inference")
        source.removeHandler(self)
        source.propagate = True
