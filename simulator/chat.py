"""Chat-completions request handling that needs no HTTP: validation, token estimates, answers.

Token estimate (what the rate limiter and the context check use, like Azure's gateway, which
estimates before the model runs): ceil(total characters of all message text / 4) + 4 per
message. A request's rate-limit cost is that estimate plus `max_tokens` (or
`max_completion_tokens`, or the configured default when neither is given).

Limits, checked before the rate limiter as Azure does: a `max_tokens` above the model's maximum
output is refused (`invalid_value`), and so is a prompt estimate plus an explicit `max_tokens`
above the context window (`context_length_exceeded`, in OpenAI's wording).

Answers are deterministic functions of the request: a digest of the messages names the answer
(`sim-answer-<8 hex>`) and the plain-text answer echoes the first 80 characters of the last user
message. `response_format` json_object yields `{"answer", "digest"}`; json_schema yields a
document built from the schema (every property, first enum value, one array item), so it
validates, except the question-answers schema (`{"answers": [{"question", "answer"}]}`), which is
answered as a model told to copy each question does: one entry per numbered question of the
prompt (the list after "Questions:", else the numbered lines that end the last user message),
the question copied. The answer's length in tokens is measured like prompts
(ceil(characters / 4)); an
answer longer than `max_tokens` is cut to `max_tokens` x 4 characters - cut JSON for the JSON
formats, as Azure returns it - and reports `finish_reason` "length" instead of "stop".
A message containing `SIMULATOR:REFUSE` trips the simulated content filter.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, overload

from simulator.errors import ApiError, invalid_request
from simulator.jsonbody import BodyNotJson, decode_body

REFUSE_MARKER = "SIMULATOR:REFUSE"
TOKENS_PER_MESSAGE = 4
CHARS_PER_TOKEN = 4
ECHO_CHARS = 80
VALID_ROLES = ("system", "assistant", "user", "function", "tool", "developer")
_MAX_SCHEMA_DEPTH = 12
# Caps so a hostile schema (minItems: 10**9) cannot make the simulator build a huge answer.
_MAX_GENERATED_ITEMS = 50
_MAX_GENERATED_STRING = 10_000
# Caps on a whole generated document. A schema whose properties refer back to the root
# (`"$ref": "#"`) multiplies at every level, so per-keyword caps alone still allow answers of
# hundreds of megabytes; past these budgets the schema is refused with a 400 instead.
MAX_GENERATED_VALUES = 10_000
MAX_GENERATED_CHARACTERS = 1_000_000
NOT_JSON_MESSAGE = (
    "We could not parse the JSON body of your request. (HINT: This likely means you "
    "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
    "but what was sent was not valid JSON.)"
)
FINISH_STOP = "stop"
FINISH_LENGTH = "length"


@dataclass(frozen=True)
class ChatRequest:
    """A validated chat-completions request, reduced to what the simulator uses."""

    messages: list[dict[str, Any]]
    max_tokens: int
    response_format: dict[str, Any] | None
    # Whether the client set max_tokens: only then does it count against the context window.
    max_tokens_requested: bool = False

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
    finish_reason: str = FINISH_STOP


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


def text_tokens(text: str) -> int:
    """The simulator's token measure of a text: ceil(characters / 4)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def estimate_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    characters = sum(len(message_text(message)) for message in messages)
    return math.ceil(characters / CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE * len(messages)


def parse_chat_request(
    raw_body: bytes, default_max_tokens: int, max_output_tokens: int | None = None
) -> ChatRequest:
    """Validate a request body the way Azure OpenAI does; raise its 400 answers.

    `max_output_tokens` is the model's largest completion; a larger explicit max_tokens is
    refused (None: no such limit).
    """
    try:
        body = decode_body(raw_body)
    except BodyNotJson:
        # NaN, Infinity, 1e999 and absurd nesting are not JSON to Azure's parser either.
        raise invalid_request(NOT_JSON_MESSAGE, None) from None
    if not isinstance(body, dict):
        raise invalid_request(f"{_short(body)} is not of type 'object'", None)
    messages = _validate_messages(body)
    max_tokens, max_tokens_param = _validate_max_tokens(body, default_max_tokens)
    if (
        max_tokens_param is not None
        and max_output_tokens is not None
        and max_tokens > max_output_tokens
    ):
        raise max_tokens_too_large_error(max_tokens_param, max_tokens, max_output_tokens)
    response_format = _validate_response_format(body.get("response_format"))
    if body.get("stream"):
        raise invalid_request(
            "Streaming is not supported by the local simulator; send stream=false.", "stream"
        )
    return ChatRequest(
        messages=messages,
        max_tokens=max_tokens,
        response_format=response_format,
        max_tokens_requested=max_tokens_param is not None,
    )


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


def _validate_max_tokens(
    body: Mapping[str, Any], default_max_tokens: int
) -> tuple[int, str | None]:
    """The completion limit and the parameter that set it (None: the default applies)."""
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid_request(f"{_short(value)} is not of type 'integer' - '{key}'", key)
        if value < 1:
            raise invalid_request(f"{value} is less than the minimum of 1 - '{key}'", key)
        return value, key
    return default_max_tokens, None


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
        # Build the document once now (with a placeholder label of the real label's length),
        # so a schema too large to answer is a 400 before it costs rate-limit tokens.
        _schema_document(spec, "sim-answer-00000000")
    return value


def _schema_document(spec: Mapping[str, Any], label: str) -> Any:
    """The generated document for a json_schema spec; 400 when it exceeds the budget."""
    schema = spec.get("schema") or {"type": "object"}
    try:
        return instance_for_schema(schema, schema, label, budget=GenerationBudget())
    except SchemaTooLarge as error:
        raise invalid_request(
            f"Invalid schema for response_format '{spec.get('name')}': {error}",
            "response_format",
        ) from None


def context_length_error(
    prompt_tokens: int, context_tokens: int, completion_tokens: int | None = None
) -> ApiError:
    """OpenAI's answer when the prompt (plus an explicit max_tokens) exceeds the context."""
    if completion_tokens is None:
        return invalid_request(
            f"This model's maximum context length is {context_tokens} tokens. However, your "
            f"messages resulted in {prompt_tokens} tokens. Please reduce the length of the "
            "messages.",
            "messages",
            "context_length_exceeded",
        )
    return invalid_request(
        f"This model's maximum context length is {context_tokens} tokens. However, you "
        f"requested {prompt_tokens + completion_tokens} tokens ({prompt_tokens} in the "
        f"messages, {completion_tokens} in the completion). Please reduce the length of the "
        "messages or completion.",
        "messages",
        "context_length_exceeded",
    )


def check_context(request: ChatRequest, context_tokens: int) -> None:
    """Raise `context_length_exceeded` when the request cannot fit the model's context."""
    prompt_tokens = request.prompt_tokens
    if request.max_tokens_requested:
        if prompt_tokens + request.max_tokens > context_tokens:
            raise context_length_error(prompt_tokens, context_tokens, request.max_tokens)
    elif prompt_tokens > context_tokens:
        raise context_length_error(prompt_tokens, context_tokens)


def max_tokens_too_large_error(param: str, value: int, max_output_tokens: int) -> ApiError:
    """OpenAI's answer to a max_tokens above what the model can ever produce."""
    return invalid_request(
        f"{param} is too large: {value}. This model supports at most {max_output_tokens} "
        f"completion tokens, whereas you provided {value}.",
        param,
        "invalid_value",
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
    """The deterministic answer to a validated request, cut to its max_tokens."""
    digest = request_digest(request)
    label = f"sim-answer-{digest}"
    last_user = next(
        (message_text(m) for m in reversed(request.messages) if m.get("role") == "user"), ""
    )
    echo = last_user[:ECHO_CHARS]
    kind = (request.response_format or {}).get("type", "text")
    if kind == "json_object":
        content = json.dumps({"answer": f"Simulated answer to: {echo}", "digest": label})
    elif kind == "json_schema":
        spec = (request.response_format or {}).get("json_schema") or {}
        asked = questions_asked(request) if _asks_for_answers(spec) else []
        if asked:
            # As a model told to copy each question does: one answer per question, in order.
            document: Any = {
                "answers": [
                    {"question": question, "answer": f"Simulated answer {label} to: {question}"}
                    for question in asked
                ]
            }
        else:
            document = _schema_document(spec, label)
        content = json.dumps(document, allow_nan=False)
    else:
        content = f"Simulated answer {label}. You said: {echo}"
    finish_reason = FINISH_STOP
    if text_tokens(content) > request.max_tokens:
        # The model stops mid-answer at max_tokens; JSON answers come back as cut JSON.
        content = content[: request.max_tokens * CHARS_PER_TOKEN]
        finish_reason = FINISH_LENGTH
    return ChatAnswer(
        content=content,
        digest=label,
        prompt_tokens=request.prompt_tokens,
        completion_tokens=text_tokens(content),
        finish_reason=finish_reason,
    )


# A numbered line of a "Questions:" list in a prompt: "2. When are proposals due?".
_QUESTION_LINE = re.compile(r"^\s*\d+\.\s+(\S.*?)\s*$")


def _asks_for_answers(spec: Mapping[str, Any]) -> bool:
    """A schema of {"answers": [{"question", "answer"}]}: the app's question-answers format."""
    schema = spec.get("schema")
    if not isinstance(schema, Mapping):
        return False
    answers = (schema.get("properties") or {}).get("answers")
    items = answers.get("items") if isinstance(answers, Mapping) else None
    properties = items.get("properties") if isinstance(items, Mapping) else None
    return isinstance(properties, Mapping) and {"question", "answer"} <= properties.keys()


def questions_asked(request: ChatRequest) -> list[str]:
    """The numbered questions of the prompt: the list after its last "Questions:" line, else
    the last numbered list (1., 2., ...) of the last user message."""
    texts = [message_text(message) for message in request.messages]
    for text in reversed(texts):
        if "Questions:" in text:
            after = _numbered_lists(text.rsplit("Questions:", 1)[1].splitlines())
            return after[0] if after else []
    last_user = next(
        (message_text(m) for m in reversed(request.messages) if m.get("role") == "user"), ""
    )
    lists = _numbered_lists(last_user.splitlines())
    return lists[-1] if lists else []


def _numbered_lists(lines: list[str]) -> list[list[str]]:
    """Every run of lines numbered 1., 2., ... in `lines`, in order."""
    runs: list[list[str]] = []
    current: list[str] = []
    for line in lines:
        match = _QUESTION_LINE.match(line)
        if match is not None and line.strip().startswith(f"{len(current) + 1}."):
            current.append(match.group(1))
            continue
        if current:
            runs.append(current)
        current = [match.group(1)] if match is not None and line.strip().startswith("1.") else []
    if current:
        runs.append(current)
    return runs


class SchemaTooLarge(ValueError):
    """The document a schema asks for exceeds the generation budget."""


class GenerationBudget:
    """Counts the values and characters of a document being generated; raises past the caps."""

    def __init__(
        self,
        max_values: int = MAX_GENERATED_VALUES,
        max_characters: int = MAX_GENERATED_CHARACTERS,
    ) -> None:
        self.max_values = max_values
        self.max_characters = max_characters
        self.values = 0
        self.characters = 0

    def spend(self, characters: int) -> None:
        """Account for one more value of about `characters` characters of JSON."""
        self.values += 1
        self.characters += characters
        if self.values > self.max_values or self.characters > self.max_characters:
            raise SchemaTooLarge(
                f"the document it describes has more than {self.max_values} values or "
                f"{self.max_characters} characters (does a property refer back to an "
                "enclosing schema without limit?)"
            )


def instance_for_schema(
    schema: Any,
    root: Mapping[str, Any],
    label: str,
    depth: int = 0,
    budget: GenerationBudget | None = None,
) -> Any:
    """A deterministic JSON value that validates against `schema` (common keywords only).

    Raises `SchemaTooLarge` when the value would exceed `budget` (a fresh default budget when
    none is given), so a self-referencing schema cannot make the answer grow without bound.
    """
    if budget is None:
        budget = GenerationBudget()
    if depth > _MAX_SCHEMA_DEPTH or not isinstance(schema, Mapping):
        budget.spend(4)  # null
        return None
    if "$ref" in schema:
        resolved = _resolve_ref(schema["$ref"], root)
        return instance_for_schema(resolved, root, label, depth + 1, budget)
    if "const" in schema:
        return _spend_literal(schema["const"], budget)
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return _spend_literal(schema["enum"][0], budget)
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combinator)
        if isinstance(options, list) and options:
            non_null = [
                o for o in options if not (isinstance(o, Mapping) and o.get("type") == "null")
            ]
            return instance_for_schema((non_null or options)[0], root, label, depth + 1, budget)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    if kind == "object":
        properties = schema.get("properties") or {}
        if not isinstance(properties, Mapping):
            properties = {}
        budget.spend(2)
        document: dict[str, Any] = {}
        for key, sub in properties.items():
            budget.spend(len(str(key)) + 4)  # the key, its quotes, colon and separator
            document[key] = instance_for_schema(sub, root, label, depth + 1, budget)
        return document
    if kind == "array":
        minimum = _whole_keyword(schema, "minItems", 1)
        maximum = _whole_keyword(schema, "maxItems", None)
        count = max(1, min(minimum, _MAX_GENERATED_ITEMS))
        if maximum is not None:
            count = min(count, maximum)
        item_schema = schema.get("items", {"type": "string"})
        budget.spend(2 + count)
        return [
            instance_for_schema(item_schema, root, label, depth + 1, budget) for _ in range(count)
        ]
    if kind in ("integer", "number"):
        number = _number_for_schema(schema, integer=kind == "integer")
        budget.spend(len(str(number)))
        return number
    if kind == "boolean":
        budget.spend(4)
        return True
    if kind == "null":
        budget.spend(4)
        return None
    text = _string_for_schema(schema, label)
    budget.spend(len(text) + 2)
    return text


def _spend_literal(value: Any, budget: GenerationBudget) -> Any:
    """A const/enum value taken from the request as is: it costs its own JSON length."""
    budget.spend(len(json.dumps(value)))
    return value


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
