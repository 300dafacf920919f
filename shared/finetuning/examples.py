"""The rules one JSONL line must follow to be a fine-tuning example (pure, no I/O).

`check_example` takes one decoded JSON value and says which format it is in (chat or
prompt/completion), what is wrong with it (errors), what is worth a look (warnings), and the
text whose tokens it costs. The messages here are the ones a user reads, so each says what is
wrong and what to do. Rules that need more than one line (duplicates, mixed formats, counts)
live in `shared.finetuning.dataset`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shared.finetuning.limits import DataFormat


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Code(StrEnum):
    """Every finding's code, stable for scripts (the JSON report's `code`)."""

    NOT_UTF8 = "not_utf8"
    LINE_TOO_LONG = "line_too_long"
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    NO_MESSAGES = "no_messages"
    UNKNOWN_KEY = "unknown_key"
    UNKNOWN_ROLE = "unknown_role"
    EMPTY_CONTENT = "empty_content"
    NO_ASSISTANT = "no_assistant"
    BAD_WEIGHT = "bad_weight"
    WEIGHT_NOT_ON_ASSISTANT = "weight_not_on_assistant"
    BAD_PROMPT_COMPLETION = "bad_prompt_completion"
    MIXED_FORMATS = "mixed_formats"
    FORMAT_NOT_FOR_MODEL = "format_not_for_model"
    TOO_FEW_EXAMPLES = "too_few_examples"
    OVER_TOKEN_LIMIT = "over_token_limit"
    FILE_TOO_LARGE = "file_too_large"
    FEW_EXAMPLES = "few_examples"
    DUPLICATE = "duplicate"
    SHARED_WITH_TRAINING = "shared_with_training"
    NO_SYSTEM = "no_system"
    NO_USER = "no_user"


ROLES = ("system", "user", "assistant", "tool", "function")
EXAMPLE_KEYS = ("messages", "tools", "functions", "parallel_tool_calls")
MESSAGE_KEYS = ("role", "content", "weight", "name", "tool_calls", "function_call", "tool_call_id")
PROMPT_COMPLETION_KEYS = ("prompt", "completion")


@dataclass(frozen=True)
class LineProblem:
    severity: Severity
    code: Code
    message: str


@dataclass
class CheckedExample:
    """One line's verdict: its format (None when it has none), problems, and billed text."""

    data_format: DataFormat | None
    problems: list[LineProblem] = field(default_factory=list)
    messages: list[dict[str, str]] = field(default_factory=list)
    extra_text: list[str] = field(default_factory=list)

    @property
    def has_error(self) -> bool:
        return any(problem.severity is Severity.ERROR for problem in self.problems)

    def error(self, code: Code, message: str) -> None:
        self.problems.append(LineProblem(Severity.ERROR, code, message))

    def warn(self, code: Code, message: str) -> None:
        self.problems.append(LineProblem(Severity.WARNING, code, message))


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(names)


