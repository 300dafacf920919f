"""Processing profiles: what the model is asked about a document, and in which output format.

This module owns the `ProcessingProfile` model, the built-in `default` profile, and reading
the PROCESSING_PROFILES app setting (a JSON object mapping profile name to profile fields).
A request names a profile (or gets DEFAULT_PROFILE); `resolve_profile` turns that name into a
profile or an error that lists the names there are.

Configuration mistakes are reported as `ProfileConfigError` with every problem found, each
naming the profile and field, so an operator can fix the app setting in one pass.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

DEFAULT_PROFILE_NAME = "default"
PROFILES_SETTING = "PROCESSING_PROFILES"
DEFAULT_PROFILE_SETTING = "DEFAULT_PROFILE"

DOCUMENT_PLACEHOLDER = "document"
QUESTIONS_PLACEHOLDER = "questions"
FILENAME_PLACEHOLDER = "filename"
TEMPLATE_PLACEHOLDERS = (DOCUMENT_PLACEHOLDER, QUESTIONS_PLACEHOLDER, FILENAME_PLACEHOLDER)

# Also a valid json_schema `name` for response_format, and safe in URLs and blob metadata.
_PROFILE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")

_EXAMPLE_SETTING = (
    '{"contracts": {"system_prompt": "You review contracts.", '
    '"user_prompt_template": "Review {filename}:\\n{document}", '
    '"questions": ["Who are the parties?"]}}'
)


class ProfileConfigError(ValueError):
    """PROCESSING_PROFILES (or a profile) is unusable; the message says what to fix."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.reason = message
        self.problems = problems if problems is not None else [message]


class UnknownProfileError(LookupError):
    """A request (or DEFAULT_PROFILE) names a profile that is not defined."""

    def __init__(self, requested: str, known: list[str], *, from_default_setting: bool) -> None:
        self.requested = requested
        self.known = known
        known_text = ", ".join(known) if known else "(none)"
        if from_default_setting:
            message = (
                f"the default processing profile {requested!r} ({DEFAULT_PROFILE_SETTING} app "
                f"setting) is not defined; the known profiles are: {known_text}. Set "
                f"{DEFAULT_PROFILE_SETTING} to one of these, or define {requested!r} in "
                f"{PROFILES_SETTING}."
            )
        else:
            message = (
                f"unknown processing profile {requested!r}; the known profiles are: "
                f"{known_text}. Ask for one of these, or define {requested!r} in the "
                f"{PROFILES_SETTING} app setting."
            )
        super().__init__(message)
        self.reason = message


def template_placeholders(template: str) -> set[str]:
    """The placeholder names a (valid) user prompt template uses."""
    return {
        field_name
        for _literal, field_name, _spec, _conversion in string.Formatter().parse(template)
        if field_name is not None
    }


def template_problem(template: str) -> str | None:
    """Why `template` cannot be a user prompt template, or None when it can."""
    allowed = ", ".join("{" + name + "}" for name in TEMPLATE_PLACEHOLDERS)
    literal_hint = "write a literal brace as {{ or }}"
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        return f"is not a valid template ({error}); {literal_hint}"
    used: set[str] = set()
    for _literal, field_name, spec, conversion in parsed:
        if field_name is None:
            continue
        if field_name not in TEMPLATE_PLACEHOLDERS:
            return (
                f"uses the unknown placeholder {{{field_name}}}; the placeholders are {allowed} "
                f"({literal_hint})"
            )
        if spec or conversion:
            return f"placeholder {{{field_name}}} may not carry a conversion or format spec"
        used.add(field_name)
    if DOCUMENT_PLACEHOLDER not in used:
        return (
            "must contain the placeholder {document}, where the document's text goes "
            "(it may also use {questions} and {filename})"
        )
    return None


