"""Per-deployment sliding-window rate limits in simulated time, as Azure OpenAI applies them.

A deployment with capacity C allows C requests per 10-second window (Azure states 6 x C
requests per minute but enforces them over 10-second windows, never fewer than 1) and
1,000 x C tokens per 60-second window. A request costs its estimated prompt tokens plus its
max_tokens. Throttled requests are not recorded, so a 429 never pushes the window further out.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

REQUEST_WINDOW_SECONDS = 10.0
TOKEN_WINDOW_SECONDS = 60.0
TOKENS_PER_CAPACITY_UNIT = 1000


class LimitKind(StrEnum):
    """Which window refused a request."""

    REQUESTS = "requests"
    TOKENS = "tokens"


@dataclass(frozen=True)
class RateDecision:
    """The outcome of asking the limiter to admit one request."""

    allowed: bool
    remaining_requests: int
    remaining_tokens: int
    limit_kind: LimitKind | None = None
    retry_after_seconds: float = 0.0  # simulated seconds until the request would fit


def request_limit(capacity: int) -> int:
    return max(1, capacity)


def token_limit(capacity: int) -> int:
    return TOKENS_PER_CAPACITY_UNIT * max(0, capacity)


class SlidingWindowRateLimiter:
    """The request and token windows of one deployment."""

    def __init__(self) -> None:
        self._request_times: deque[float] = deque()
        self._token_spends: deque[tuple[float, int]] = deque()

    def _expire(self, now: float) -> None:
        while self._request_times and self._request_times[0] <= now - REQUEST_WINDOW_SECONDS:
            self._request_times.popleft()
        while self._token_spends and self._token_spends[0][0] <= now - TOKEN_WINDOW_SECONDS:
            self._token_spends.popleft()

    def _tokens_used(self) -> int:
        return sum(cost for _, cost in self._token_spends)

    def remaining(self, now: float, capacity: int) -> tuple[int, int]:
        """Requests and tokens still free in the current windows."""
        self._expire(now)
        return (
            max(0, request_limit(capacity) - len(self._request_times)),
            max(0, token_limit(capacity) - self._tokens_used()),
        )

    def admit(self, now: float, cost: int, capacity: int) -> RateDecision:
        """Record the request if both windows have room; otherwise say how long to wait."""
        self._expire(now)
        max_requests = request_limit(capacity)
        max_tokens = token_limit(capacity)
        used_tokens = self._tokens_used()
        requests_wait = self._requests_wait(now, max_requests)
        tokens_wait = self._tokens_wait(now, cost, used_tokens, max_tokens)
        if requests_wait is None and tokens_wait is None:
            self._request_times.append(now)
            self._token_spends.append((now, cost))
            return RateDecision(
                allowed=True,
                remaining_requests=max_requests - len(self._request_times),
                remaining_tokens=max(0, max_tokens - used_tokens - cost),
            )
        # The token window is the more telling reason when both refuse.
        kind = LimitKind.TOKENS if tokens_wait is not None else LimitKind.REQUESTS
        wait = max(requests_wait or 0.0, tokens_wait or 0.0)
        return RateDecision(
            allowed=False,
            remaining_requests=max(0, max_requests - len(self._request_times)),
            remaining_tokens=max(0, max_tokens - used_tokens),
            limit_kind=kind,
            retry_after_seconds=wait,
        )

    def _requests_wait(self, now: float, max_requests: int) -> float | None:
        in_window = len(self._request_times)
        if in_window < max_requests:
            return None
        # The request fits once enough of the oldest requests have left the window.
        freeing_index = in_window - max_requests
        return self._request_times[freeing_index] + REQUEST_WINDOW_SECONDS - now

    def _tokens_wait(self, now: float, cost: int, used: int, max_tokens: int) -> float | None:
        if used + cost <= max_tokens:
            return None
        if cost > max_tokens:
            # Never fits; Azure keeps answering 429, so advertise a full window.
            return TOKEN_WINDOW_SECONDS
        still_used = used
        for spent_at, spent in self._token_spends:
            still_used -= spent
            if still_used + cost <= max_tokens:
                return spent_at + TOKEN_WINDOW_SECONDS - now
        return TOKEN_WINDOW_SECONDS  # unreachable: emptying the window always makes room


def whole_seconds_to_wait(real_seconds: float) -> int:
    """Retry-After for a 429: whole real seconds, rounded up, never 0 while throttled."""
    return max(1, math.ceil(real_seconds - 1e-9))
