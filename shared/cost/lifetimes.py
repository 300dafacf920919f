"""Deployment lifetimes from hosting-log events: when each deployment was created and gone.

A lifetime runs from the create sent to Azure confirming the deployment gone (or the app
finding it vanished), as the billing meter counts it; a second create sent while one is open
replaces it (Azure replaced the Failed or vanished deployment with the new one). Events that
do not follow each other say a line may be missing: a lifetime that serves or is deleted
without a create before it, in the log's range, is reported as a possible gap rather than
guessed at. Pure: events in, lifetimes and gaps out.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from shared.cost.log import HostingEvent


@dataclass(frozen=True)
class DeploymentLifetime:
    """One deployment cycle as the hosting log recorded it (times in the app's seconds)."""

    model: str
    deployment: str
    sku: str
    capacity: int
    created: float
    serving: float | None = None
    delete_sent: float | None = None
    gone: float | None = None
    # How it ended: "gone" (confirmed), "vanished" (found absent), "replaced" (a new create).
    ended_by: str | None = None
    # When it was last known to exist before `gone` was seen: it went in between.
    last_seen: float | None = None
    # Who sent the create and the holds that caused it ("job:<id>", "window:<name>", ...).
    created_by: str = ""
    holds: tuple[str, ...] = ()

    @property
    def open(self) -> bool:
        return self.gone is None

    @property
    def provision_seconds(self) -> float | None:
        return None if self.serving is None else self.serving - self.created

    @property
    def delete_seconds(self) -> float | None:
        if self.delete_sent is None or self.gone is None or self.ended_by != "gone":
            return None
        return self.gone - self.delete_sent

    @property
    def unconfirmed_seconds(self) -> float:
        """How much of its lifetime may fall after it went: last seen to confirmed gone."""
        if self.gone is None or self.last_seen is None:
            return 0.0
        return max(0.0, self.gone - max(self.last_seen, self.created))

    def end_or(self, now: float) -> float:
        """When it ended, or `now` while it is still up."""
        return self.gone if self.gone is not None else now


@dataclass(frozen=True)
class LifetimeReading:
    lifetimes: tuple[DeploymentLifetime, ...]
    gaps: tuple[str, ...] = field(default=())


def lifetimes_from(events: Iterable[HostingEvent]) -> LifetimeReading:
    """Every lifetime the events describe, oldest first, and where a line may be missing."""
    open_by_deployment: dict[tuple[str, str], DeploymentLifetime] = {}
    closed: list[DeploymentLifetime] = []
    gaps: list[str] = []
    for event in sorted(events, key=lambda e: e.at):
        key = (event.model, event.deployment.lower())
        current = open_by_deployment.get(key)
        if event.event == "create_sent":
            if current is not None:
                closed.append(replace(current, gone=event.at, ended_by="replaced"))
            open_by_deployment[key] = DeploymentLifetime(
                model=event.model,
                deployment=event.deployment,
                sku=event.sku,
                capacity=event.capacity,
                created=event.at,
                created_by=event.actor,
                holds=tuple(f"{h.kind}:{h.id}" for h in event.holds),
            )
        elif event.event in ("serving", "delete_sent"):
            if current is None:
                gaps.append(
                    f"{event.deployment}: {event.event.replace('_', ' ')} at "
                    f"{event.time:%Y-%m-%d %H:%M:%S} UTC with no create sent before it in the "
                    "log's range (a lost line, or a deployment made before the log began); "
                    "its hosted time is not counted"
                )
                continue
            if event.event == "serving" and current.serving is None:
                open_by_deployment[key] = replace(current, serving=event.at)
            elif event.event == "delete_sent" and current.delete_sent is None:
                open_by_deployment[key] = replace(current, delete_sent=event.at)
        elif current is not None:
            # gone or vanished; without an open lifetime it repeats what is already known.
            closed.append(
                replace(current, gone=event.at, ended_by=event.event, last_seen=event.last_seen)
            )
            del open_by_deployment[key]
    everything = sorted([*closed, *open_by_deployment.values()], key=lambda lt: lt.created)
    return LifetimeReading(tuple(everything), tuple(gaps))


def observed_median(values: Iterable[float | None]) -> float | None:
    """The median of the values observed (None when there are none)."""
    seen = [value for value in values if value is not None]
    return statistics.median(seen) if seen else None
