"""The batch API: start a batch run over HTTP, read a run. Adapts HTTP to `BatchRunner`.

`POST /api/batches` with `{"model": ..., "input_prefix": ..., "output_prefix": ...,
"deadline": ..., "run_id": ...}` (only `model` and `input_prefix` are required) records the
run and queues its first slice, answering 202 with the run id and its status URL; the same
`run_id` again answers with the existing run and starts nothing. `GET /api/batches/{run_id}`
returns the run's state and, once it ended, its summary.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import azure.functions as func

from shared.api.jobs import json_response, status_url
from shared.batch.flows import BatchRunner
from shared.batch.models import RunInvalid, parse_deadline

ALLOWED_FIELDS = ("model", "input_prefix", "output_prefix", "deadline", "run_id")


def new_run_id() -> str:
    return uuid.uuid4().hex[:24]


class BatchesApi:
    """Handles POST /api/batches and GET /api/batches/{run_id}."""

    def __init__(self, runner: BatchRunner) -> None:
        self._runner = runner

    def start(self, req: func.HttpRequest) -> func.HttpResponse:
        try:
            payload = _json_object(req.get_body() or b"")
            run = self._runner.start(
                _required(payload, "model"),
                _optional(payload, "run_id") or new_run_id(),
                _required(payload, "input_prefix"),
                _optional(payload, "output_prefix") or _required(payload, "input_prefix"),
                _deadline(payload, self._runner),
            )
        except RunInvalid as invalid:
            return json_response({"error": str(invalid)}, 400)
        location = status_url(req.url, run.run_id)
        return json_response(
            {
                "run_id": run.run_id,
                "model": run.model,
                "status": run.status,
                "status_url": location,
                "input": f"{run.input_container}/{run.input_prefix}",
                "output_prefix": run.output_prefix,
                "deadline": run.deadline.isoformat() if run.deadline else None,
            },
            202,
            headers={"Location": location, "Retry-After": "30"},
        )

    def status(self, run_id: str) -> func.HttpResponse:
        view = self._runner.status(run_id)
        if view is None:
            return json_response({"error": f"no batch run {run_id!r}"}, 404)
        return json_response(view, 200, headers={} if view["final"] else {"Retry-After": "30"})


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunInvalid(f"the body is not valid JSON: {error}") from error
    if not isinstance(payload, dict):
        raise RunInvalid("the body must be a JSON object naming model and input_prefix")
    unknown = sorted(set(payload) - set(ALLOWED_FIELDS))
    if unknown:
        raise RunInvalid(f"unknown field(s) {unknown}; allowed: {', '.join(ALLOWED_FIELDS)}")
    return payload


def _required(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise RunInvalid(f"'{name}' is required and must be a non-empty string")
    return value


def _optional(payload: dict[str, Any], name: str) -> str | None:
    value = payload.get(name)
    if value is not None and not isinstance(value, str):
        raise RunInvalid(f"'{name}' must be a string")
    return value or None


def _deadline(payload: dict[str, Any], runner: BatchRunner) -> datetime | None:
    text = _optional(payload, "deadline")
    return None if text is None else parse_deadline(text, now=runner.clock())
