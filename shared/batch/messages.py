"""The batch queue's message: which run to continue, and why (no SDK needed to read one)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.batch.models import run_id_problem
from shared.queues import decode_work_item, encode_work_item


@dataclass(frozen=True)
class ContinueMessage:
    run_id: str
    reason: str

    def encode(self) -> str:
        return encode_work_item("run_id", self.run_id, self.reason)

    @classmethod
    def decode(cls, body: str) -> ContinueMessage:
        """Parse a message body; ValueError says what is wrong with it."""
        return cls(*decode_work_item(body, key="run_id", what="batch", id_problem=run_id_problem))
