"""Playing the resume queue's trigger by hand, where no Functions host runs one.

The demo's per-document run and the benchmarks process a document with the engine directly;
a document that parks is then resumed from its real queue message, as `resume_job` in
function_app.py would.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from shared.documents.jobs import TERMINAL

if TYPE_CHECKING:
    from shared.composition import AppServices


def finish_parked(
    services: AppServices, job_id: str, timeout: float = 60, poll: float = 0.1
) -> str:
    """Resume due jobs from the queue until `job_id` is final; its final status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = services.jobs.get(job_id)
        if record is not None and record.status in TERMINAL:
            return record.status
        taken = services.resumes.take_visible()
        for message, handle in taken:
            services.engine.resume(message.job_id)
            services.resumes.done(handle)
        if not taken:
            time.sleep(poll)
    raise TimeoutError(f"job {job_id} did not finish within {timeout:.0f} s")
