"""The batch API: start a batch run over HTTP, read a run. Adapts HTTP to `BatchRunner`.

`POST /api/batches` with `{"model": ..., "input_prefix": ..., "output_prefix": ...,
"deadline": ..., "run_id": ...}` (only `model` and `input_prefix` are required) records the
run and queues its first slice, answering 202 with the run id and its status URL; the same
`run_id` again answers with the existing run and starts nothing. `GET /api/batches/{run_id}`
returns the run's state and, once it ended, its summary.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import azure.functions as func

from shared.api.bodies import BodyInvalid, json_object
from shared.api.jobs import json_response, status_url
from shared.batch.flows import BatchRunner
from shared.batch.models import RunInvalid, check_run_id, parse_deadline

ALLOWED_FIELDS = ("model", "input_prefix", "output_prefix", "deadline", "run_id")
# A batch request names a model, two prefixes, a deadline and a run id: a few hundred bytes.
MAX_REQUEST_BYTES = 64 * 1024


def new_run_id() -> str:
    return uuid.uuid4().hex[:24]


class BatchesApi:
    """Handles POST /api/batches and GET /api/batches/{run_id}."""

    def __init__(self, runner: BatchRunner) -> None:
        self._runner = runner

    def start(self, req: func.HttpRequest) -> func.HttpResponse:
        try:
            payload = _fields(json_object(req, MAX_REQUEST_BYTES, "for a batch request"))
            run_id = _optional(payload, "run_id")
            run = self._runner.start(
                _required(payload, "model"),
                check_run_id(run_id) if run_id is not None else new_run_id(),
                _required(payload, "input_prefix"),
                _optional(payload, "output_prefix") or _required(payload, "input_prefix"),
                _deadline(payload, self._runner),
            )
        except BodyInvalid as invalid:
            return json_response({"error": invalid.message}, invalid.status)
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
            return json_response({"error": f"no batch run {run_id[:120]!r}"}, 404)
        return json_response(view, 200, headers={} if view["final"] else {"Retry-After": "30"})


def _fields(payload: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(payload) - set(ALLOWED_FIELDS))
    if unknown:
        raise RunInvalid(f"unknown field(s) {unknown[:10]}; allowed: {', '.join(ALLOWED_FIELDS)}")
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
