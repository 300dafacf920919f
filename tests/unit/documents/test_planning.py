"""Planning requests, combining partial answers and parsing answers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.documents.decoding import DocumentRejected
from shared.documents.planning import (
    ANSWERS_SCHEMA,
    ModelAnswerInvalid,
    build_combine_request,
    combine_partial_answers,
    group_for_combining,
    merge_questions,
    parse_answer,
    plan_combine,
    plan_document,
    render_questions,
    request_fits,
    response_format_for,
    run_combine,
    safety_margin_tokens,
)
from shared.documents.profiles import BUILTIN_DEFAULT_PROFILE, ProcessingProfile, ProfileConfigError
from shared.documents.tokens import EstimatingTokenCounter
from shared.inference import ChatRequest

COUNTER = EstimatingTokenCounter()

# The smallest useful profile: its prompt is just the document, so token sums are easy to check.
TINY = ProcessingProfile(
    name="tiny", system_prompt="S", user_prompt_template="{document}", max_output_tokens=10
)

QA_PROFILE = ProcessingProfile(
    name="qa",
    system_prompt="You review contracts.",
    user_prompt_template="File {filename}:\n{document}",
    questions=["Who are the parties?"],
)


# --- Questions and output format --------------------------------------------------------------


def test_request_questions_follow_the_profiles_without_repeats() -> None:
    merged = merge_questions(
        ["Who are the parties?", "When does it end?"],
        ["  who are  the PARTIES? ", "", "What does it cost?", "What does it cost?"],
    )

    assert merged == ["Who are the parties?", "When does it end?", "What does it cost?"]
    assert merge_questions(["Q?"], None) == ["Q?"]


def test_questions_are_rendered_numbered() -> None:
    assert render_questions(["First?", "Second?"]) == "1. First?\n2. Second?"
    assert render_questions([]) == ""


def test_output_format_is_text_without_schema_or_questions() -> None:
    assert response_format_for(TINY, []) is None


def test_output_format_is_the_answers_schema_when_there_are_questions() -> None:
    assert response_format_for(TINY, ["Q?"]) == {
        "type": "json_schema",
        "json_schema": {
            "name": "question_answers",
            "schema": {
                "type": "object",
                "properties": {
                    "answers": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "question": {"type": "string"},
                                "answer": {"type": "string"},
                            },
                            "required": ["question", "answer"],
                        },
                    }
                },
                "required": ["answers"],
            },
            "strict": False,
        },
    }


def test_the_profiles_own_questions_also_choose_the_answers_format() -> None:
    assert response_format_for(QA_PROFILE, []) == response_format_for(TINY, ["Q?"])


def test_output_format_is_the_profiles_schema_when_it_has_one() -> None:
    schema = {"type": "object", "properties": {"total": {"type": "number"}}}
    profile = TINY.model_copy(update={"output_schema": schema})

    assert response_format_for(profile, ["Q?"]) == {
        "type": "json_schema",
        "json_schema": {"name": "tiny_output", "schema": schema, "strict": False},
    }


# --- Planning: one request ----------------------------------------------------------------------


def test_a_document_that_fits_is_one_request() -> None:
    requests = plan_document(
        "\n  Clause 1.  \n",
        filename="a.txt",
        profile=TINY,
        questions=None,
        context_tokens=1000,
        counter=COUNTER,
        max_chunks=5,
    )

    assert requests == [
        ChatRequest(
            messages=[{"role": "system", "content": "S"}, {"role": "user", "content": "Clause 1."}],
            max_tokens=10,
            response_format=None,
            temperature=0.0,
            purpose="single",
        )
    ]


def test_questions_are_appended_numbered_with_the_json_instruction() -> None:
    [request] = plan_document(
        "The parties are A and B.",
        filename="c.txt",
        profile=QA_PROFILE,
        questions=["When does it end?", "who are the parties?"],
        context_tokens=4000,
        counter=COUNTER,
        max_chunks=5,
    )

    assert request.messages[1]["content"] == (
        "File c.txt:\nThe parties are A and B.\n\n"
        "Questions:\n1. Who are the parties?\n2. When does it end?\n\n"
        'Reply with JSON only: an object {"answers": [{"question": "...", "answer": "..."}]} '
        "with one entry per question, in the order asked, each question copied exactly."
    )
    assert request.messages[0] == {"role": "system", "content": "You review contracts."}
    assert request.response_format is not None
    assert request.response_format["json_schema"]["schema"] == ANSWERS_SCHEMA
    assert request.max_tokens == 800


def test_a_questions_placeholder_places_them_and_they_are_not_repeated() -> None:
    profile = QA_PROFILE.model_copy(
        update={"user_prompt_template": "Answer:\n{questions}\nFrom:\n{document}"}
    )

    [request] = plan_document(
        "Text.", filename="c.txt", profile=profile, questions=None,
        context_tokens=4000, counter=COUNTER, max_chunks=5,
    )  # fmt: skip

    content = request.messages[1]["content"]
    assert content.startswith("Answer:\n1. Who are the parties?\nFrom:\nText.\n\nReply with JSON")
    assert content.count("Who are the parties?") == 1


def test_a_profile_schema_is_described_in_the_prompt() -> None:
    schema = {"type": "object", "required": ["total"]}
    profile = TINY.model_copy(update={"output_schema": schema})

    [request] = plan_document(
        "Total: 5.", filename="i.txt", profile=profile, questions=None,
        context_tokens=1000, counter=COUNTER, max_chunks=5,
    )  # fmt: skip

    assert request.messages[1]["content"] == (
        "Total: 5.\n\nReply with JSON only: one object that matches this JSON Schema:\n"
        '{"type": "object", "required": ["total"]}'
    )


@pytest.mark.parametrize(("length", "requests"), [(3353, 1), (3354, 2)])
def test_the_single_request_limit_counts_prompt_output_and_margin(
    length: int, requests: int
) -> None:
    # 1000 context - 10 output - 20 margin - 12 framing ("S" 1 + 2 messages x 4 + 3) leaves
    # 958 tokens, which is 3353 characters at 3.5 per token.
    planned = plan_document(
        "a" * length, filename="a.txt", profile=TINY, questions=None,
        context_tokens=1000, counter=COUNTER, max_chunks=9,
    )  # fmt: skip

    assert len(planned) == requests
    assert safety_margin_tokens(1000) == 20


def test_an_empty_text_is_rejected() -> None:
    with pytest.raises(DocumentRejected) as raised:
        plan_document(
            " \n ", filename="a.txt", profile=TINY, questions=None,
            context_tokens=1000, counter=COUNTER, max_chunks=9,
        )  # fmt: skip

    assert raised.value.code == "empty"


# --- Planning: parts ----------------------------------------------------------------------------

# With TINY, a 1000-token context and up to 9 parts, a part holds 888 tokens of document:
# 1000 - 10 output - 20 margin - 82 for the system prompt, the part notice and framing.
PARAGRAPH_290_TOKENS = "x" * 1013  # with its "\n\n", 1015 characters = 290 tokens


def test_a_long_document_is_split_at_paragraphs_into_numbered_parts() -> None:
    paragraphs = [f"{index}{PARAGRAPH_290_TOKENS[1:]}" for index in range(7)]

    requests = plan_document(
        "\n\n".join(paragraphs), filename="a.txt", profile=TINY, questions=None,
        context_tokens=1000, counter=COUNTER, max_chunks=9,
    )  # fmt: skip

    assert [request.purpose for request in requests] == ["chunk 1/3", "chunk 2/3", "chunk 3/3"]
    documents = [request.messages[1]["content"].split("\n\n", 1)[1] for request in requests]
    assert documents == [
        "\n\n".join(paragraphs[0:3]),
        "\n\n".join(paragraphs[3:6]),
        paragraphs[6],
    ]
    assert (
        requests[1]
        .messages[1]["content"]
        .startswith(
            'This is part 2 of 3 of the document "a.txt". The parts are read separately and '
            "their answers merged afterwards, so answer only from this part, and where this part "
            "does not contain an answer, say so instead of guessing.\n\n3"
        )
    )
    for request in requests:
        assert request_fits(request, context_tokens=1000, counter=COUNTER)
        assert request.messages[0] == {"role": "system", "content": "S"}
        assert request.max_tokens == 10


def test_every_part_carries_the_questions_and_format() -> None:
    text = "\n\n".join(f"Paragraph {index}. " + "word " * 300 for index in range(8))

    requests = plan_document(
        text, filename="c.txt", profile=QA_PROFILE, questions=["What does it cost?"],
        context_tokens=4000, counter=COUNTER, max_chunks=20,
    )  # fmt: skip

    assert len(requests) > 1
    for request in requests:
        content = request.messages[1]["content"]
        assert "Questions:\n1. Who are the parties?\n2. What does it cost?\n\n" in content
        assert content.endswith("each question copied exactly.")
        assert request.response_format == response_format_for(QA_PROFILE, ["Q"])
        assert request_fits(request, context_tokens=4000, counter=COUNTER)


def test_too_many_parts_by_estimate_is_rejected_with_the_numbers() -> None:
    text = "\n\n".join([PARAGRAPH_290_TOKENS] * 7)

    with pytest.raises(DocumentRejected) as raised:
        plan_document(
            text, filename="a.txt", profile=TINY, questions=None,
            context_tokens=1000, counter=COUNTER, max_chunks=2,
        )  # fmt: skip

    assert raised.value.code == "too_many_chunks"
    assert raised.value.reason == (
        '"a.txt" is too long: it has about 2,038 tokens and at most 888 fit in one request with '
        'profile "tiny", so it needs at least 3 parts, more than the limit of 2. Split it into '
        "smaller documents, or raise the MAX_CHUNKS app setting."
    )


def test_too_many_parts_after_splitting_is_rejected_with_the_count() -> None:
    # Four 500-token paragraphs: 2000 tokens would fit three 888-token parts, but paragraphs
    # are not cut, so they take four.
    text = "\n\n".join(["y" * 1748] * 4)

    with pytest.raises(DocumentRejected) as raised:
        plan_document(
            text, filename="a.txt", profile=TINY, questions=None,
            context_tokens=1000, counter=COUNTER, max_chunks=3,
        )  # fmt: skip

    assert raised.value.code == "too_many_chunks"
    assert "so it needs 4 parts, more than the limit of 3." in raised.value.reason


def test_a_profile_that_leaves_no_room_for_the_document_is_a_config_error() -> None:
    # The system prompt alone is 2700 letters, 300 full stops and 600 spaces: 1222 tokens.
    wordy = TINY.model_copy(update={"system_prompt": "Be careful. " * 300})

    with pytest.raises(ProfileConfigError) as raised:
        plan_document(
            "z" * 5000, filename="a.txt", profile=wordy, questions=None,
            context_tokens=1000, counter=COUNTER, max_chunks=9,
        )  # fmt: skip

    assert str(raised.value) == (
        'profile "tiny" leaves -333 tokens of the 1000-token context for the document: its '
        "prompts and questions take 1303, max_output_tokens 10 and the safety margin 20. "
        "Shorten the prompts or questions, lower max_output_tokens, or use a model with a "
        "larger context."
    )


def test_a_profile_whose_answers_cannot_be_merged_is_a_config_error() -> None:
    # Parts would fit (1000 - 300 - 20 - 82 = 598 tokens each), but merging two answers needs
    # 218 framing + 3 x 300 + 20 margin = 1138 tokens.
    chatty = TINY.model_copy(update={"max_output_tokens": 300})

    with pytest.raises(ProfileConfigError) as raised:
        plan_document(
            "z" * 5000, filename="a.txt", profile=chatty, questions=None,
            context_tokens=1000, counter=COUNTER, max_chunks=9,
        )  # fmt: skip

    assert str(raised.value) == (
        'profile "tiny": this document must be read in parts, and merging two partial answers '
        "of up to max_output_tokens (300) each needs 1138 tokens, more than the 1000-token "
        "context. Lower max_output_tokens, or use a model with a larger context."
    )


# --- Combining ----------------------------------------------------------------------------------


def test_the_combine_request_merges_numbered_answers_in_the_final_format() -> None:
    request = build_combine_request(
        profile=QA_PROFILE,
        questions=["What does it cost?"],
        partial_answers=[' {"answers": []} ', "second"],
        filename="c.txt",
    )

    assert request.purpose == "combine"
    assert request.response_format == response_format_for(QA_PROFILE, ["Q"])
    assert request.max_tokens == 800
    assert request.messages[0] == {"role": "system", "content": "You review contracts."}
    assert request.messages[1]["content"] == (
        'The document "c.txt" was too long to read at once, so it was read in parts and each '
        "part was answered on its own. Merge the 2 partial answers below into one answer for "
        "the whole document: keep every distinct fact, drop repetitions, and treat a part that "
        "says it does not contain an answer as saying nothing. Where partial answers contradict "
        "each other, give both.\n\n"
        "The original task was:\n<task>\nFile c.txt:\n"
        "[the document was read in parts: see the partial answers below]\n\n"
        "Questions:\n1. Who are the parties?\n2. What does it cost?\n</task>\n\n"
        '<partial_answer number="1" of="2">\n{"answers": []}\n</partial_answer>\n\n'
        '<partial_answer number="2" of="2">\nsecond\n</partial_answer>\n\n'
        'Reply with JSON only: an object {"answers": [{"question": "...", "answer": "..."}]} '
        "with one entry per question, in the order asked, each question copied exactly."
    )


def test_groups_are_consecutive_and_as_large_as_fit() -> None:
    assert group_for_combining(5, lambda group: len(group) <= 2) == [[0, 1], [2, 3], [4]]
    assert group_for_combining(3, lambda group: False) == [[0], [1], [2]]
    assert group_for_combining(3, lambda group: True) == [[0, 1, 2]]


def test_answers_that_fit_together_are_combined_in_one_final_request() -> None:
    planned = plan_combine(
        ["one", "two", "three"], profile=TINY, questions=None, filename="a.txt",
        context_tokens=1000, counter=COUNTER,
    )  # fmt: skip

    assert planned.is_final
    assert planned.groups == [[0, 1, 2]]
    [request] = planned.steps
    assert isinstance(request, ChatRequest)
    assert request.purpose == "combine"
    assert (
        '<partial_answer number="3" of="3">\nthree\n</partial_answer>'
        in (request.messages[1]["content"])
    )


# Each answer is 100 tokens; with TINY and a 450-token context, two fit in one request
# (218 framing + 200 + 10 output + 16 margin = 444) and three do not (572).
ANSWER_100_TOKENS = "a" * 350


def test_answers_that_do_not_fit_are_combined_in_groups_first() -> None:
    answers = [f"{index}{ANSWER_100_TOKENS[1:]}" for index in range(5)]

    planned = plan_combine(
        answers, profile=TINY, questions=None, filename="a.txt",
        context_tokens=450, counter=COUNTER, round_number=1,
    )  # fmt: skip

    assert not planned.is_final
    assert planned.groups == [[0, 1], [2, 3], [4]]
    first, second, carried = planned.steps
    assert isinstance(first, ChatRequest)
    assert isinstance(second, ChatRequest)
    assert first.purpose == "combine round 1 group 1/3"
    assert second.purpose == "combine round 1 group 2/3"
    assert carried == answers[4]
    for request in (first, second):
        assert request_fits(request, context_tokens=450, counter=COUNTER)


def test_combining_runs_rounds_until_one_answer_is_left() -> None:
    answers = [f"{index}{ANSWER_100_TOKENS[1:]}" for index in range(5)]
    seen: list[str] = []

    def run(request: ChatRequest) -> str:
        seen.append(request.purpose)
        return f"merged-{len(seen)}{ANSWER_100_TOKENS[len(str(len(seen))) + 7 :]}"

    result = combine_partial_answers(
        answers, profile=TINY, questions=None, filename="a.txt",
        context_tokens=450, counter=COUNTER, run=run,
    )  # fmt: skip

    # Round 1: 5 -> 3 ([0,1] [2,3] [4]); round 2: 3 -> 2 ([m1,m2] [4]); round 3: 2 -> 1.
    assert seen == [
        "combine round 1 group 1/3",
        "combine round 1 group 2/3",
        "combine round 2 group 1/2",
        "combine",
    ]
    assert [request.purpose for request in result.requests] == seen
    assert result.content.startswith("merged-4")
    final_prompt = result.requests[-1].messages[1]["content"]
    assert "\nmerged-3" in final_prompt
    assert f"\n{answers[4]}\n" in final_prompt


def test_a_single_answer_needs_no_combining() -> None:
    def run(request: ChatRequest) -> str:
        raise AssertionError("nothing should be sent")

    result = combine_partial_answers(
        ["only"], profile=TINY, questions=None, filename="a.txt",
        context_tokens=600, counter=COUNTER, run=run,
    )  # fmt: skip

    assert result.content == "only"
    assert result.requests == []


def test_run_combine_returns_the_final_content_and_the_request_to_parse_it_by() -> None:
    def run(request: ChatRequest) -> str:
        return '{"answers": []}'

    content, final_request = run_combine(
        ["one", "two"], profile=QA_PROFILE, questions=None, filename="a.txt",
        context_tokens=4000, counter=COUNTER, run=run,
    )  # fmt: skip

    assert content == '{"answers": []}'
    assert final_request.purpose == "combine"
    assert parse_answer(content, final_request) == {"answers": []}


def test_run_combine_of_one_answer_sends_nothing_but_gives_its_format() -> None:
    def run(request: ChatRequest) -> str:
        raise AssertionError("nothing should be sent")

    content, final_request = run_combine(
        ['{"answers": []}'], profile=QA_PROFILE, questions=None, filename="a.txt",
        context_tokens=4000, counter=COUNTER, run=run,
    )  # fmt: skip

    assert content == '{"answers": []}'
    assert final_request.response_format == response_format_for(QA_PROFILE, [])


def test_answers_too_large_to_pair_are_a_config_error() -> None:
    with pytest.raises(ProfileConfigError, match="no two of the 3 partial answers fit in one"):
        plan_combine(
            [ANSWER_100_TOKENS * 3] * 3, profile=TINY, questions=None, filename="a.txt",
            context_tokens=600, counter=COUNTER,
        )  # fmt: skip


def test_combining_needs_answers() -> None:
    with pytest.raises(ValueError, match="at least two"):
        plan_combine(
            ["one"], profile=TINY, questions=None, filename="a.txt",
            context_tokens=600, counter=COUNTER,
        )  # fmt: skip


# --- Parsing answers ----------------------------------------------------------------------------


def request_with(response_format: dict[str, Any] | None) -> ChatRequest:
    return ChatRequest(
        messages=[], max_tokens=800, response_format=response_format, temperature=0.0,
        purpose="chunk 2/5",
    )  # fmt: skip


ANSWERS_REQUEST = request_with(response_format_for(TINY, ["Q?"]))


def test_a_text_answer_stays_text() -> None:
    assert parse_answer("  Plain words. ", request_with(None)) == "  Plain words. "


def test_a_json_answer_is_parsed() -> None:
    content = json.dumps({"answers": [{"question": "Q?", "answer": "A."}]})

    assert parse_answer(content, ANSWERS_REQUEST) == {
        "answers": [{"question": "Q?", "answer": "A."}]
    }


def test_a_json_answer_in_a_markdown_fence_is_parsed() -> None:
    content = '```json\n{"answers": []}\n```'

    assert parse_answer(content, ANSWERS_REQUEST) == {"answers": []}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (
            '{"answers": [{"question": "Q?", "answ',
            "the model's answer for chunk 2/5 is not valid JSON (Unterminated string starting at: "
            "line 1 column 33). If it stops mid-way, it was cut off at max_tokens (800): "
            "raise the profile's max_output_tokens.",
        ),
        (
            "  ",
            "the model returned an empty answer for chunk 2/5, where a JSON object was asked for.",
        ),
        (
            "[1, 2]",
            "the model's answer for chunk 2/5 is JSON but not an object (it starts with '['); "
            "the output schema asks for an object.",
        ),
        ('{"result": 1}', "the model's answer for chunk 2/5 lacks the required field(s) answers."),
        (
            '{"answers": [{"question": "Q?"}]}',
            'the model\'s answer for chunk 2/5 has "answers" that are not a list of '
            '{"question": text, "answer": text} objects.',
        ),
    ],
)
def test_invalid_json_answers_say_what_is_wrong(content: str, reason: str) -> None:
    with pytest.raises(ModelAnswerInvalid) as raised:
        parse_answer(content, ANSWERS_REQUEST)

    assert raised.value.reason == reason


def test_a_profile_schema_answer_must_have_its_required_fields() -> None:
    profile = TINY.model_copy(
        update={"output_schema": {"type": "object", "required": ["total", "currency"]}}
    )
    request = request_with(response_format_for(profile, []))

    assert parse_answer('{"total": 5, "currency": "EUR"}', request) == {
        "total": 5,
        "currency": "EUR",
    }
    with pytest.raises(ModelAnswerInvalid, match=r"lacks the required field\(s\) currency\.$"):
        parse_answer('{"total": 5}', request)


def test_the_builtin_default_profile_plans_a_plain_text_request() -> None:
    [request] = plan_document(
        "Agreement between A and B.", filename="deal.md", profile=BUILTIN_DEFAULT_PROFILE,
        questions=None, context_tokens=8000, counter=COUNTER, max_chunks=5,
    )  # fmt: skip

    assert request.response_format is None
    assert request.messages[1]["content"].startswith(
        "Document name: deal.md\n\n<document>\nAgreement between A and B.\n</document>\n\n"
    )
    assert request.max_tokens == 800
