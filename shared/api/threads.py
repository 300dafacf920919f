"""The HTTP API's own threads: where every API request does its blocking work.

The Functions worker runs sync handlers in one pool (`PYTHON_THREADPOOL_THREAD_COUNT`, by
default the number of cores plus four) shared by every trigger. During a burst, or while timers
wait on Azure, that pool is full of blob deliveries, resumes and reaper passes, and a request
queued behind them waited for a thread for far longer than its own work: the portal's page and
its job polls stopped answering. The API's handlers are async instead and run their blocking
work here, so a person at the portal is answered whatever the documents are doing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import TypeVar

T = TypeVar("T")

# Requests handled at once per instance: each is a few storage reads or writes, so a few
# threads keep up with a burst of clients; more would only contend for the same interpreter.
API_THREADS = 8


@cache
def _api_threads() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=API_THREADS, thread_name_prefix="http-api")


async def on_api_threads(call: Callable[[], T]) -> T:
    """Run `call` on the API's threads and await its result (its exception, if it raises)."""
    return await asyncio.get_running_loop().run_in_executor(_api_threads(), call)
