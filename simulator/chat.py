"""Chat-completions request handling that needs no HTTP: validation, token estimates, answers.

Token estimate (what the rate limiter and the context check use, like Azure's gateway, which
estimates before the model runs): ceil(total characters of all message text / 4) + 4 per
message. A request's rate-limit cost is that estimate plus `max_tokens` (or
`max_completion_tokens`, or the configured default when neither is given).

Answers are deterministic functions of the request: a digest of the messages names the answer
(`sim-answer-<8 hex>`), the plain-text answer echoes the first 80 characters of the last user
message, and the completion length is min(max_tokens, 16 + digest % 48) tokens.
`response_format` json_object yields `{"answer", "digest"}`; json_schema yields a document
built from the schema (every property, first enum value, one array item), so it validates.
A message containing `SIMULATOR:REFUSE` trips the simulated content filter.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, overload

from simulator.errors import ApiError, invalid_request

REFUSE_MARKER = "SIMULATOR:REFUSE"
TOKENS_PER_MESSAGE = 4
CHARS_PER_TOKEN = 4
ECHO_CHARS = 80
VALID_ROLES = ("system", "assistant", "user", "function", "tool", "developer")
_MAX_SCHEMA_DEPTH = 12
# Caps so a hostile schema (minItems: 10**9) cannot make the simulator build a huge answer.
_MAX_GENERATED_ITEMS = 50
_MAX_GENERATED_STRING = 10_000


@dataclass(frozen=True)
class ChatRequest:
    """A validated chat-completions request, reduced to what the simulator uses."""

    messages: list[dict[str, Any]]
    max_tokens: int
    response_format: dict[str, Any] | None

    @property
    def prompt_tokens(self) -> int:
        return estimate_prompt_tokens(self.messages)

    @property
    def cost(self) -> int:
        return self.prompt_tokens + self.max_tokens


@dataclass(frozen=True)
class ChatAnswer:
    content: str
    digest: str
    prompt_tokens: int
    completion_tokens: int


def message_text(message: Mapping[str, Any]) -> str:
    """The text of a message: a string content, or the text parts of a list content."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "")
            for part in content
            if isinstance(part, Mapping) and isinstance(part.get("text"), str)
        )
    return ""


def estimate_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    characters = sum(len(message_text(message)) for message in messages)
    return math.ceil(characters / CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE * len(messages)


def parse_chat_request(raw_body: bytes, default_max_tokens: int) -> ChatRequest:
    """Validate a request body the way Azure OpenAI does; raise its 400 answers."""
    try:
        body = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError):
        raise invalid_request(
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
            "but what was sent was not valid JSON.)",
            None,
        ) from None
    if not isinstance(body, dict):
        raise invalid_request(f"{_short(body)} is not of type 'object'", None)
    messages = _validate_messages(body)
    max_tokens = _validate_max_tokens(body, default_max_tokens)
    response_format = _validate_response_format(body.get("response_format"))
    if body.get("stream"):
        raise invalid_request(
            "Streaming is not supported by the local simulator; send stream=false.", "stream"
        )
    return ChatRequest(messages=messages, max_tokens=max_tokens, response_format=response_format)


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _validate_messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    if "messages" not in body:
        raise invalid_request("'messages' is a required property", "messages")
    messages = body["messages"]
    if not isinstance(messages, list):
        raise invalid_request(f"{_short(messages)} is not of type 'array' - 'messages'", "messages")
    if not messages:
        raise invalid_request("[] is too short - 'messages'", "messages")
    for index, message in enumerate(messages):
        where = f"messages.{index}"
        if not isinstance(message, dict):
            raise invalid_request(
                f"{_short(message)} is not of type 'object' - '{where}'", "messages"
            )
        if "role" not in message:
            raise invalid_request(f"'role' is a required property - '{where}'", "messages")
        role = message["role"]
        if role not in VALID_ROLES:
            raise invalid_request(
                f"{_short(role)} is not one of {list(VALID_ROLES)} - '{where}.role'", "messages"
            )
        content = message.get("content")
        # Only an assistant message that calls tools may leave content out.
        may_omit = role == "assistant" and ("tool_calls" in message or "function_call" in message)
        if content is None and not may_omit:
            raise invalid_request(f"'content' is a required property - '{where}'", "messages")
        if content is not None and not isinstance(content, str | list):
            raise invalid_request(
                f"{_short(content)} is not valid under any of the given schemas - "
                f"'{where}.content'",
                "messages",
            )
    return messages


