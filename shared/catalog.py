"""The hosted models and the processing profiles that route documents to them.

One place declares what the app hosts. Either a TOML file deployed with the app and named by
`HOSTING_CONFIG_FILE` (what a team keeps under version control and reviews, with each model's
business-hours windows and batch schedules, see `shared/schedules/models.py`), or, for a
single model, the app settings that existed before (`DEPLOYMENT_NAME`, `FINE_TUNED_MODEL`,
...), which become one hosted model named `default`.

```toml
default_model = "contracts"          # runs profiles that name no model

[models.contracts]
deployment = "ft-contracts"
fine_tuned_model = "gpt-4.1-mini-2025-04-14.ft-0123456789abcdef"
version = "1"
deployment_type = "Standard"         # Standard | GlobalStandard | DeveloperTier
capacity = 10                        # 1 unit = 1,000 tokens and 6 requests per minute
idle_grace_seconds = 300             # optional: IDLE_GRACE_SECONDS
# idle_grace = "auto"                # optional: the break-even rule (shared/hosting/grace.py)
max_lifetime_seconds = 50400         # optional: MAX_DEPLOYMENT_LIFETIME_SECONDS
context_tokens = 128000              # optional: MODEL_CONTEXT_TOKENS

[models.contracts.prices]            # optional: see shared/cost/prices.py for the defaults
input_per_million_tokens = 0.80
output_per_million_tokens = 3.20
hosting_per_hour = { Standard = 1.70, GlobalStandard = 1.70, DeveloperTier = 0.0 }

[profiles.contracts]
model = "contracts"
system_prompt = "You review contracts."
user_prompt_template = "Contract {filename}:\\n{document}\\n\\n{questions}"
```

`load_catalog` validates the whole file and reports every problem at once, each naming the
model or profile and the field. Pure apart from reading the file.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from shared.batch.locations import OutputMapping, overlapping_pairs
from shared.cost.prices import ModelPrices
from shared.documents.profiles import (
    BUILTIN_DEFAULT_PROFILE,
    DEFAULT_PROFILE_NAME,
    ProcessingProfile,
    ProfileConfigError,
    describe_problem,
    parse_profiles,
)
from shared.hosting.grace import AUTO
from shared.schedules.models import BatchSchedule, WindowSettings
from shared.schedules.occurrences import longest_length

DeploymentType = Literal["Standard", "GlobalStandard", "DeveloperTier", "ProvisionedManaged"]
SINGLE_MODEL_NAME = "default"
CONFIG_FILE_SETTING = "HOSTING_CONFIG_FILE"
SINGLE_MODEL_SOURCE = "the single-model app settings"
# ARM deployment names: letters, digits, '-', '_' and '.', 2 to 64 characters.
_DEPLOYMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,63}")
_MODEL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Where a relative HOSTING_CONFIG_FILE is looked for: the app's root, beside function_app.py.
APP_ROOT = Path(__file__).resolve().parent.parent


class CatalogError(ValueError):
    """The hosted-models declaration is unusable; `problems` lists every problem found."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        listed = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{source} has {len(problems)} problem(s):\n{listed}")