def _content_text(content: Any) -> str | None:
    """A message's text: a string, or the text parts of a content list; None if malformed."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for part in content:
            if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
                return None
            if part["type"] == "text":
                text = part.get("text")
                if not isinstance(text, str):
                    return None
                texts.append(text)
        return "".join(texts)
    return None


def _check_message(number: int, message: Any, checked: CheckedExample) -> tuple[str | None, bool]:
    """Check message `number` (1-based); return its role (if valid) and whether it has text."""
    if not isinstance(message, Mapping):
        checked.error(
            Code.NO_MESSAGES,
            f'message {number} is not an object; each message is {{"role": ..., "content": ...}}',
        )
        return None, False
    for key in message:
        if key not in MESSAGE_KEYS:
            checked.error(
                Code.UNKNOWN_KEY,
                f'message {number} has unknown key "{key}"; a message may have: '
                f"{_quoted(MESSAGE_KEYS)}",
            )
    role = message.get("role")
    if role not in ROLES:
        checked.error(
            Code.UNKNOWN_ROLE,
            f"message {number} has unknown role {json.dumps(role)}; the roles are: "
            f"{_quoted(ROLES)}",
        )
        role = None
    if "weight" in message:
        weight = message["weight"]
        if isinstance(weight, bool) or weight not in (0, 1):
            checked.error(
                Code.BAD_WEIGHT,
                f"message {number} has weight {json.dumps(weight)}; weight must be 0 (do not "
                "learn from this message) or 1",
            )
        if role is not None and role != "assistant":
            checked.error(
                Code.WEIGHT_NOT_ON_ASSISTANT,
                f"message {number} ({role}) has a weight; only assistant messages may have one",
            )
    text = _content_text(message.get("content"))
    calls_a_tool = bool(message.get("tool_calls") or message.get("function_call"))
    if text is None and message.get("content") is not None:
        checked.error(
            Code.EMPTY_CONTENT,
            f"message {number} ({role or 'unknown role'}) has content that is neither a string "
            'nor a list of {"type": "text", "text": ...} parts',
        )
    elif not (text or "").strip() and not (role == "assistant" and calls_a_tool):
        checked.error(
            Code.EMPTY_CONTENT,
            f"message {number} ({role or 'unknown role'}) has empty content; give it text or "
            "remove the message",
        )
    if text is not None and role is not None:
        checked.messages.append({"role": role, "content": text})
    return role, bool(text)


def _check_chat(example: Mapping[str, Any], checked: CheckedExample) -> None:
    for key in example:
        if key not in EXAMPLE_KEYS:
            checked.error(
                Code.UNKNOWN_KEY,
                f'unknown key "{key}" in the example; a chat example may have: '
                f"{_quoted(EXAMPLE_KEYS)}",
            )
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        checked.error(
            Code.NO_MESSAGES,
            '"messages" must be a non-empty list of {"role": ..., "content": ...} objects',
        )
        return
    roles: set[str] = set()
    for number, message in enumerate(messages, start=1):
        role, _ = _check_message(number, message, checked)
        if role is not None:
            roles.add(role)
    for key in ("tools", "functions"):
        if key in example:
            checked.extra_text.append(json.dumps(example[key], ensure_ascii=False))
    if "assistant" not in roles:
        checked.error(
            Code.NO_ASSISTANT,
            "no assistant message; an example needs at least one for the model to learn from",
        )
    if "system" not in roles:
        checked.warn(Code.NO_SYSTEM, "no system message")
    if "user" not in roles:
        checked.warn(Code.NO_USER, "no user message")


def _check_prompt_completion(example: Mapping[str, Any], checked: CheckedExample) -> None:
    for key in example:
        if key not in PROMPT_COMPLETION_KEYS:
            checked.error(
                Code.UNKNOWN_KEY,
                f'unknown key "{key}" in the example; a prompt/completion example has only '
                '"prompt" and "completion"',
            )
    prompt, completion = example.get("prompt"), example.get("completion")
    if not isinstance(prompt, str) or not isinstance(completion, str):
        checked.error(
            Code.BAD_PROMPT_COMPLETION,
            '"prompt" and "completion" must both be strings',
        )
        return
    if not completion.strip():
        checked.error(Code.EMPTY_CONTENT, '"completion" is empty; give the text to learn')
    checked.extra_text.extend((prompt, completion))


def check_example(value: Any) -> CheckedExample:
    """Check one decoded line: chat if it has `messages`, else prompt/completion if it has one."""
    if not isinstance(value, Mapping):
        checked = CheckedExample(data_format=None)
        checked.error(
            Code.NOT_OBJECT,
            f"a JSON {type(value).__name__ if value is not None else 'null'}, not an object; "
            'each line must be one example such as {"messages": [...]}',
        )
        return checked
    if "messages" in value or not any(key in value for key in PROMPT_COMPLETION_KEYS):
        checked = CheckedExample(data_format="chat")
        _check_chat(value, checked)
        return checked
    checked = CheckedExample(data_format="prompt_completion")
    _check_prompt_completion(value, checked)
    return checked


def canonical_bytes(value: Any) -> bytes:
    """The example as canonical JSON: equal examples give equal bytes whatever their spacing."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
