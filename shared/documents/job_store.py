"""The job-record adapter: one JSON blob per job in the jobs container, changed under ETags.

Each record is written with the blob index tag `open` ("1" until the job is final, then "0"),
in the same request as the record itself, so the sweeper finds the jobs not yet final with one
query by tag instead of listing every record ever written, and no write is spent on marking a
job open or closed. Beside the records: `open/<job id>` markers, how open jobs were marked
before the tag (still listed, and removed once their job is final), and `payloads/<job id>`, a
parked job's document, kept until it is final (a new version of the input blob must not change
what a parked job reads).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from itertools import groupby
from operator import itemgetter

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import ContainerClient

from shared.documents.jobs import TERMINAL, JobRecord
from shared.storage import JsonBlobStore

OPEN_TAG = "open"
OPEN_PREFIX = "open/"
PAYLOAD_PREFIX = "payloads/"
# Blob listings report creation times to the second (RFC 1123 dates).
_LISTING_RESOLUTION = timedelta(seconds=1)


def index_tags(record: JobRecord) -> dict[str, str]:
    """The blob index tags a job record is written with: whether the job is not final yet."""
    return {OPEN_TAG: "0" if record.status in TERMINAL else "1"}


class JobStore:
    """Job records in the jobs container."""

    def __init__(self, store: JsonBlobStore[JobRecord], container: ContainerClient) -> None:
        self._store = store
        self._container = container

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

    def newest_first(self, *, since: datetime | None = None) -> Iterator[JobRecord]:
        """Job records created at or after `since`, newest first, downloaded as they are needed.

        The order comes from the container listing (names and creation times, no downloads),
        so a caller that stops after a few records downloads only those. Listings give times
        to the second: the records of one second are read together and ordered by their own
        `created`.
        """
        listed = sorted(
            ((created, name) for name, created in self._store.listing() if "/" not in name),
            reverse=True,
        )
        for second, same_second in groupby(listed, key=itemgetter(0)):
            if since is not None and second < since - _LISTING_RESOLUTION:
                return  # newest first: every later one is older still
            records = [self._store.read(name)[0] for _, name in same_second]
            found = [r for r in records if r is not None and (since is None or r.created >= since)]
            yield from sorted(found, key=lambda record: record.created, reverse=True)

    # --- open jobs (for the sweeper) ------------------------------------------------------

    def mark_open(self, job_id: str) -> None:
        """An `open/` marker (how open jobs were marked before the index tag)."""
        with contextlib.suppress(ResourceExistsError):
            self._container.upload_blob(f"{OPEN_PREFIX}{job_id}", b"", overwrite=False)

    def mark_closed(self, job_id: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self._container.delete_blob(f"{OPEN_PREFIX}{job_id}")

    def open_job_ids(self) -> Iterator[str]:
        """Ids of jobs not final yet, streamed page by page: records tagged open (the index is
        eventually consistent in Azure: a job that just ended may still be listed), then any
        `open/` markers left from before the tag."""
        seen: set[str] = set()
        for found in self._container.find_blobs_by_tags(f"\"{OPEN_TAG}\" = '1'"):
            name = str(found.name)
            if "/" not in name and name.endswith(".json"):
                job_id = name.removesuffix(".json")
                seen.add(job_id)
                yield job_id
        for blob in self._container.list_blobs(name_starts_with=OPEN_PREFIX):
            job_id = blob.name.removeprefix(OPEN_PREFIX)
            if job_id not in seen:
                yield job_id

    # --- parked documents -----------------------------------------------------------------

    def save_payload(self, job_id: str, data: bytes) -> None:
        # A job's content never changes (its id is derived from it): the first copy stands,
        # and parking again costs a refused write instead of a second upload.
        with contextlib.suppress(ResourceExistsError):
            self._container.upload_blob(f"{PAYLOAD_PREFIX}{job_id}", data, overwrite=False)

    def load_payload(self, job_id: str) -> bytes | None:
        try:
            return self._container.download_blob(f"{PAYLOAD_PREFIX}{job_id}").readall()
        except ResourceNotFoundError:
            return None

    def drop_payload(self, job_id: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self._container.delete_blob(f"{PAYLOAD_PREFIX}{job_id}")
