"""The changes in a deployment's life that the app tells its listeners about.

The provisioner and the reaper call a `LifecycleListener` where the ledger record changes:
the create was sent, the deployment serves, the delete was sent, Azure confirmed it gone, or
it was found absent while the app thought it up. The hosting log (`shared/cost/log.py`)
listens; hosting itself does not know what the listener does with it, and a listener must
never raise into the step that called it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from shared.hosting.holds import LedgerRecord

LifecycleEvent = Literal["create_sent", "serving", "delete_sent", "gone", "vanished"]
LIFECYCLE_EVENTS: tuple[LifecycleEvent, ...] = (
    "create_sent",
    "serving",
    "delete_sent",
    "gone",
    "vanished",
)

# (event, the ledger record as it was written, who acted, a note in words or None)
LifecycleListener = Callable[[LifecycleEvent, LedgerRecord, str, str | None], None]


def ignore_lifecycle(
    event: LifecycleEvent, record: LedgerRecord, actor: str, note: str | None
) -> None:
    """The listener of a provisioner nobody listens to (tests, the planner's stand-ins)."""
