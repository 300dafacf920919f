"""The hold ledger adapter: one blob per deployment, changed only by conditional writes.

It applies the pure rules of `holds.py` to the stored record through `JsonBlobStore`, so any
number of function instances agree on holds, leases and the deployment's known state
without a database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

from shared.hosting.holds import (
    HoldKind,
    KnownState,
    LedgerRecord,
    end_step,
    finish_lease,
    note_waiting,
    place_hold,
    release_hold,
    renew_hold,
    renew_lease,
    take_lease,
)
from shared.storage import JsonBlobStore

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class HoldLedger:
    """The ledger record of one deployment and the operations on it."""

    def __init__(self, store: JsonBlobStore[LedgerRecord], deployment: str, clock: Clock) -> None:
        self._store = store
        self.deployment = deployment
        self._blob = f"{deployment}.json"
        self._clock = clock

    def now(self) -> datetime:
        return self._clock()

    def read(self) -> LedgerRecord:
        record, _ = self._store.read(self._blob)
        return record if record is not None else LedgerRecord(deployment=self.deployment)

    def change(self, change: Callable[[LedgerRecord], LedgerRecord | None]) -> LedgerRecord | None:
        """Apply a pure change under compare-and-swap; None when `change` declined to write."""

        def apply(current: LedgerRecord | None) -> LedgerRecord | None:
            return change(
                current if current is not None else LedgerRecord(deployment=self.deployment)
            )

        return self._store.update(self._blob, apply)

    # --- holds --------------------------------------------------------------------------

    def place_hold(self, hold_id: str, kind: HoldKind, owner: str, ttl: timedelta) -> LedgerRecord:
        record = self.place_hold_while(hold_id, kind, owner, ttl, still_wanted=lambda: True)
        assert record is not None
        return record

    def place_hold_while(
        self,
        hold_id: str,
        kind: HoldKind,
        owner: str,
        ttl: timedelta,
        *,
        still_wanted: Callable[[], bool],
    ) -> LedgerRecord | None:
        """Place a hold unless `still_wanted()` is false when the write is decided.

        The condition is asked again on every compare-and-swap attempt: a renewal racing its
        owner's release either lands first (and the release removes it) or is refused by the
        ETag, re-asked, and sees that the work has ended. None when nothing was written.
        """
        record = self.change(
            lambda r: (
                place_hold(r, hold_id=hold_id, kind=kind, owner=owner, now=self.now(), ttl=ttl)
                if still_wanted()
                else None
            )
        )
        if record is None:
            return None
        logger.info(
            "hold %s (%s, %s) placed on %s for %s", hold_id, kind, owner, self.deployment, ttl
        )
        return record

    def renew_hold(self, hold_id: str, ttl: timedelta) -> bool:
        """Extend a hold; False when it had already expired and been dropped."""
        record = self.change(lambda r: renew_hold(r, hold_id=hold_id, now=self.now(), ttl=ttl))
        return record is not None

    def release_hold(self, hold_id: str) -> LedgerRecord:
        record = self.change(lambda r: release_hold(r, hold_id=hold_id, now=self.now()))
        assert record is not None
        logger.info("hold %s released on %s", hold_id, self.deployment)
        return record

    # --- operation lease ----------------------------------------------------------------

    def take_lease(
        self,
        owner: str,
        operation: Literal["provision", "delete"],
        ttl: timedelta,
        *,
        continuation_token: str | None = None,
        only_if: Callable[[LedgerRecord], bool] | None = None,
    ) -> LedgerRecord | None:
        """Take (or renew) the operation lease; None when another instance holds it.

        `only_if` is re-checked on the freshly read record inside the compare-and-swap, so a
        decision such as "no live hold" cannot be overtaken by a concurrent write.
        """

        def change(record: LedgerRecord) -> LedgerRecord | None:
            if only_if is not None and not only_if(record):
                return None
            return take_lease(
                record,
                owner=owner,
                operation=operation,
                now=self.now(),
                ttl=ttl,
                continuation_token=continuation_token,
            )

        return self.change(change)

    def renew_lease(self, owner: str, ttl: timedelta) -> bool:
        """Extend the owner's lease; False when it no longer holds one (never re-takes it)."""
        record = self.change(lambda r: renew_lease(r, owner=owner, now=self.now(), ttl=ttl))
        return record is not None

    def end_step(self, owner: str, **fields: object) -> LedgerRecord | None:
        return self.change(lambda r: end_step(r, owner=owner, **fields))

    def note_waiting(self, owner: str, note: str | None) -> None:
        self.change(lambda r: note_waiting(r, owner=owner, now=self.now(), note=note))

    def finish_lease(self, owner: str, state: KnownState, error: str | None = None) -> LedgerRecord:
        record = self.change(
            lambda r: finish_lease(r, owner=owner, now=self.now(), state=state, error=error)
        )
        assert record is not None
        return record
