"""The hosting-fee meter: the ground truth for every cost figure the project reports.

Azure bills a fine-tuned deployment's hosting fee for every hour it exists, called or not;
whether a partial hour is prorated is not documented, so the meter reports both readings:
per minute (each lifetime rounded up to whole minutes) and per started hour (each lifetime
rounded up to whole hours). A lifetime runs from the accepted PUT to the moment the deletion
completed, the deployment vanished, or it was replaced; a Failed deployment is billed until it
is deleted, because Azure keeps the Failed resource.

Only fine-tuned models (`*.ft-*`) on the Standard and GlobalStandard deployment types carry a
hosting fee: base models bill tokens only, DeveloperTier has no hosting fee and
ProvisionedManaged is billed in PTU-hours. The report still lists every lifetime, with
`billed` saying whether it is charged; unbilled ones count 0 minutes and 0 hours.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from simulator.clock import iso_timestamp
from simulator.deployments import Deployment, DeploymentSpec

# Deployment types whose fine-tuned deployments pay the hourly hosting fee.
HOSTING_BILLED_SKUS = frozenset({"Standard", "GlobalStandard"})


def bills_hosting(spec: DeploymentSpec) -> bool:
    """Whether a deployment of `spec` is charged the hourly hosting fee."""
    return spec.is_fine_tuned and spec.sku_name in HOSTING_BILLED_SKUS


@dataclass(frozen=True)
class BilledLifetime:
    """One deployment lifecycle as the meter sees it."""

    name: str
    model: str
    sku: str
    created_at: float
    deleted_at: float | None
    hosted_seconds: float
    billed: bool = True

    @property
    def billed_minutes(self) -> int:
        return _whole_units(self.hosted_seconds, 60.0) if self.billed else 0

    @property
    def billed_hours(self) -> int:
        return _whole_units(self.hosted_seconds, 3600.0) if self.billed else 0


def _whole_units(seconds: float, unit: float) -> int:
    # A float lifetime of 120.0000001 s is 2 minutes, not 3: forgive sub-millisecond noise.
    return max(0, math.ceil(seconds / unit - 1e-9))


def billed_lifetimes(deployments: Iterable[Deployment], now: float) -> list[BilledLifetime]:
    lifetimes: list[BilledLifetime] = []
    for deployment in deployments:
        ended = deployment.ended_at(now)
        end = now if ended is None else ended
        lifetimes.append(
            BilledLifetime(
                name=deployment.name,
                model=deployment.spec.model_name,
                sku=deployment.spec.sku_name,
                created_at=deployment.created_at,
                deleted_at=ended,
                hosted_seconds=max(0.0, end - deployment.created_at),
                billed=bills_hosting(deployment.spec),
            )
        )
    return lifetimes


def billing_report(
    deployments: Iterable[Deployment], now: float, hourly_rate: float
) -> dict[str, Any]:
    """The `GET /admin/billing` document."""
    lifetimes = billed_lifetimes(deployments, now)
    billed_minutes = sum(item.billed_minutes for item in lifetimes)
    billed_hours = sum(item.billed_hours for item in lifetimes)
    return {
        "hourly_rate": hourly_rate,
        "sim_now": iso_timestamp(now),
        "sim_now_epoch": now,
        "deployments": [
            {
                "name": item.name,
                "model": item.model,
                "sku": item.sku,
                "created": iso_timestamp(item.created_at),
                "created_epoch": item.created_at,
                "deleted": None if item.deleted_at is None else iso_timestamp(item.deleted_at),
                "deleted_epoch": item.deleted_at,
                "hosted_seconds": item.hosted_seconds,
                "billed": item.billed,
                "billed_minutes": item.billed_minutes,
                "billed_hours": item.billed_hours,
            }
            for item in lifetimes
        ],
        # Every lifetime, billed or not; the fee follows billed_hosted_seconds.
        "total_hosted_seconds": sum(item.hosted_seconds for item in lifetimes),
        "billed_hosted_seconds": sum(item.hosted_seconds for item in lifetimes if item.billed),
        "per_minute": {
            "billed_minutes": billed_minutes,
            "cost": round(billed_minutes * hourly_rate / 60.0, 6),
        },
        "per_started_hour": {
            "billed_hours": billed_hours,
            "cost": round(billed_hours * hourly_rate, 6),
        },
    }
