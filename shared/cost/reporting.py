"""The savings report's flow: read the hosting log and the work records, then build the report.

Shared by the operator's `hosting report` and `GET /api/report`, so both show the same
figures. `ReportRequest` validates what was asked (range, model, period) with errors that
say what to change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from shared.catalog import Catalog
from shared.cost.lifetimes import lifetimes_from
from shared.cost.log import HostingLogReader
from shared.cost.report import ModelTerms, PeriodKind, ReportInputs, SavingsReport, build_report
from shared.cost.usage import UsageReader

logger = logging.getLogger(__name__)

DEFAULT_DAYS = 7
# A request for longer is refused: the report reads every job record of its range.
MAX_RANGE = timedelta(days=366)


class ReportInvalid(ValueError):
    """The report cannot be made as asked; the message says what to change."""


@dataclass(frozen=True)
class ReportRequest:
    since: datetime | None = None
    until: datetime | None = None
    model: str | None = None
    by: PeriodKind = "day"


class SavingsReports:
    """Builds savings reports from the app's own records."""

    def __init__(
        self,
        *,
        log: HostingLogReader,
        usage: UsageReader,
        catalog: Catalog,
        clock: Callable[[], datetime],
        time_scale: float,
        expected_provision_seconds: float,
    ) -> None:
        self._log = log
        self._usage = usage
        self._catalog = catalog
        self._clock = clock
        self._time_scale = time_scale
        self._expected_provision_seconds = expected_provision_seconds

    def report(self, request: ReportRequest) -> SavingsReport:
        now = self._clock()
        until = _utc(request.until) if request.until is not None else now
        since = (
            _utc(request.since)
            if request.since is not None
            else datetime.combine(until.date() - timedelta(days=DEFAULT_DAYS - 1), time(), UTC)
        )
        self._check(request, since, until, now)
        notes: list[str] = []
        first_day = self._log.first_day(model=request.model)
        if first_day is None:
            notes.append("the hosting log is empty: no deployment was logged yet")
        else:
            begins = datetime.combine(first_day, time(), UTC)
            if begins > since:
                # Before the log began the app was not running (or not logging): comparing
                # always-on hosting over days nobody used it would inflate the saving.
                notes.append(f"the hosting log begins on {first_day}: the report starts there")
                since = min(begins, until)
        models = [
            m
            for m in self._catalog.models.values()
            if request.model is None or m.name == request.model
        ]
        lookback = timedelta(
            seconds=max((m.max_lifetime_seconds for m in self._catalog.models.values()), default=0)
        ) + timedelta(hours=1)
        reading = self._log.read(since - lookback, until, model=request.model)
        lives = lifetimes_from(reading.events)
        usage = self._usage.read(since, until, now=now, model=request.model)
        notes.extend(usage.notes)
        for lifetime in lives.lifetimes:
            if lifetime.open and lifetime.delete_sent is not None:
                notes.append(
                    f"{lifetime.deployment}: delete sent at "
                    f"{datetime.fromtimestamp(lifetime.delete_sent, UTC):%Y-%m-%d %H:%M:%S} UTC, "
                    "not yet confirmed gone: counted as hosted until now"
                )
        return build_report(
            ReportInputs(
                since=since,
                until=until,
                now=now,
                by=request.by,
                models=[ModelTerms(m.name, m.deployment_type, m.prices) for m in models],
                lifetimes=[
                    lt
                    for lt in lives.lifetimes
                    if request.model is None or lt.model == request.model
                ],
                work=usage.work,
                gaps=[*reading.gaps, *lives.gaps],
                notes=notes,
                time_scale=self._time_scale,
                expected_provision_seconds=self._expected_provision_seconds,
            )
        )

    def _check(
        self, request: ReportRequest, since: datetime, until: datetime, now: datetime
    ) -> None:
        if request.model is not None and request.model not in self._catalog.models:
            known = ", ".join(sorted(self._catalog.models))
            raise ReportInvalid(
                f"unknown hosted model {request.model!r}; the hosted models are: {known}"
            )
        if since >= now:
            raise ReportInvalid(
                f"since ({since.isoformat()}) is in the future: nothing has been hosted yet"
            )
        if since >= until:
            raise ReportInvalid(
                f"since ({since.isoformat()}) must be before until ({until.isoformat()})"
            )
        if until - since > MAX_RANGE:
            raise ReportInvalid(
                f"the range is {(until - since).days} days; ask for at most {MAX_RANGE.days} "
                "days at a time"
            )


def _utc(moment: datetime) -> datetime:
    """A time without a zone is taken as UTC (the log's days are UTC days)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
