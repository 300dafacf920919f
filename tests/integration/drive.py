"""Playing the resume queue's trigger in tests: parked jobs resumed from real queue messages.

The engine parks a job that must wait (its deployment is provisioning) with a message on the
resume queue in Azurite, invisible until the job should look again. `drive` receives the
messages as they become visible and calls `engine.resume` for each, as `resume_job` in
function_app.py does, until the jobs it was given are final.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Any

import azure.functions as func
from azure.core.exceptions import ResourceNotFoundError
from azure.functions.queue import QueueMessage

from shared.composition import AppServices
from shared.documents.engine import JobOutcome
from shared.documents.jobs import TERMINAL

QueueHandler = Callable[[func.QueueMessage], None]


def drive(
    services: AppServices,
    job_ids: Iterable[str],
    timeout: float = 60.0,
    handler: QueueHandler | None = None,
) -> None:
    """Resume parked jobs from the queue until every job in `job_ids` is final.

    `handler` is the function app's `resume_job` handler, to go through the trigger itself;
    without it the engine is called as that handler would.
    """
    wanted = set(job_ids)
    deadline = time.monotonic() + timeout
    while True:
        records = {job_id: services.jobs.get(job_id) for job_id in wanted}
        if all(r is not None and r.status in TERMINAL for r in records.values()):
            return
        if time.monotonic() > deadline:
            states = {k: (r.status if r else None) for k, r in records.items()}
            raise TimeoutError(f"jobs not final after {timeout:.0f} s: {states}")
        taken = services.resumes.take_visible(lease_seconds=30)
        for resume, handle in taken:
            if handler is not None:
                # The worker's own message type, untyped in azure-functions.
                delivered = QueueMessage(  # type: ignore[no-untyped-call]
                    id=handle.id,
                    body=handle.content.encode(),
                    dequeue_count=handle.dequeue_count,
                )
                handler(delivered)
            else:
                services.engine.resume(resume.job_id)
            with contextlib.suppress(ResourceNotFoundError):
                # A resume that outlived the message's lease (a busy machine): the message
                # went to another consumer, which deletes it; so does the host.
                services.resumes.done(handle)
        if not taken:
            time.sleep(0.05)


def process_to_end(services: AppServices, name: str, data: bytes, **kwargs: Any) -> JobOutcome:
    """Deliver a document, then resume it until it is final: what the app does over time."""
    outcome = services.engine.process_blob(services.settings.input_container, name, data)
    if not outcome.parked:
        return outcome
    drive(services, [outcome.job_id], **kwargs)
    record = services.jobs.get(outcome.job_id)
    assert record is not None
    return JobOutcome(
        outcome.job_id,
        record.status,
        result_blob=record.result_blob,
        error_blob=record.error_blob,
    )
