"""Independent round trips made at once, so a flow waits for the slowest, not for their sum.

The warm path has a few storage calls that do not depend on each other (the open-job marker
and the hold; the outcome's own blob, the input's properties and the other outcome name's
properties; the hold's release and the outcome). `together` runs the first call on the
caller's thread and the others on a small shared pool, each in a copy of the caller's context
(so its log lines keep the job's fields), waits for all of them, and raises the first failure
only once every call has ended: nothing is left running behind the caller's back.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar, overload

A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")

# Only the calls after the first go to the pool, and none of those may wait on the pool
# itself (a call that fans out goes first, on the caller's thread): then a bounded pool
# cannot deadlock, and under many concurrent documents its calls only queue briefly.
_MAX_WORKERS = 16
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _shared_pool() -> ThreadPoolExecutor:
    global _pool  # noqa: PLW0603 - one pool per process, made on first use
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=_MAX_WORKERS, thread_name_prefix="round-trip")
        return _pool


@overload
def together(first: Callable[[], A], second: Callable[[], B], /) -> tuple[A, B]: ...


@overload
def together(
    first: Callable[[], A], second: Callable[[], B], third: Callable[[], C], /
) -> tuple[A, B, C]: ...


def together(*calls: Callable[[], Any]) -> tuple[Any, ...]:
    """Run `calls` at once; their results in order, or the first one's failure.

    The first runs on the caller's thread and may itself call `together`; the others run on
    the shared pool and must not (nor wait on anything started with `begin`).
    """
    pool = _shared_pool()
    others: list[Future[Any]] = [
        pool.submit(contextvars.copy_context().run, call) for call in calls[1:]
    ]
    results: list[Any] = []
    failure: BaseException | None = None
    try:
        results.append(calls[0]())
    except BaseException as error:
        failure = error
        results.append(None)
    for future in others:
        try:
            results.append(future.result())
        except BaseException as error:
            failure = failure or error
            results.append(None)
    if failure is not None:
        raise failure
    return tuple(results)


def begin(call: Callable[[], A]) -> Future[A]:
    """Start `call` on the shared pool now (in a copy of the caller's context); wait on the
    returned future when its result is needed."""
    return _shared_pool().submit(contextvars.copy_context().run, call)
