"""Faults an operator (or a test) arms through the admin API, and the dice that fire them.

Counted faults (`fail_provisionings`, `gateway_timeouts_on_create`) fire on the next N
matching events. Error-rate faults answer a status at a rate drawn from a random generator
seeded at start-up (and re-seeded on clear), so a run with the same seed and the same request
order is reproducible; rate 1 with a count makes a test fully deterministic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Plane(StrEnum):
    MANAGEMENT = "management"
    DATA = "data"


@dataclass
class ErrorFault:
    """Answer `status` with probability `rate`, at most `remaining` more times if set."""

    status: int
    rate: float
    remaining: int | None = None


class FaultPlan:
    """The armed faults of a running simulator."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._random = random.Random(seed)
        self.fail_provisionings = 0
        self.gateway_timeouts_on_create = 0
        self.errors: dict[Plane, ErrorFault] = {}
        self.latency_ms: dict[Plane, float] = {}

    def clear(self) -> None:
        self._random = random.Random(self._seed)
        self.fail_provisionings = 0
        self.gateway_timeouts_on_create = 0
        self.errors.clear()
        self.latency_ms.clear()

    def take_provisioning_failure(self) -> bool:
        if self.fail_provisionings <= 0:
            return False
        self.fail_provisionings -= 1
        return True

    def take_gateway_timeout(self) -> bool:
        if self.gateway_timeouts_on_create <= 0:
            return False
        self.gateway_timeouts_on_create -= 1
        return True

    def draw_error(self, plane: Plane) -> int | None:
        """The status to fail this request with, or None to serve it."""
        fault = self.errors.get(plane)
        if fault is None or (fault.remaining is not None and fault.remaining <= 0):
            return None
        if self._random.random() >= fault.rate:
            return None
        if fault.remaining is not None:
            fault.remaining -= 1
        return fault.status

    def extra_latency_seconds(self, plane: Plane) -> float:
        return self.latency_ms.get(plane, 0.0) / 1000.0

    def describe(self) -> dict[str, Any]:
        return {
            "fail_provisionings": self.fail_provisionings,
            "gateway_timeouts_on_create": self.gateway_timeouts_on_create,
            "errors": {
                plane.value: {"status": f.status, "rate": f.rate, "remaining": f.remaining}
                for plane, f in self.errors.items()
            },
            "latency_ms": {plane.value: ms for plane, ms in self.latency_ms.items()},
        }
