"""Billed hosting time under both readings, checked against hand-worked lifetimes."""

from __future__ import annotations

import pytest

from shared.cost.billing import bill, billed_seconds, union_seconds


def test_one_lifetime_rounds_up_to_the_minute_and_to_the_started_hour() -> None:
    lifetime = (100.0, 100.0 + 61.0)
    assert billed_seconds(lifetime, "per_minute") == 120.0
    assert billed_seconds(lifetime, "per_started_hour") == 3600.0


def test_exact_minutes_are_not_rounded_up_by_float_noise() -> None:
    assert billed_seconds((0.0, 120.00000001), "per_minute") == 120.0


def test_empty_or_inverted_lifetimes_bill_nothing() -> None:
    assert billed_seconds((50.0, 50.0), "per_minute") == 0.0
    assert billed_seconds((50.0, 10.0), "per_started_hour") == 0.0


def test_bill_sums_each_lifetime_separately_and_prices_both_readings() -> None:
    # Two 30-minute lifetimes: 1 hour prorated, 2 started hours.
    billed = bill([(0.0, 1800.0), (7200.0, 9000.0)], hourly_fee=1.70)
    assert billed.deploy_cycles == 2
    assert billed.hosted_seconds == 3600.0
    assert billed.billed_hours_per_minute == pytest.approx(1.0)
    assert billed.billed_hours_per_started_hour == pytest.approx(2.0)
    assert billed.cost_per_minute == pytest.approx(1.70)
    assert billed.cost("per_started_hour") == pytest.approx(3.40)


def test_union_counts_overlaps_once() -> None:
    assert union_seconds([(0.0, 10.0), (5.0, 20.0), (30.0, 40.0), (40.0, 45.0)]) == 35.0
    assert union_seconds([]) == 0.0
