"""The batch's pacing: budgets from capacity, the limiter's admissions on a virtual clock, and
the adaptive share (cut on 429, given back after quiet time). No I/O, no real time."""

from __future__ import annotations

import math

import pytest

from shared.batch.pacing import (
    Adaptation,
    PacingDeadline,
    PromptCalibration,
    RatePacer,
    ThrottleState,
    budget_for,
    charge,
    on_answered,
    on_throttled,
)


class VirtualClock:
    """A monotonic clock that moves only when the pacer sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def pacer(
    capacity: int, clock: VirtualClock, minute: float = 60.0, allowance: float = 0.0
) -> RatePacer:
    return RatePacer(
        budget_for(capacity, minute_seconds=minute),
        window_allowance=allowance,
        monotonic=clock,
        sleep=clock.sleep,
    )


def test_budgets_follow_azures_units() -> None:
    budget = budget_for(10)
    assert budget.tokens == 10_000 and budget.token_window == 60.0
    # 6 requests a minute per unit, enforced over 10-second windows.
    assert budget.requests == 10 and budget.request_window == 10.0
    assert budget.tokens_per_minute == 10_000
    fast = budget_for(1, minute_seconds=0.5)  # the simulator at 120x
    assert fast.requests == 1 and fast.request_window == pytest.approx(0.5 / 6)
    assert fast.tokens_per_minute == pytest.approx(1000 * 120)


def test_a_full_minute_of_tokens_passes_at_once_then_the_next_waits_for_the_window() -> None:
    clock = VirtualClock()
    paced = pacer(10, clock)
    for _ in range(10):  # ten requests of 1,000 tokens: the whole minute, ten request slots
        paced.acquire(1000)
    assert clock.slept == []
    paced.acquire(1000)
    # The first 1,000 tokens leave the 60-second window at 60 s.
    assert clock.now == pytest.approx(1060.0, abs=0.01)


def test_the_request_budget_binds_small_requests() -> None:
    clock = VirtualClock()
    paced = pacer(1, clock)  # one request per 10 seconds, 1,000 tokens a minute
    paced.acquire(10)
    paced.acquire(10)
    assert clock.now == pytest.approx(1010.0, abs=0.01)
    paced.acquire(10)
    assert clock.now == pytest.approx(1020.0, abs=0.01)


def test_throughput_over_several_minutes_is_the_token_limit() -> None:
    clock = VirtualClock()
    paced = pacer(6, clock)
    sent = 0
    while clock.now < 1000.0 + 600:  # ten minutes of 900-token requests
        paced.acquire(900)
        sent += 900
    per_minute = sent / ((clock.now - 1000.0) / 60)
    # Never above the limit (plus the first window's burst), and not far below it.
    assert 0.9 * 6000 <= per_minute <= 6000 * 11 / 10


def test_acquire_refuses_to_wait_past_the_deadline() -> None:
    clock = VirtualClock()
    paced = pacer(1, clock)
    paced.acquire(1000)
    with pytest.raises(PacingDeadline):
        paced.acquire(1000, deadline=clock.now + 5)
    assert clock.slept == [], "it did not sleep towards a deadline it cannot meet"


def test_a_429_pauses_every_sender_and_cuts_the_share_once_per_pause() -> None:
    adaptation = Adaptation(cut=0.5, floor=0.2)
    state = on_throttled(ThrottleState(), now=10.0, retry_after=2.0, adaptation=adaptation)
    assert state.paused_until == 12.0 and state.share == 0.5 and state.throttled == 1
    # The same storm, seen by another request in flight: counted, not cut again.
    again = on_throttled(state, now=10.5, retry_after=1.0, adaptation=adaptation)
    assert again.share == 0.5 and again.paused_until == 12.0 and again.throttled == 2
    # After the pause, a new 429 cuts again, never below the floor.
    later = on_throttled(again, now=13.0, retry_after=1.0, adaptation=adaptation)
    assert later.share == 0.25
    floor = on_throttled(later, now=20.0, retry_after=1.0, adaptation=adaptation)
    assert floor.share == 0.2


def test_quiet_time_gives_the_share_back_step_by_step() -> None:
    adaptation = Adaptation(step=0.25, quiet_windows=0.5)
    state = ThrottleState(share=0.5, last_change=100.0)
    assert on_answered(state, now=120.0, window=60.0, adaptation=adaptation) == state
    up = on_answered(state, now=130.0, window=60.0, adaptation=adaptation)
    assert up.share == 0.75 and up.last_change == 130.0
    full = on_answered(
        on_answered(up, now=161.0, window=60.0, adaptation=adaptation),
        now=200.0,
        window=60.0,
        adaptation=adaptation,
    )
    assert full.share == 1.0


def test_a_reduced_share_charges_more_of_the_budget() -> None:
    assert charge(500, 1.0, 10_000) == 500
    assert charge(500, 0.5, 10_000) == 1000
    assert charge(9000, 0.5, 10_000) == 10_000, "never more than the limit: it must pass"
    assert charge(0, 1.0, 10_000) == 1


def test_the_pacer_slows_after_a_429_and_recovers() -> None:
    clock = VirtualClock()
    paced = pacer(10, clock)
    paced.throttled(retry_after=5.0)
    assert paced.state.share < 1.0
    paced.acquire(100)
    assert clock.now >= 1005.0, "nobody sends during the Retry-After"
    share_after_storm = paced.state.share
    for _ in range(200):
        paced.acquire(100)
        paced.answered()
    assert paced.state.share > share_after_storm
    assert math.isclose(paced.state.share, 1.0)


def test_the_prompt_estimate_is_scaled_to_what_azure_counts() -> None:
    calibration = PromptCalibration()
    assert calibration.prompt_cost(1000) == 1000
    for _ in range(30):  # Azure keeps counting 800 where the client estimated 1,000
        calibration = calibration.observed(estimated=1000, counted=800)
    assert calibration.prompt_cost(1000) == pytest.approx(800, abs=2)
    # One absurd answer moves it only within bounds.
    odd = calibration.observed(estimated=1000, counted=100_000)
    assert odd.factor == pytest.approx(0.8 * calibration.factor + 0.2 * 1.5)
    assert calibration.observed(estimated=0, counted=10) == calibration


def test_the_pacer_charges_the_calibrated_prompt_plus_max_tokens() -> None:
    clock = VirtualClock()
    paced = pacer(1, clock)
    assert paced.request_cost(500, 200) == 700
    for _ in range(30):
        paced.answered(prompt_estimate=500, prompt_counted=250)
    assert paced.request_cost(500, 200) == pytest.approx(450, abs=2)


def test_the_windows_allow_for_requests_reaching_azure_a_little_later() -> None:
    clock = VirtualClock()
    paced = pacer(10, clock, allowance=0.02)
    for _ in range(11):
        paced.acquire(1000)
    assert clock.now == pytest.approx(1000.0 + 60 * 1.02, abs=0.01)
