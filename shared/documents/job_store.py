"""The job-record adapter: one JSON blob per job in the jobs container, changed under ETags."""

from __future__ import annotations

from collections.abc import Callable

from shared.documents.jobs import JobRecord
from shared.storage import JsonBlobStore


class JobStore:
    """Job records in the jobs container."""

    def __init__(self, store: JsonBlobStore[JobRecord]) -> None:
        self._store = store

    @staticmethod
    def blob_name(job_id: str) -> str:
        return f"{job_id}.json"

    def get(self, job_id: str) -> JobRecord | None:
        record, _ = self._store.read(self.blob_name(job_id))
        return record

    def create(self, record: JobRecord) -> bool:
        return self._store.create(self.blob_name(record.id), record)

    def change(
        self, job_id: str, change: Callable[[JobRecord | None], JobRecord | None]
    ) -> JobRecord | None:
        return self._store.update(self.blob_name(job_id), change)
