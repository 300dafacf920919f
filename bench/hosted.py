"""The function app under the local Functions host, as the trigger benchmarks run it.

`hosted_app` points the app's settings at one scenario (through the environment, where
`get_settings()` reads them in Azure too), builds the services once, and hosts
`function_app.app` with `LocalFunctionsHost`: the HTTP server, the timers (reaper and sweeper),
the blob trigger polling the input container and the queue trigger polling the resume queue,
with the host's own settings from host.json scaled to the simulator's pace where they are
durations. Invocation records (`host.invocations`) carry each handler's wall time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from scripts.functions_host.blobs import BlobOptions
from scripts.functions_host.host import LocalFunctionsHost
from scripts.functions_host.http import HttpOptions
from scripts.functions_host.indexing import read_host_json
from scripts.functions_host.invocation import InvocationRecord
from scripts.functions_host.queues import MIN_POLLING_INTERVAL, QueueOptions, queue_settings
from shared import composition, settings

if TYPE_CHECKING:
    from shared.composition import AppServices

HOST_JSON = Path(__file__).resolve().parent.parent / "host.json"
# The functions that process documents: their handler time is what a document costs.
DOCUMENT_FUNCTIONS = ("process_uploaded_document", "resume_job")
# In Azure the blob trigger's Event Grid source delivers within a second or two; the local
# host scans the container instead, every 0.1 real s (6 simulated seconds).
BLOB_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class HandlerTimes:
    """Handler wall times of the document functions, in real seconds."""

    invocations: dict[str, int]
    handler_seconds: dict[str, float]
    # As the host's `Executed ... Duration=` says: handler plus waiting for a thread.
    duration_seconds: dict[str, float]
    failed: int

    @property
    def total_handler_seconds(self) -> float:
        return sum(self.handler_seconds.values())

    @property
    def total_duration_seconds(self) -> float:
        return sum(self.duration_seconds.values())


def handler_times(records: Iterable[InvocationRecord]) -> HandlerTimes:
    invocations = dict.fromkeys(DOCUMENT_FUNCTIONS, 0)
    handler = dict.fromkeys(DOCUMENT_FUNCTIONS, 0.0)
    duration = dict.fromkeys(DOCUMENT_FUNCTIONS, 0.0)
    failed = 0
    for record in records:
        if record.function_name not in invocations:
            continue
        invocations[record.function_name] += 1
        handler[record.function_name] += (record.handler_ms or 0.0) / 1000
        duration[record.function_name] += record.duration_ms / 1000
        failed += not record.succeeded
    return HandlerTimes(invocations, handler, duration, failed)


def host_options(time_scale: float) -> tuple[list[object], dict[str, object]]:
    """The host's options: host.json's, with its durations scaled to the simulator's pace.

    host.json polls an idle resume queue at most every 2 s; at 60x that is 33 ms, below the
    host's 100 ms floor, so the floor it is (6 simulated seconds: coarser than Azure's).
    """
    extensions = read_host_json(HOST_JSON)
    configured = queue_settings(QueueOptions(), extensions)
    polling = max(configured.max_polling_interval / time_scale, MIN_POLLING_INTERVAL)
    options: list[object] = [
        HttpOptions(port=0),
        BlobOptions(poll_seconds=BLOB_POLL_SECONDS, persist_receipts=False),
        QueueOptions(
            max_polling_interval=polling,
            visibility_timeout=configured.visibility_timeout / time_scale,
        ),
    ]
    return options, extensions


@contextlib.asynccontextmanager
async def hosted_app(
    app_settings: Mapping[str, str], time_scale: float
) -> AsyncIterator[tuple[LocalFunctionsHost, AppServices]]:
    """The function app hosted with `app_settings`, and the services its handlers use."""
    saved = dict(os.environ)
    os.environ.update(app_settings)
    settings.get_settings.cache_clear()
    composition.reset_services()
    # Imported only now: the app reads its settings lazily, from this environment.
    import function_app  # noqa: PLC0415

    try:
        services = await asyncio.to_thread(composition.get_services)
        options, extensions = host_options(time_scale)
        host = LocalFunctionsHost(
            function_app.app,
            environ=os.environ,
            options=options,
            extensions=extensions,
            host_id=f"bench-{app_settings['INPUT_CONTAINER']}",
            shutdown_timeout=5.0,
        )
        async with host:
            yield host, services
    finally:
        os.environ.clear()
        os.environ.update(saved)
        settings.get_settings.cache_clear()
        composition.reset_services()
