"""HTTP routes of the admin API (`/admin/...`, JSON in and out, no auth).

Tests, the demo and the local Functions host use these to reset state, read the billing meter,
stats and clock, change timings at runtime and arm faults. Bad input is answered 400 with a
message that says what is wrong; an unknown deployment is 404.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from aiohttp import web

from simulator.config import ConfigError
from simulator.errors import INJECTABLE_STATUSES, ApiError
from simulator.faults import ErrorFault, Plane
from simulator.finetuning_routes import FINETUNING_KEY
from simulator.http_common import json_answer, read_json_object, state_of

logger = logging.getLogger(__name__)


def bad_request(message: str) -> ApiError:
    return ApiError(400, {"error": {"code": "BadRequest", "message": message}})


def _count(body: dict[str, Any], key: str = "count", *, required: bool = True) -> int | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise bad_request(f"'{key}' must be a non-negative integer, got {value!r}")
    return value


def _plane(body: dict[str, Any]) -> Plane:
    value = body.get("plane")
    try:
        return Plane(str(value))
    except ValueError:
        raise bad_request(f"'plane' must be 'management' or 'data', got {value!r}") from None


def _reject_unknown(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise bad_request(f"unknown field(s): {', '.join(unknown)}")


async def health(request: web.Request) -> web.Response:
    state = state_of(request)
    return json_answer({"status": "ok", "pid": os.getpid(), **state.clock_view()})


async def reset(request: web.Request) -> web.Response:
    state_of(request).reset()
    if FINETUNING_KEY in request.app:
        request.app[FINETUNING_KEY].clear()
    return json_answer({"status": "reset"})


async def billing(request: web.Request) -> web.Response:
    return json_answer(state_of(request).billing())


async def stats(request: web.Request) -> web.Response:
    return json_answer(state_of(request).stats())


async def clock(request: web.Request) -> web.Response:
    return json_answer(state_of(request).clock_view())


async def get_config(request: web.Request) -> web.Response:
    return json_answer(state_of(request).config.public_view())


async def post_config(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    try:
        return json_answer(state_of(request).configure(body))
    except ConfigError as error:
        raise bad_request(str(error)) from None


async def get_faults(request: web.Request) -> web.Response:
    return json_answer(state_of(request).faults.describe())


async def fail_provisioning(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    _reject_unknown(body, {"count"})
    faults = state_of(request).faults
    faults.fail_provisionings = _count(body) or 0
    return json_answer(faults.describe())


async def gateway_timeout_on_create(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    _reject_unknown(body, {"count"})
    faults = state_of(request).faults
    faults.gateway_timeouts_on_create = _count(body) or 0
    return json_answer(faults.describe())


async def error_rate(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    _reject_unknown(body, {"plane", "status", "rate", "count"})
    plane = _plane(body)
    status = body.get("status")
    if status not in INJECTABLE_STATUSES or isinstance(status, bool):
        raise bad_request(f"'status' must be one of {sorted(INJECTABLE_STATUSES)}, got {status!r}")
    rate = body.get("rate", 1.0)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
        raise bad_request(f"'rate' must be a number from 0 to 1, got {rate!r}")
    count = _count(body, required=False)
    faults = state_of(request).faults
    faults.errors[plane] = ErrorFault(status=int(status), rate=float(rate), remaining=count)
    return json_answer(faults.describe())


async def latency(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    _reject_unknown(body, {"plane", "ms"})
    plane = _plane(body)
    ms = body.get("ms")
    if isinstance(ms, bool) or not isinstance(ms, int | float) or ms < 0:
        raise bad_request(f"'ms' must be a non-negative number, got {ms!r}")
    faults = state_of(request).faults
    faults.latency_ms[plane] = float(ms)
    return json_answer(faults.describe())


async def clear_faults(request: web.Request) -> web.Response:
    faults = state_of(request).faults
    faults.clear()
    return json_answer(faults.describe())


def _deployment_not_found(name: str) -> ApiError:
    return ApiError(
        404, {"error": {"code": "NotFound", "message": f"no deployment named '{name}' exists"}}
    )


async def vanish(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    state = state_of(request)
    if state.store.find(name, state.now()) is None:
        raise _deployment_not_found(name)
    deployment = state.vanish(name)
    return json_answer({"name": name, "vanished_at": deployment.vanished_at})


async def set_capacity(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    body = await read_json_object(request)
    _reject_unknown(body, {"capacity"})
    capacity = body.get("capacity")
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
        raise bad_request(f"'capacity' must be an integer of at least 1, got {capacity!r}")
    state = state_of(request)
    if state.store.find(name, state.now()) is None:
        raise _deployment_not_found(name)
    deployment = state.set_capacity(name, capacity)
    return json_answer({"name": name, "capacity": deployment.spec.capacity})


def add_routes(app: web.Application) -> None:
    router = app.router
    router.add_get("/admin/health", health)
    router.add_post("/admin/reset", reset)
    router.add_get("/admin/billing", billing)
    router.add_get("/admin/stats", stats)
    router.add_get("/admin/clock", clock)
    router.add_get("/admin/config", get_config)
    router.add_post("/admin/config", post_config)
    router.add_get("/admin/faults", get_faults)
    router.add_post("/admin/faults/fail-provisioning", fail_provisioning)
    router.add_post("/admin/faults/gateway-timeout-on-create", gateway_timeout_on_create)
    router.add_post("/admin/faults/errors", error_rate)
    router.add_post("/admin/faults/latency", latency)
    router.add_post("/admin/faults/clear", clear_faults)
    router.add_post("/admin/deployments/{name}/vanish", vanish)
    router.add_post("/admin/deployments/{name}/capacity", set_capacity)
