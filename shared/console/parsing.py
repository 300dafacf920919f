"""Durations and moments as an operator types them, parsed by pydantic (no hand-written regex).

A duration is ISO 8601 (`PT30M`, `PT2H`, `P1D`), `HH:MM:SS` (`01:30:00`) or seconds (`1800`),
which is what pydantic's `timedelta` accepts. A moment (`jobs --since`) is such a duration
ago, or an ISO 8601 date or date-time; one without a zone is UTC, like every time the command
prints.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import typer
from pydantic import TypeAdapter, ValidationError

_DURATION = TypeAdapter(timedelta)
_MOMENT = TypeAdapter(datetime)

DURATION_FORMS = "ISO 8601 (PT30M, PT2H, P1D), HH:MM:SS or seconds (1800)"


def parse_duration(text: str | timedelta) -> timedelta:
    """A positive duration; typer's `BadParameter` (exit 2, one line) otherwise."""
    if isinstance(text, timedelta):  # typer passes the default through the parser too
        return text
    duration = _duration_or_none(text)
    if duration is None:
        raise typer.BadParameter(f"{text!r} is not a duration: use {DURATION_FORMS}")
    if duration <= timedelta(0):
        raise typer.BadParameter(f"{text!r} is not a positive duration")
    return duration


def parse_moment(text: str | datetime, *, now: datetime | None = None) -> datetime:
    """A duration ago (`PT2H`, `3600`) or an ISO 8601 date or date-time, in UTC."""
    if isinstance(text, datetime):
        return text
    now = now or datetime.now(UTC)
    # Durations first: a bare number would otherwise be read as a Unix timestamp.
    duration = _duration_or_none(text)
    if duration is not None:
        return now - abs(duration)
    try:
        moment = _MOMENT.validate_python(text.strip())
    except ValidationError:
        raise typer.BadParameter(
            f"{text!r} is neither a date/time (2026-11-23, 2026-11-23T09:30, with an optional "
            f"zone; UTC if none) nor a duration ago ({DURATION_FORMS})"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _duration_or_none(text: str) -> timedelta | None:
    cleaned = text.strip()
    value: str | float = cleaned
    with contextlib.suppress(ValueError):
        # pydantic reads a number as seconds, but not a string of one.
        value = float(cleaned)
    try:
        return _DURATION.validate_python(value)
    except ValidationError:
        return None


def parse_instant(text: str | datetime) -> datetime:
    """An ISO 8601 date-time (`schedule --at`), UTC unless it names a zone."""
    if isinstance(text, datetime):
        return text
    try:
        moment = _MOMENT.validate_python(text.strip())
    except ValidationError:
        raise typer.BadParameter(
            f"{text!r} is not a date-time: use ISO 8601, e.g. 2026-12-01T07:30 (UTC) or "
            "2026-12-01T08:30+01:00"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