class HostedModel(BaseModel):
    """One fine-tuned model the app deploys on demand, and how."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    deployment: str
    fine_tuned_model: str = Field(min_length=1)
    version: str = Field("1", min_length=1)
    deployment_type: DeploymentType = "Standard"
    capacity: int = Field(10, ge=1)
    idle_grace_seconds: float = Field(ge=0)
    # "auto": the break-even rule learned from observed provisioning times, with
    # `idle_grace_seconds` until one was observed (shared/hosting/grace.py).
    idle_grace: str | None = None
    max_lifetime_seconds: float = Field(gt=0)
    context_tokens: int = Field(ge=1024)
    # The hosting fee per deployment type and the token prices ([models.<name>.prices]),
    # each defaulting to a documented public price (shared/cost/prices.py).
    prices: ModelPrices = ModelPrices()
    # Business-hours windows and scheduled batches (shared/schedules/), validated one by one
    # by `_validate_schedules` so each problem names its window or batch.
    windows: tuple[WindowSettings, ...] = ()
    batches: tuple[BatchSchedule, ...] = ()

    @field_validator("name")
    @classmethod
    def _name_is_safe(cls, name: str) -> str:
        if not _MODEL_NAME.fullmatch(name):
            raise ValueError(f"the model name {name!r} must be 1-64 letters, digits, '_' or '-'")
        return name

    @field_validator("idle_grace")
    @classmethod
    def _idle_grace_is_auto(cls, value: str | None) -> str | None:
        if value is not None and value != AUTO:
            raise ValueError(
                f'idle_grace must be "auto" (the break-even rule), not {value!r}; for a fixed '
                "grace set idle_grace_seconds instead"
            )
        return value

    @field_validator("deployment")
    @classmethod
    def _deployment_name_is_valid(cls, deployment: str) -> str:
        if not _DEPLOYMENT_NAME.fullmatch(deployment):
            raise ValueError(
                f"{deployment!r} is not a valid deployment name: 2-64 letters, digits, '-', "
                "'_' or '.', starting with a letter or digit"
            )
        return deployment

    @property
    def usable_context_tokens(self) -> int:
        # Azure charges a request its prompt plus max_tokens against the per-minute token
        # limit, so a request larger than the deployment's whole minute can never pass.
        return min(self.context_tokens, self.capacity * 1000)


@dataclass(frozen=True)
class ModelDefaults:
    """App-wide values a model's optional fields fall back to."""

    idle_grace_seconds: float
    max_lifetime_seconds: float
    context_tokens: int


@dataclass(frozen=True)
class Catalog:
    """What the app hosts: models by name, and profiles by name with the model each runs on."""

    models: Mapping[str, HostedModel]
    profiles: Mapping[str, ProcessingProfile]
    default_model: str | None
    source: str

    def model_for(self, profile: ProcessingProfile) -> HostedModel:
        """The hosted model a profile runs on (validated at load, so it exists)."""
        name = profile.model or self.default_model
        assert name is not None and name in self.models, "checked by load_catalog"
        return self.models[name]

    def by_deployment(self, deployment: str) -> HostedModel | None:
        lowered = deployment.lower()  # ARM names are case-insensitive
        return next((m for m in self.models.values() if m.deployment.lower() == lowered), None)


def single_model_catalog(
    *,
    deployment: str,
    fine_tuned_model: str,
    version: str,
    deployment_type: str,
    capacity: int,
    defaults: ModelDefaults,
    profiles_json: str | None,
) -> Catalog:
    """The catalog the pre-catalog settings describe: one model named `default`."""
    fields = {
        "deployment": deployment,
        "fine_tuned_model": fine_tuned_model,
        "version": version,
        "deployment_type": deployment_type,
        "capacity": capacity,
    }
    problems: list[str] = []
    models = _validate_models({SINGLE_MODEL_NAME: fields}, defaults, problems)
    profiles: dict[str, ProcessingProfile] = {}
    try:
        profiles = parse_profiles(profiles_json)
    except ProfileConfigError as error:
        problems.extend(error.problems)
    _check_routes(profiles, models.keys(), SINGLE_MODEL_NAME, problems)
    if problems:
        raise CatalogError(SINGLE_MODEL_SOURCE, problems)
    return Catalog(models, profiles, SINGLE_MODEL_NAME, SINGLE_MODEL_SOURCE)


