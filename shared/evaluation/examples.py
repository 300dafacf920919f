"""The held-out evaluation set: JSONL in the fine-tuning format, read and checked (pure).

Each line is one example, either chat (`{"messages": [...]}`, the last assistant message is the
reference answer and the messages before it are the prompt) or prompt/completion
(`{"prompt": ..., "completion": ...}`, sent as one user message). Every problem is reported
with its line number, all at once, so a broken set is fixed in one pass.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROMPT_ROLES = ("system", "developer", "user", "assistant")
MAX_PROBLEMS = 20


@dataclass(frozen=True)
class EvaluationExample:
    index: int  # 0-based position in the set: the key of its stored answers
    line: int  # 1-based line in the file, for people
    messages: tuple[tuple[str, str], ...]  # (role, content) sent as the prompt
    reference: str

    def prompt(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages]

    @property
    def question(self) -> str:
        """The last user turn, what a person recognises the example by."""
        users = [content for role, content in self.messages if role == "user"]
        return users[-1] if users else self.messages[-1][1]


@dataclass(frozen=True)
class EvaluationSet:
    path: str
    sha256: str
    examples: tuple[EvaluationExample, ...]


class EvaluationSetError(ValueError):
    """The set cannot be evaluated; `problems` names each line and what to fix."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        shown = problems[:MAX_PROBLEMS]
        more = len(problems) - len(shown)
        listed = "\n".join(f"  - {p}" for p in shown) + (f"\n  - ... {more} more" if more else "")
        super().__init__(f"{path}: {len(problems)} problem(s):\n{listed}")


def _text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: only the text ones carry words
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if parts and all(isinstance(p, str) for p in parts):
            return "".join(str(p) for p in parts)
    return None


def parse_example(value: Any, *, index: int, line: int) -> EvaluationExample:
    """One decoded line as an example; ValueError saying what is wrong."""
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object with 'messages', or 'prompt' and 'completion'")
    if "messages" in value:
        messages = value["messages"]
        if not isinstance(messages, list) or not messages:
            raise ValueError("'messages' must be a non-empty list")
        turns: list[tuple[str, str]] = []
        for number, message in enumerate(messages, start=1):
            role = message.get("role") if isinstance(message, dict) else None
            text = _text(message.get("content")) if isinstance(message, dict) else None
            if role not in PROMPT_ROLES:
                raise ValueError(f"message {number}: role must be one of {', '.join(PROMPT_ROLES)}")
            if text is None or not text.strip():
                raise ValueError(f"message {number}: content must be non-empty text")
            turns.append((str(role), text))
        if turns[-1][0] != "assistant":
            raise ValueError("the last message must be the assistant's reference answer")
        if len(turns) < 2:
            raise ValueError("needs at least one prompt message before the reference answer")
        return EvaluationExample(index, line, tuple(turns[:-1]), turns[-1][1])
    prompt, completion = value.get("prompt"), value.get("completion")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("'prompt' must be non-empty text (or give 'messages')")
    if not isinstance(completion, str) or not completion.strip():
        raise ValueError("'completion' must be non-empty text: it is the reference answer")
    return EvaluationExample(index, line, (("user", prompt),), completion.strip())


def parse_lines(lines: Iterable[bytes], path: str) -> EvaluationSet:
    digest = hashlib.sha256()
    examples: list[EvaluationExample] = []
    problems: list[str] = []
    for number, raw in enumerate(lines, start=1):
        digest.update(raw)
        if not raw.strip():
            continue
        try:
            value = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as error:
            problems.append(f"line {number}: not UTF-8 (byte {error.start} of the line)")
            continue
        except json.JSONDecodeError as error:
            problems.append(f"line {number}: not JSON ({error.msg}, column {error.colno})")
            continue
        try:
            examples.append(parse_example(value, index=len(examples), line=number))
        except ValueError as error:
            problems.append(f"line {number}: {error}")
    if not examples and not problems:
        problems.append("holds no example: one JSON object per line")
    if problems:
        raise EvaluationSetError(path, problems)
    return EvaluationSet(path, digest.hexdigest(), tuple(examples))


def read_set(path: Path) -> EvaluationSet:
    try:
        with path.open("rb") as handle:
            return parse_lines(handle, str(path))
    except OSError as error:
        raise EvaluationSetError(str(path), [f"cannot be read: {error.strerror}"]) from None
