"""Which deployment answers for each side of an evaluation (pure).

The current side is a hosted model of the catalog, on its own deployment. The candidate is
either another hosted model (its own deployment) or a model id, deployed for the evaluation
only under a name derived from the id: on the Developer tier when its base model offers it
(no hosting fee; Azure deletes it after 24 hours anyway), else on the deployment type the
current model's settings name.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from shared.hosting.deployments import FINE_TUNED_MARKER, base_model

DEVELOPER_TIER = "DeveloperTier"
# Base models whose fine-tuned models may be deployed on the Developer tier.
DEVELOPER_TIER_BASES = ("gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o4-mini")
DEVELOPER_TIER_SOURCE = (
    "Azure OpenAI fine-tuned model deployment, Developer tier "
    "(learn.microsoft.com/azure/ai-foundry/openai/how-to/fine-tuning-deploy), as of 2026-02"
)
EVALUATION_DEPLOYMENT_PREFIX = "eval-"
_DATED = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def base_family(model: str) -> str:
    """`gpt-4.1-mini` for `gpt-4.1-mini-2025-04-14.ft-abc`: the base without its date."""
    return _DATED.sub("", base_model(model))


def developer_tier_allowed(model: str) -> bool:
    """Only fine-tuned models of the listed bases (exact family, not a prefix of another)."""
    return FINE_TUNED_MARKER in model and base_family(model) in DEVELOPER_TIER_BASES


def evaluation_deployment_name(model: str) -> str:
    """A valid ARM deployment name (<= 64 characters) that is the same for the same model, so
    a resumed evaluation finds the deployment its first run made."""
    digest = hashlib.sha256(model.encode()).hexdigest()[:10]
    readable = re.sub(
        r"[^A-Za-z0-9-]+", "-", model.rsplit(FINE_TUNED_MARKER, maxsplit=1)[-1]
    ).strip("-")
    return f"{EVALUATION_DEPLOYMENT_PREFIX}{readable[:40]}-{digest}".replace("--", "-")


@dataclass(frozen=True)
class CandidateDeployment:
    name: str
    sku: str
    why: str


def candidate_deployment(
    model: str, *, settings_sku: str, settings_source: str
) -> CandidateDeployment:
    if developer_tier_allowed(model):
        return CandidateDeployment(
            evaluation_deployment_name(model),
            DEVELOPER_TIER,
            f"Developer tier: base {base_family(model)!r} offers it ({DEVELOPER_TIER_SOURCE})",
        )
    return CandidateDeployment(
        evaluation_deployment_name(model),
        settings_sku,
        f"{settings_sku} from {settings_source}: base {base_family(model)!r} has no Developer tier",
    )
