"""Where a document's outcome goes: its own version's blob, and the document's current name.

The same blob name uploaded again with new content is a new version with its own job. In the
output container:

- `<name>.result.json` or `<name>.error.json` holds the outcome of the newest version of
  `<name>`, never both: a user reading the container sees one answer per document;
- `versions/<name>/<job id>.result.json` (or `.error.json`) holds every version's own outcome,
  kept; a job record (and `GET /api/jobs/{id}`) points at its own version's blob. Each carries
  its version's stamp and `role: version` in its metadata, and a current name is never
  published over a blob so marked;
- `refused/<name>.error.json` is the error record of a name the app refuses (`shared/names.py`:
  one under these reserved folders, or too long for its outcome names).

"Newest" is the version uploaded last (the input blob's Last-Modified when that version was
delivered; the job id breaks a tie). Versions may finish in any order: the current name is
replaced only by an outcome at least as new as the one it holds, with conditional writes
(ETags), so two finishing at once cannot leave the older one in place or both kinds behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobServiceClient, ContainerClient, ContentSettings
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random

from shared.names import VERSIONS_PREFIX
from shared.together import together

logger = logging.getLogger(__name__)

OutcomeKind = Literal["result", "error"]
KINDS: tuple[OutcomeKind, ...] = ("result", "error")
# Metadata marking a version's own outcome blob, which no current name may replace.
VERSION_ROLE = {"role": "version"}
_JSON = ContentSettings(content_type="application/json")


@dataclass(frozen=True)
class VersionStamp:
    """Which version of a document an outcome belongs to: when it was uploaded, and its job."""

    uploaded_at: datetime
    job_id: str

    def metadata(self) -> dict[str, str]:
        return {"uploaded_at": self.uploaded_at.isoformat(), "job_id": self.job_id}

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> VersionStamp | None:
        try:
            return cls(datetime.fromisoformat(metadata["uploaded_at"]), metadata["job_id"])
        except (KeyError, ValueError):
            return None


def supersedes(ours: VersionStamp, theirs: VersionStamp | None) -> bool:
    """May `ours` replace `theirs` under the document's current name? A pure decision.

    A current outcome with no stamp was written before versions were tracked: any stamped
    outcome replaces it. The same job may rewrite its own outcome.
    """
    if theirs is None or theirs.job_id == ours.job_id:
        return True
    return (ours.uploaded_at, ours.job_id) > (theirs.uploaded_at, theirs.job_id)


def content_md5(data: bytes) -> bytes:
    """The MD5 digest storage keeps as a blob's Content-MD5 (an integrity check, not security)."""
    return hashlib.md5(data, usedforsecurity=False).digest()


def _same_content(stored: bytearray | bytes | None, ours: bytes) -> bool:
    # A blob uploaded in blocks may have no Content-MD5: then there is no way to tell, and
    # the upload time alone decides.
    return stored is None or bytes(stored) == ours


def _other(kind: OutcomeKind) -> OutcomeKind:
    return "error" if kind == "result" else "result"


def current_name(input_blob: str, kind: OutcomeKind) -> str:
    return f"{input_blob}.{kind}.json"


def version_name(input_blob: str, job_id: str, kind: OutcomeKind) -> str:
    return f"{VERSIONS_PREFIX}{input_blob}/{job_id}.{kind}.json"


class _Conflict(Exception):
    """Another writer changed the current name between our read and our write."""


