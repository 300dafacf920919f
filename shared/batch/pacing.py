"""Pacing a batch's requests to the deployment's quota, and slowing down when Azure says 429.

Azure gives a deployment of capacity C a budget of 1,000 x C tokens and 6 x C requests a
minute (the requests enforced over 10-second windows, C at a time), and charges each request
its estimated prompt tokens plus its `max_tokens`. `RatePacer` keeps the same two budgets on
the client with pyrate-limiter's sliding-window buckets, so a batch sends what fits and waits
for the rest instead of collecting 429s.

The adaptive part is ours (`ThrottleState`, `PromptCalibration`, pure): the client's prompt
estimate is conservative, so it is scaled by what Azure reports it counted; and an ad-hoc
document or another instance may spend the same budget. A 429 cuts the
share of the budget the batch uses (each request is charged `cost / share`) and pauses every
sender until the Retry-After has passed; each quiet stretch without a 429 gives a part of the
share back, so a batch runs near the limit without a 429 storm and recovers once the other
traffic is gone. Decisions take the clock as an argument; only `RatePacer` reads time.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from pyrate_limiter import InMemoryBucket, Rate, RateItem
from pyrate_limiter.abstracts.algorithm import Decision

TOKENS_PER_UNIT_PER_MINUTE = 1000
REQUESTS_PER_UNIT_PER_MINUTE = 6
# Azure enforces the request budget over 10-second windows: a sixth of the minute.
REQUEST_WINDOWS_PER_MINUTE = 6


@dataclass(frozen=True)
class Budget:
    """A deployment's per-window limits, with the windows' lengths in seconds."""

    tokens: int
    token_window: float
    requests: int
    request_window: float

    @property
    def tokens_per_minute(self) -> float:
        return self.tokens * 60.0 / self.token_window


def budget_for(capacity: int, *, minute_seconds: float = 60.0) -> Budget:
    """The budgets of a deployment of `capacity` units.

    `minute_seconds` is the length of Azure's rate-limit minute on this clock: 60, except
    against the local simulator, whose time runs faster.
    """
    units = max(1, capacity)
    return Budget(
        tokens=TOKENS_PER_UNIT_PER_MINUTE * units,
        token_window=minute_seconds,
        requests=max(1, REQUESTS_PER_UNIT_PER_MINUTE * units // REQUEST_WINDOWS_PER_MINUTE),
        request_window=minute_seconds / REQUEST_WINDOWS_PER_MINUTE,
    )


@dataclass(frozen=True)
class ThrottleState:
    """How much of the budget the batch dares to use, and until when it holds off."""

    share: float = 1.0
    paused_until: float = 0.0
    last_change: float = 0.0
    throttled: int = 0


@dataclass(frozen=True)
class Adaptation:
    """How hard a 429 cuts the share and how fast quiet time gives it back."""

    cut: float = 0.85  # the share is multiplied by this on a 429
    floor: float = 0.25  # never below this share of the budget
    step: float = 0.05  # given back after each quiet stretch
    # Seconds without a 429 before a step is given back, as a fraction of the token window.
    quiet_windows: float = 0.25


def on_throttled(
    state: ThrottleState, *, now: float, retry_after: float, adaptation: Adaptation
) -> ThrottleState:
    """A request was answered 429: pause everyone for Retry-After and use less of the budget.

    Several requests in flight see the same 429 storm; the share is cut once per pause, not
    once per answer, or a single burst would drive it to the floor.
    """
    paused_until = max(state.paused_until, now + max(0.0, retry_after))
    share = state.share
    if now >= state.paused_until:
        share = max(adaptation.floor, state.share * adaptation.cut)
    return ThrottleState(
        share=share, paused_until=paused_until, last_change=now, throttled=state.throttled + 1
    )


def on_answered(
    state: ThrottleState, *, now: float, window: float, adaptation: Adaptation
) -> ThrottleState:
    """A request was answered: after a quiet stretch, give part of the share back."""
    if state.share >= 1.0 or now - state.last_change < adaptation.quiet_windows * window:
        return state
    return replace(state, share=min(1.0, state.share + adaptation.step), last_change=now)


def charge(cost: int, share: float, limit: int) -> int:
    """What a request of `cost` tokens spends of the client's budget at this share.

    Charging `cost / share` makes a full bucket hold `share` of the limit, without rebuilding
    the buckets; never more than the limit itself, or the request could never pass.
    """
    return max(1, min(limit, math.ceil(cost / max(share, 1e-6))))


@dataclass(frozen=True)
class PromptCalibration:
    """How Azure's prompt count compares with the client's estimate, learnt from answers.

    The client's estimate is conservative on purpose (chunking must never underestimate),
    which would leave part of the budget unused if charged as is. Each answer reports the
    prompt tokens Azure counted; the ratio to the estimate, smoothed, scales later charges.
    Bounded, so one odd answer cannot make the pacer reckless.
    """

    factor: float = 1.0
    weight: float = 0.2  # of each new observation in the running factor
    lowest: float = 0.5
    highest: float = 1.5

    def observed(self, *, estimated: int, counted: int) -> PromptCalibration:
        if estimated <= 0 or counted <= 0:
            return self
        ratio = min(self.highest, max(self.lowest, counted / estimated))
        return replace(self, factor=(1 - self.weight) * self.factor + self.weight * ratio)

    def prompt_cost(self, estimated: int) -> int:
        return math.ceil(estimated * self.factor)


class PacingDeadline(Exception):
    """The request could not be admitted before the caller's deadline."""


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


