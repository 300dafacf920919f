"""Azure OpenAI fine-tuning limits and training prices: one table, each row with its source.

Everything the dataset checks compare against lives here, so that a changed limit or price is
one edited row (and its `source` and `as_of`), never a constant hunted through the code:

- `BASE_MODELS`: per base model, the data format it trains on, the per-example token limit,
  the token encoding, and the training price per million tokens (regional Standard training).
- `FILE_LIMITS`: the upload size limit and the example counts.
- `default_epochs`: the rule that picks the number of epochs when a job leaves it to the
  service (`n_epochs` unset or `"auto"`).

A value nobody could check against Azure's own pages is marked `verified=False` and the
command line can override it (`--price-per-million`, `--epochs`): prices change by region,
deployment type and month, so a report always says which price and which source it used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DataFormat = Literal["chat", "prompt_completion"]

FINE_TUNING_HOW_TO = (
    "Azure OpenAI fine-tuning how-to "
    "(learn.microsoft.com/azure/ai-foundry/openai/how-to/fine-tuning), data preparation"
)
COST_MANAGEMENT = (
    "Azure OpenAI fine-tuning cost management "
    "(learn.microsoft.com/azure/ai-foundry/openai/how-to/fine-tuning-cost-management)"
)
PRICING_PAGE = "azure.microsoft.com/pricing/details/cognitive-services/openai-service"
COOKBOOK_RULE = (
    "Azure OpenAI fine-tuning tutorial and OpenAI cookbook Chat_finetuning_data_prep "
    "(the default-epoch estimate both publish)"
)


@dataclass(frozen=True)
class Sourced:
    """A number and where it comes from."""

    value: float
    source: str
    as_of: str
    verified: bool

    def to_json(self) -> dict[str, object]:
        return {
            "value": self.value,
            "source": self.source,
            "as_of": self.as_of,
            "verified": self.verified,
        }


@dataclass(frozen=True)
class BaseModelLimits:
    """What one fine-tunable base model accepts."""

    name: str
    data_format: DataFormat
    encoding: str
    example_token_limit: Sourced
    training_price_per_million: Sourced


def _limit(tokens: int, *, verified: bool = True) -> Sourced:
    return Sourced(float(tokens), FINE_TUNING_HOW_TO, "2026-02", verified)


def _price(usd: float) -> Sourced:
    # Not checked against Azure's pricing page (not reachable when this table was written):
    # the figure is the list price most often quoted for the model; pass --price-per-million
    # with the rate of your region and training type.
    return Sourced(
        usd, PRICING_PAGE + " (not checked; override with --price-per-million)", "2025-10", False
    )


BASE_MODELS: dict[str, BaseModelLimits] = {
    row.name: row
    for row in (
        BaseModelLimits("gpt-4o", "chat", "o200k_base", _limit(65_536), _price(25.00)),
        BaseModelLimits("gpt-4o-mini", "chat", "o200k_base", _limit(65_536), _price(3.00)),
        BaseModelLimits("gpt-4.1", "chat", "o200k_base", _limit(65_536), _price(25.00)),
        BaseModelLimits("gpt-4.1-mini", "chat", "o200k_base", _limit(65_536), _price(5.00)),
        BaseModelLimits("gpt-4.1-nano", "chat", "o200k_base", _limit(32_768), _price(1.50)),
        BaseModelLimits("o4-mini", "chat", "o200k_base", _limit(65_536), _price(25.00)),
        BaseModelLimits("gpt-35-turbo-0125", "chat", "cl100k_base", _limit(16_385), _price(8.00)),
        BaseModelLimits(
            "babbage-002",
            "prompt_completion",
            "cl100k_base",
            _limit(16_384, verified=False),
            _price(0.40),
        ),
        BaseModelLimits(
            "davinci-002",
            "prompt_completion",
            "cl100k_base",
            _limit(16_384, verified=False),
            _price(6.00),
        ),
    )
}


@dataclass(frozen=True)
class FileLimits:
    """Limits on one uploaded training or validation file."""

    max_upload_bytes: Sourced
    min_examples: Sourced
    advised_examples: Sourced


FILE_LIMITS = FileLimits(
    max_upload_bytes=Sourced(512 * 1024 * 1024, FINE_TUNING_HOW_TO, "2026-02", True),
    min_examples=Sourced(10, FINE_TUNING_HOW_TO, "2026-02", True),
    advised_examples=Sourced(50, FINE_TUNING_HOW_TO, "2026-02", True),
)


@dataclass(frozen=True)
class EpochRule:
    """The default number of epochs, from the dataset size (published estimate, not a spec)."""

    target_epochs: int = 3
    min_target_examples: int = 100
    max_target_examples: int = 25_000
    min_epochs: int = 1
    max_epochs: int = 25
    source: str = COOKBOOK_RULE
    as_of: str = "2025-05"
    # Azure does not document how `"auto"` chooses; the tutorial uses this rule to estimate.
    verified: bool = False

    def epochs_for(self, examples: int) -> int:
        if examples <= 0:
            return self.target_epochs
        if examples * self.target_epochs < self.min_target_examples:
            return min(self.max_epochs, self.min_target_examples // examples)
        if examples * self.target_epochs > self.max_target_examples:
            return max(self.min_epochs, self.max_target_examples // examples)
        return self.target_epochs


DEFAULT_EPOCH_RULE = EpochRule()


class UnknownBaseModel(ValueError):
    """A model name no row of `BASE_MODELS` covers."""


def base_model_limits(model: str) -> BaseModelLimits:
    """The row for `model`: a base name, a versioned name, or a fine-tuned model's name.

    `gpt-4o-mini-2024-07-18` and `gpt-4o-mini-2024-07-18.ft-0123abcd` (continuous fine-tuning
    starts from a fine-tuned model) both find `gpt-4o-mini`. The longest matching name wins, so
    `gpt-4.1-mini-...` is not read as `gpt-4.1`.
    """
    base = model.strip().lower().split(".ft-", 1)[0]
    matches = [
        name
        for name in BASE_MODELS
        if base == name
        or (base.startswith(name + "-") and base[len(name) + 1 : len(name) + 2].isdigit())
    ]
    if not matches:
        known = ", ".join(BASE_MODELS)
        raise UnknownBaseModel(
            f"unknown base model {model!r}; the fine-tunable models known are: {known} "
            "(a dated version such as gpt-4o-mini-2024-07-18, or a fine-tuned model of one, "
            "also works)"
        )
    return BASE_MODELS[max(matches, key=len)]


def limits_table() -> list[dict[str, object]]:
    """Every row as JSON, for the docs and `hosting data limits`."""
    return [
        {
            "model": row.name,
            "format": row.data_format,
            "encoding": row.encoding,
            "example_token_limit": row.example_token_limit.to_json(),
            "training_price_per_million_tokens": row.training_price_per_million.to_json(),
        }
        for row in BASE_MODELS.values()
    ]
