"""`GET /api/report`: the savings report over HTTP, the same JSON as `hosting report --json`.

Query parameters, all optional: `since` and `until` (ISO 8601 date or date-time, UTC unless
a zone is given, or an ISO 8601 duration ago such as `P7D`), `model`, `by` (`day` or `week`)
and `format` (`json`, the default, or `png` / `svg` for the chart). A bad parameter answers
400 saying which and what it accepts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal, cast

import azure.functions as func
from pydantic import TypeAdapter, ValidationError

from shared.api.jobs import json_response
from shared.cost.reporting import ReportInvalid, ReportRequest, SavingsReports

PARAMETERS = ("since", "until", "model", "by", "format")
_MOMENT = TypeAdapter(datetime)
_DURATION = TypeAdapter(timedelta)
_IMAGE_TYPES = {"png": "image/png", "svg": "image/svg+xml"}


class ReportApi:
    """Handles GET /api/report."""

    def __init__(self, reports: SavingsReports) -> None:
        self._reports = reports

    def get(self, req: func.HttpRequest) -> func.HttpResponse:
        params = dict(req.params)
        unknown = sorted(set(params) - set(PARAMETERS))
        if unknown:
            return _bad(
                f"unknown parameter(s) {', '.join(unknown)}; the parameters are: "
                f"{', '.join(PARAMETERS)}"
            )
        by = params.get("by", "day")
        if by not in ("day", "week"):
            return _bad(f"by={by!r}: use day or week")
        output = params.get("format", "json")
        if output not in ("json", *_IMAGE_TYPES):
            return _bad(f"format={output!r}: use json, png or svg")
        now = datetime.now(UTC)
        try:
            request = ReportRequest(
                since=_moment(params, "since", now),
                until=_moment(params, "until", now),
                model=params.get("model") or None,
                by=cast(Literal["day", "week"], by),
            )
            report = self._reports.report(request)
        except ReportInvalid as invalid:
            return _bad(str(invalid))
        if output == "json":
            return json_response(report.model_dump(mode="json"), 200)
        # matplotlib is imported only when a chart is asked for, not at the app's cold start.
        from shared.cost.chart import render_chart  # noqa: PLC0415

        return func.HttpResponse(
            render_chart(report, output), status_code=200, mimetype=_IMAGE_TYPES[output]
        )


def _moment(params: dict[str, str], name: str, now: datetime) -> datetime | None:
    text = params.get(name)
    if not text:
        return None
    if text.upper().startswith("P"):
        try:
            return now - abs(_DURATION.validate_python(text))
        except ValidationError:
            pass
    try:
        moment = _MOMENT.validate_python(text)
    except ValidationError:
        raise ReportInvalid(
            f"{name}={text!r} is neither an ISO 8601 date or date-time (2026-12-01, "
            "2026-12-01T09:30Z) nor an ISO 8601 duration ago (P7D, PT12H)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _bad(message: str) -> func.HttpResponse:
    return json_response({"error": message}, 400)