class RatePacer:
    """Admits requests within a deployment's token and request budgets; thread-safe.

    `acquire(cost)` blocks until the request fits both budgets (tokens first, then a request
    slot: a request charged tokens while it waits for a slot is counted a little early,
    which errs on the safe side) and the batch is not paused after a 429.
    """

    def __init__(
        self,
        budget: Budget,
        *,
        adaptation: Adaptation | None = None,
        window_allowance: float = 0.02,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.budget = budget
        self._adaptation = adaptation or Adaptation()
        self._monotonic = monotonic
        self._sleep = sleep
        # Azure counts a request when it arrives, a little after the client admitted it, and
        # those delays vary: a window freed on the client may not be free yet at Azure. The
        # client's windows are a little longer than Azure's to absorb that.
        stretch = 1 + window_allowance
        self._tokens = InMemoryBucket([Rate(budget.tokens, _ms(budget.token_window * stretch))])
        self._requests = InMemoryBucket(
            [Rate(budget.requests, _ms(budget.request_window * stretch))]
        )
        self._lock = threading.Lock()
        self.state = ThrottleState()
        self.calibration = PromptCalibration()
        self.waited_seconds = 0.0

    def acquire(self, cost: int, *, deadline: float | None = None) -> None:
        """Wait until a request costing `cost` tokens may be sent; PacingDeadline if it cannot
        be before `deadline` (monotonic)."""
        charged_tokens = False
        while True:
            with self._lock:
                now = self._monotonic()
                wait = self.state.paused_until - now
                if wait <= 0 and not charged_tokens:
                    wait, charged_tokens = self._try(self._tokens, "tokens", cost, now)
                if wait <= 0 and charged_tokens:
                    wait, admitted = self._try(self._requests, "requests", 1, now)
                    if admitted:
                        return
            if deadline is not None and now + wait > deadline:
                raise PacingDeadline(f"the request would wait {wait:.1f} s past the deadline")
            self.waited_seconds += wait
            self._sleep(wait)

    def _try(
        self, bucket: InMemoryBucket, name: str, weight: int, now: float
    ) -> tuple[float, bool]:
        """Put `weight` in `bucket` now: (0, True) when admitted, else (seconds to wait, False)."""
        if bucket is self._tokens:
            weight = charge(weight, self.state.share, self.budget.tokens)
        stamp = _ms(now)
        bucket.leak(stamp)
        decision = bucket.put_decision(RateItem(name, stamp, weight=weight))
        # An in-memory bucket decides at once; only remote buckets answer an awaitable.
        assert isinstance(decision, Decision)
        if decision.allowed:
            return 0.0, True
        retry_ms = decision.retry_after_ms
        # pyrate answers a wait in whole milliseconds; at least one, so the loop advances.
        return max(0.001, (retry_ms if retry_ms is not None else 50) / 1000), False

    def throttled(self, retry_after: float) -> None:
        with self._lock:
            self.state = on_throttled(
                self.state,
                now=self._monotonic(),
                retry_after=retry_after,
                adaptation=self._adaptation,
            )

    def request_cost(self, prompt_estimate: int, max_tokens: int) -> int:
        """What Azure will charge a request: its prompt as Azure counts it, plus max_tokens."""
        return self.calibration.prompt_cost(prompt_estimate) + max_tokens

    def answered(self, *, prompt_estimate: int = 0, prompt_counted: int = 0) -> None:
        with self._lock:
            self.calibration = self.calibration.observed(
                estimated=prompt_estimate, counted=prompt_counted
            )
            self.state = on_answered(
                self.state,
                now=self._monotonic(),
                window=self.budget.token_window,
                adaptation=self._adaptation,
            )
