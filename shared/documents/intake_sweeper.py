"""The intake sweep: input blobs that never became a job are found and processed.

In Azure a blob reaches the app through an Event Grid event. An event can be lost (a
subscription deleted or not yet created, a delivery that failed for 24 hours and was
dead-lettered, an outage): the document then sits in the input container with no job, and
nothing else would ever notice. This sweep is the backstop: a document whose event was lost
is delayed by at most a grace and a sweep cycle, never lost.

Cheap by construction, since it runs every minute over a container that may hold millions of
documents:

- each pass lists ONE page of the input container (names and properties, no content), from
  the continuation marker the previous pass saved, so a cycle over the whole container is
  spread over passes;
- a blob is looked at only if it was modified after the last completed cycle had already
  checked everything older (`checked_before`), and only once it is older than the grace
  (`INTAKE_GRACE_SECONDS`: its event had every chance to arrive); a listed blob that fails
  either test costs nothing;
- a blob that passes is downloaded once to compute its job id (path and content decide it, as
  for the blob trigger) and the job record is looked up; a blob with no record is handed to the
  engine exactly as the blob trigger would hand it (`process_blob`: a duplicate delivery, if
  the event was only late, meets the same job and its claim).

The marker and the cycle's bounds are one small JSON blob beside the job records, changed under
its ETag, so two instances running the timer at once cannot both advance it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import ContainerClient
from pydantic import BaseModel, ConfigDict

from shared.documents.job_store import JobStore
from shared.documents.jobs import job_id_for
from shared.storage import JsonBlobStore

logger = logging.getLogger(__name__)

# Beside the job records, under a folder: the job listing skips names with a "/".
STATE_BLOB = "sweeps/intake.json"
# Listings give Last-Modified to the second, and the storage service's clock is not this
# instance's: a cycle vouches only for blobs modified this much before it started, so a blob
# uploaded just as a cycle began is looked at by the next one rather than never.
CLOCK_MARGIN = timedelta(seconds=5)


class IntakeSweepState(BaseModel):
    """Where the sweep is in its cycle over the input container."""

    model_config = ConfigDict(frozen=True)

    marker: str | None = None  # the listing's continuation token; None: a cycle starts
    cycle_started: datetime | None = None
    # Every blob last modified at or before this was checked by a completed cycle.
    checked_before: datetime | None = None


@dataclass(frozen=True)
class IntakeSweepReport:
    listed: int = 0
    checked: int = 0  # downloaded to compute a job id
    recovered: list[str] = field(default_factory=list)  # job ids handed to the engine
    cycle_completed: bool = False


class IntakeSweeper:
    """One pass of the intake sweep (the `sweep_lost_uploads` timer)."""

    def __init__(
        self,
        *,
        input_container: ContainerClient,
        state: JsonBlobStore[IntakeSweepState],
        jobs: JobStore,
        process_blob: Callable[[str, str, bytes], object],
        clock: Callable[[], datetime],
        grace: timedelta,
        page_size: int,
        budget_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._input = input_container
        self._state = state
        self._jobs = jobs
        self._process_blob = process_blob
        self._clock = clock
        self._grace = grace
        self._page_size = page_size
        self._budget_seconds = budget_seconds
        self._monotonic = monotonic

    def run(self) -> IntakeSweepReport:
        now = self._clock()
        started = self._monotonic()
        current = self._state.read(STATE_BLOB)[0] or IntakeSweepState()
        cycle_started = current.cycle_started if current.marker else now
        pages: Any = self._input.list_blobs(results_per_page=self._page_size).by_page(
            continuation_token=current.marker
        )
        try:
            page = list(next(pages))
        except StopIteration:
            page = []
        next_marker: str | None = pages.continuation_token
        cutoff = now - self._grace
        listed, checked, recovered = len(page), 0, []
        for blob in page:
            modified: datetime = blob.last_modified
            if modified > cutoff:
                continue  # too young: its event may still come; the next cycle looks again
            if current.checked_before is not None and modified <= current.checked_before:
                continue  # a completed cycle already saw this version
            if self._monotonic() - started > self._budget_seconds:
                # Out of time: keep the marker where it was, so the rest of this page is
                # looked at by the next pass (what was recovered now has its job).
                next_marker = current.marker
                break
            checked += 1
            job_id = self._recover_if_lost(blob.name)
            if job_id is not None:
                recovered.append(job_id)
        completed = next_marker is None
        self._save(current, next_marker, cycle_started, completed)
        return IntakeSweepReport(listed, checked, recovered, completed)

    def _recover_if_lost(self, name: str) -> str | None:
        container = self._input.container_name
        try:
            data = self._input.download_blob(name).readall()
        except ResourceNotFoundError:
            return None  # deleted since the listing
        job_id = job_id_for(container, name, data)
        if self._jobs.get(job_id) is not None:
            return None
        logger.warning(
            "intake sweep: %s/%s has no job %s after the %.0f s grace (its blob event was lost "
            "or never sent); processing it now",
            container,
            name,
            job_id,
            self._grace.total_seconds(),
        )
        self._process_blob(container, name, data)
        return job_id

    def _save(
        self,
        seen: IntakeSweepState,
        marker: str | None,
        cycle_started: datetime | None,
        completed: bool,
    ) -> None:
        if completed:
            assert cycle_started is not None
            # Later passes of the cycle had later cutoffs: the first one bounds what was seen.
            updated = IntakeSweepState(checked_before=cycle_started - self._grace - CLOCK_MARGIN)
        else:
            updated = IntakeSweepState(
                marker=marker, cycle_started=cycle_started, checked_before=seen.checked_before
            )

        def change(stored: IntakeSweepState | None) -> IntakeSweepState | None:
            # Another pass moved the sweep on meanwhile: its state stands.
            return updated if (stored or IntakeSweepState()) == seen else None

        self._state.update(STATE_BLOB, change)