def load_catalog(path: Path, defaults: ModelDefaults, *, profiles_json: str | None) -> Catalog:
    """Read and validate a hosted-models file; `CatalogError` lists every problem at once."""
    source = f"{CONFIG_FILE_SETTING} ({path})"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problem = f"the file does not exist; deploy it with the app or fix {CONFIG_FILE_SETTING}"
        raise CatalogError(source, [problem]) from None
    except IsADirectoryError:
        problem = f"it is a directory, not a file; point {CONFIG_FILE_SETTING} at the TOML file"
        raise CatalogError(source, [problem]) from None
    except OSError as error:
        problem = f"the file cannot be read ({error.strerror or type(error).__name__})"
        raise CatalogError(source, [problem]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise CatalogError(source, [f"not valid TOML: {error}"]) from None
    return catalog_from_data(data, defaults, source=source, profiles_json=profiles_json)


def catalog_from_data(
    data: dict[str, Any], defaults: ModelDefaults, *, source: str, profiles_json: str | None
) -> Catalog:
    problems: list[str] = []
    unknown = sorted(set(data) - {"models", "profiles", "default_model"})
    if unknown:
        problems.append(
            f"unknown top-level key(s) {', '.join(unknown)}; the keys are: models, profiles, "
            "default_model"
        )
    raw_models = data.get("models")
    if not isinstance(raw_models, dict) or not raw_models:
        problems.append("declares no hosted model: add at least one [models.<name>] table")
        raw_models = {}
    models = _validate_models(raw_models, defaults, problems)
    _check_unique_deployments(models, problems)
    problems.extend(overlapping_pairs(declared_batch_outputs(models.values())))

    default_model = data.get("default_model")
    if default_model is None and len(raw_models) == 1:
        default_model = next(iter(raw_models))
    if default_model is not None and default_model not in raw_models:
        problems.append(
            f"default_model: {default_model!r} is not a declared model; the models are: "
            f"{', '.join(sorted(raw_models)) or '(none)'}"
        )

    raw_profiles = data.get("profiles")
    profiles: dict[str, ProcessingProfile] = {DEFAULT_PROFILE_NAME: BUILTIN_DEFAULT_PROFILE}
    if raw_profiles is not None and profiles_json:
        problems.append(
            "profiles are declared both in the file's [profiles] and in PROCESSING_PROFILES; "
            "keep one (the file is the one that is reviewed with the models)"
        )
    elif raw_profiles is not None:
        if not isinstance(raw_profiles, dict):
            problems.append("profiles must be a table of [profiles.<name>] tables")
        else:
            profiles.update(_validate_profiles(raw_profiles, problems))
    else:
        try:
            profiles = parse_profiles(profiles_json)
        except ProfileConfigError as error:
            problems.extend(error.problems)
    if default_model is None and profiles.get(DEFAULT_PROFILE_NAME) is BUILTIN_DEFAULT_PROFILE:
        # The built-in profile names no model: with several models and no default_model
        # there is nothing for it to run on, so a document must name a profile that has one.
        del profiles[DEFAULT_PROFILE_NAME]
    _check_routes(profiles, raw_models.keys(), default_model, problems)
    if problems:
        raise CatalogError(source, problems)
    return Catalog(models, profiles, default_model, source)


def _validate_models(
    raw: Mapping[str, Any], defaults: ModelDefaults, problems: list[str]
) -> dict[str, HostedModel]:
    models: dict[str, HostedModel] = {}
    for name, fields in raw.items():
        if not isinstance(fields, dict):
            problems.append(f"model {name!r}: must be a table of model fields")
            continue
        own = {k: v for k, v in fields.items() if k not in ("windows", "batches")}
        schedules = {key: fields.get(key, []) for key in ("windows", "batches")}
        merged = {
            "idle_grace_seconds": defaults.idle_grace_seconds,
            "max_lifetime_seconds": defaults.max_lifetime_seconds,
            "context_tokens": defaults.context_tokens,
            **own,
            "name": name,
        }
        windows = _validate_schedules(name, "windows", schedules["windows"], problems)
        batches = _validate_schedules(name, "batches", schedules["batches"], problems)
        try:
            model = HostedModel.model_validate(merged)
        except ValidationError as error:
            problems.extend(
                f"model {name!r}, {_describe_model_problem(detail)}" for detail in error.errors()
            )
            continue
        windows_ok = [w for w in windows if isinstance(w, WindowSettings)]
        _check_windows_fit_lifetime(model, windows_ok, problems)
        models[name] = model.model_copy(
            update={
                "windows": tuple(windows_ok),
                "batches": tuple(b for b in batches if isinstance(b, BatchSchedule)),
            }
        )
    return models


_SCHEDULE_KINDS: dict[str, tuple[str, type[WindowSettings] | type[BatchSchedule]]] = {
    "windows": ("window", WindowSettings),
    "batches": ("batch", BatchSchedule),
}


def _validate_schedules(
    model: str, key: str, raw: Any, problems: list[str]
) -> list[WindowSettings | BatchSchedule]:
    """A model's [[models.<name>.windows]] or [[models.<name>.batches]], each problem named."""
    noun, schema = _SCHEDULE_KINDS[key]
    if not isinstance(raw, list) or not all(isinstance(entry, dict) for entry in raw):
        problems.append(
            f"model {model!r}, field {key!r}: must be an array of tables ([[models.{model}.{key}]])"
        )
        return []
    validated: list[WindowSettings | BatchSchedule] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw):
        label = str(entry.get("name") or f"{noun}-{index + 1}")
        where = f"model {model!r}, {noun} {label!r} ({key}[{index}])"
        if label in seen:
            problems.append(f"{where}, field 'name': {label!r} is used twice; names must differ")
        seen.add(label)
        try:
            validated.append(schema.model_validate({**entry, "name": label}))
        except ValidationError as error:
            problems.extend(
                f"{where}{_describe_schedule_problem(detail, schema, noun)}"
                for detail in error.errors()
            )
    return validated


