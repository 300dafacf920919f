"""Running one function invocation as the Python worker would, shared by every trigger kind.

Owns: the `func.Context` handed to handlers that ask for `context`, calling async handlers on
the event loop and sync ones in a thread pool (`PYTHON_THREADPOOL_THREAD_COUNT`), the
`Executing`/`Executed` log lines with the user's traceback, the `InvocationRecord`s tests,
the demo and the benchmarks read (each with the handler's own wall time), and tracking
invocation tasks so the host can drain them on stop.

Quiet invocations (timers, when the host is asked to log only work): their `Executing` line is
held back until the function itself logs something at the handler's level, and when it logs
nothing and succeeds, both lines go out at DEBUG, so a timer that found nothing to do every
few seconds does not bury the work in the log.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import azure.functions as func

from scripts.functions_host.indexing import IndexedFunction

logger = logging.getLogger(__name__)

HOST_REASON = "This function was programmatically called via the host APIs."

_PACKAGE_DIR = Path(__file__).resolve().parent


@dataclasses.dataclass(frozen=True)
class InvocationRecord:
    """What the host remembers of one invocation (for tests, the demo and logs)."""

    function_name: str
    invocation_id: str
    reason: str
    succeeded: bool
    # From the invocation's start to its end, as the `Executed` line says: for a sync handler
    # this includes waiting for a free thread of the pool, as the worker's Duration does.
    duration_ms: float
    error: str | None = None
    # The handler's own wall time (running in its thread, or awaited): what the handler
    # itself costs, without the wait for a thread (benchmarks read it).
    handler_ms: float | None = None


class _TraceContext:
    """Empty W3C trace context: there is no distributed tracing locally."""

    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return ""

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RetryContext:
    def __init__(self, retry_count: int, max_retry_count: int) -> None:
        self._retry_count = retry_count
        self._max_retry_count = max_retry_count

    @property
    def retry_count(self) -> int:
        return self._retry_count

    @property
    def max_retry_count(self) -> int:
        return self._max_retry_count

    @property
    def exception(self) -> Any:
        return None


class _InvocationContext(func.Context):
    def __init__(self, invocation_id: str, function_name: str, retry: _RetryContext) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._retry = retry
        self._thread_local = threading.local()
        self._thread_local.invocation_id = invocation_id

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._thread_local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return str(Path.cwd())

    @property
    def trace_context(self) -> Any:
        return _TraceContext()

    @property
    def retry_context(self) -> Any:
        return self._retry


class _SyncCallTracker:
    """Counts sync handlers still running in worker threads (they cannot be cancelled)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running = 0

    def wrap(self, target: Callable[..., Any], **kwargs: Any) -> Callable[[], Any]:
        context = contextvars.copy_context()

        def call() -> Any:
            with self._lock:
                self.running += 1
            try:
                return context.run(target, **kwargs)
            finally:
                with self._lock:
                    self.running -= 1

        return call


def _timed(call: Callable[[], Any], seconds: list[float]) -> Callable[[], Any]:
    """`call`, appending its own wall time to `seconds` when it ends (raising or not)."""

    def timed() -> Any:
        started = time.perf_counter()
        try:
            return call()
        finally:
            seconds.append(time.perf_counter() - started)

    return timed


def _user_traceback(error: BaseException) -> str:
    """The traceback from the first frame of user code, as the host shows it."""
    tb = error.__traceback__
    while tb is not None and (
        Path(tb.tb_frame.f_code.co_filename).parent == _PACKAGE_DIR
        or "concurrent/futures" in Path(tb.tb_frame.f_code.co_filename).as_posix()
    ):
        tb = tb.tb_next
    return "".join(
        traceback.format_exception(type(error), error, tb or error.__traceback__)
    ).rstrip()


@dataclasses.dataclass
class _HeldBack:
    """A quiet invocation's `Executing` line, logged once the function logs something."""

    line: tuple[Any, ...]
    announced: bool = False
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def announce(self) -> None:
        with self.lock:
            if self.announced:
                return
            self.announced = True
        logger.info(*self.line)


# Set for the duration of a quiet invocation; copied into the thread of a sync handler.
_HELD_BACK: contextvars.ContextVar[_HeldBack | None] = contextvars.ContextVar(
    "held_back_invocation", default=None
)


class AnnounceHeldBackInvocations(logging.Filter):
    """On a handler: a record from a quiet invocation first releases its `Executing` line."""

    def filter(self, record: logging.LogRecord) -> bool:
        held = _HELD_BACK.get()
        if held is not None and not held.announced and record.name != logger.name:
            held.announce()
        return True


