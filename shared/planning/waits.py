"""How long documents waited, tallied to a tenth of a second. Pure.

A replay of 100,000 documents needs their p50, p95 and maximum wait, not 100,000 floats: waits
take few distinct values (none, one provisioning, a poll interval more), so a tally keeps the
replay's memory flat however long the trace is.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

TENTHS = 10.0


class Waits:
    """A multiset of waits in seconds (to 0.1 s), with nearest-rank percentiles."""

    def __init__(self, seconds: Iterable[float] = ()) -> None:
        self._tally: Counter[int] = Counter()
        self.count = 0
        for value in seconds:
            self.add(value)

    def add(self, seconds: float) -> None:
        self._tally[round(seconds * TENTHS)] += 1
        self.count += 1

    def percentile(self, percent: float) -> float:
        """The nearest-rank percentile; 0 when nothing waited."""
        if not self.count:
            return 0.0
        rank = max(1, math.ceil(percent / 100.0 * self.count))
        seen = 0
        for tenths in sorted(self._tally):
            seen += self._tally[tenths]
            if seen >= rank:
                return tenths / TENTHS
        raise AssertionError("unreachable: the ranks add up to the count")

    @property
    def longest(self) -> float:
        return max(self._tally, default=0) / TENTHS

    def as_sorted(self) -> tuple[float, ...]:
        """Every wait, shortest first (for small tallies: tests, examples)."""
        return tuple(
            tenths / TENTHS for tenths in sorted(self._tally) for _ in range(self._tally[tenths])
        )

    def __len__(self) -> int:
        return self.count

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Waits) and self._tally == other._tally

    __hash__ = None  # type: ignore[assignment]