def _describe_schedule_problem(detail: ErrorDetails, schema: type[BaseModel], noun: str) -> str:
    if not detail["loc"]:
        # A rule across fields (opens equal to closes, a subdivision without a country).
        return ": " + detail["msg"].removeprefix("Value error, ")
    return ", " + describe_problem(detail, schema, noun)


def _check_windows_fit_lifetime(
    model: HostedModel, windows: list[WindowSettings], problems: list[str]
) -> None:
    # The reaper deletes a deployment past its maximum lifetime even under holds (the
    # backstop against leaked holds), so a window longer than it would lose its deployment.
    # A window over a clock change counts the hour it gains; one that no change crosses
    # (08:00-18:00 in Berlin) counts only its wall-clock length.
    lifetime = timedelta(seconds=model.max_lifetime_seconds)
    for window in windows:
        longest = longest_length(window) + window.lead
        if longest > lifetime:
            problems.append(
                f"model {model.name!r}, window {window.name!r}: lasts up to {longest} with its "
                f"lead time, longer than the model's max_lifetime_seconds "
                f"({model.max_lifetime_seconds:g}); the reaper would delete the deployment "
                "during the window. Raise max_lifetime_seconds (or "
                "MAX_DEPLOYMENT_LIFETIME_SECONDS)"
            )


def _validate_profiles(raw: Mapping[str, Any], problems: list[str]) -> dict[str, ProcessingProfile]:
    profiles: dict[str, ProcessingProfile] = {}
    for name, fields in raw.items():
        if not isinstance(fields, dict):
            problems.append(f"profile {name!r}: must be a table of profile fields")
            continue
        try:
            profiles[name] = ProcessingProfile.model_validate({**fields, "name": name})
        except ValidationError as error:
            problems.extend(
                f"profile {name!r}, {describe_problem(detail, ProcessingProfile, 'profile')}"
                for detail in error.errors()
            )
    return profiles


def declared_batch_outputs(models: Iterable[HostedModel]) -> list[OutputMapping]:
    """Where each scheduled batch writes its outcomes, and for which inputs."""
    return [
        OutputMapping(
            f"model {model.name!r}, batch {batch.name!r}", batch.input_prefix, batch.output_prefix
        )
        for model in models
        for batch in model.batches
    ]


def _check_unique_deployments(models: Mapping[str, HostedModel], problems: list[str]) -> None:
    seen: dict[str, str] = {}
    for model in models.values():
        other = seen.setdefault(model.deployment.lower(), model.name)
        if other != model.name:
            problems.append(
                f"model {model.name!r}, field 'deployment': {model.deployment!r} is also the "
                f"deployment of model {other!r}; each model needs its own deployment"
            )


def _check_routes(
    profiles: Mapping[str, ProcessingProfile],
    model_names: Any,
    default_model: str | None,
    problems: list[str],
) -> None:
    names = sorted(model_names)
    for profile in profiles.values():
        if profile.model is not None and profile.model not in names:
            problems.append(
                f"profile {profile.name!r}, field 'model': {profile.model!r} is not a declared "
                f"model; the models are: {', '.join(names) or '(none)'}"
            )
        elif profile.model is None and default_model is None:
            problems.append(
                f"profile {profile.name!r}: names no model and there is no default_model; set "
                f"its 'model' to one of: {', '.join(names)}"
            )


def _describe_model_problem(detail: ErrorDetails) -> str:
    if detail["loc"][:1] == ("prices",):
        # An unknown key inside [models.<name>.prices] lists the price fields, not the model's.
        return describe_problem(detail, ModelPrices, "price")
    return describe_problem(detail, HostedModel, "model")
