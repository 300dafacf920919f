"""The hosting log: one JSON line per change in a deployment's life, never rewritten.

Every line is a `HostingEvent`: create sent, serving, delete sent, gone (confirmed by Azure)
or vanished (found absent while the app thought it up), with the time in POSIX seconds, the
hosted model, the deployment, its deployment type (SKU) and capacity, the live holds at that
moment and who acted. Lines go to append blobs, one per model and UTC day
(`<model>/<YYYY-MM-DD>.jsonl` in `HOSTING_LOG_CONTAINER`): an append block is atomic, so any
number of instances append at once and nothing is read back or rewritten to write.

A lost append must never fail the job, batch or reaper pass that caused it: `HostingLog.append`
catches every error, logs the event it lost, and leaves a gap marker (`gaps/<model>/<day>/...`)
when storage lets it, so the report says a gap may exist. The report also flags a lifetime
whose lines do not follow each other (a start without an end) for the same reason.

`HostingLogReader` reads the lines back for a time range, dropping the duplicates a retried
append can leave (each event carries its own id).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.storage.blob import ContainerClient, ContentSettings
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.catalog import HostedModel
from shared.hosting.holds import HoldKind, LedgerRecord
from shared.hosting.lifecycle import LifecycleEvent, LifecycleListener

logger = logging.getLogger(__name__)

_JSON_LINES = ContentSettings(content_type="application/x-ndjson")
GAPS_PREFIX = "gaps/"
# An append blob takes at most 50,000 blocks; a day's log past that continues in part 2, ...
_BLOCK_LIMIT_CODE = "BlockCountExceedsLimit"


class LoggedHold(BaseModel):
    """A live hold at the moment of an event: what kind of work, and which."""

    model_config = ConfigDict(frozen=True)

    kind: HoldKind
    id: str


class HostingEvent(BaseModel):
    """One change in a deployment's life, as one JSON line of the hosting log."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event: LifecycleEvent
    at: float  # POSIX seconds on the app's clock
    model: str
    deployment: str
    sku: str
    capacity: int
    holds: tuple[LoggedHold, ...] = ()
    actor: str
    note: str | None = None
    # Unique per event, so a line a retried append wrote twice is read once.
    id: str = ""
    # For `gone`: when the deployment was last known to exist (POSIX seconds), so it went
    # between `last_seen` and `at`; None where `at` is when it went (a followed delete).
    last_seen: float | None = None

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.at, UTC)

    def line(self) -> bytes:
        return (self.model_dump_json() + "\n").encode()


def new_event(
    event: LifecycleEvent,
    *,
    at: datetime,
    model: str,
    deployment: str,
    sku: str,
    capacity: int,
    record: LedgerRecord | None,
    actor: str,
    note: str | None = None,
    last_seen: datetime | None = None,
) -> HostingEvent:
    """An event, with the holds of `record` that are live at `at`."""
    holds = (
        tuple(LoggedHold(kind=h.kind, id=h.id) for h in record.live_holds(at))
        if record is not None
        else ()
    )
    return HostingEvent(
        event=event,
        at=at.timestamp(),
        model=model,
        deployment=deployment,
        sku=sku,
        capacity=capacity,
        holds=holds,
        actor=actor,
        note=note,
        id=uuid.uuid4().hex,
        last_seen=last_seen.timestamp() if last_seen is not None else None,
    )


def log_blob_name(model: str, day: date, part: int = 1) -> str:
    suffix = "" if part == 1 else f".{part}"
    return f"{model}/{day.isoformat()}{suffix}.jsonl"


def _gap_blob_name(event: HostingEvent) -> str:
    return f"{GAPS_PREFIX}{event.model}/{event.time.date().isoformat()}/{event.id}.json"


def event_listener(
    model: HostedModel, clock: Callable[[], datetime], sink: Callable[[HostingEvent], object]
) -> LifecycleListener:
    """A lifecycle listener that hands each change of `model`'s deployment to `sink` as a
    hosting event (the stored log appends it; the planner's replay keeps it in memory)."""

    def listen(
        event: LifecycleEvent,
        record: LedgerRecord,
        actor: str,
        note: str | None,
        *,
        last_seen: datetime | None = None,
        observed: datetime | None = None,
    ) -> None:
        sink(
            new_event(
                event,
                at=observed if observed is not None else clock(),
                model=model.name,
                deployment=model.deployment,
                sku=model.deployment_type,
                capacity=model.capacity,
                record=record,
                actor=actor,
                note=note,
                last_seen=last_seen,
            )
        )

    return listen


