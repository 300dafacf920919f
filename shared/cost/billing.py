"""Billed hosting time and fee from deployment lifetimes, under both billing readings.

Azure bills a fine-tuned deployment's hourly hosting fee for every hour it exists; whether a
partial hour is prorated is not documented, so every hosting figure is computed two ways,
matching the simulator's meter:

- `per_minute`: each lifetime rounded up to whole minutes (the prorated reading);
- `per_started_hour`: each lifetime rounded up to whole hours.

A lifetime is `(created_s, gone_s)` in seconds on any one clock: from the accepted create to
the moment Azure confirmed the deployment gone. Pure functions, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

BillingReading = Literal["per_minute", "per_started_hour"]
BILLING_READINGS: tuple[BillingReading, ...] = ("per_minute", "per_started_hour")

Lifetime = tuple[float, float]


def _whole_units(seconds: float, unit: float) -> int:
    # As the meter does: 120.00000001 s is 2 minutes, not 3 (float noise is forgiven).
    return max(0, math.ceil(seconds / unit - 1e-9))


def lifetime_seconds(lifetime: Lifetime) -> float:
    """How long one deployment existed (never negative)."""
    created, gone = lifetime
    return max(0.0, gone - created)


def billed_seconds(lifetime: Lifetime, reading: BillingReading) -> float:
    """The seconds Azure would bill for one lifetime under `reading`."""
    seconds = lifetime_seconds(lifetime)
    if seconds <= 0.0:
        return 0.0
    unit = 60.0 if reading == "per_minute" else 3600.0
    return _whole_units(seconds, unit) * unit


def total_billed_seconds(lifetimes: Iterable[Lifetime], reading: BillingReading) -> float:
    return sum(billed_seconds(lifetime, reading) for lifetime in lifetimes)


def total_billed_hours(lifetimes: Iterable[Lifetime], reading: BillingReading) -> float:
    return total_billed_seconds(lifetimes, reading) / 3600.0


def hosting_cost(billed_hours: float, hourly_fee: float) -> float:
    """The hosting fee for `billed_hours` at `hourly_fee` (currency per hour)."""
    return billed_hours * hourly_fee


@dataclass(frozen=True)
class BilledHosting:
    """Hosted time and fee of a set of lifetimes under both readings."""

    deploy_cycles: int
    hosted_seconds: float
    billed_hours_per_minute: float
    billed_hours_per_started_hour: float
    hourly_fee: float

    @property
    def cost_per_minute(self) -> float:
        return hosting_cost(self.billed_hours_per_minute, self.hourly_fee)

    @property
    def cost_per_started_hour(self) -> float:
        return hosting_cost(self.billed_hours_per_started_hour, self.hourly_fee)

    def billed_hours(self, reading: BillingReading) -> float:
        if reading == "per_minute":
            return self.billed_hours_per_minute
        return self.billed_hours_per_started_hour

    def cost(self, reading: BillingReading) -> float:
        return hosting_cost(self.billed_hours(reading), self.hourly_fee)


def bill(lifetimes: Iterable[Lifetime], hourly_fee: float) -> BilledHosting:
    """Bill every lifetime under both readings at `hourly_fee`."""
    spans = list(lifetimes)
    return BilledHosting(
        deploy_cycles=len(spans),
        hosted_seconds=sum(lifetime_seconds(span) for span in spans),
        billed_hours_per_minute=total_billed_hours(spans, "per_minute"),
        billed_hours_per_started_hour=total_billed_hours(spans, "per_started_hour"),
        hourly_fee=hourly_fee,
    )


def union_seconds(intervals: Iterable[Lifetime]) -> float:
    """Total length of the union of `[start, end]` intervals (overlaps counted once)."""
    total = 0.0
    current_start: float | None = None
    current_end = 0.0
    for start, end in sorted(intervals):
        if current_start is None or start > current_end:
            if current_start is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_start is not None:
        total += current_end - current_start
    return total
