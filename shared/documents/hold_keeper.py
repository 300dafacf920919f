"""Keeping a running job's hold on its deployment and its claim on its record alive."""

from __future__ import annotations

import logging
from datetime import timedelta

from shared.documents.job_store import JobStore
from shared.documents.jobs import JobRecord
from shared.hosting.ledger import HoldLedger
from shared.renewal import PeriodicRenewal

logger = logging.getLogger(__name__)


class HoldKeeper(PeriodicRenewal):
    """Renews a job's hold and its claim on the job record while the job runs.

    The hold is placed again if it lapsed (a long storage outage) only while the job runs:
    once the keeper has stopped, a renewal that was delayed never puts a released hold back.
    """

    def __init__(
        self,
        ledger: HoldLedger,
        jobs: JobStore,
        *,
        job_id: str,
        hold_id: str,
        worker: str,
        ttl: timedelta,
    ) -> None:
        super().__init__(f"hold-{hold_id}", ttl.total_seconds(), self._renew_hold)
        self._ledger = ledger
        self._jobs = jobs
        self._job_id = job_id
        self._hold_id = hold_id
        self._worker = worker
        self._ttl = ttl

    def _extend_claim(self, record: JobRecord | None) -> JobRecord | None:
        if record is None or record.worker != self._worker:
            return None
        return record.model_copy(update={"worker_expires": self._ledger.now() + self._ttl})

    def _renew_hold(self) -> None:
        if self.stopped:
            return
        if not self._ledger.renew_hold(self._hold_id, self._ttl):
            placed = self._ledger.place_hold_while(
                self._hold_id,
                "job",
                self._worker,
                self._ttl,
                still_wanted=lambda: not self.stopped,
            )
            if placed is not None:
                logger.warning("hold %s had lapsed; placed it again", self._hold_id)
        self._jobs.change(self._job_id, self._extend_claim)