def _validate_max_tokens(body: Mapping[str, Any], default_max_tokens: int) -> int:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid_request(f"{_short(value)} is not of type 'integer' - '{key}'", key)
        if value < 1:
            raise invalid_request(f"{value} is less than the minimum of 1 - '{key}'", key)
        return value
    return default_max_tokens


def _validate_response_format(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("type") not in {
        "text",
        "json_object",
        "json_schema",
    }:
        raise invalid_request(
            "Invalid value for 'response_format': expected an object with 'type' one of "
            "'text', 'json_object', 'json_schema'.",
            "response_format",
        )
    if value["type"] == "json_schema":
        spec = value.get("json_schema")
        if not isinstance(spec, dict):
            raise invalid_request(
                "Missing required parameter: 'response_format.json_schema'.",
                "response_format.json_schema",
                "missing_required_parameter",
            )
        if not isinstance(spec.get("name"), str):
            raise invalid_request(
                "Missing required parameter: 'response_format.json_schema.name'.",
                "response_format.json_schema.name",
                "missing_required_parameter",
            )
        if "schema" in spec and not isinstance(spec["schema"], dict):
            raise invalid_request(
                "Invalid type for 'response_format.json_schema.schema': expected an object.",
                "response_format.json_schema.schema",
                "invalid_type",
            )
    return value


def context_length_error(prompt_tokens: int, context_tokens: int) -> ApiError:
    return invalid_request(
        f"This model's maximum context length is {context_tokens} tokens. However, your "
        f"messages resulted in {prompt_tokens} tokens. Please reduce the length of the messages.",
        "messages",
        "context_length_exceeded",
    )


def trips_content_filter(request: ChatRequest) -> bool:
    return any(REFUSE_MARKER in message_text(message) for message in request.messages)


def content_filter_error() -> ApiError:
    """Azure's answer when the prompt trips the content filter."""
    return ApiError(
        400,
        {
            "error": {
                "message": "The response was filtered due to the prompt triggering Azure "
                "OpenAI's content management policy. Please modify your prompt and retry. To "
                "learn more about our content filtering policies please read our "
                "documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
                "type": None,
                "param": "prompt",
                "code": "content_filter",
                "status": 400,
                "innererror": {
                    "code": "ResponsibleAIPolicyViolation",
                    "content_filter_result": {
                        "hate": {"filtered": False, "severity": "safe"},
                        "jailbreak": {"filtered": False, "detected": False},
                        "self_harm": {"filtered": False, "severity": "safe"},
                        "sexual": {"filtered": False, "severity": "safe"},
                        "violence": {"filtered": True, "severity": "high"},
                    },
                },
            }
        },
    )


def request_digest(request: ChatRequest) -> str:
    canonical = json.dumps(
        [{"role": m.get("role"), "content": message_text(m)} for m in request.messages],
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:8]


def answer(request: ChatRequest) -> ChatAnswer:
    """The deterministic answer to a validated request."""
    digest = request_digest(request)
    label = f"sim-answer-{digest}"
    last_user = next(
        (message_text(m) for m in reversed(request.messages) if m.get("role") == "user"), ""
    )
    echo = last_user[:ECHO_CHARS]
    completion_tokens = min(request.max_tokens, 16 + int(digest, 16) % 48)
    kind = (request.response_format or {}).get("type", "text")
    if kind == "json_object":
        content = json.dumps({"answer": f"Simulated answer to: {echo}", "digest": label})
    elif kind == "json_schema":
        spec = (request.response_format or {}).get("json_schema") or {}
        schema = spec.get("schema") or {"type": "object"}
        content = json.dumps(instance_for_schema(schema, schema, label))
    else:
        content = f"Simulated answer {label}. You said: {echo}"
    return ChatAnswer(
        content=content,
        digest=label,
        prompt_tokens=request.prompt_tokens,
        completion_tokens=completion_tokens,
    )


def instance_for_schema(schema: Any, root: Mapping[str, Any], label: str, depth: int = 0) -> Any:
    """A deterministic JSON value that validates against `schema` (common keywords only)."""
    if depth > _MAX_SCHEMA_DEPTH or not isinstance(schema, Mapping):
        return None
    if "$ref" in schema:
        return instance_for_schema(_resolve_ref(schema["$ref"], root), root, label, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combinator)
        if isinstance(options, list) and options:
            non_null = [
                o for o in options if not (isinstance(o, Mapping) and o.get("type") == "null")
            ]
            return instance_for_schema((non_null or options)[0], root, label, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    if kind == "object":
        properties = schema.get("properties") or {}
        return {
            key: instance_for_schema(sub, root, label, depth + 1) for key, sub in properties.items()
        }
    if kind == "array":
        minimum = _whole_keyword(schema, "minItems", 1)
        maximum = _whole_keyword(schema, "maxItems", None)
        count = max(1, min(minimum, _MAX_GENERATED_ITEMS))
        if maximum is not None:
            count = min(count, maximum)
        item_schema = schema.get("items", {"type": "string"})
        return [instance_for_schema(item_schema, root, label, depth + 1) for _ in range(count)]
    if kind in ("integer", "number"):
        return _number_for_schema(schema, integer=kind == "integer")
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string_for_schema(schema, label)


def _resolve_ref(reference: Any, root: Mapping[str, Any]) -> Any:
    if not isinstance(reference, str) or not reference.startswith("#"):
        return {}
    node: Any = root
    for raw_part in reference.lstrip("#").split("/"):
        if not raw_part:
            continue
        part = raw_part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            return {}
        node = node[part]
    return node


def _number_for_schema(schema: Mapping[str, Any], *, integer: bool) -> int | float:
    """Zero, moved into the schema's bounds if it lies outside them."""
    step = 1 if integer else 0.5
    low: float | None = None
    high: float | None = None
    if isinstance(schema.get("minimum"), int | float):
        low = schema["minimum"]
    if isinstance(schema.get("exclusiveMinimum"), int | float):
        low = schema["exclusiveMinimum"] + step
    if isinstance(schema.get("maximum"), int | float):
        high = schema["maximum"]
    if isinstance(schema.get("exclusiveMaximum"), int | float):
        high = schema["exclusiveMaximum"] - step
    value: float = 0
    if low is not None and value < low:
        value = low
    if high is not None and value > high:
        value = high
    return math.ceil(value) if integer else float(value)


def _string_for_schema(schema: Mapping[str, Any], label: str) -> str:
    formats = {
        "date-time": "2026-01-01T00:00:00Z",
        "date": "2026-01-01",
        "time": "00:00:00Z",
        "email": "simulator@example.com",
        "uri": "https://example.com/simulator",
        "uuid": "00000000-0000-4000-8000-000000000000",
    }
    text = formats.get(str(schema.get("format")), label)
    min_length = min(_whole_keyword(schema, "minLength", 0), _MAX_GENERATED_STRING)
    if len(text) < min_length:
        text = text + "x" * (min_length - len(text))
    max_length = _whole_keyword(schema, "maxLength", None)
    if max_length is not None:
        text = text[:max_length]
    return text


@overload
def _whole_keyword(schema: Mapping[str, Any], key: str, default: int) -> int: ...
@overload
def _whole_keyword(schema: Mapping[str, Any], key: str, default: None) -> int | None: ...
def _whole_keyword(schema: Mapping[str, Any], key: str, default: int | None) -> int | None:
    """A non-negative integer keyword; a schema with nonsense there gets the default."""
    value = schema.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return default
    return value
