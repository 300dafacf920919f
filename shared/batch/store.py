"""The batch's adapters over storage: run records, the paged input listing, the leftover list,
the outcome check, and the queue a run continues through.

Nothing here holds a whole listing: inputs are read one page at a time from the listing's
continuation marker (azure-storage-blob's `by_page`), and the names left at a deadline are
streamed into a block blob in staged blocks, so memory stays flat for any number of documents.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobBlock, BlobProperties, ContainerClient, ContentSettings

from shared.batch.locations import OutputMapping
from shared.batch.messages import ContinueMessage
from shared.batch.models import BatchRun
from shared.documents.outcomes import KINDS
from shared.names import VERSIONS_PREFIX
from shared.queues import DelayedWorkQueue
from shared.storage import JsonBlobStore

logger = logging.getLogger(__name__)

_JSON = ContentSettings(content_type="application/json")
_TEXT = ContentSettings(content_type="text/plain; charset=utf-8")
# Names per staged block of the leftover list (a block may hold up to 4,000 MiB; 50,000
# blocks per blob): a few hundred kilobytes each.
LEFT_NAMES_PER_BLOCK = 2000


@dataclass(frozen=True)
class WaitingDocument:
    """One input blob as the listing describes it: enough to name its version, no content."""

    name: str
    version: str
    size: int
    last_modified: datetime | None


def version_of(container: str, blob: BlobProperties) -> str:
    """A stable id for this content of this blob, from the listing alone (no download).

    The listing's Content-MD5 names the content when storage has one (single-shot uploads);
    otherwise the ETag, which changes whenever the blob is written, does.
    """
    md5 = blob.content_settings.content_md5 if blob.content_settings else None
    content = bytes(md5).hex() if md5 else str(blob.etag)
    digest = hashlib.sha256(f"{container}/{blob.name}\n{content}".encode())
    return digest.hexdigest()[:24]


class InputListing:
    """The documents waiting under a prefix, one page at a time."""

    def __init__(self, container: ContainerClient, page_size: int) -> None:
        self._container = container
        self._page_size = page_size

    @property
    def container_name(self) -> str:
        return str(self._container.container_name)

    def pages(
        self, prefix: str, marker: str | None
    ) -> Iterator[tuple[list[WaitingDocument], str | None]]:
        """Each page's documents and the marker of the page after it (None after the last)."""
        # by_page's iterator carries the next page's marker (azure-core's PageIterator).
        pager: Any = self._container.list_blobs(
            name_starts_with=prefix or None, results_per_page=self._page_size
        ).by_page(continuation_token=marker)
        for page in pager:
            documents = [
                WaitingDocument(
                    name=blob.name,
                    version=version_of(self.container_name, blob),
                    size=blob.size or 0,
                    last_modified=blob.last_modified,
                )
                for blob in page
            ]
            yield documents, pager.continuation_token or None

    def names_from(self, prefix: str, marker: str | None) -> Iterator[str]:
        """Every name from `marker` on: names only (no blob properties are built), in pages
        of the processing's size, so listing what is left costs no more memory than a page
        of work, however many documents are left."""
        pager: Any = self._container.list_blob_names(
            name_starts_with=prefix or None, results_per_page=self._page_size
        ).by_page(continuation_token=marker)
        for page in pager:
            yield from page

    def read(self, name: str) -> bytes | None:
        try:
            return self._container.download_blob(name).readall()
        except ResourceNotFoundError:
            return None


class OutcomeIndex:
    """Whether a document's version already has an outcome under the output prefix."""

    def __init__(self, output: ContainerClient) -> None:
        self._output = output

    def existing(self, output_name: str, version: str) -> str | None:
        """The name of this version's outcome blob, or None (one listing call, no download)."""
        prefix = f"{VERSIONS_PREFIX}{output_name}/{version}."
        for blob in self._output.list_blobs(name_starts_with=prefix):
            if any(blob.name == f"{prefix}{kind}.json" for kind in KINDS):
                return str(blob.name)
        return None

    def published(self, output_name: str, version: str) -> bool:
        """Whether the document's current name holds this version's outcome (one listing).

        A worker that died between writing its version's blob and publishing it under the
        current name leaves only the former; the run that skips the document publishes it.
        """
        current = {f"{output_name}.{kind}.json" for kind in KINDS}
        for blob in self._output.list_blobs(
            name_starts_with=f"{output_name}.", include=["metadata"]
        ):
            if blob.name in current and (blob.metadata or {}).get("job_id") == version:
                return True
        return False

    def read(self, name: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self._output.download_blob(name).readall())
        return loaded


# One empty blob per run that is not final, for the sweeper.
OPEN_PREFIX = "open/"
# One empty blob per output mapping a run was started with, its prefixes in the name, so
# one listing tells a new run whose outcome names it would share.
OUTPUTS_PREFIX = "outputs/"


