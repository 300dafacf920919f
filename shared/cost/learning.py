"""What the hosting log teaches `idle_grace = "auto"`: how long a cold start of a model takes.

The break-even grace (`shared/hosting/grace.py`) keeps an idle deployment for one cold start's
time. That time is learned from the hosting log: the create sent to serving of each of the
model's recent lifetimes (the last `LEARNED_STARTS` within `LEARNING_WINDOW`), and their
median, so one slow start (a region under pressure, a create that waited for room) does not
double the grace of every idle deployment after it, and one fast one does not halve it.

`learned_provision_seconds` is the rule (pure: events and the time in). Two sources feed it:
`LearnedProvisioning`, which reads a model's log from storage at most once per
`REFRESH_INTERVAL` per instance (the reaper and every release consult the grace; the log is
read only when the cached figure is older than that), and `RecentLifecycle`, which keeps the
events of one in-process deployment in memory for the planner's replay, so the planner learns
from its replay's starts by the same rule. Neither ever raises into a caller: a log that
cannot be read leaves the previous figure (or none, and the ledger's last observation serves).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from shared.catalog import HostedModel
from shared.cost.lifetimes import lifetimes_from, observed_median
from shared.cost.log import HostingEvent, HostingLogReader, event_listener
from shared.hosting.lifecycle import LifecycleListener

logger = logging.getLogger(__name__)

LEARNING_WINDOW = timedelta(days=7)
LEARNED_STARTS = 20
REFRESH_INTERVAL = timedelta(minutes=10)

Clock = Callable[[], datetime]


def learned_provision_seconds(
    events: Iterable[HostingEvent],
    *,
    now: datetime,
    window: timedelta = LEARNING_WINDOW,
    starts: int = LEARNED_STARTS,
) -> float | None:
    """The median create-to-serving time of the last `starts` lifetimes created within
    `window` before `now`; None when none of them reached serving."""
    until = now.timestamp()
    since = until - window.total_seconds()
    observed = [
        lifetime.provision_seconds
        for lifetime in lifetimes_from(events).lifetimes
        if since <= lifetime.created <= until and lifetime.provision_seconds is not None
    ]
    return observed_median(observed[-starts:]) if starts > 0 else None


class LearnedProvisioning:
    """One model's learned cold-start time from the stored hosting log, cached per instance."""

    def __init__(
        self,
        reader: HostingLogReader,
        model: str,
        clock: Clock,
        *,
        refresh: timedelta = REFRESH_INTERVAL,
        window: timedelta = LEARNING_WINDOW,
    ) -> None:
        self._reader = reader
        self._model = model
        self._clock = clock
        self._refresh = refresh
        self._window = window
        self._lock = threading.Lock()
        self._read_at: datetime | None = None
        self._seconds: float | None = None

    def __call__(self) -> float | None:
        now = self._clock()
        with self._lock:
            if self._read_at is not None and now - self._read_at < self._refresh:
                return self._seconds
            # Noted before the read, so a store that fails is asked once per refresh, not on
            # every release while it is down.
            self._read_at = now
            try:
                reading = self._reader.read(now - self._window, now, model=self._model)
                self._seconds = learned_provision_seconds(
                    reading.events, now=now, window=self._window
                )
            except Exception:  # the grace must never fail a job or the reaper
                logger.warning(
                    "Could not read the hosting log of model '%s' to learn its cold-start "
                    "time; the idle grace keeps %s",
                    self._model,
                    "the figure learned before"
                    if self._seconds is not None
                    else "the ledger's last observation",
                    exc_info=True,
                )
            return self._seconds


class RecentLifecycle:
    """One model's recent hosting events kept in memory, and the cold-start time learned from
    them: the hosting log of an in-process replay. `listener` is its lifecycle listener."""

    def __init__(self, model: HostedModel, clock: Clock, *, keep: int = 4 * LEARNED_STARTS):
        # A lifetime is at most four events (create, serving, delete, gone): the last starts
        # the rule looks at stay in memory, and memory stays flat in the replay's length.
        self._events: deque[HostingEvent] = deque(maxlen=keep)
        self._seconds: float | None = None
        self.listener: LifecycleListener = event_listener(model, clock, self._keep)

    def _keep(self, event: HostingEvent) -> None:
        self._events.append(event)
        if event.event == "serving":
            # Only a start changes what is learned: computed here, not at every consultation.
            self._seconds = learned_provision_seconds(self._events, now=event.time)

    def learned(self) -> float | None:
        return self._seconds
