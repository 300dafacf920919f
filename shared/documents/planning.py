"""Planning a document's chat requests and reading their answers, as pure functions.

No network, no storage, no SDK. This module owns:

- planning the chat requests for a document (`plan_document`): one request when the whole
  prompt fits the model's context, else one request per part (`chunking.split_into_parts`);
- merging the parts' answers (`plan_combine` plans one round; `combine_partial_answers` and
  `run_combine` run rounds until one answer is left, combining in groups when the answers do
  not fit together in one request);
- the output format (a profile's JSON schema, the built-in question/answer schema, or text)
  and parsing the model's answer in it (`parse_answer`, `ModelAnswerInvalid`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.documents.chunking import split_into_parts
from shared.documents.decoding import DocumentRejected
from shared.documents.profiles import QUESTIONS_PLACEHOLDER, ProcessingProfile, ProfileConfigError
from shared.documents.tokens import TokenCounter
from shared.inference import ChatRequest

MAX_CHUNKS_SETTING = "MAX_CHUNKS"

# A part this small would make a long document into hundreds of requests; a profile whose
# prompts leave less than this for the document is a configuration error.
MIN_PART_TOKENS = 64

ANSWERS_SCHEMA_NAME = "question_answers"
ANSWERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "answers": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
                "required": ["question", "answer"],
            },
        }
    },
    "required": ["answers"],
}


class ModelAnswerInvalid(Exception):
    """The model's answer is not in the format the request asked for."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- Questions and output format -------------------------------------------------------------


def merge_questions(
    profile_questions: Sequence[str], request_questions: Sequence[str] | None
) -> list[str]:
    """The profile's questions, then the request's, without blanks or repeats, order kept.

    Whitespace inside a question is collapsed (a question is one line of a numbered list), and
    repeats are found case-insensitively; the first spelling wins.
    """
    merged: list[str] = []
    seen: set[str] = set()
    for question in [*profile_questions, *(request_questions or ())]:
        text = " ".join(question.split())
        key = text.casefold()
        if text and key not in seen:
            seen.add(key)
            merged.append(text)
    return merged


def render_questions(questions: Sequence[str]) -> str:
    return "\n".join(f"{number}. {question}" for number, question in enumerate(questions, 1))


def response_format_for(
    profile: ProcessingProfile, questions: Sequence[str]
) -> dict[str, Any] | None:
    """The profile's schema, else the question/answer schema when there are questions, else text.

    `questions` are the request's questions; the profile's own count too.
    """
    if profile.output_schema is not None:
        return {
            "type": "json_schema",
            "json_schema": {
                "name": f"{profile.name[:57]}_output",
                "schema": profile.output_schema,
                "strict": False,
            },
        }
    if questions or profile.questions:
        return {
            "type": "json_schema",
            "json_schema": {"name": ANSWERS_SCHEMA_NAME, "schema": ANSWERS_SCHEMA, "strict": False},
        }
    return None


def _format_instruction(response_format: dict[str, Any] | None) -> str:
    # Said in words too: strict is off (profile schemas need not meet strict mode's rules), and
    # a fine-tuned model follows its training more than the response_format parameter.
    if response_format is None:
        return ""
    json_schema = response_format["json_schema"]
    if json_schema["name"] == ANSWERS_SCHEMA_NAME:
        return (
            'Reply with JSON only: an object {"answers": [{"question": "...", "answer": "..."}]} '
            "with one entry per question, in the order asked, each question copied exactly."
        )
    return "Reply with JSON only: one object that matches this JSON Schema:\n" + json.dumps(
        json_schema["schema"], ensure_ascii=False
    )


# --- Planning requests -------------------------------------------------------------------------


