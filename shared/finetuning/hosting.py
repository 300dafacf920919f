"""The TOML that hosts a fine-tuned model with this app, printed when a job succeeds (pure).

The block is a `[models.NAME]` table for the hosting file (`HOSTING_CONFIG_FILE`, see
`shared/catalog.py`), ready to paste; the job's last checkpoints follow as commented-out
tables, so a checkpoint before overfitting can be hosted instead by removing the `#`s.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class CheckpointChoice:
    model: str
    step: int
    valid_loss: float | None = None


def model_key(name: str) -> str:
    """A hosted-model name the catalog accepts (letters, digits, '-', '_'; at most 64)."""
    return _UNSAFE.sub("-", name).strip("-")[:60] or "finetuned"


def _table(key: str, fine_tuned_model: str, deployment_type: str, capacity: int) -> list[str]:
    return [
        f"[models.{key}]",
        f"deployment = {json.dumps('ft-' + key)}",
        f"fine_tuned_model = {json.dumps(fine_tuned_model)}",
        'version = "1"',
        f"deployment_type = {json.dumps(deployment_type)}",
        f"capacity = {capacity}",
    ]


def hosting_toml(
    name: str,
    fine_tuned_model: str,
    checkpoints: Sequence[CheckpointChoice] = (),
    *,
    deployment_type: str = "Standard",
    capacity: int = 10,
) -> str:
    key = model_key(name)
    lines = [
        f"# Host {fine_tuned_model} with this app: add to the hosting file (HOSTING_CONFIG_FILE).",
        *_table(key, fine_tuned_model, deployment_type, capacity),
    ]
    for checkpoint in checkpoints:
        loss = (
            ""
            if checkpoint.valid_loss is None
            else f", validation loss {checkpoint.valid_loss:.4f}"
        )
        lines.append("")
        lines.append(f"# The checkpoint at step {checkpoint.step}{loss}:")
        lines.extend(
            "# " + line
            for line in _table(
                f"{key}-step-{checkpoint.step}", checkpoint.model, deployment_type, capacity
            )
        )
    return "\n".join(lines) + "\n"
