"""The resume queue: how a parked job gets woken up later, with no invocation waiting.

A job that must wait (its deployment is being provisioned, a transient failure should pass)
puts a message on a storage queue, invisible for the delay it computed; the queue trigger
(`resume_job` in function_app.py) resumes the job when the message appears. Messages are
base64-encoded JSON, the Functions queue trigger's default encoding.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient

from shared.hosting.holds import KnownState, LedgerRecord

logger = logging.getLogger(__name__)

# Azure keeps a message invisible for at most seven days.
MAX_VISIBILITY_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class ResumeMessage:
    job_id: str
    reason: str

    def encode(self) -> str:
        return json.dumps({"job_id": self.job_id, "reason": self.reason})

    @classmethod
    def decode(cls, body: str) -> ResumeMessage:
        """Parse a message body; ValueError says what is wrong with it."""
        try:
            data = json.loads(body)
        except json.JSONDecodeError as error:
            raise ValueError(f"a resume message must be JSON, got {body[:80]!r}") from error
        if not isinstance(data, dict) or not isinstance(data.get("job_id"), str):
            raise ValueError(f'a resume message must be {{"job_id": ...}}, got {body[:80]!r}')
        return cls(data["job_id"], str(data.get("reason", "")))


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


class ResumeQueue:
    """Schedules resumes of parked jobs on the resume queue."""

    def __init__(self, queue: QueueClient) -> None:
        self._queue = queue

    def ensure_exists(self) -> None:
        with contextlib.suppress(ResourceExistsError):
            self._queue.create_queue()

    def take_visible(
        self, *, limit: int = 16, lease_seconds: int = 60
    ) -> list[tuple[ResumeMessage, Any]]:
        """Receive the messages due now, each hidden for `lease_seconds` until `done` (for
        callers that play the queue trigger themselves: the demo's per-document run, tests)."""
        taken: list[tuple[ResumeMessage, Any]] = []
        for message in self._queue.receive_messages(
            max_messages=limit, visibility_timeout=lease_seconds
        ):
            taken.append((ResumeMessage.decode(message.content), message))
        return taken

    def done(self, handle: Any) -> None:
        self._queue.delete_message(handle)

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
        delay = int(min(max(0.0, delay_seconds), MAX_VISIBILITY_SECONDS) + 0.999)
        self._queue.send_message(ResumeMessage(job_id, reason).encode(), visibility_timeout=delay)
        logger.info("job %s resumes in %d s: %s", job_id, delay, reason)
