"""The wait histogram: exact to 0.1 s in the exact range, within 0.2 % above it, constant size."""

from __future__ import annotations

import math
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.planning.waits import (
    BUCKETS,
    EXACT_TENTHS,
    SUB_BUCKETS,
    Waits,
    bucket_of,
    bucket_top,
)


def nearest_rank(values: list[float], percent: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(percent / 100.0 * len(ordered))) - 1]


def test_buckets_tile_every_wait_once_in_order() -> None:
    previous_top = -1
    for bucket in range(BUCKETS):
        top = bucket_top(bucket)
        assert top > previous_top
        # The bucket's first and last tenths map back to it.
        assert bucket_of(previous_top + 1) == bucket
        assert bucket_of(top) == bucket
        previous_top = top
    assert previous_top == 2**32 - 1


def test_the_exact_range_keeps_tenths_and_above_it_is_within_a_five_hundred_and_twelfth() -> None:
    assert bucket_top(bucket_of(EXACT_TENTHS - 1)) == EXACT_TENTHS - 1
    for tenths in (EXACT_TENTHS, 6000, 36_000, 864_000, 10**9):
        top = bucket_top(bucket_of(tenths))
        assert tenths <= top <= tenths * (1 + 1 / SUB_BUCKETS)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.floats(min_value=0, max_value=400, allow_nan=False),
            st.floats(min_value=400, max_value=200_000, allow_nan=False),
        ),
        min_size=1,
        max_size=200,
    ),
    st.sampled_from([50.0, 95.0, 99.0, 100.0]),
)
def test_percentiles_are_never_shorter_than_the_true_ones_and_within_the_bucket_width(
    values: list[float], percent: float
) -> None:
    waits = Waits(values)
    tenths = [round(value * 10) / 10 for value in values]
    true = nearest_rank(tenths, percent)
    told = waits.percentile(percent)
    assert true <= told <= max(true * (1 + 1 / SUB_BUCKETS), true + 0.1)
    assert told <= waits.longest == max(tenths)


def test_the_hundred_thousandth_wait_takes_no_more_memory_than_the_first() -> None:
    waits = Waits([1.0])
    size = sys.getsizeof(waits._counts)
    for index in range(100_000):
        waits.add(index * 0.37)
    assert sys.getsizeof(waits._counts) == size
    assert len(waits) == 100_001


def test_equal_tallies_compare_equal_whatever_the_order() -> None:
    assert Waits([1.0, 500.0, 0.0]) == Waits([0.0, 1.0, 500.0])
    assert Waits([1.0]) != Waits([1.1])
    assert Waits([500.0]) != Waits([500.3])  # the same bucket, another longest wait


def test_many_equal_waits_are_counted_at_once() -> None:
    at_once = Waits()
    at_once.add(360.0, times=100_000)
    one_by_one = Waits([360.0] * 100_000)
    assert at_once == one_by_one and len(at_once) == 100_000
    assert at_once.percentile(50) == at_once.longest == 360.0
