"""Prices of a hosted model: its hourly hosting fee per deployment type and its token prices.

Declared per model in the hosted-models file; every field is optional and falls back to the
defaults below, each with its source and date (also in the README, "Prices"):

```toml
[models.contracts.prices]
input_per_million_tokens = 0.80      # USD per 1,000,000 prompt tokens
output_per_million_tokens = 3.20     # USD per 1,000,000 completion tokens

[models.contracts.prices.hosting_per_hour]   # USD per hour the deployment exists
Standard = 1.70
GlobalStandard = 1.70
DeveloperTier = 0.0
```

The fee is per deployment type so that a comparison across types (the planner's Developer
tier row) prices each with its own fee. Whether Azure prorates a partial hour or bills each
started hour is not documented: the fee is an hourly rate and every figure derived from it is
shown under both readings (`shared/cost/billing.py`). Pure: no I/O.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PricedDeploymentType = Literal["Standard", "GlobalStandard", "DeveloperTier", "ProvisionedManaged"]
CURRENCY = "USD"

# Microsoft Learn, "Cost management for fine-tuned models" (Azure OpenAI), read 2026-02: a
# fine-tuned deployment's hosting fee is about $1.70 an hour on Standard and Global Standard
# (model-dependent: set your model's own), none on the Developer tier. Provisioned
# deployments are billed in PTU-hours, which this app does not model, so their hourly fee here
# is 0 and a cost report for them covers tokens only.
DEFAULT_HOSTING_PER_HOUR: dict[PricedDeploymentType, float] = {
    "Standard": 1.70,
    "GlobalStandard": 1.70,
    "DeveloperTier": 0.0,
    "ProvisionedManaged": 0.0,
}
HOSTING_FEE_SOURCE = (
    "Microsoft Learn, Azure OpenAI 'Cost management for fine-tuned models', read 2026-02"
)
# Azure OpenAI pricing page, fine-tuned GPT-4.1-mini inference (Global), read 2025-04: $0.80
# per million input tokens and $3.20 per million output tokens (OpenAI's own list price for the
# same model is the same). Token rates depend on the base model and the deployment type: set
# the rates of your model.
DEFAULT_INPUT_PER_MILLION_TOKENS = 0.80
DEFAULT_OUTPUT_PER_MILLION_TOKENS = 3.20
TOKEN_PRICE_SOURCE = "Azure OpenAI pricing page, fine-tuned GPT-4.1-mini inference, read 2025-04"


class ModelPrices(BaseModel):
    """What one hosted model costs: hosting per hour (by deployment type) and tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hosting_per_hour: dict[PricedDeploymentType, float] = Field(
        default_factory=lambda: dict(DEFAULT_HOSTING_PER_HOUR)
    )
    input_per_million_tokens: float = Field(DEFAULT_INPUT_PER_MILLION_TOKENS, ge=0)
    output_per_million_tokens: float = Field(DEFAULT_OUTPUT_PER_MILLION_TOKENS, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _fill_missing_types(cls, data: object) -> object:
        # A file that names only its own type's fee keeps the defaults for the others.
        if isinstance(data, dict) and isinstance(data.get("hosting_per_hour"), dict):
            data = {
                **data,
                "hosting_per_hour": {**DEFAULT_HOSTING_PER_HOUR, **data["hosting_per_hour"]},
            }
        return data

    @model_validator(mode="after")
    def _fees_are_not_negative(self) -> ModelPrices:
        negative = sorted(sku for sku, fee in self.hosting_per_hour.items() if fee < 0)
        if negative:
            raise ValueError(
                f"hosting_per_hour for {', '.join(negative)} is negative; a fee is 0 or more "
                f"{CURRENCY} per hour"
            )
        return self

    def hourly_fee(self, deployment_type: str) -> float:
        """The hosting fee per hour of a deployment of `deployment_type` (0 for unknown types)."""
        fees: dict[str, float] = {str(sku): fee for sku, fee in self.hosting_per_hour.items()}
        return fees.get(deployment_type, 0.0)

    def token_cost(self, input_tokens: int, output_tokens: int) -> float:
        """What `input_tokens` prompt and `output_tokens` completion tokens cost."""
        return (
            input_tokens * self.input_per_million_tokens
            + output_tokens * self.output_per_million_tokens
        ) / 1_000_000


DEFAULT_PRICES = ModelPrices()
