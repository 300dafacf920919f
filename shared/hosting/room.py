"""Room on the account: may another fine-tuned deployment be created now? A pure decision.

An Azure OpenAI account holds at most a handful of fine-tuned deployments (5 in 2025-07),
whoever created them. Before a create the provisioner lists what the account runs and asks
`decide_room`; with no room it waits (the job record says why, in words) until one of this
app's deployments is torn down, and it may tear down early those of this app that no hold
needs (`idle_owned`), but never one with a live hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.hosting.deployments import DeploymentSnapshot


@dataclass(frozen=True)
class RoomDecision:
    has_room: bool
    message: str
    # This app's deployments counted against the limit, which it could tear down early if
    # nothing holds them (the caller checks the holds under the ledger's lease).
    owned_in_use: tuple[str, ...] = ()


def decide_room(
    snapshots: Sequence[DeploymentSnapshot],
    *,
    deployment: str,
    account: str,
    limit: int,
    owner_tag: str,
) -> RoomDecision:
    """Whether `deployment` fits under the account's fine-tuned deployment limit."""
    wanted = deployment.lower()
    if any(s.name.lower() == wanted for s in snapshots):
        return RoomDecision(True, f"deployment {deployment!r} already exists on {account}")
    in_use = [s for s in snapshots if s.is_fine_tuned]
    if len(in_use) < limit:
        return RoomDecision(
            True, f"{len(in_use)} of {limit} fine-tuned deployments in use on {account}"
        )
    described = ", ".join(
        f"{s.name} ({'this app' if s.owned_by(owner_tag) else 'not this app'}, "
        f"{s.provisioning_state or 'unknown'})"
        for s in in_use
    )
    return RoomDecision(
        False,
        f"waiting for room on account {account}: {len(in_use)} of {limit} fine-tuned "
        f"deployments in use by {described}",
        tuple(s.name for s in in_use if s.owned_by(owner_tag)),
    )
