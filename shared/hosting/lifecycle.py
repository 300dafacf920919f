"""The changes in a deployment's life that the app tells its listeners about.

The provisioner and the reaper call a `LifecycleListener` where the ledger record changes:
the create was sent, the deployment serves, the delete was sent, Azure confirmed it gone, or
it was found absent while the app thought it up. The hosting log (`shared/cost/log.py`)
listens; hosting itself does not know what the listener does with it, and a listener must
never raise into the step that called it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol

from shared.hosting.holds import LedgerRecord

LifecycleEvent = Literal["create_sent", "serving", "delete_sent", "gone", "vanished"]
LIFECYCLE_EVENTS: tuple[LifecycleEvent, ...] = (
    "create_sent",
    "serving",
    "delete_sent",
    "gone",
    "vanished",
)


class LifecycleListener(Protocol):
    """Hears one event: the ledger record as written, who acted, a note in words or None.

    `last_seen`, for `gone`: when the deployment was last known to exist (the delete sent, or
    an earlier listing that still showed it), so the deletion happened between then and now.
    `observed`: when the change was seen, if earlier than the call (a listing's answer).
    """

    def __call__(
        self,
        event: LifecycleEvent,
        record: LedgerRecord,
        actor: str,
        note: str | None,
        *,
        last_seen: datetime | None = None,
        observed: datetime | None = None,
    ) -> None: ...


def ignore_lifecycle(
    event: LifecycleEvent,
    record: LedgerRecord,
    actor: str,
    note: str | None,
    *,
    last_seen: datetime | None = None,
    observed: datetime | None = None,
) -> None:
    """The listener of a provisioner nobody listens to (tests, the planner's stand-ins)."""
