"""`LocalFunctionsHost`: one FunctionApp hosted in-process by the registered trigger kinds.

Owns: the registry from binding type to trigger kind (`TRIGGER_KINDS`), building one instance
of every kind from the app's indexed functions, and the host's lifecycle: `start()` (kinds in
registry order, HTTP first so a busy port fails before anything else runs), `stop()` (kinds
stop while running invocations drain, bounded by the shutdown timeout), and the shortcuts
tests and the demo use (`fire_timer`, `wait_for_blob_idle`, `base_url`).

Knows no trigger kind's details: a new kind is a module with a `TriggerKind` subclass, plus
one line in `TRIGGER_KINDS`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, TypeVar

import azure.functions as func

from scripts.functions_host.blobs import BlobTriggers
from scripts.functions_host.http import HttpTriggers
from scripts.functions_host.indexing import index_functions
from scripts.functions_host.invocation import InvocationRecord, Invoker
from scripts.functions_host.queues import QueueTriggers
from scripts.functions_host.timers import TimerTriggers
from scripts.functions_host.triggers import HostContext, TriggerKind

logger = logging.getLogger(__name__)

# Binding type -> the kind that runs it. Start order is this order: HTTP binds its port first.
TRIGGER_KINDS: Mapping[str, type[TriggerKind]] = {
    "httpTrigger": HttpTriggers,
    "timerTrigger": TimerTriggers,
    "blobTrigger": BlobTriggers,
    "queueTrigger": QueueTriggers,
}

# Blob receipts are stored under the host id, so changing this default would make the next
# `make dev` deliver every blob in the input container again.
DEFAULT_HOST_ID = "dev-runner"

KindT = TypeVar("KindT", bound=TriggerKind)


class LocalFunctionsHost:
    """Hosts one FunctionApp in-process: one instance of every registered trigger kind.

    Construction indexes the app and validates every binding (settings, schedules,
    connections) without I/O, so configuration errors surface before anything starts.
    `options` are the kinds' option objects (`HttpOptions`, `BlobOptions`, ...), at most one
    of each type; a kind given none uses its defaults. `extensions` is host.json's
    `extensions` object, which kinds read for settings their options leave unset.
    """

    def __init__(
        self,
        app: func.FunctionApp,
        *,
        environ: Mapping[str, str] | None = None,
        functions: Collection[str] | None = None,
        options: Iterable[object] = (),
        extensions: Mapping[str, Any] | None = None,
        host_id: str = DEFAULT_HOST_ID,
        shutdown_timeout: float = 10.0,
        thread_pool_size: int | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        quiet_timers: bool = False,
    ) -> None:
        by_type: dict[type[Any], object] = {}
        for option in options:
            if type(option) in by_type:
                raise TypeError(f"more than one {type(option).__name__} given")
            by_type[type(option)] = option
        self._shutdown_timeout = shutdown_timeout
        self._invoker = Invoker(thread_pool_size=thread_pool_size, quiet_timers=quiet_timers)
        self.invocations = self._invoker.invocations
        self.functions = index_functions(app, TRIGGER_KINDS.keys(), functions)
        context = HostContext(
            environ=os.environ if environ is None else environ,
            invoker=self._invoker,
            clock=clock or (lambda: dt.datetime.now(dt.UTC)),
            host_id=host_id,
            shutdown_timeout=shutdown_timeout,
            extensions=extensions or {},
            functions=self.functions,
            run_now=self._run_now,
            on_demand_labels=[
                kind.on_demand_label for kind in TRIGGER_KINDS.values() if kind.on_demand_label
            ],
            options=by_type,
        )
        by_trigger = {trigger_type: kind(context) for trigger_type, kind in TRIGGER_KINDS.items()}
        self._kinds = list(by_trigger.values())
        for function in self.functions:
            by_trigger[function.trigger_type].add(function)
        self._started = False
        self._stopping = False

    def trigger_kind(self, kind: type[KindT]) -> KindT:
        """The running instance of a trigger kind, for what only that kind offers."""
        for instance in self._kinds:
            if isinstance(instance, kind):
                return instance
        raise LookupError(f"{kind.__name__} is not registered in TRIGGER_KINDS")

    @property
    def http_port(self) -> int:
        return self.trigger_kind(HttpTriggers).port

    @property
    def base_url(self) -> str:
        return self.trigger_kind(HttpTriggers).base_url

    def describe(self) -> list[str]:
        """One line per function, like the list `func start` prints."""
        return [line for kind in self._kinds for line in kind.describe()]

    async def start(self) -> None:
        """Start every trigger kind in registry order (HTTP binds its port first)."""
        if self._started:
            raise RuntimeError("the host is already started")
        self._invoker.open()
        started: list[TriggerKind] = []
        try:
            for kind in self._kinds:
                await kind.start()
                started.append(kind)
        except BaseException:
            for kind in reversed(started):
                await kind.stop()
                await kind.close()
            self._invoker.close()
            raise
        self._started = True

    async def stop(self) -> int:
        """Stop every kind, wait a bounded time for invocations, then cancel the rest.

        Returns how many sync handlers are still running in threads (they cannot be
        cancelled); the CLI exits the process without waiting for them.
        """
        if not self._started or self._stopping:
            return self._invoker.sync_handlers_running
        self._stopping = True
        # HTTP's stop waits for open requests, which wait for their invocations, so draining
        # runs alongside the kinds' stops rather than after them.
        await asyncio.gather(
            *(kind.stop() for kind in self._kinds), self._invoker.drain(self._shutdown_timeout)
        )
        for kind in self._kinds:
            await kind.close()
        still_running = self._invoker.close()
        if still_running:
            logger.warning("%d sync handler(s) still running in threads", still_running)
        return still_running

    async def __aenter__(self) -> LocalFunctionsHost:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def fire_timer(self, name: str, *, past_due: bool = False) -> InvocationRecord | None:
        """Run a timer function now and wait for it; None if it was still running (skipped)."""
        return await self.trigger_kind(TimerTriggers).fire(name, past_due=past_due)

    async def wait_for_blob_idle(self, timeout: float = 10.0) -> None:
        """Return once every blob poller has scanned after this call and nothing is in flight.

        Pollers are woken at once, so this does not wait for the poll interval.
        """
        await self.trigger_kind(BlobTriggers).wait_for_idle(timeout)

    def _run_now(self, name: str) -> bool:
        return any(kind.run_now(name) for kind in self._kinds)