class RunStore:
    """Run records, summaries and leftover lists in the runs container."""

    def __init__(self, container: ContainerClient) -> None:
        self._container = container
        self.records = JsonBlobStore(container, BatchRun)

    @staticmethod
    def state_name(run_id: str) -> str:
        return f"{run_id}/state.json"

    def get(self, run_id: str) -> BatchRun | None:
        record, _ = self.records.read(self.state_name(run_id))
        return record

    def create(self, run: BatchRun) -> bool:
        """Store a new run and mark it open; False when the run id exists already."""
        # The marker first: a run whose record exists is always found by the sweeper.
        self._container.upload_blob(f"{OPEN_PREFIX}{run.run_id}", b"", overwrite=True)
        return self.records.create(self.state_name(run.run_id), run)

    def output_mappings(self) -> Iterator[OutputMapping]:
        """The output mapping of every run started so far (one listing of names)."""
        for name in self._container.list_blob_names(name_starts_with=OUTPUTS_PREFIX):
            try:
                run_id, input_prefix, output_prefix = json.loads(
                    base64.urlsafe_b64decode(name.removeprefix(OUTPUTS_PREFIX))
                )
            except ValueError:
                continue
            yield OutputMapping(f"run {run_id!r}", input_prefix, output_prefix)

    def record_output_mapping(self, run_id: str, input_prefix: str, output_prefix: str) -> None:
        encoded = json.dumps([run_id, input_prefix, output_prefix]).encode()
        name = f"{OUTPUTS_PREFIX}{base64.urlsafe_b64encode(encoded).decode()}"
        self._container.upload_blob(name, b"", overwrite=True)

    def open_run_ids(self) -> Iterator[str]:
        """Runs not known to be final (one marker each, so a pass never reads closed runs)."""
        for blob in self._container.list_blobs(name_starts_with=OPEN_PREFIX):
            yield blob.name.removeprefix(OPEN_PREFIX)

    def mark_closed(self, run_id: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self._container.delete_blob(f"{OPEN_PREFIX}{run_id}")

    def change(self, run_id: str, change: Any) -> BatchRun | None:
        return self.records.update(
            self.state_name(run_id), lambda r: change(r) if r is not None else None
        )

    def runs(self) -> Iterator[BatchRun]:
        """Every run's record (from the listing; one read each)."""
        for blob in self._container.list_blobs():
            if blob.name.endswith("/state.json"):
                record, _ = self.records.read(blob.name)
                if record is not None:
                    yield record

    def write_summary(self, run_id: str, summary: dict[str, Any]) -> str:
        name = f"{run_id}/summary.json"
        self._container.upload_blob(
            name, json.dumps(summary, indent=2), overwrite=True, content_settings=_JSON
        )
        return name

    def read_summary(self, run_id: str) -> dict[str, Any] | None:
        try:
            data = self._container.download_blob(f"{run_id}/summary.json").readall()
        except ResourceNotFoundError:
            return None
        loaded: dict[str, Any] = json.loads(data)
        return loaded

    def write_left(self, run_id: str, names: Iterable[str]) -> tuple[str, int, list[str]]:
        """Stream `names` into `<run id>/left.txt`, one per line, in staged blocks.

        Returns the blob's name, how many names it holds, and the first few (for the summary).
        Only one block's names are in memory at a time.
        """
        name = f"{run_id}/left.txt"
        blob = self._container.get_blob_client(name)
        block_ids: list[BlobBlock] = []
        first: list[str] = []
        count = 0
        chunk: list[str] = []

        def stage() -> None:
            block_id = base64.b64encode(f"{len(block_ids):08d}".encode()).decode()
            blob.stage_block(block_id, ("\n".join(chunk) + "\n").encode("utf-8"))
            block_ids.append(BlobBlock(block_id))
            chunk.clear()

        for left in names:
            count += 1
            if len(first) < 20:
                first.append(left)
            chunk.append(left)
            if len(chunk) >= LEFT_NAMES_PER_BLOCK:
                stage()
        if chunk:
            stage()
        blob.commit_block_list(block_ids, content_settings=_TEXT)
        return name, count, first


class BatchQueue(DelayedWorkQueue):
    """Continuations of batch runs on the batch queue (`continue_batch` trigger)."""

    def schedule(self, run_id: str, *, delay_seconds: float, reason: str) -> None:
        delay = self.send_later(ContinueMessage(run_id, reason).encode(), delay_seconds)
        logger.info("batch %s continues in %d s: %s", run_id, delay, reason)

    def take_visible(
        self, *, limit: int = 16, lease_seconds: int = 60
    ) -> list[tuple[ContinueMessage, Any]]:
        """Messages due now, each hidden for `lease_seconds` until `done` (for callers that
        play the queue trigger themselves: the operator's `batch run`, tests, benchmarks)."""
        return [
            (ContinueMessage.decode(message.content), message)
            for message in self.receive_visible(limit=limit, lease_seconds=lease_seconds)
        ]

    def done(self, handle: Any) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self.delete(handle)
