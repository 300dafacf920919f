"""Small JSON documents in blob storage changed only by optimistic concurrency.

Both the hold ledger and the job records are read-modify-write documents that several
function instances touch at once. Every write here is conditional (If-Match on the ETag
read, or If-None-Match for a new blob) and a lost race is retried by tenacity from a fresh
read, so no instance ever overwrites another's change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
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
    ) -> None:
        self._container = container
        self._model = model
        self._max_attempts = max_attempts
        self._max_seconds = max_seconds

    def read(self, name: str) -> tuple[ModelT | None, str | None]:
        """The document and its ETag, or (None, None) when it does not exist."""
        try:
            downloader = self._container.download_blob(name)
        except ResourceNotFoundError:
            return None, None
        data = downloader.readall()
        etag = downloader.properties.etag
        return self._model.model_validate_json(data), etag

    def create(self, name: str, document: ModelT) -> bool:
        """Write a new document; False when one already exists (someone else was first)."""
        try:
            self._container.upload_blob(
                name, document.model_dump_json(), overwrite=False, content_settings=_JSON
            )
        except ResourceExistsError:
            return False
        return True

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
        current, etag = self.read(name)
        updated = change(current)
        if updated is None or updated == current:
            return current if updated is not None else None
        payload = updated.model_dump_json()
        try:
            if etag is None:
                self._container.upload_blob(name, payload, overwrite=False, content_settings=_JSON)
            else:
                self._container.upload_blob(
                    name,
                    payload,
                    overwrite=True,
                    etag=etag,
                    match_condition=MatchConditions.IfNotModified,
                    content_settings=_JSON,
                )
        except (ResourceModifiedError, ResourceExistsError) as conflict:
            logger.debug("conflict writing %s, retrying from a fresh read", name)
            raise WriteConflict(name) from conflict
        return updated
