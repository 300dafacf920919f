"""Processing profiles: parsing PROCESSING_PROFILES, validating profiles, resolving names."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from shared.documents.profiles import (
    BUILTIN_DEFAULT_PROFILE,
    ProcessingProfile,
    ProfileConfigError,
    UnknownProfileError,
    parse_profiles,
    resolve_profile,
    template_placeholders,
    template_problem,
)

CONTRACTS: dict[str, Any] = {
    "system_prompt": "You review contracts.",
    "user_prompt_template": "Review {filename}:\n{document}\n\nAnswer:\n{questions}",
    "questions": ["  Who are the parties? ", "When does it end?"],
    "output_schema": {"type": "object", "properties": {"parties": {"type": "array"}}},
    "max_output_tokens": 1200,
    "temperature": 0.2,
}


def setting(**profiles: dict[str, Any]) -> str:
    return json.dumps(profiles)


def config_error(raw: str) -> ProfileConfigError:
    with pytest.raises(ProfileConfigError) as raised:
        parse_profiles(raw)
    return raised.value


# --- The built-in default ---------------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, "", "   \n", "{}"])
def test_no_setting_gives_only_the_builtin_default(raw: str | None) -> None:
    assert parse_profiles(raw) == {"default": BUILTIN_DEFAULT_PROFILE}


def test_builtin_default_is_for_business_documents_and_names_the_file() -> None:
    profile = BUILTIN_DEFAULT_PROFILE

    assert profile.name == "default"
    assert "contracts" in profile.system_prompt
    assert "requests for proposals (RFPs)" in profile.system_prompt
    assert template_placeholders(profile.user_prompt_template) == {"document", "filename"}
    assert profile.questions == []
    assert profile.output_schema is None
    assert profile.max_output_tokens == 800
    assert profile.temperature == 0.0


# --- Valid settings ---------------------------------------------------------------------------


def test_profiles_are_read_with_every_field_and_the_default_kept() -> None:
    profiles = parse_profiles(setting(contracts=CONTRACTS))

    assert sorted(profiles) == ["contracts", "default"]
    contracts = profiles["contracts"]
    assert contracts.name == "contracts"
    assert contracts.system_prompt == "You review contracts."
    assert contracts.questions == ["Who are the parties?", "When does it end?"]
    assert contracts.output_schema == CONTRACTS["output_schema"]
    assert contracts.max_output_tokens == 1200
    assert contracts.temperature == 0.2
    assert profiles["default"] is BUILTIN_DEFAULT_PROFILE


def test_a_profile_named_default_replaces_the_builtin_one() -> None:
    profiles = parse_profiles(
        setting(default={"system_prompt": "Mine.", "user_prompt_template": "{document}"})
    )

    assert list(profiles) == ["default"]
    assert profiles["default"].system_prompt == "Mine."


def test_a_name_field_equal_to_the_key_is_accepted() -> None:
    profiles = parse_profiles(setting(rfp={**CONTRACTS, "name": "rfp"}))

    assert profiles["rfp"].name == "rfp"


def test_optional_fields_take_their_defaults() -> None:
    profile = parse_profiles(
        setting(short={"system_prompt": "S", "user_prompt_template": "{document}"})
    )["short"]

    assert profile.questions == []
    assert profile.output_schema is None
    assert profile.max_output_tokens == 800
    assert profile.temperature == 0.0


def test_literal_braces_are_allowed_when_doubled() -> None:
    assert template_problem('Reply as {{"x": 1}} about {document}') is None


def test_rendering_inserts_values_without_reading_their_braces() -> None:
    profile = ProcessingProfile(
        name="p", system_prompt="S", user_prompt_template="[{filename}] {document} / {questions}"
    )

    rendered = profile.render_user_prompt(
        document="text with {questions} and {x}", filename="a{b}.txt", questions_text="1. Q"
    )

    assert rendered == "[a{b}.txt] text with {questions} and {x} / 1. Q"


# --- Malformed settings -----------------------------------------------------------------------


def test_malformed_json_says_where_and_shows_the_expected_shape() -> None:
    error = config_error('{"contracts": {"system_prompt": "x",}}')

    assert str(error).startswith(
        "PROCESSING_PROFILES is not valid JSON (Expecting property name enclosed in double "
        "quotes: line 1 column 37)."
    )
    assert "mapping each profile name to its fields" in str(error)
    assert '"user_prompt_template": "Review {filename}:\\n{document}"' in str(error)


def test_a_json_array_is_not_a_profile_mapping() -> None:
    error = config_error("[1, 2]")

    assert "must be a JSON object mapping each profile name to its fields, not a JSON array" in (
        str(error)
    )


def test_a_profile_that_is_not_an_object_is_named() -> None:
    error = config_error(setting(contracts="Review this"))  # type: ignore[arg-type]

    assert error.problems == [
        "profile 'contracts': must be a JSON object of profile fields, not a JSON string"
    ]


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        (
            "Summarise the attached file.",
            "field 'user_prompt_template': must contain the placeholder {document}, where the "
            "document's text goes (it may also use {questions} and {filename})",
        ),
        (
            "{document} for {customer}",
            "field 'user_prompt_template': uses the unknown placeholder {customer}; the "
            "placeholders are {document}, {questions}, {filename} (write a literal brace as "
            "{{ or }})",
        ),
        (
            "{document} and {}",
            "field 'user_prompt_template': uses the unknown placeholder {}; the placeholders are",
        ),
        (
            "{document",
            "field 'user_prompt_template': is not a valid template (expected '}' before end of "
            "string); write a literal brace as {{ or }}",
        ),
        (
            "{document!r}",
            "field 'user_prompt_template': placeholder {document} may not carry a conversion or "
            "format spec",
        ),
        (
            "{document:>20}",
            "field 'user_prompt_template': placeholder {document} may not carry a conversion or "
            "format spec",
        ),
    ],
)
def test_template_problems_name_the_profile_and_field(template: str, problem: str) -> None:
    error = config_error(setting(contracts={**CONTRACTS, "user_prompt_template": template}))

    assert len(error.problems) == 1
    assert error.problems[0].startswith(f"profile 'contracts', {problem}")
    assert str(error).endswith("Fix these in the PROCESSING_PROFILES app setting.")


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        (
            {"output_schema": {"type": "array", "items": {}}},
            "field 'output_schema': must be a JSON Schema for an object, with \"type\": "
            "\"object\" at the top (got type 'array')",
        ),
        (
            {"output_schema": {"properties": {}}},
            "field 'output_schema': must be a JSON Schema for an object, with \"type\": "
            '"object" at the top (got type None)',
        ),
        (
            {"output_schema": {"type": "object", "properties": ["a"]}},
            "field 'output_schema': \"properties\" must be an object mapping field names",
        ),
        (
            {"output_schema": {"type": "object", "required": "a"}},
            "field 'output_schema': \"required\" must be a list of field names",
        ),
        (
            {"max_output_tokens": 0},
            "field 'max_output_tokens': Input should be greater than 0 (got 0)",
        ),
        (
            {"temperature": 2.5},
            "field 'temperature': Input should be less than or equal to 2 (got 2.5)",
        ),
        ({"system_prompt": "  "}, "field 'system_prompt': must not be empty"),
        ({"questions": ["Who?", " "]}, "field 'questions': question(s) at position 1 are empty"),
        (
            {"tone": "formal"},
            "field 'tone': is not a profile field (the fields are: system_prompt, "
            "user_prompt_template, questions, output_schema, max_output_tokens, temperature, "
            "model)",
        ),
    ],
)
def test_field_problems_name_the_profile_and_field(changes: dict[str, Any], problem: str) -> None:
    error = config_error(setting(contracts={**CONTRACTS, **changes}))

    assert len(error.problems) == 1
    assert error.problems[0].startswith(f"profile 'contracts', {problem}")


def test_a_missing_required_field_is_named() -> None:
    error = config_error(setting(bare={"user_prompt_template": "{document}"}))

    assert error.problems == ["profile 'bare', field 'system_prompt': is required"]


def test_a_name_field_that_differs_from_the_key_is_rejected() -> None:
    error = config_error(setting(contracts={**CONTRACTS, "name": "rfp"}))

    assert error.problems == [
        "profile 'contracts', field 'name': 'rfp' differs from the profile's key; the key is "
        "the name, so drop the 'name' field"
    ]


def test_an_unsafe_profile_name_is_rejected() -> None:
    error = config_error(setting(**{"big contracts": CONTRACTS}))

    assert error.problems == [
        "profile 'big contracts', field 'name': the profile name 'big contracts' must be 1-64 "
        "letters, digits, '_' or '-' (it is used in URLs and as the output schema's name)"
    ]


def test_every_problem_in_every_profile_is_reported_at_once() -> None:
    error = config_error(
        setting(
            first={**CONTRACTS, "max_output_tokens": -1, "user_prompt_template": "no slot"},
            second={**CONTRACTS, "temperature": "hot"},
            fine=CONTRACTS,
        )
    )

    assert [problem.split(":")[0] for problem in error.problems] == [
        "profile 'first', field 'user_prompt_template'",
        "profile 'first', field 'max_output_tokens'",
        "profile 'second', field 'temperature'",
    ]
    assert str(error).startswith("PROCESSING_PROFILES has 3 problem(s): profile 'first'")


def test_profiles_are_immutable() -> None:
    with pytest.raises(ValidationError):
        BUILTIN_DEFAULT_PROFILE.max_output_tokens = 5  # type: ignore[misc]


# --- Resolving a requested profile ------------------------------------------------------------


@pytest.fixture
def profiles() -> dict[str, ProcessingProfile]:
    return parse_profiles(setting(contracts=CONTRACTS, rfp=CONTRACTS))


@pytest.mark.parametrize("requested", [None, "", "  "])
def test_no_requested_profile_gives_the_default(
    profiles: dict[str, ProcessingProfile], requested: str | None
) -> None:
    assert resolve_profile(profiles, requested, "rfp").name == "rfp"


def test_a_requested_profile_is_found_by_name(profiles: dict[str, ProcessingProfile]) -> None:
    assert resolve_profile(profiles, " contracts ", "default").name == "contracts"


def test_an_unknown_profile_lists_the_known_names(profiles: dict[str, ProcessingProfile]) -> None:
    with pytest.raises(UnknownProfileError) as raised:
        resolve_profile(profiles, "Contracts", "default")

    assert raised.value.requested == "Contracts"
    assert raised.value.known == ["contracts", "default", "rfp"]
    assert str(raised.value) == (
        "unknown processing profile 'Contracts'; the known profiles are: contracts, default, "
        "rfp. Ask for one of these, or define 'Contracts' in the PROCESSING_PROFILES app setting."
    )


def test_an_undefined_default_points_at_the_default_profile_setting(
    profiles: dict[str, ProcessingProfile],
) -> None:
    with pytest.raises(UnknownProfileError) as raised:
        resolve_profile(profiles, None, "invoices")

    assert str(raised.value) == (
        "the default processing profile 'invoices' (DEFAULT_PROFILE app setting) is not "
        "defined; the known profiles are: contracts, default, rfp. Set DEFAULT_PROFILE to one "
        "of these, or define 'invoices' in PROCESSING_PROFILES."
    )