class ProcessingProfile(BaseModel):
    """One way of processing a document: prompts, questions, output format and limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    system_prompt: str
    user_prompt_template: str
    questions: list[str] = Field(default_factory=list)
    output_schema: dict[str, Any] | None = None
    max_output_tokens: int = Field(default=800, gt=0)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    # The hosted model this profile runs on; None: the catalog's default model.
    model: str | None = None

    @field_validator("name")
    @classmethod
    def _name_is_safe(cls, name: str) -> str:
        if not _PROFILE_NAME.fullmatch(name):
            raise ValueError(
                f"the profile name {name!r} must be 1-64 letters, digits, '_' or '-' "
                "(it is used in URLs and as the output schema's name)"
            )
        return name

    @field_validator("system_prompt")
    @classmethod
    def _system_prompt_is_not_blank(cls, system_prompt: str) -> str:
        if not system_prompt.strip():
            raise ValueError("must not be empty: say who the model is and what it does")
        return system_prompt

    @field_validator("user_prompt_template")
    @classmethod
    def _template_is_usable(cls, template: str) -> str:
        problem = template_problem(template)
        if problem is not None:
            raise ValueError(problem)
        return template

    @field_validator("questions")
    @classmethod
    def _questions_are_not_blank(cls, questions: list[str]) -> list[str]:
        stripped = [question.strip() for question in questions]
        blank = [str(index) for index, question in enumerate(stripped) if not question]
        if blank:
            raise ValueError(f"question(s) at position {', '.join(blank)} are empty")
        return stripped

    @field_validator("output_schema")
    @classmethod
    def _schema_is_an_object_schema(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is None:
            return None
        if schema.get("type") != "object":
            raise ValueError(
                'must be a JSON Schema for an object, with "type": "object" at the top '
                f"(got type {schema.get('type')!r})"
            )
        properties = schema.get("properties")
        if properties is not None and not isinstance(properties, dict):
            raise ValueError('"properties" must be an object mapping field names to schemas')
        required = schema.get("required")
        if required is not None and not (
            isinstance(required, list) and all(isinstance(key, str) for key in required)
        ):
            raise ValueError('"required" must be a list of field names')
        return schema

    def uses_placeholder(self, placeholder: str) -> bool:
        return placeholder in template_placeholders(self.user_prompt_template)

    def render_user_prompt(self, *, document: str, filename: str, questions_text: str) -> str:
        """The template with its placeholders filled (values are inserted, never re-parsed)."""
        return self.user_prompt_template.format(
            document=document, filename=filename, questions=questions_text
        )


BUILTIN_DEFAULT_PROFILE = ProcessingProfile(
    name=DEFAULT_PROFILE_NAME,
    system_prompt=(
        "You are a careful analyst of business documents such as contracts, requests for "
        "proposals (RFPs), statements of work, purchase orders, invoices and policies. Work "
        "only from the document you are given and never invent facts. State parties, dates, "
        "amounts, deadlines and obligations exactly as the document writes them, cite the "
        "section or clause you rely on where there is one, and say plainly when the document "
        "does not answer something."
    ),
    user_prompt_template=(
        "Document name: {filename}\n\n"
        "<document>\n{document}\n</document>\n\n"
        "If questions are listed below, answer each of them from the document. Otherwise say "
        "what kind of document this is and who the parties are, then summarise its key terms: "
        "obligations, dates and deadlines, amounts, renewal and termination conditions, "
        "risks, and anything that needs a person's attention."
    ),
)


def parse_profiles(raw: str | None) -> dict[str, ProcessingProfile]:
    """The profiles defined by the PROCESSING_PROFILES setting, plus the built-in `default`.

    None or blank gives only the built-in `default`. A profile named `default` in the
    setting replaces the built-in one. Raises `ProfileConfigError` listing every problem.
    """
    profiles: dict[str, ProcessingProfile] = {DEFAULT_PROFILE_NAME: BUILTIN_DEFAULT_PROFILE}
    if raw is None or not raw.strip():
        return profiles
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ProfileConfigError(
            f"{PROFILES_SETTING} is not valid JSON ({error.msg}: line {error.lineno} column "
            f"{error.colno}). It must be a JSON object mapping each profile name to its fields, "
            f"for example {_EXAMPLE_SETTING}"
        ) from None
    if not isinstance(data, dict):
        raise ProfileConfigError(
            f"{PROFILES_SETTING} must be a JSON object mapping each profile name to its fields, "
            f"not a JSON {_json_type(data)}; for example {_EXAMPLE_SETTING}"
        )
    problems: list[str] = []
    for name, fields in data.items():
        if not isinstance(fields, dict):
            problems.append(
                f"profile {name!r}: must be a JSON object of profile fields, "
                f"not a JSON {_json_type(fields)}"
            )
            continue
        if "name" in fields and fields["name"] != name:
            problems.append(
                f"profile {name!r}, field 'name': {fields['name']!r} differs from the profile's "
                "key; the key is the name, so drop the 'name' field"
            )
            continue
        try:
            profiles[name] = ProcessingProfile.model_validate({**fields, "name": name})
        except ValidationError as error:
            problems.extend(
                f"profile {name!r}, {describe_problem(detail, ProcessingProfile, 'profile')}"
                for detail in error.errors()
            )
    if problems:
        raise ProfileConfigError(
            f"{PROFILES_SETTING} has {len(problems)} problem(s): "
            + "; ".join(problems)
            + f". Fix these in the {PROFILES_SETTING} app setting.",
            problems,
        )
    return profiles


def resolve_profile(
    profiles: Mapping[str, ProcessingProfile], requested: str | None, default_name: str
) -> ProcessingProfile:
    """The profile a request asked for, or the default one when it asked for none."""
    if requested is None or not requested.strip():
        name, from_default = default_name, True
    else:
        name, from_default = requested.strip(), False
    profile = profiles.get(name)
    if profile is None:
        raise UnknownProfileError(name, sorted(profiles), from_default_setting=from_default)
    return profile


def describe_problem(detail: ErrorDetails, model: type[BaseModel], noun: str) -> str:
    """One validation problem of a named entry (profile, hosted model) in words."""
    field = ".".join(str(part) for part in detail["loc"]) or "(entry)"
    kind = detail["type"]
    if kind == "missing":
        return f"field {field!r}: is required"
    if kind == "extra_forbidden":
        known = ", ".join(name for name in model.model_fields if name != "name")
        return f"field {field!r}: is not a {noun} field (the fields are: {known})"
    message = detail["msg"].removeprefix("Value error, ")
    if kind != "value_error":
        message = f"{message} (got {json.dumps(detail.get('input'), default=str)[:80]})"
    return f"field {field!r}: {message}"


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "null" if value is None else type(value).__name__
