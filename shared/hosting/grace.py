"""The idle grace: how long a deployment nothing needs is kept before it is torn down. Pure.

Fixed (`idle_grace_seconds` in the hosted-models file), or adaptive (`idle_grace = "auto"`):
the break-even rule. Tearing an idle deployment down and creating it again for the next
document bills its whole provisioning (Azure charges from the accepted create, and the
deployment serves only once provisioned and warmed up), so keeping it idle is cheaper
whenever the next document comes within one provisioning time. Keeping it exactly that long,
then deleting, never costs more than twice what a clairvoyant choice would (the ski-rental
argument), whatever the traffic. The provisioning time is the one learned from the hosting
log (the median of the model's recent starts, `shared/cost/learning.py`), else the one the app
last observed for this deployment (the ledger's `last_provision_seconds`); before it has seen
one, the model's fixed grace applies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.hosting.holds import LedgerRecord

AUTO = "auto"


@dataclass(frozen=True)
class BreakEvenGrace:
    """Keep an idle deployment until its idle hosting would have paid for one cold start."""

    fallback: timedelta
    # The cold-start time learned from the hosting log (None when it has none).
    learned: Callable[[], float | None] | None = field(default=None, compare=False)

    def for_record(self, record: LedgerRecord) -> timedelta:
        observed = self.learned() if self.learned is not None else None
        if observed is None:
            observed = record.last_provision_seconds
        return break_even_grace(observed, fallback=self.fallback)


IdleGrace = timedelta | BreakEvenGrace


def break_even_grace(observed_provision_seconds: float | None, *, fallback: timedelta) -> timedelta:
    """The break-even idle grace for an observed provisioning time (None: not seen yet)."""
    if observed_provision_seconds is None or observed_provision_seconds <= 0:
        return fallback
    return timedelta(seconds=observed_provision_seconds)


def resolve_grace(grace: IdleGrace, record: LedgerRecord) -> timedelta:
    """The idle grace that applies to `record` now."""
    return grace.for_record(record) if isinstance(grace, BreakEvenGrace) else grace