class HostingLog:
    """Appends hosting events; never raises (a lost append is logged and marked as a gap)."""

    def __init__(self, container: ContainerClient, clock: Callable[[], datetime]) -> None:
        self._container = container
        self._clock = clock
        # The part each (model, day) is known to be written to, so a full blob is found once.
        self._parts: dict[tuple[str, date], int] = {}

    def listener(self, model: HostedModel) -> LifecycleListener:
        """The provisioner's and reaper's lifecycle listener for one hosted model."""
        return event_listener(model, self._clock, self.append)

    def append(self, event: HostingEvent) -> bool:
        """Append one line; False (after logging it) when it could not be written."""
        try:
            self._append(event)
        except Exception as error:  # a lost line must never fail the work
            logger.error(
                "hosting log: lost the %s event of %s (%s: %s); the report will say a gap may "
                "exist. The event: %s",
                event.event,
                event.deployment,
                type(error).__name__,
                error,
                event.model_dump_json(),
            )
            self._mark_gap(event)
            return False
        return True

    def _append(self, event: HostingEvent) -> None:
        day = event.time.date()
        part = self._parts.get((event.model, day), 1)
        while True:
            blob = self._container.get_blob_client(log_blob_name(event.model, day, part))
            try:
                blob.append_block(event.line())
                break
            except ResourceNotFoundError:
                self._create(blob.blob_name)
                blob.append_block(event.line())
                break
            except HttpResponseError as error:
                if getattr(error, "error_code", None) != _BLOCK_LIMIT_CODE:
                    raise
                part += 1
        self._parts[(event.model, day)] = part

    def _create(self, name: str) -> None:
        blob = self._container.get_blob_client(name)
        for _ in range(2):
            try:
                # If-None-Match: * - another instance may be creating the same day's blob now.
                blob.create_append_blob(
                    content_settings=_JSON_LINES, match_condition=MatchConditions.IfMissing
                )
                return
            except ResourceExistsError:
                return
            except ResourceNotFoundError:
                # No container yet (the composition root creates it; a bare writer may not).
                with contextlib.suppress(ResourceExistsError):
                    self._container.create_container()

    def _mark_gap(self, event: HostingEvent) -> None:
        try:
            self._container.upload_blob(
                _gap_blob_name(event), event.model_dump_json(), overwrite=True
            )
        except Exception as error:  # storage is down; the error above stays
            logger.error("hosting log: could not mark the gap either (%s)", error)


@dataclass(frozen=True)
class LogReading:
    """The events of a time range, oldest first, and why the log may be incomplete."""

    events: tuple[HostingEvent, ...]
    # Each entry says, in words, where a line may be missing.
    gaps: tuple[str, ...] = ()
    blobs_read: int = 0
    lost: tuple[HostingEvent, ...] = field(default=())


class HostingLogReader:
    """Reads the hosting log back for a time range."""

    def __init__(self, container: ContainerClient) -> None:
        self._container = container

    def read(self, since: datetime, until: datetime, *, model: str | None = None) -> LogReading:
        """Every event from `since` to `until` (the days that hold them, whole)."""
        days = set(_days(since, until))
        events: dict[str, HostingEvent] = {}
        gaps: list[str] = []
        lost: list[HostingEvent] = []
        blobs = 0
        try:
            for name in self._names(model):
                day = _day_of(name)
                if day is None or day not in days:
                    continue
                if name.startswith(GAPS_PREFIX):
                    marker = self._lost_event(name)
                    if marker is not None:
                        lost.append(marker)
                    gaps.append(_describe_lost(name, marker))
                    continue
                blobs += 1
                for number, line in enumerate(self._lines(name), start=1):
                    try:
                        event = HostingEvent.model_validate_json(line)
                    except ValidationError:
                        gaps.append(f"{name}, line {number}: not a hosting event; skipped")
                        continue
                    events.setdefault(event.id or f"{name}:{number}", event)
        except ResourceNotFoundError:
            # No container yet: nothing was ever logged.
            return LogReading((), (), 0)
        ordered = sorted(events.values(), key=lambda e: (e.at, e.deployment))
        return LogReading(tuple(ordered), tuple(gaps), blobs, tuple(lost))

    def first_day(self, *, model: str | None = None) -> date | None:
        """The first UTC day the log has lines for (from the listing: no download)."""
        try:
            days = [
                day
                for name in self._names(model)
                if not name.startswith(GAPS_PREFIX) and (day := _day_of(name)) is not None
            ]
        except ResourceNotFoundError:
            return None
        return min(days) if days else None

    def _names(self, model: str | None) -> Iterator[str]:
        prefixes = [f"{model}/", f"{GAPS_PREFIX}{model}/"] if model else [""]
        for prefix in prefixes:
            for blob in self._container.list_blobs(name_starts_with=prefix or None):
                yield blob.name

    def _lines(self, name: str) -> Iterable[bytes]:
        data = self._container.download_blob(name).readall()
        return [line for line in data.splitlines() if line.strip()]

    def _lost_event(self, name: str) -> HostingEvent | None:
        try:
            return HostingEvent.model_validate_json(self._container.download_blob(name).readall())
        except (ValidationError, AzureError):
            return None


def _describe_lost(name: str, marker: HostingEvent | None) -> str:
    if marker is None:
        return f"an append was lost ({name})"
    return (
        f"an append was lost: {marker.event} of {marker.deployment} at "
        f"{marker.time:%Y-%m-%d %H:%M:%S} UTC"
    )


def _days(since: datetime, until: datetime) -> Iterator[date]:
    day = since.astimezone(UTC).date()
    last = until.astimezone(UTC).date()
    while day <= last:
        yield day
        day += timedelta(days=1)


def _day_of(name: str) -> date | None:
    """The UTC day a log or gap blob holds, from its name."""
    parts = name.split("/")
    candidate = parts[-2] if name.startswith(GAPS_PREFIX) else parts[-1].split(".")[0]
    try:
        return date.fromisoformat(candidate)
    except ValueError:
        return None
