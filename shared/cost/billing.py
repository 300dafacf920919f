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


@dataclass
class LifetimeTally:
    """Lifetimes folded in as they end: all `bill` needs, in the same memory for any number.

    The planner replays months of traffic with thousands of deploy cycles per strategy; it
    adds each lifetime here when it ends instead of keeping them all.
    """

    deploy_cycles: int = 0
    hosted_seconds: float = 0.0
    billed_seconds_per_minute: float = 0.0
    billed_seconds_per_started_hour: float = 0.0

    @classmethod
    def of(cls, lifetimes: Iterable[Lifetime]) -> LifetimeTally:
        tally = cls()
        for lifetime in lifetimes:
            tally.add(lifetime)
        return tally

    def add(self, lifetime: Lifetime) -> None:
        self.deploy_cycles += 1
        self.hosted_seconds += lifetime_seconds(lifetime)
        self.billed_seconds_per_minute += billed_seconds(lifetime, "per_minute")
        self.billed_seconds_per_started_hour += billed_seconds(lifetime, "per_started_hour")

    def billed(self, hourly_fee: float) -> BilledHosting:
        """Bill the lifetimes added so far under both readings at `hourly_fee`."""
        return BilledHosting(
            deploy_cycles=self.deploy_cycles,
            hosted_seconds=self.hosted_seconds,
            billed_hours_per_minute=self.billed_seconds_per_minute / 3600.0,
            billed_hours_per_started_hour=self.billed_seconds_per_started_hour / 3600.0,
            hourly_fee=hourly_fee,
        )


def bill(lifetimes: Iterable[Lifetime], hourly_fee: float) -> BilledHosting:
    """Bill every lifetime under both readings at `hourly_fee`."""
    return LifetimeTally.of(lifetimes).billed(hourly_fee)


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