class OutcomeStore:
    """Writes outcomes under their version's name and, for the newest version, the current name."""

    def __init__(self, output: ContainerClient, blob_service: BlobServiceClient) -> None:
        self._output = output
        self._blob_service = blob_service

    def stamp_for(
        self, container: str, name: str, content_md5: bytes, job_id: str, *, now: datetime
    ) -> VersionStamp | None:
        """This version's stamp, or None when the input blob already holds other content.

        Read when a job is first claimed: if the blob no longer holds the bytes this job was
        delivered, a newer version was uploaded meanwhile and this one can never be the newest.
        A blob deleted since its delivery has no newer version: it counts as uploaded `now`.
        """
        try:
            properties = self._blob_service.get_blob_client(container, name).get_blob_properties()
        except ResourceNotFoundError:
            return VersionStamp(now, job_id)
        if not _same_content(properties.content_settings.content_md5, content_md5):
            return None
        return VersionStamp(properties.last_modified, job_id)

    def read_input(self, container: str, name: str) -> bytes | None:
        """An input document's current content, or None when it is gone."""
        try:
            return self._blob_service.get_blob_client(container, name).download_blob().readall()
        except ResourceNotFoundError:
            return None

    def holds_content(self, container: str, name: str, content_md5: bytes) -> bool:
        """Whether the input blob still holds this content (or is gone, with nothing newer)."""
        try:
            properties = self._blob_service.get_blob_client(container, name).get_blob_properties()
        except ResourceNotFoundError:
            return True
        return _same_content(properties.content_settings.content_md5, content_md5)

    def write(
        self,
        input_blob: str,
        job_id: str,
        kind: OutcomeKind,
        document: dict[str, Any],
        stamp: VersionStamp | None,
        *,
        still_current: Callable[[], bool] = lambda: True,
    ) -> str:
        """Store the outcome; return the name of this version's own blob.

        `still_current` is asked before the current name is replaced: Last-Modified has a
        one-second resolution, so two versions uploaded within a second tie on their stamps,
        and only the one whose content the input blob still holds may take the name.
        """
        own = version_name(input_blob, job_id, kind)
        body = json.dumps(document, indent=2)
        metadata = {**(stamp.metadata() if stamp else {"job_id": job_id}), **VERSION_ROLE}
        if stamp is None:
            self._write_own(own, body, metadata)
            logger.info(
                "a newer version of %s exists; job %s keeps only its own outcome",
                input_blob,
                job_id,
            )
            return own
        # The three do not depend on each other: one round trip's wait instead of three.
        other = current_name(input_blob, _other(kind))
        _, current, other_seen = together(
            lambda: self._write_own(own, body, metadata),
            still_current,
            lambda: self._stamp_and_etag(other),
        )
        if not current:
            logger.info(
                "a newer version of %s exists; job %s keeps only its own outcome",
                input_blob,
                job_id,
            )
            return own
        publish = Retrying(
            retry=retry_if_exception_type(_Conflict),
            stop=stop_after_attempt(10),
            wait=wait_random(0, 0.2),
            reraise=True,
        )
        seen: list[tuple[VersionStamp | None, str | None]] = [other_seen]
        publish(self._publish, input_blob, kind, body, stamp, seen)
        return own

    def write_refusal(self, name: str, document: dict[str, Any]) -> None:
        """The error record of a refused name, under `refused/` (see `shared/names.py`)."""
        self._output.upload_blob(
            name, json.dumps(document, indent=2), overwrite=True, content_settings=_JSON
        )

    def _write_own(self, own: str, body: str, metadata: dict[str, str]) -> None:
        try:
            self._output.upload_blob(
                own, body, overwrite=False, content_settings=_JSON, metadata=metadata
            )
        except ResourceExistsError:
            # A previous attempt wrote it before crashing; the first write stands.
            logger.info("%s already written; keeping the first", own)

    def _publish(
        self,
        input_blob: str,
        kind: OutcomeKind,
        body: str,
        stamp: VersionStamp,
        seen: list[tuple[VersionStamp | None, str | None]],
    ) -> None:
        """One attempt; `seen` holds the other name's stamp and ETag read alongside the own
        blob's write, used by the first attempt only (a retry reads afresh)."""
        if any(self._is_version_blob(current_name(input_blob, k)) for k in KINDS):
            # Only a name under `versions/` gets here, which the callers refuse before.
            logger.warning("%s names a version's own outcome; not replacing it", input_blob)
            return
        other = _other(kind)
        other_stamp, other_etag = (
            seen.pop() if seen else self._stamp_and_etag(current_name(input_blob, other))
        )
        if not self._may_replace(input_blob, stamp, other_stamp):
            return
        target = current_name(input_blob, kind)
        try:
            # Most names are new: a create (If-None-Match) both checks that and writes; only
            # a name that exists is read for its stamp and replaced under its ETag.
            try:
                self._output.upload_blob(
                    target, body, overwrite=False, content_settings=_JSON, metadata=stamp.metadata()
                )
            except ResourceExistsError:
                existing, etag = self._stamp_and_etag(target)
                if etag is None:
                    raise _Conflict(f"{target} was deleted meanwhile") from None
                if not self._may_replace(input_blob, stamp, existing):
                    return
                self._output.upload_blob(
                    target,
                    body,
                    overwrite=True,
                    content_settings=_JSON,
                    metadata=stamp.metadata(),
                    etag=etag,
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError) as error:
            raise _Conflict(str(error)) from error
        if other_etag is None:
            return
        try:
            self._output.get_blob_client(current_name(input_blob, other)).delete_blob(
                etag=other_etag, match_condition=MatchConditions.IfNotModified
            )
        except ResourceNotFoundError:
            pass  # a newer writer's pass removed it already
        except ResourceModifiedError as error:
            raise _Conflict(str(error)) from error

    @staticmethod
    def _may_replace(input_blob: str, ours: VersionStamp, theirs: VersionStamp | None) -> bool:
        if theirs is None or supersedes(ours, theirs):
            return True
        logger.info(
            "%s: the current outcome is from a newer version (job %s); not replacing it",
            input_blob,
            theirs.job_id,
        )
        return False

    def _stamp_and_etag(self, name: str) -> tuple[VersionStamp | None, str | None]:
        try:
            properties = self._output.get_blob_client(name).get_blob_properties()
        except ResourceNotFoundError:
            return None, None
        return VersionStamp.from_metadata(dict(properties.metadata or {})), properties.etag

    def _is_version_blob(self, name: str) -> bool:
        if not name.startswith(VERSIONS_PREFIX):
            return False  # version blobs live only there: no extra read for a normal name
        try:
            properties = self._output.get_blob_client(name).get_blob_properties()
        except ResourceNotFoundError:
            return False
        return (properties.metadata or {}).get("role") == VERSION_ROLE["role"]
