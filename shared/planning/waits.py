"""How long documents waited, as a histogram of fixed size. Pure.

A replay of 100,000 documents needs their p50, p95 and maximum wait, not 100,000 floats, and a
replay of a trace ten times longer must not need more memory to say them. So waits are counted
in a fixed array of buckets, allocated once:

- below `EXACT_TENTHS` (409.6 s, longer than any provisioning the simulator or Azure's
  documentation gives), one bucket per tenth of a second: a wait is kept to 0.1 s, as before;
- above it, `SUB_BUCKETS` buckets per doubling (HdrHistogram's layout): a wait is kept to
  within 0.2 % of itself (0.8 s at 7 minutes, 7 s at an hour), up to about 13 years.

A percentile above the exact range is reported as its bucket's upper end (never shorter than
the waits it stands for) and never past the longest wait, which is kept exactly.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Iterator

TENTHS = 10.0
EXACT_TENTHS = 4096  # 2**12 tenths of a second: 409.6 s
SUB_BUCKETS = 512  # per doubling above the exact range: 1/512 relative width
_SUB_BITS = SUB_BUCKETS.bit_length() - 1  # 9
_EXACT_BITS = EXACT_TENTHS.bit_length() - 1  # 12
_LARGEST_TENTHS = 2**32 - 1  # about 13.6 years; longer waits share the last bucket
BUCKETS = EXACT_TENTHS + SUB_BUCKETS * (32 - _EXACT_BITS)


def bucket_of(tenths: int) -> int:
    """The bucket a wait of `tenths` tenths of a second is counted in."""
    if tenths < EXACT_TENTHS:
        return max(0, tenths)
    tenths = min(tenths, _LARGEST_TENTHS)
    shift = tenths.bit_length() - 1 - _SUB_BITS  # 3 at the exact range's end
    doubling = shift - (_EXACT_BITS - _SUB_BITS)  # 0 for [4096, 8192) tenths
    return EXACT_TENTHS + doubling * SUB_BUCKETS + ((tenths >> shift) - SUB_BUCKETS)


def bucket_top(bucket: int) -> int:
    """The longest wait, in tenths, that bucket `bucket` counts."""
    if bucket < EXACT_TENTHS:
        return bucket
    doubling, sub = divmod(bucket - EXACT_TENTHS, SUB_BUCKETS)
    shift = doubling + (_EXACT_BITS - _SUB_BITS)
    return ((sub + SUB_BUCKETS + 1) << shift) - 1


class Waits:
    """A multiset of waits in seconds, with nearest-rank percentiles, in constant memory."""

    def __init__(self, seconds: Iterable[float] = ()) -> None:
        self._counts = array("I", bytes(4 * BUCKETS))
        self._longest_tenths = 0
        for value in seconds:
            self.add(value)

    def add(self, seconds: float, times: int = 1) -> None:
        """Count `times` waits of `seconds` (a replay adds one per document it starts)."""
        tenths = round(seconds * TENTHS)
        # Most waits fall in the exact range: counted there without a call. Compared by hand
        # rather than with max(): this runs once per document per strategy.
        if tenths < EXACT_TENTHS:
            self._counts[tenths if tenths > 0 else 0] += times
        else:
            self._counts[bucket_of(tenths)] += times
        if tenths > self._longest_tenths:  # noqa: PLR1730
            self._longest_tenths = tenths

    @property
    def count(self) -> int:
        return sum(self._counts)

    def percentile(self, percent: float) -> float:
        """The nearest-rank percentile; 0 when nothing waited."""
        count = self.count
        if not count:
            return 0.0
        rank = max(1, math.ceil(percent / 100.0 * count))
        seen = 0
        for bucket, in_bucket in enumerate(self._counts):
            seen += in_bucket
            if seen >= rank:
                return self._reported(bucket)
        raise AssertionError("unreachable: the ranks add up to the count")

    def _reported(self, bucket: int) -> float:
        """The seconds a bucket's waits are reported as: its top, never past the longest."""
        return min(bucket_top(bucket), self._longest_tenths) / TENTHS

    @property
    def longest(self) -> float:
        return self._longest_tenths / TENTHS

    def as_sorted(self) -> tuple[float, ...]:
        """Every wait, shortest first, each as its bucket says (for small tallies: tests)."""
        return tuple(self._each())

    def _each(self) -> Iterator[float]:
        for bucket, in_bucket in enumerate(self._counts):
            value = self._reported(bucket)
            for _ in range(in_bucket):
                yield value

    def __len__(self) -> int:
        return self.count

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Waits)
            and self._counts == other._counts
            and self._longest_tenths == other._longest_tenths
        )

    __hash__ = None  # type: ignore[assignment]