class Invoker:
    """Runs invocations for every trigger kind and keeps track of them until they finish."""

    def __init__(self, *, thread_pool_size: int | None = None, quiet_timers: bool = False) -> None:
        self.invocations: deque[InvocationRecord] = deque(maxlen=10_000)
        self.quiet_timers = quiet_timers
        self._announcer = AnnounceHeldBackInvocations()
        self._announced_on: list[logging.Handler] = []
        self._thread_pool_size = thread_pool_size
        self._executor: ThreadPoolExecutor | None = None
        self._sync_calls = _SyncCallTracker()
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def sync_handlers_running(self) -> int:
        return self._sync_calls.running

    def open(self) -> None:
        """Create the thread pool sync handlers run in."""
        self._executor = ThreadPoolExecutor(
            max_workers=self._thread_pool_size, thread_name_prefix="functions-host-fn"
        )
        if self.quiet_timers:
            # Every handler that will show the app's records shows the line before them.
            self._announced_on = list(logging.getLogger().handlers)
            for handler in self._announced_on:
                handler.addFilter(self._announcer)

    def close(self) -> int:
        """Drop the thread pool without waiting; returns how many sync handlers still run."""
        for handler in self._announced_on:
            handler.removeFilter(self._announcer)
        self._announced_on = []
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        return self._sync_calls.running

    async def invoke(
        self,
        function: IndexedFunction,
        value: object,
        reason: str,
        *,
        retry_count: int = 0,
        max_retry_count: int = 0,
        quiet: bool = False,
    ) -> tuple[InvocationRecord, Any]:
        """Call the function with its trigger value; a handler's exception fails the record.

        `quiet` (honoured when the invoker has `quiet_timers`): log the invocation only if the
        function logs something or fails (see the module's docstring).
        """
        invocation_id = str(uuid.uuid4())
        executing = (
            "Executing 'Functions.%s' (Reason='%s', Id=%s)",
            function.name,
            reason,
            invocation_id,
        )
        held = _HeldBack(executing) if quiet and self.quiet_timers else None
        token = _HELD_BACK.set(held)
        try:
            if held is None:
                logger.info(*executing)
            return await self._invoke(
                function,
                value,
                reason,
                invocation_id=invocation_id,
                held=held,
                retry_count=retry_count,
                max_retry_count=max_retry_count,
            )
        finally:
            _HELD_BACK.reset(token)

    async def _invoke(
        self,
        function: IndexedFunction,
        value: object,
        reason: str,
        *,
        invocation_id: str,
        held: _HeldBack | None,
        retry_count: int,
        max_retry_count: int,
    ) -> tuple[InvocationRecord, Any]:
        kwargs: dict[str, Any] = {function.trigger_arg: value}
        if function.wants_context:
            kwargs["context"] = _InvocationContext(
                invocation_id, function.name, _RetryContext(retry_count, max_retry_count)
            )
        started = time.perf_counter()
        result: Any = None
        error: BaseException | None = None
        handler_seconds: list[float] = []  # set by the call itself, in whichever thread
        try:
            if function.is_async:
                result = await function.callable(**kwargs)
                handler_seconds.append(time.perf_counter() - started)
            else:
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(
                    self._executor,
                    _timed(self._sync_calls.wrap(function.callable, **kwargs), handler_seconds),
                )
        except Exception as exc:
            error = exc
        duration_ms = (time.perf_counter() - started) * 1000
        idle = held is not None and error is None and not held.announced
        if held is not None and not idle:
            held.announce()  # a failure is always shown whole
        if held is not None and idle:
            logger.debug(*held.line)
            logger.debug(
                "Executed 'Functions.%s' (Succeeded, nothing logged, Id=%s, Duration=%.0fms)",
                function.name,
                invocation_id,
                duration_ms,
            )
        elif error is None:
            logger.info(
                "Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%.0fms)",
                function.name,
                invocation_id,
                duration_ms,
            )
        else:
            logger.error(
                "Executed 'Functions.%s' (Failed, Id=%s, Duration=%.0fms)\n%s",
                function.name,
                invocation_id,
                duration_ms,
                _user_traceback(error),
            )
        record = InvocationRecord(
            function.name,
            invocation_id,
            reason,
            error is None,
            duration_ms,
            None if error is None else f"{type(error).__name__}: {error}",
            handler_seconds[0] * 1000 if handler_seconds else None,
        )
        self.invocations.append(record)
        return record, result

    def track(self, coroutine: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        """Run `coroutine` as a task the host waits for (then cancels) when it stops."""
        task: asyncio.Task[Any] = asyncio.ensure_future(coroutine)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._forget_task)
        return task

    def _forget_task(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        # Invocation errors are handled in invoke(); anything reaching here is a host bug.
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("Internal error in %s", task.get_name(), exc_info=error)

    async def drain(self, timeout: float) -> None:
        """Wait up to `timeout` for tracked tasks to finish, then cancel the rest."""
        deadline = time.monotonic() + timeout
        # Looping (rather than waiting on one snapshot) also covers a task that a trigger kind
        # started while it was being stopped alongside this drain.
        while self._tasks and (remaining := deadline - time.monotonic()) > 0:
            await asyncio.wait(set(self._tasks), timeout=remaining)
        pending = set(self._tasks)
        if pending:
            logger.warning(
                "%d invocation(s) still running after %.0fs; cancelling", len(pending), timeout
            )
            for task in pending:
                task.cancel()
            # Bounded: a handler that swallows its cancel must not hold the host's stop for ever.
            _, stuck = await asyncio.wait(pending, timeout=max(timeout, 1.0))
            if stuck:
                logger.warning(
                    "%d invocation(s) did not end when cancelled; leaving them", len(stuck)
                )
