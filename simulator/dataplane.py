"""HTTP routes of the simulated Azure OpenAI data plane (chat completions).

`POST /openai/deployments/{name}/chat/completions?api-version=...` authenticated by `api-key`
or a bearer token, answered in the OpenAI chat.completion shape after a real-time delay of
base_latency_ms + token_latency_ms x completion tokens (reported in `x-sim-inference-ms`).
The rules (routing to a serving deployment, validation, rate limits, content filter) live in
`SimulatorState.chat`; this module only speaks HTTP.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from typing import Any

from aiohttp import web

from simulator.errors import ApiError, gateway_error
from simulator.faults import Plane
from simulator.http_common import apply_plane_faults, json_answer, state_of
from simulator.state import ChatResult, SimulatorState

logger = logging.getLogger(__name__)

ACCESS_DENIED_MESSAGE = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide "
    "a valid key for an active subscription and use a correct regional API endpoint for your "
    "resource."
)
_NO_FILTER = {"filtered": False, "severity": "safe"}
_CONTENT_FILTER_RESULTS: dict[str, Any] = {
    "hate": _NO_FILTER,
    "self_harm": _NO_FILTER,
    "sexual": _NO_FILTER,
    "violence": _NO_FILTER,
}


def resource_not_found() -> ApiError:
    return gateway_error(404, "404", "Resource not found")


def _check_credentials(request: web.Request, state: SimulatorState) -> None:
    api_key = request.headers.get("api-key")
    if api_key is not None:
        if api_key == state.config.api_key:
            return
    else:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return
    raise gateway_error(401, "401", ACCESS_DENIED_MESSAGE)


def chat_completion_body(result: ChatResult) -> dict[str, Any]:
    answer = result.answer
    return {
        "id": f"chatcmpl-{answer.digest}",
        "object": "chat.completion",
        "created": result.created,
        "model": result.deployment.spec.model_name,
        "system_fingerprint": "fp_simulator",
        "prompt_filter_results": [
            {"prompt_index": 0, "content_filter_results": _CONTENT_FILTER_RESULTS}
        ],
        "choices": [
            {
                "index": 0,
                "finish_reason": answer.finish_reason,
                "logprobs": None,
                "message": {"role": "assistant", "content": answer.content, "refusal": None},
                "content_filter_results": _CONTENT_FILTER_RESULTS,
            }
        ],
        "usage": {
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "total_tokens": answer.prompt_tokens + answer.completion_tokens,
        },
    }


async def handle_chat_completions(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    state.count_data("chat")
    await apply_plane_faults(state, Plane.DATA)
    api_version = request.query.get("api-version", "").strip()
    if not api_version:
        raise resource_not_found()
    _check_credentials(request, state)
    raw_body = await request.read()
    try:
        result = state.chat(request.match_info["deployment"], raw_body, api_version)
    except ApiError as error:
        if error.status == 404:
            state.count_data("not_found")
        elif error.status == 429:
            state.count_data("throttled")
        raise
    result = _as_learned(request, result)
    config = state.config
    inference_ms = (
        config.base_latency_ms + config.token_latency_ms * result.answer.completion_tokens
    )
    started = time.monotonic()
    await asyncio.sleep(inference_ms / 1000.0)
    waited_ms = (time.monotonic() - started) * 1000.0
    logger.debug("chat on %s took %.1f ms", result.deployment.name, waited_ms)
    state.count_data("ok")
    headers = {**result.rate_headers, "x-sim-inference-ms": f"{inference_ms:.3f}"}
    return json_answer(chat_completion_body(result), headers=headers)


def _as_learned(request: web.Request, result: ChatResult) -> ChatResult:
    """A model fine-tuned on the simulator answers what it learnt (see FineTuningStore)."""
    from simulator.finetuning_routes import FINETUNING_KEY  # noqa: PLC0415 - it imports this

    store = request.app.get(FINETUNING_KEY)
    model = result.deployment.spec.model_name
    if store is None or ".ft-" not in model:
        return result
    question = result.last_user_text
    learned = store.learned_answer(model, question) if question else None
    if learned is None:
        return result
    tokens = max(1, math.ceil(len(learned) / 4))
    cut = tokens > result.max_tokens > 0
    answer = dataclasses.replace(
        result.answer,
        content=learned[: result.max_tokens * 4] if cut else learned,
        completion_tokens=result.max_tokens if cut else tokens,
        finish_reason="length" if cut else "stop",
    )
    return dataclasses.replace(result, answer=answer)


async def handle_other_openai(request: web.Request) -> web.StreamResponse:
    """Anything else under /openai: Azure answers an unknown operation with a plain 404."""
    raise resource_not_found()


def add_routes(app: web.Application) -> None:
    app.router.add_post(
        "/openai/deployments/{deployment}/chat/completions", handle_chat_completions
    )
    app.router.add_route("*", "/openai/{tail:.*}", handle_other_openai)
