"""The simulated clock: simulated seconds advance `time_scale` times faster than real ones.

Every duration the simulator is configured with is in simulated seconds; only latency and the
waits a client actually performs (Retry-After headers) are real. `ScaledClock` anchors the
simulated time to the real monotonic clock; `ManualClock` is moved by hand in unit tests.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """What the simulator state needs from a clock."""

    @property
    def time_scale(self) -> float:
        """Simulated seconds per real second."""
        ...

    def now(self) -> float:
        """Simulated time as POSIX seconds."""
        ...

    def set_time_scale(self, time_scale: float) -> None:
        """Change the speed from now on; simulated time stays continuous."""
        ...


class ScaledClock:
    """Simulated time = epoch + real monotonic elapsed x time_scale."""

    def __init__(self, time_scale: float, epoch: float | None = None) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self._time_scale = time_scale
        self._sim_anchor = time.time() if epoch is None else epoch
        self._real_anchor = time.monotonic()

    @property
    def time_scale(self) -> float:
        return self._time_scale

    def now(self) -> float:
        return self._sim_anchor + (time.monotonic() - self._real_anchor) * self._time_scale

    def set_time_scale(self, time_scale: float) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        # Re-anchor so a speed change never makes simulated time jump.
        self._sim_anchor = self.now()
        self._real_anchor = time.monotonic()
        self._time_scale = time_scale


class ManualClock:
    """A clock that only moves when told to; for deterministic unit tests."""

    def __init__(self, start: float = 1_767_225_600.0, time_scale: float = 1.0) -> None:
        self._now = start
        self._time_scale = time_scale

    @property
    def time_scale(self) -> float:
        return self._time_scale

    def now(self) -> float:
        return self._now

    def set_time_scale(self, time_scale: float) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self._time_scale = time_scale

    def advance(self, sim_seconds: float) -> None:
        self._now += sim_seconds


def to_real_seconds(clock: Clock, sim_seconds: float) -> float:
    """How long a client must really wait for `sim_seconds` of simulated time to pass."""
    return max(0.0, sim_seconds) / clock.time_scale


def iso_timestamp(sim_time: float) -> str:
    """An ISO 8601 UTC timestamp in the shape ARM uses (`...T12:00:00.123456Z`)."""
    return datetime.fromtimestamp(sim_time, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
