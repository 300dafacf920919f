"""Helpers shared by functions_host's tests: hosting the sample app and waiting on it."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

from azure.storage.blob.aio import BlobServiceClient as AsyncBlobServiceClient

from scripts.functions_host.blobs import BlobOptions
from scripts.functions_host.host import LocalFunctionsHost
from scripts.functions_host.http import HttpOptions
from tests.integration.functions_host import sample_app as sample

REPO_ROOT = Path(__file__).resolve().parents[3]
SAMPLE_APP = "tests.integration.functions_host.sample_app:app"
NEVER = "0 0 0 1 1 *"  # once a year: the timer exists but does not fire during a test
LOGGER = "scripts.functions_host"

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


@contextlib.asynccontextmanager
async def hosted(
    environ: dict[str, str], *, blobs: Mapping[str, Any] | None = None, **options: Any
) -> AsyncIterator[LocalFunctionsHost]:
    """The sample app on a free port, polling blobs fast; `blobs` overrides BlobOptions."""
    settings: dict[str, Any] = {
        "host_id": f"test-{uuid.uuid4().hex[:8]}",
        "shutdown_timeout": 3.0,
    }
    settings.update(options)
    blob_options = BlobOptions(**{"poll_seconds": 0.1, "retry_delay": 0.01, **(blobs or {})})
    host = LocalFunctionsHost(
        sample.app, environ=environ, options=[HttpOptions(port=0), blob_options], **settings
    )
    await host.start()
    try:
        yield host
    finally:
        await host.stop()


async def upload(connection_string: str, container: str, name: str, data: bytes) -> None:
    async with AsyncBlobServiceClient.from_connection_string(connection_string) as service:
        await service.get_blob_client(container, name).upload_blob(data, overwrite=True)


async def wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)
