"""Pieces every HTTP route shares: the state app key, JSON answers, request ids, error pages.

The middleware here is the one place that turns exceptions into answers: `ApiError` becomes
its Azure body, aiohttp's own HTTP errors (unknown path, wrong method, body too large) become
Azure-shaped bodies for the plane the path belongs to, and anything unexpected is logged and
answered with a 500 Azure body - never a stack trace.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from simulator.errors import ApiError, server_error
from simulator.faults import Plane
from simulator.jsonbody import BodyNotJson, decode_body, encode
from simulator.state import SimulatorState

logger = logging.getLogger(__name__)

STATE_KEY = web.AppKey("simulator_state", SimulatorState)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def state_of(request: web.Request) -> SimulatorState:
    return request.app[STATE_KEY]


def plane_for(path: str) -> str:
    if path.startswith("/openai"):
        return Plane.DATA.value
    if path.startswith("/admin"):
        return "admin"
    return Plane.MANAGEMENT.value


def json_answer(
    payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        # NaN or Infinity would make the answer invalid JSON; refusing is a logged 500.
        text=encode(payload),
        content_type="application/json",
        headers=dict(headers or {}),
    )


def error_answer(error: ApiError) -> web.Response:
    return json_answer(error.body, status=error.status, headers=error.headers)


def _answer_for_http_exception(exc: web.HTTPException, plane: str) -> web.Response:
    if plane == Plane.DATA.value:
        body: dict[str, Any] = {"error": {"code": str(exc.status), "message": exc.reason}}
        if exc.status == 404:
            body = {"error": {"code": "404", "message": "Resource not found"}}
    elif plane == Plane.MANAGEMENT.value:
        code = {404: "NotFound", 405: "MethodNotAllowed", 413: "RequestEntityTooLarge"}.get(
            exc.status, exc.reason.replace(" ", "")
        )
        body = {"error": {"code": code, "message": f"{exc.reason}."}}
    else:
        body = {"error": {"code": exc.reason.replace(" ", ""), "message": exc.reason}}
    return json_answer(body, status=exc.status)


def _add_request_ids(request: web.Request, response: web.StreamResponse, plane: str) -> None:
    request_id = str(uuid.uuid4())
    if plane == Plane.DATA.value:
        response.headers.setdefault("apim-request-id", request_id)
        response.headers.setdefault("x-request-id", request_id)
        return
    response.headers.setdefault("x-ms-request-id", request_id)
    correlation = request.headers.get("x-ms-correlation-request-id") or request_id
    response.headers.setdefault("x-ms-correlation-request-id", correlation)
    client_request_id = request.headers.get("x-ms-client-request-id")
    if client_request_id:
        response.headers.setdefault("x-ms-client-request-id", client_request_id)


@web.middleware
async def azure_answers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render every outcome, including failures, the way the path's Azure plane would."""
    plane = plane_for(request.path)
    response: web.StreamResponse
    try:
        response = await handler(request)
    except ApiError as error:
        response = error_answer(error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _answer_for_http_exception(exc, plane)
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("unexpected error answering %s %s", request.method, request.path_qs)
        response = error_answer(server_error(plane if plane != "admin" else "management", 500))
    _add_request_ids(request, response, plane)
    return response


async def apply_plane_faults(state: SimulatorState, plane: Plane) -> None:
    """Injected latency, then an injected error, for a request on `plane`."""
    delay = state.faults.extra_latency_seconds(plane)
    if delay > 0:
        await asyncio.sleep(delay)
    status = state.faults.draw_error(plane)
    if status is not None:
        logger.info("injecting %s on the %s plane", status, plane.value)
        raise server_error(plane.value, status)


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """An admin request's JSON object body (empty body = {}); 400 otherwise."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = decode_body(raw)
    except BodyNotJson as error:
        raise ApiError(
            400, {"error": {"code": "BadRequest", "message": f"body is not JSON: {error}"}}
        ) from None
    if not isinstance(body, dict):
        raise ApiError(
            400, {"error": {"code": "BadRequest", "message": "body must be a JSON object"}}
        )
    return body
