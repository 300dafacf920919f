"""Background renewal of something that expires unless its holder keeps extending it.

Job holds, job claims and operation leases all expire so that a crashed instance cannot
block the others forever; a live holder renews them on a daemon thread every third of their
lifetime. A failed renewal is logged and tried again at the next tick, never raised into the
work it protects.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from types import TracebackType

logger = logging.getLogger(__name__)


class PeriodicRenewal:
    """Calls `renew` every `lifetime / 3` seconds while the `with` block runs."""

    def __init__(self, name: str, lifetime_seconds: float, renew: Callable[[], None]) -> None:
        self._name = name
        self._lifetime = lifetime_seconds
        self._renew = renew
        self._stop = threading.Event()
        # The renewals log under the job's or deployment's fields, as the work they protect.
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run, args=(self._run,), name=name, daemon=True
        )

    @property
    def stopped(self) -> bool:
        """Whether the protected work has ended (a renewal already under way may still run)."""
        return self._stop.is_set()

    def __enter__(self) -> PeriodicRenewal:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=self._lifetime)

    def _run(self) -> None:
        while not self._stop.wait(self._lifetime / 3):
            try:
                self._renew()
            except Exception:  # the next tick may work; the protected work must go on
                logger.exception("renewal %s failed; trying again next time", self._name)
