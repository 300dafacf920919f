"""The common shape of a trigger kind, and what the host hands every kind.

Owns: `TriggerKind`, the base each trigger module (`http`, `timers`, `blobs`, `queues`)
implements for one binding type, and `HostContext`, the host's services a kind may use (app
settings, the `Invoker`, the clock, host.json `extensions`, options). A kind reads its own
options type from the context, so a new kind brings its options with it and the host passes
them through without knowing them.
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from scripts.functions_host.indexing import IndexedFunction
from scripts.functions_host.invocation import Invoker

OptionsT = TypeVar("OptionsT")


@dataclasses.dataclass(frozen=True)
class HostContext:
    """The host's services, shared by every trigger kind."""

    environ: Mapping[str, str]
    invoker: Invoker
    clock: Callable[[], dt.datetime]
    host_id: str
    # How long stopping waits for running invocations before cancelling them.
    shutdown_timeout: float
    # host.json `extensions`; each kind reads its own section (`http`, `blobs`, ...).
    extensions: Mapping[str, Any]
    # Every hosted function, of every kind (the admin API's status counts them).
    functions: Sequence[IndexedFunction]
    # Starts a function now (the admin API's `POST /admin/functions/<name>`); False if no
    # kind can run that function on demand.
    run_now: Callable[[str], bool]
    # The `on_demand_label`s of the kinds that can run functions on demand, for messages.
    on_demand_labels: Sequence[str]
    options: Mapping[type[Any], object] = dataclasses.field(default_factory=dict)

    def options_for(self, options_type: type[OptionsT]) -> OptionsT:
        """The options the host was given of this type, else the type's defaults."""
        given = self.options.get(options_type)
        return given if isinstance(given, options_type) else options_type()


class TriggerKind(abc.ABC):
    """Everything about one binding type: its functions and what makes them fire.

    The host builds one instance per registered kind (even with no functions of that kind),
    hands it its functions one by one with `add()`, calls `start()` in registry order, then on
    shutdown `stop()` on every kind alongside draining running invocations, and `close()` once
    they are done. A `FunctionsHostError` from the constructor or `add()` stops the host
    before anything starts.
    """

    # Set by kinds whose functions the admin API can run on demand (e.g. "timer").
    on_demand_label: ClassVar[str | None] = None

    def __init__(self, context: HostContext) -> None:
        """Read this kind's options (and app settings every function shares), without I/O."""
        self.context = context

    @abc.abstractmethod
    def add(self, function: IndexedFunction) -> None:
        """Take on one function: validate its binding (settings, schedule, connection), no I/O.

        Called in the app's function order, so the first bad binding is the one reported.
        """

    @abc.abstractmethod
    def describe(self) -> list[str]:
        """One line per function, like the list `func start` prints."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Begin listening, scheduling or polling (inside the event loop)."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop starting invocations; the host drains running ones at the same time."""

    async def close(self) -> None:  # noqa: B027 - most kinds have nothing to release
        """Release clients once no invocation is running any more."""

    def run_now(self, name: str) -> bool:
        """Start function `name` now if it is this kind's and can run on demand."""
        return False