def safety_margin_tokens(context_tokens: int) -> int:
    """Tokens kept free in every request for counting error: 2% of the context, at least 16."""
    return max(16, context_tokens // 50)


def request_fits(request: ChatRequest, *, context_tokens: int, counter: TokenCounter) -> bool:
    """Whether the prompt, the reserved output and the safety margin fit the context."""
    prompt_tokens = counter.count_messages(request.messages)
    return prompt_tokens + request.max_tokens + safety_margin_tokens(context_tokens) <= (
        context_tokens
    )


def build_document_request(
    *,
    profile: ProcessingProfile,
    document: str,
    filename: str,
    questions: Sequence[str] | None,
    part: tuple[int, int] | None,
) -> ChatRequest:
    """The request for the whole document (`part=None`) or for part `i` of `n`.

    `questions` are the request's own questions; they are added to the profile's.
    """
    questions = merge_questions(profile.questions, questions)
    response_format = response_format_for(profile, questions)
    sections: list[str] = []
    if part is not None:
        number, total = part
        sections.append(
            f'This is part {number} of {total} of the document "{filename}". The parts are read '
            "separately and their answers merged afterwards, so answer only from this part, "
            "and where this part does not contain an answer, say so instead of guessing."
        )
    sections.append(_task_text(profile, document=document, filename=filename, questions=questions))
    return _profile_request(
        profile,
        sections,
        response_format,
        purpose="single" if part is None else f"chunk {part[0]}/{part[1]}",
    )


def _task_text(
    profile: ProcessingProfile, *, document: str, filename: str, questions: Sequence[str]
) -> str:
    questions_text = render_questions(questions)
    task = profile.render_user_prompt(
        document=document, filename=filename, questions_text=questions_text or "(none)"
    )
    if questions and not profile.uses_placeholder(QUESTIONS_PLACEHOLDER):
        task += "\n\nQuestions:\n" + questions_text
    return task


def plan_document(
    text: str,
    *,
    filename: str,
    profile: ProcessingProfile,
    questions: Sequence[str] | None,
    context_tokens: int,
    counter: TokenCounter,
    max_chunks: int,
) -> list[ChatRequest]:
    """The requests that process `text`: one when it fits, else one per part.

    `questions` are the request's own questions; they are added to the profile's. When there is
    more than one request, their answers are merged with `combine_partial_answers`. Raises
    `DocumentRejected` (`empty`, `too_many_chunks`) for the document, `ProfileConfigError` when
    the profile leaves too little of the context for any document.
    """
    if not text.strip():
        raise DocumentRejected(
            "empty", f'"{filename}" contains no text. Submit a file that contains the text.'
        )
    merged = merge_questions(profile.questions, questions)
    whole = build_document_request(
        profile=profile, document=text.strip(), filename=filename, questions=merged, part=None
    )
    if request_fits(whole, context_tokens=context_tokens, counter=counter):
        return [whole]

    margin = safety_margin_tokens(context_tokens)
    # Sized with the widest part numbers there can be, so every part's notice fits.
    frame = build_document_request(
        profile=profile, document="", filename=filename, questions=merged, part=(max_chunks,) * 2
    )
    frame_tokens = counter.count_messages(frame.messages)
    part_budget = context_tokens - profile.max_output_tokens - margin - frame_tokens
    if part_budget < MIN_PART_TOKENS:
        raise ProfileConfigError(
            f'profile "{profile.name}" leaves {part_budget} tokens of the {context_tokens}-token '
            f"context for the document: its prompts and questions take {frame_tokens}, "
            f"max_output_tokens {profile.max_output_tokens} and the safety margin {margin}. "
            "Shorten the prompts or questions, lower max_output_tokens, or use a model with "
            "a larger context."
        )
    _check_answers_can_be_combined(
        profile=profile,
        questions=merged,
        filename=filename,
        context_tokens=context_tokens,
        counter=counter,
    )

    document_tokens = counter.count(text)
    least_parts = math.ceil(document_tokens / part_budget)
    if least_parts > max_chunks:
        raise _too_many_parts(
            filename=filename,
            profile=profile,
            document_tokens=document_tokens,
            part_budget=part_budget,
            max_chunks=max_chunks,
            needed=f"at least {least_parts}",
        )
    parts = split_into_parts(text, budget=part_budget, count=counter.count)
    if len(parts) > max_chunks:
        raise _too_many_parts(
            filename=filename,
            profile=profile,
            document_tokens=document_tokens,
            part_budget=part_budget,
            max_chunks=max_chunks,
            needed=str(len(parts)),
        )
    return [
        build_document_request(
            profile=profile,
            document=part.strip(),
            filename=filename,
            questions=merged,
            part=(number, len(parts)),
        )
        for number, part in enumerate(parts, 1)
    ]


def _too_many_parts(
    *,
    filename: str,
    profile: ProcessingProfile,
    document_tokens: int,
    part_budget: int,
    max_chunks: int,
    needed: str,
) -> DocumentRejected:
    return DocumentRejected(
        "too_many_chunks",
        f'"{filename}" is too long: it has about {document_tokens:,} tokens and at most '
        f'{part_budget:,} fit in one request with profile "{profile.name}", so it needs '
        f"{needed} parts, more than the limit of {max_chunks}. Split it into smaller "
        f"documents, or raise the {MAX_CHUNKS_SETTING} app setting.",
    )


def _check_answers_can_be_combined(
    *,
    profile: ProcessingProfile,
    questions: Sequence[str],
    filename: str,
    context_tokens: int,
    counter: TokenCounter,
) -> None:
    # Merging needs two partial answers (each up to max_output_tokens) plus the merged answer in
    # one request; otherwise combining could never finish. Checked before any part is sent.
    frame = build_combine_request(
        profile=profile, questions=questions, partial_answers=["", ""], filename=filename
    )
    needed = (
        counter.count_messages(frame.messages)
        + 3 * profile.max_output_tokens
        + safety_margin_tokens(context_tokens)
    )
    if needed > context_tokens:
        raise ProfileConfigError(
            f'profile "{profile.name}": this document must be read in parts, and merging two '
            f"partial answers of up to max_output_tokens ({profile.max_output_tokens}) each "
            f"needs {needed} tokens, more than the {context_tokens}-token context. Lower "
            "max_output_tokens, or use a model with a larger context."
        )


# --- Combining partial answers -----------------------------------------------------------------


def build_combine_request(
    *,
    profile: ProcessingProfile,
    questions: Sequence[str] | None,
    partial_answers: Sequence[str],
    filename: str,
    purpose: str = "combine",
) -> ChatRequest:
    """A request that merges partial answers into one answer, in the final output format.

    `questions` are the request's own questions; they are added to the profile's.
    """
    merged = merge_questions(profile.questions, questions)
    response_format = response_format_for(profile, merged)
    count = len(partial_answers)
    task = _task_text(
        profile,
        document="[the document was read in parts: see the partial answers below]",
        filename=filename,
        questions=merged,
    )
    sections = [
        f'The document "{filename}" was too long to read at once, so it was read in parts and '
        f"each part was answered on its own. Merge the {count} partial answers below into one "
        "answer for the whole document: keep every distinct fact, drop repetitions, and treat "
        "a part that says it does not contain an answer as saying nothing. Where partial "
        "answers contradict each other, give both.",
        f"The original task was:\n<task>\n{task}\n</task>",
        *(
            f'<partial_answer number="{number}" of="{count}">\n{answer.strip()}\n</partial_answer>'
            for number, answer in enumerate(partial_answers, 1)
        ),
    ]
    return _profile_request(profile, sections, response_format, purpose=purpose)


def _profile_request(
    profile: ProcessingProfile,
    sections: list[str],
    response_format: dict[str, Any] | None,
    *,
    purpose: str,
) -> ChatRequest:
    """The profile's system prompt and the user sections, plus the format instruction."""
    instruction = _format_instruction(response_format)
    user = "\n\n".join([*sections, instruction] if instruction else sections)
    return ChatRequest(
        messages=[
            {"role": "system", "content": profile.system_prompt},
            {"role": "user", "content": user},
        ],
        max_tokens=profile.max_output_tokens,
        response_format=response_format,
        temperature=profile.temperature,
        purpose=purpose,
    )


@dataclass(frozen=True)
class CombineRound:
    """One round of merging: each step is a request to run, or an answer carried over as is.

    The step results, in order, are the next round's answers; when `is_final`, the single
    step's result is the document's answer.
    """

    steps: list[ChatRequest | str]
    groups: list[list[int]]  # indexes of the answers each step merges
    is_final: bool


@dataclass(frozen=True)
class CombineResult:
    content: str
    requests: list[ChatRequest] = field(default_factory=list)


def group_for_combining(count: int, fits: Callable[[list[int]], bool]) -> list[list[int]]:
    """Consecutive groups of answer indexes, each as large as `fits` allows (at least one)."""
    groups: list[list[int]] = []
    current: list[int] = []
    for index in range(count):
        candidate = [*current, index]
        if len(candidate) == 1 or fits(candidate):
            current = candidate
        else:
            groups.append(current)
            current = [index]
    if current:
        groups.append(current)
    return groups


def plan_combine(
    partial_answers: Sequence[str],
    *,
    profile: ProcessingProfile,
    questions: Sequence[str] | None,
    filename: str,
    context_tokens: int,
    counter: TokenCounter,
    round_number: int = 1,
) -> CombineRound:
    """The next round of merging `partial_answers` (two or more).

    All answers in one request when they fit (the final round); else consecutive groups that
    fit, each merged into one answer, so every round at least halves what is left to merge.
    """
    if len(partial_answers) < 2:
        raise ValueError("combining needs at least two partial answers")

    def request_for(group: list[int], purpose: str) -> ChatRequest:
        return build_combine_request(
            profile=profile,
            questions=questions,
            partial_answers=[partial_answers[index] for index in group],
            filename=filename,
            purpose=purpose,
        )

    def fits(group: list[int]) -> bool:
        return request_fits(
            request_for(group, "combine"), context_tokens=context_tokens, counter=counter
        )

    groups = group_for_combining(len(partial_answers), fits)
    if len(groups) == 1:
        return CombineRound(steps=[request_for(groups[0], "combine")], groups=groups, is_final=True)
    if len(groups) == len(partial_answers):
        raise ProfileConfigError(
            f'profile "{profile.name}": no two of the {len(partial_answers)} partial answers fit '
            f"in one {context_tokens}-token request to merge them. Lower max_output_tokens "
            f"({profile.max_output_tokens}), or use a model with a larger context."
        )
    steps: list[ChatRequest | str] = [
        request_for(group, f"combine round {round_number} group {number}/{len(groups)}")
        if len(group) > 1
        else partial_answers[group[0]]
        for number, group in enumerate(groups, 1)
    ]
    return CombineRound(steps=steps, groups=groups, is_final=False)


def combine_partial_answers(
    partial_answers: Sequence[str],
    *,
    profile: ProcessingProfile,
    questions: Sequence[str] | None,
    filename: str,
    context_tokens: int,
    counter: TokenCounter,
    run: Callable[[ChatRequest], str],
) -> CombineResult:
    """Merge the parts' answers into one by running `plan_combine` rounds with `run`.

    `run` sends one request and returns the answer's content. One answer needs no merging.
    """
    if not partial_answers:
        raise ValueError("there are no partial answers to combine")
    answers = list(partial_answers)
    requests: list[ChatRequest] = []
    round_number = 1
    while len(answers) > 1:
        planned = plan_combine(
            answers,
            profile=profile,
            questions=questions,
            filename=filename,
            context_tokens=context_tokens,
            counter=counter,
            round_number=round_number,
        )
        results: list[str] = []
        for step in planned.steps:
            if isinstance(step, str):
                results.append(step)
            else:
                requests.append(step)
                results.append(run(step))
        answers = results
        round_number += 1
    return CombineResult(content=answers[0], requests=requests)


def run_combine(
    partial_answers: Sequence[str],
    *,
    profile: ProcessingProfile,
    questions: Sequence[str] | None,
    filename: str,
    context_tokens: int,
    counter: TokenCounter,
    run: Callable[[ChatRequest], str],
) -> tuple[str, ChatRequest]:
    """`combine_partial_answers` for the engine: the final content and the request to parse it by.

    The request is the last one sent; for a single answer (nothing sent) it is the combine
    request that would have been sent, which carries the same output format.
    """
    result = combine_partial_answers(
        partial_answers,
        profile=profile,
        questions=questions,
        filename=filename,
        context_tokens=context_tokens,
        counter=counter,
        run=run,
    )
    if result.requests:
        return result.content, result.requests[-1]
    format_carrier = build_combine_request(
        profile=profile, questions=questions, partial_answers=partial_answers, filename=filename
    )
    return result.content, format_carrier


# --- Parsing answers ---------------------------------------------------------------------------

_CODE_FENCE = re.compile(r"\A```[A-Za-z0-9_-]*\n(?P<body>.*)\n```\Z", re.DOTALL)


def parse_answer(content: str, request: ChatRequest) -> Any:
    """The model's answer: text as is, or the parsed JSON object for a JSON format."""
    if request.response_format is None:
        return content
    body = content.strip()
    fenced = _CODE_FENCE.match(body)
    if fenced is not None:
        # Fine-tuned models sometimes wrap JSON in a Markdown fence; the JSON inside is intact.
        body = fenced.group("body").strip()
    if not body:
        raise ModelAnswerInvalid(
            f"the model returned an empty answer for {request.purpose}, where a JSON object was "
            "asked for."
        )
    try:
        value = json.loads(body)
    except json.JSONDecodeError as error:
        raise ModelAnswerInvalid(
            f"the model's answer for {request.purpose} is not valid JSON ({error.msg}: line "
            f"{error.lineno} column {error.colno}). If it stops mid-way, it was cut off at "
            f"max_tokens ({request.max_tokens}): raise the profile's max_output_tokens."
        ) from None
    if not isinstance(value, dict):
        raise ModelAnswerInvalid(
            f"the model's answer for {request.purpose} is JSON but not an object "
            f"(it starts with {body[:1]!r}); the output schema asks for an object."
        )
    schema = request.response_format.get("json_schema", {}).get("schema", {})
    missing = [key for key in schema.get("required", []) if key not in value]
    if missing:
        raise ModelAnswerInvalid(
            f"the model's answer for {request.purpose} lacks the required field(s) "
            f"{', '.join(missing)}."
        )
    if request.response_format.get("json_schema", {}).get("name") == ANSWERS_SCHEMA_NAME:
        _check_answers_shape(value, request)
    return value


def _check_answers_shape(value: dict[str, Any], request: ChatRequest) -> None:
    answers = value["answers"]
    well_formed = isinstance(answers, list) and all(
        isinstance(item, dict)
        and isinstance(item.get("question"), str)
        and isinstance(item.get("answer"), str)
        for item in answers
    )
    if not well_formed:
        raise ModelAnswerInvalid(
            f'the model\'s answer for {request.purpose} has "answers" that are not a list of '
            '{"question": text, "answer": text} objects.'
        )
