"""The resume queue: how a parked job gets woken up later, with no invocation waiting.

A job that must wait (its deployment is being provisioned, a transient failure should pass)
puts a message on a storage queue, invisible for the delay it computed; the queue trigger
(`resume_job` in function_app.py) resumes the job when the message appears (the queue
mechanics are `shared/queues.py`'s).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.documents.jobs import job_id_problem
from shared.hosting.holds import KnownState, LedgerRecord
from shared.queues import DelayedWorkQueue, decode_work_item, encode_work_item

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResumeMessage:
    job_id: str
    reason: str

    def encode(self) -> str:
        return encode_work_item("job_id", self.job_id, self.reason)

    @classmethod
    def decode(cls, body: str) -> ResumeMessage:
        """Parse a message body; ValueError says what is wrong with it."""
        return cls(*decode_work_item(body, key="job_id", what="resume", id_problem=job_id_problem))


def jobs_to_wake(record: LedgerRecord, *, settled_by: str, now: datetime) -> list[str]:
    """The jobs parked on a deployment whose provisioning just settled (ready, or failed for
    good), other than the one that settled it: their live job holds name them. Pure."""
    if record.state not in (KnownState.READY, KnownState.FAILED):
        return []
    return [
        hold.id.removeprefix("job:")
        for hold in record.live_holds(now)
        if hold.kind == "job" and hold.owner != settled_by
    ]


class ResumeQueue(DelayedWorkQueue):
    """Schedules resumes of parked jobs on the resume queue."""

    def take_visible(
        self, *, limit: int = 16, lease_seconds: int = 60
    ) -> list[tuple[ResumeMessage, Any]]:
        """Receive the messages due now, each hidden for `lease_seconds` until `done` (for
        callers that play the queue trigger themselves: the demo's per-document run, tests)."""
        return [
            (ResumeMessage.decode(message.content), message)
            for message in self.receive_visible(limit=limit, lease_seconds=lease_seconds)
        ]

    def done(self, handle: Any) -> None:
        self.delete(handle)

    def wake_waiting(self, record: LedgerRecord, settled_by: str, now: datetime) -> None:
        """Resume now every job parked on `record`'s deployment (it is ready, or failed):
        those that waited as followers were parked long, counting on this (Knative's
        activator releases its buffered requests the same way)."""
        woken = jobs_to_wake(record, settled_by=settled_by, now=now)
        reason = f"the deployment is {record.state.value}"
        for job_id in woken:
            self.schedule(job_id, delay_seconds=0, reason=reason)
        if woken:
            logger.info("woke %d job(s) waiting for %s: %s", len(woken), record.deployment, reason)

    def schedule(self, job_id: str, *, delay_seconds: float, reason: str) -> None:
        delay = self.send_later(ResumeMessage(job_id, reason).encode(), delay_seconds)
        logger.info("job %s resumes in %d s: %s", job_id, delay, reason)
