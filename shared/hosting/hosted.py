"""One hosted model's deployment as the rest of the app uses it: its declaration, its
provisioner (with the ledger) and its data-plane client, wired by the composition root."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from shared.catalog import HostedModel
from shared.hosting.deployments import DeploymentSpec
from shared.hosting.grace import AUTO, BreakEvenGrace, IdleGrace
from shared.hosting.ledger import HoldLedger
from shared.hosting.provisioner import DeploymentProvisioner
from shared.inference import ChatClient


@dataclass(frozen=True)
class HostedDeployment:
    model: HostedModel
    provisioner: DeploymentProvisioner
    chat: ChatClient
    # For `idle_grace = "auto"`: the model's cold-start time learned from its hosting log.
    learned_provision: Callable[[], float | None] | None = None

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def ledger(self) -> HoldLedger:
        return self.provisioner.ledger

    @property
    def spec(self) -> DeploymentSpec:
        return self.provisioner.spec

    @property
    def idle_grace(self) -> IdleGrace:
        fixed = timedelta(seconds=self.model.idle_grace_seconds)
        # `idle_grace = "auto"`: the break-even rule, with the fixed grace until a
        # provisioning has been observed.
        if self.model.idle_grace != AUTO:
            return fixed
        return BreakEvenGrace(fixed, learned=self.learned_provision)

    @property
    def max_lifetime(self) -> timedelta:
        return timedelta(seconds=self.model.max_lifetime_seconds)
