"""Small JSON documents in blob storage changed only by optimistic concurrency.

Both the hold ledger and the job records are read-modify-write documents that several
function instances touch at once. Every write here is conditional (If-Match on the ETag
read, or If-None-Match for a new blob) and a lost race is retried by tenacity from a fresh
read, so no instance ever overwrites another's change.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Generic, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import ContainerClient, ContentSettings
from pydantic import BaseModel
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

logger = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)

_JSON = ContentSettings(content_type="application/json")


class WriteConflict(Exception):
    """Another writer changed the blob between our read and our write."""


class JsonBlobStore(Generic[ModelT]):
    """Typed JSON documents in one container, each changed by compare-and-swap."""

    def __init__(
        self,
        container: ContainerClient,
        model: type[ModelT],
        *,
        max_attempts: int = 60,
        max_seconds: float = 60.0,
        remembered: int = 256,
        index_tags: Callable[[ModelT], dict[str, str]] | None = None,
    ) -> None:
        """`index_tags`, when given, says the blob index tags each document is written with
        (in the same request): a listing by tag then finds documents by their state."""
        self._container = container
        self._model = model
        self._index_tags = index_tags
        self._max_attempts = max_attempts
        self._max_seconds = max_seconds
        # The last version this instance read or wrote. Updates try it first and skip a read;
        # the conditional write still rejects it if anyone changed the blob since. Bounded,
        # since a long-lived instance touches one job record per document it ever saw.
        self._known: OrderedDict[str, tuple[ModelT, str]] = OrderedDict()
        self._remembered = remembered
        self._lock = threading.Lock()

    def read(self, name: str) -> tuple[ModelT | None, str | None]:
        """The document and its ETag, or (None, None) when it does not exist."""
        try:
            downloader = self._container.download_blob(name)
        except ResourceNotFoundError:
            self._forget(name)
            return None, None
        data = downloader.readall()
        etag = downloader.properties.etag
        document = self._model.model_validate_json(data)
        self._remember(name, document, etag)
        return document, etag

    def _remember(self, name: str, document: ModelT, etag: str) -> None:
        with self._lock:
            self._known[name] = (document, etag)
            self._known.move_to_end(name)
            while len(self._known) > self._remembered:
                self._known.popitem(last=False)

    def _forget(self, name: str) -> None:
        with self._lock:
            self._known.pop(name, None)

    def _last_seen(self, name: str) -> tuple[ModelT, str] | None:
        with self._lock:
            return self._known.get(name)

    def listing(self) -> Iterator[tuple[str, datetime]]:
        """Every document's name and creation time, from the container listing: no downloads."""
        for blob in self._container.list_blobs():
            yield blob.name, blob.creation_time or blob.last_modified

    def create(self, name: str, document: ModelT) -> bool:
        """Write a new document; False when one already exists (someone else was first)."""
        try:
            written = self._container.get_blob_client(name).upload_blob(
                document.model_dump_json(),
                overwrite=False,
                content_settings=_JSON,
                tags=self._tags_for(document),
            )
        except ResourceExistsError:
            return False
        self._remember(name, document, written["etag"])
        return True

    def _tags_for(self, document: ModelT) -> dict[str, str] | None:
        # A blob written without tags loses the ones it had: every write sets them.
        return self._index_tags(document) if self._index_tags is not None else None

    def update(
        self,
        name: str,
        change: Callable[[ModelT | None], ModelT | None],
    ) -> ModelT | None:
        """Apply `change` to the current document and write it back only if nobody else did.

        `change` gets None when the blob does not exist yet and returns the new document, or
        None to write nothing (the caller decided no change is due). Conflicts re-read and
        re-apply, so `change` must be a pure function of the document it is given.
        """
        retrying = Retrying(
            retry=retry_if_exception_type(WriteConflict),
            wait=wait_random_exponential(multiplier=0.02, max=0.5),
            stop=stop_after_attempt(self._max_attempts) | stop_after_delay(self._max_seconds),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                return self._try_update(name, change)
        raise AssertionError("unreachable: tenacity re-raises the last conflict")

    def _try_update(
        self, name: str, change: Callable[[ModelT | None], ModelT | None]
    ) -> ModelT | None:
        seen = self._last_seen(name)
        current: ModelT | None
        etag: str | None
        if seen is not None:
            current, etag = seen
            updated = change(current)
            if updated is None or updated == current:
                # Declining to write must rest on the blob as it is, not on a memory of it.
                current, etag = self.read(name)
                updated = change(current)
        else:
            current, etag = self.read(name)
            updated = change(current)
        if updated is None or updated == current:
            return current if updated is not None else None
        payload = updated.model_dump_json()
        tags = self._tags_for(updated)
        try:
            if etag is None:
                written = self._container.get_blob_client(name).upload_blob(
                    payload, overwrite=False, content_settings=_JSON, tags=tags
                )
            else:
                written = self._container.get_blob_client(name).upload_blob(
                    payload,
                    overwrite=True,
                    etag=etag,
                    match_condition=MatchConditions.IfNotModified,
                    content_settings=_JSON,
                    tags=tags,
                )
        except (ResourceModifiedError, ResourceExistsError) as conflict:
            logger.debug("conflict writing %s, retrying from a fresh read", name)
            self._forget(name)
            raise WriteConflict(name) from conflict
        self._remember(name, updated, written["etag"])
        return updated
