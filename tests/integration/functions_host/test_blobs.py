"""Blob triggers against Azurite: delivery once per version, receipts, retries and poison."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from azure.storage.queue import QueueClient

from scripts.azurite import RunningAzurite
from tests.integration.functions_host import sample_app as sample
from tests.integration.functions_host.support import LOGGER, hosted, run, upload


def test_a_blob_is_delivered_once_however_often_it_is_polled_and_again_when_changed(
    environ: dict[str, str], storage: RunningAzurite, container: str
) -> None:
    conn = storage.connection_string

    async def scenario() -> None:
        async with hosted(environ) as host:
            await upload(conn, container, "incoming/a.txt", b"first version")
            await upload(conn, container, "incoming/a.json", b"wrong suffix")
            await upload(conn, container, "elsewhere/b.txt", b"wrong prefix")
            await host.wait_for_blob_idle(timeout=10)
            assert len(sample.BLOB_CALLS) == 1
            call = sample.BLOB_CALLS[0]
            assert call["name"] == f"{container}/incoming/a.txt"
            assert call["data"] == b"first version"
            assert call["length"] == len(b"first version")
            assert str(call["uri"]).endswith(f"/{container}/incoming/a.txt")

            for _ in range(5):
                await host.wait_for_blob_idle(timeout=10)
            await asyncio.sleep(0.3)  # a few more timed polls
            assert len(sample.BLOB_CALLS) == 1

            await upload(conn, container, "incoming/a.txt", b"second version")
            await host.wait_for_blob_idle(timeout=10)
            assert [c["data"] for c in sample.BLOB_CALLS] == [b"first version", b"second version"]

    run(scenario())


def test_blob_receipts_persist_so_a_restart_does_not_redeliver(
    environ: dict[str, str], storage: RunningAzurite, container: str
) -> None:
    async def scenario() -> None:
        await upload(storage.connection_string, container, "incoming/kept.txt", b"once")
        async with hosted(environ, host_id="restart-test") as host:
            await host.wait_for_blob_idle(timeout=10)
        assert len(sample.BLOB_CALLS) == 1
        async with hosted(environ, host_id="restart-test") as host:
            await host.wait_for_blob_idle(timeout=10)
        assert len(sample.BLOB_CALLS) == 1
        async with hosted(
            environ, host_id="restart-test", blobs={"persist_receipts": False}
        ) as host:
            await host.wait_for_blob_idle(timeout=10)
        assert len(sample.BLOB_CALLS) == 2  # memory-only receipts start empty

    run(scenario())


def test_a_failing_blob_is_retried_five_times_then_poisoned(
    environ: dict[str, str],
    storage: RunningAzurite,
    container: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)

    async def scenario() -> None:
        async with hosted(environ) as host:
            await upload(storage.connection_string, container, "incoming/bad.txt", b"fail me")
            await host.wait_for_blob_idle(timeout=10)
            assert len(sample.BLOB_CALLS) == 5
            failures = [r for r in host.invocations if r.function_name == "on_blob"]
            assert [r.succeeded for r in failures] == [False] * 5
            assert "ValueError: cannot process" in (failures[0].error or "")
            assert f"Blob '{container}/incoming/bad.txt' will be skipped" in caplog.text
            assert "(poison)" in caplog.text
            await host.wait_for_blob_idle(timeout=10)
            assert len(sample.BLOB_CALLS) == 5  # poisoned: not retried on later scans

    run(scenario())
    poison = QueueClient.from_connection_string(
        storage.connection_string, "webjobs-blobtrigger-poison"
    )
    with poison:
        messages = [json.loads(m.content) for m in poison.peek_messages(max_messages=32)]
    assert {"ContainerName": container, "BlobName": "incoming/bad.txt"}.items() <= {
        key: value
        for message in messages
        if message["ContainerName"] == container
        for key, value in message.items()
    }.items()


def test_blob_deliveries_run_concurrently_up_to_the_limit(
    environ: dict[str, str], storage: RunningAzurite, container: str
) -> None:
    async def scenario() -> None:
        for index in range(6):
            await upload(storage.connection_string, container, f"incoming/s{index}.txt", b"slow")
        async with hosted(environ, blobs={"concurrency": 2}) as host:
            await host.wait_for_blob_idle(timeout=10)
        assert len(sample.BLOB_CALLS) == 6
        assert sample.BLOB_CONCURRENCY["max"] == 2

    run(scenario())


def test_stop_ends_a_poller_that_swallowed_its_cancellation(
    environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before Python 3.12, asyncio.wait_for can eat a cancel that lands as its wait completes.

    A poller that ate its cancel kept polling, and the host's stop waited on it for ever
    (a CI run hung in this file's receipts test until pytest-timeout ended it).
    """
    from scripts.functions_host.blobs import BlobTriggers

    swallowed: list[bool] = []

    async def scan_that_swallows_one_cancel(self: BlobTriggers, watch: object) -> None:
        if swallowed:
            return
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            swallowed.append(True)  # ends normally, as wait_for did with a finished wait

    monkeypatch.setattr(BlobTriggers, "_scan", scan_that_swallows_one_cancel)

    async def scenario() -> None:
        async with hosted(environ) as host:
            await asyncio.sleep(0.2)  # the poller is now inside its scan
            stopping = asyncio.ensure_future(host.stop())
            done, _ = await asyncio.wait({stopping}, timeout=20)
            assert stopping in done, "the host's stop never ended"
        assert swallowed == [True]

    run(scenario())
