"""Queue triggers against Azurite: delivery, visibility delays, retries, poison, encodings.

Every test gets its own queue, named through the `SAMPLE_QUEUE` app setting that the sample
function's `queueName` (`%SAMPLE_QUEUE%`) reads. Messages are sent and inspected with the
real azure-storage-queue client, the way a producer in the app would send them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import azure.functions as func
import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import BinaryBase64EncodePolicy, TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

from scripts.azurite import RunningAzurite
from scripts.functions_host.errors import FunctionsHostError, MissingSettingError
from scripts.functions_host.host import LocalFunctionsHost
from scripts.functions_host.http import HttpOptions
from scripts.functions_host.queues import (
    LOCAL_MAX_POLLING_INTERVAL,
    PollBackoff,
    QueueOptions,
    QueueTriggers,
    parse_timespan,
    queue_settings,
)
from tests.integration.functions_host import queue_app
from tests.integration.functions_host.support import LOGGER, run, wait_until

# Polls an idle queue at least 5 times a second, so deliveries are quick to observe.
FAST_POLL = 0.2


@pytest.fixture(autouse=True)
def _fresh_queue_app_state() -> Iterator[None]:
    queue_app.reset()
    yield
    queue_app.reset()


@pytest.fixture
def queue_name() -> str:
    return f"q-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def queue_environ(storage: RunningAzurite, queue_name: str) -> dict[str, str]:
    return {"SampleStorage": storage.connection_string, "SAMPLE_QUEUE": queue_name}


@contextlib.asynccontextmanager
async def hosted_queues(
    environ: Mapping[str, str],
    *,
    extensions: Mapping[str, Any] | None = None,
    shutdown_timeout: float = 3.0,
    **queue_options: Any,
) -> AsyncIterator[QueueTriggers]:
    """The queue sample app, started and idle (its queue created); yields its queue kind."""
    options = QueueOptions(**{"max_polling_interval": FAST_POLL, **queue_options})
    host = LocalFunctionsHost(
        queue_app.app,
        environ=environ,
        options=[HttpOptions(port=0), options],
        extensions=extensions,
        shutdown_timeout=shutdown_timeout,
    )
    await host.start()
    try:
        queues = host.trigger_kind(QueueTriggers)
        await queues.wait_for_idle(timeout=10)
        yield queues
    finally:
        await host.stop()


async def send(
    connection_string: str,
    queue: str,
    content: str | bytes,
    *,
    encode: bool = True,
    visibility_timeout: int | None = None,
) -> str:
    """Send as an app would: base64 (text or bytes) unless `encode` is off; the message id."""
    policy = (
        (BinaryBase64EncodePolicy() if isinstance(content, bytes) else TextBase64EncodePolicy())
        if encode
        else None
    )
    client = QueueClient.from_connection_string(
        connection_string, queue, message_encode_policy=policy
    )
    async with client:
        sent = await client.send_message(content, visibility_timeout=visibility_timeout)
    return str(sent.id)


async def queue_state(connection_string: str, queue: str) -> tuple[int, list[str]]:
    """(messages in the queue, visible or not; the raw text of the visible ones)."""
    async with QueueClient.from_connection_string(connection_string, queue) as client:
        properties = await client.get_queue_properties()
        visible = await client.peek_messages(max_messages=32)
    return properties.approximate_message_count or 0, [str(m.content) for m in visible]


def test_a_message_is_delivered_once_as_a_queue_message_then_deleted(
    queue_environ: dict[str, str],
    storage: RunningAzurite,
    queue_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    conn = storage.connection_string

    async def scenario() -> None:
        async with hosted_queues(queue_environ) as queues:
            # Created on start, with the poison queue next to it.
            assert await queue_state(conn, queue_name) == (0, [])
            assert await queue_state(conn, f"{queue_name}-poison") == (0, [])
            before = dt.datetime.now(dt.UTC)
            sent_id = await send(conn, queue_name, "hello queue")
            await wait_until(lambda: len(queue_app.CALLS) == 1, 5, "the delivery")
            await queues.wait_for_idle()
            await asyncio.sleep(4 * FAST_POLL)  # more polls: still delivered once
        assert len(queue_app.CALLS) == 1
        delivery = queue_app.CALLS[0]
        message = delivery.message
        assert isinstance(message, func.QueueMessage)
        assert delivery.body == b"hello queue"
        assert message.id == sent_id
        assert message.dequeue_count == 1
        assert message.pop_receipt
        inserted = message.insertion_time
        assert isinstance(inserted, dt.datetime)
        assert before - dt.timedelta(seconds=2) <= inserted <= dt.datetime.now(dt.UTC)
        expires, next_visible = message.expiration_time, message.time_next_visible
        assert isinstance(expires, dt.datetime) and isinstance(next_visible, dt.datetime)
        assert expires > inserted and next_visible > inserted
        assert await queue_state(conn, queue_name) == (0, [])
        assert (
            f"Executing 'Functions.on_message' (Reason='New queue message detected on "
            f"'{queue_name}'.'" in caplog.text
        )

    run(scenario())


def test_a_message_sent_with_a_visibility_delay_is_delivered_only_once_visible(
    queue_environ: dict[str, str], storage: RunningAzurite, queue_name: str
) -> None:
    delay = 2

    async def scenario() -> None:
        async with hosted_queues(queue_environ):
            sent_at = time.monotonic()
            await send(storage.connection_string, queue_name, "later", visibility_timeout=delay)
            await asyncio.sleep(delay - 0.5)
            assert queue_app.CALLS == []  # polled several times meanwhile
            await wait_until(lambda: len(queue_app.CALLS) == 1, delay + 30, "the delivery")
        waited = queue_app.CALLS[0].at - sent_at
        # Azurite counts visibility in whole seconds. Not before it is visible is the rule; the
        # upper bound only says it was not left for another visibility period (a busy machine
        # delays polls by seconds, so it is loose).
        assert delay - 0.25 <= waited <= 2 * delay + 6, waited

    run(scenario())


def test_a_failing_message_is_retried_after_visibility_timeout_with_its_dequeue_count(
    queue_environ: dict[str, str], storage: RunningAzurite, queue_name: str
) -> None:
    conn = storage.connection_string
    extensions = {"queues": {"visibilityTimeout": "00:00:01"}}

    async def scenario() -> None:
        async with hosted_queues(queue_environ, extensions=extensions) as queues:
            await send(conn, queue_name, "fail-twice")
            await wait_until(lambda: len(queue_app.CALLS) == 3, 8, "three deliveries")
            await queues.wait_for_idle()
        assert [d.message.dequeue_count for d in queue_app.CALLS] == [1, 2, 3]
        assert len({d.message.id for d in queue_app.CALLS}) == 1
        gaps = [b.at - a.at for a, b in itertools.pairwise(queue_app.CALLS)]
        assert all(gap >= 0.75 for gap in gaps), gaps  # host.json's 1 s retry delay
        assert await queue_state(conn, queue_name) == (0, [])
        assert await queue_state(conn, f"{queue_name}-poison") == (0, [])

    run(scenario())


def test_a_message_failing_max_dequeue_count_times_moves_to_the_poison_queue(
    queue_environ: dict[str, str],
    storage: RunningAzurite,
    queue_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    conn = storage.connection_string
    extensions = {"queues": {"maxDequeueCount": 3}}

    async def scenario() -> None:
        async with hosted_queues(queue_environ, extensions=extensions) as queues:
            await send(conn, queue_name, "fail always")
            await wait_until(lambda: len(queue_app.CALLS) == 3, 5, "three deliveries")
            await queues.wait_for_idle()
            await asyncio.sleep(4 * FAST_POLL)  # not delivered again
        assert [d.message.dequeue_count for d in queue_app.CALLS] == [1, 2, 3]
        assert await queue_state(conn, queue_name) == (0, [])
        # Copied as sent: the base64 text the producer wrote, not the decoded body.
        assert await queue_state(conn, f"{queue_name}-poison") == (1, ["ZmFpbCBhbHdheXM="])

    run(scenario())
    assert (
        f"Message has reached MaxDequeueCount of 3. Moving message to queue "
        f"'{queue_name}-poison'." in caplog.text
    )
    assert caplog.text.count("Executed 'Functions.on_message' (Failed") == 3


def test_base64_messages_are_decoded_and_undecodable_ones_are_poisoned_unrun(
    queue_environ: dict[str, str],
    storage: RunningAzurite,
    queue_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    conn = storage.connection_string
    binary = b"\x00\xffbinary\x80"

    async def scenario() -> None:
        async with hosted_queues(queue_environ) as queues:
            await send(conn, queue_name, binary)
            await send(conn, queue_name, "not base64!", encode=False)
            await wait_until(lambda: len(queue_app.CALLS) == 1, 5, "the binary delivery")
            await queues.wait_for_idle()
        assert [d.body for d in queue_app.CALLS] == [binary]
        assert await queue_state(conn, queue_name) == (0, [])
        assert await queue_state(conn, f"{queue_name}-poison") == (1, ["not base64!"])
        assert "Message decoding has failed! Check MessageEncoding settings." in caplog.text

    run(scenario())


def test_message_encoding_none_delivers_the_raw_text(
    queue_environ: dict[str, str], storage: RunningAzurite, queue_name: str
) -> None:
    conn = storage.connection_string
    # The host reads the enum case-insensitively, as .NET configuration does.
    extensions = {"queues": {"messageEncoding": "None"}}

    async def scenario() -> None:
        async with hosted_queues(queue_environ, extensions=extensions) as queues:
            await send(conn, queue_name, '{"document": "a.pdf"}', encode=False)
            await wait_until(lambda: len(queue_app.CALLS) == 1, 5, "the delivery")
            await queues.wait_for_idle()
        message = queue_app.CALLS[0].message
        assert message.get_body() == b'{"document": "a.pdf"}'
        assert message.get_json() == {"document": "a.pdf"}
        assert await queue_state(conn, queue_name) == (0, [])

    run(scenario())


def test_deliveries_run_up_to_batch_size_plus_new_batch_threshold_at_once(
    queue_environ: dict[str, str], storage: RunningAzurite, queue_name: str
) -> None:
    conn = storage.connection_string

    async def scenario() -> None:
        async with hosted_queues(queue_environ, batch_size=2, new_batch_threshold=1) as queues:
            # Unequal durations, so one finishes while others still run and the next batch
            # is fetched at the threshold (equal ones would all finish together).
            for index in range(8):
                await send(conn, queue_name, f"slow:{0.2 if index % 2 else 0.7}")
            await wait_until(lambda: len(queue_app.CALLS) == 8, 8, "eight deliveries")
            await queues.wait_for_idle()
        assert queue_app.CONCURRENCY["max"] == 3
        assert len({d.message.id for d in queue_app.CALLS}) == 8
        assert await queue_state(conn, queue_name) == (0, [])

    run(scenario())


def test_a_running_message_stays_invisible_past_its_lease_by_renewal(
    queue_environ: dict[str, str], storage: RunningAzurite, queue_name: str
) -> None:
    conn = storage.connection_string

    async def scenario() -> None:
        # A 2 s lease renewed every second; the handler runs for 3.5 s.
        async with hosted_queues(queue_environ, message_lease=2) as queues:
            await send(conn, queue_name, "slow:3.5")
            await wait_until(lambda: len(queue_app.CALLS) == 1, 5, "the delivery")
            await wait_until(lambda: queue_app.CONCURRENCY["now"] == 0, 6, "the handler")
            await queues.wait_for_idle()
        assert len(queue_app.CALLS) == 1
        assert await queue_state(conn, queue_name) == (0, [])

    run(scenario())


def test_stopping_finishes_or_releases_running_messages(
    queue_environ: dict[str, str], storage: RunningAzurite, queue_name: str
) -> None:
    conn = storage.connection_string

    async def scenario() -> None:
        async with hosted_queues(queue_environ, shutdown_timeout=1.0):
            await send(conn, queue_name, "slow:0.5")
            await send(conn, queue_name, "hang")
            await wait_until(lambda: queue_app.CONCURRENCY["now"] == 2, 5, "both running")
        # The quick one finished within the shutdown timeout and was deleted; the hanging
        # one was cancelled and is visible again at once (not after its lease).
        count, visible = await queue_state(conn, queue_name)
        assert (count, visible) == (1, ["aGFuZw=="])
        async with QueueClient.from_connection_string(conn, queue_name) as client:
            (peeked,) = await client.peek_messages()
        assert peeked.dequeue_count == 1

    run(scenario())


def test_queue_names_come_from_settings_and_bad_configuration_fails_at_start(
    queue_environ: dict[str, str], queue_name: str
) -> None:
    mixed_case = {**queue_environ, "SAMPLE_QUEUE": queue_name.upper()}
    host = LocalFunctionsHost(queue_app.app, environ=mixed_case)
    # The host lower-cases queue names before validating them.
    assert host.describe()[-1] == f"on_message: queueTrigger ({queue_name} via SampleStorage)"

    without = {k: v for k, v in queue_environ.items() if k != "SAMPLE_QUEUE"}
    with pytest.raises(MissingSettingError, match=r"queueName of queue trigger 'on_message'"):
        LocalFunctionsHost(queue_app.app, environ=without)
    with pytest.raises(FunctionsHostError, match="'a_b' is not a valid queue name"):
        LocalFunctionsHost(queue_app.app, environ={**queue_environ, "SAMPLE_QUEUE": "a_b"})
    with pytest.raises(FunctionsHostError, match=r"extensions.queues batch_size=64 must be 1 to"):
        LocalFunctionsHost(
            queue_app.app, environ=queue_environ, extensions={"queues": {"batchSize": 64}}
        )
    with pytest.raises(FunctionsHostError, match="maxPollingInterval must be a TimeSpan"):
        LocalFunctionsHost(
            queue_app.app,
            environ=queue_environ,
            extensions={"queues": {"maxPollingInterval": 2000}},
        )


def test_settings_take_options_then_host_json_then_the_defaults() -> None:
    defaults = queue_settings(QueueOptions(), {})
    assert (defaults.batch_size, defaults.new_batch_threshold, defaults.max_concurrency) == (
        16,
        8,
        24,
    )
    assert (defaults.max_dequeue_count, defaults.visibility_timeout) == (5, 0.0)
    assert defaults.message_encoding == "base64"
    assert defaults.max_polling_interval == LOCAL_MAX_POLLING_INTERVAL

    host_json = {
        "queues": {
            "batchSize": 8,
            "maxPollingInterval": "00:00:02",
            "visibilityTimeout": "00:00:30",
            "MaxDequeueCount": 2,
        }
    }
    configured = queue_settings(QueueOptions(batch_size=4), host_json)
    assert (configured.batch_size, configured.new_batch_threshold) == (4, 2)
    assert (configured.max_polling_interval, configured.visibility_timeout) == (2.0, 30.0)
    assert configured.max_dequeue_count == 2

    assert parse_timespan("1.02:03:04.5", where="x") == 86400 + 7384.5
    with pytest.raises(FunctionsHostError, match="must be at least 2 seconds"):
        QueueOptions(message_lease=1)
    with pytest.raises(FunctionsHostError, match="message_encoding='utf8' must be base64 or"):
        QueueOptions(message_encoding="utf8")


def test_idle_polls_back_off_exponentially_up_to_the_maximum() -> None:
    backoff = PollBackoff(maximum=2.0)
    delays = [backoff.next_delay(found_messages=False) for _ in range(10)]
    assert delays[0] == pytest.approx(0.1)
    assert all(a <= b for a, b in itertools.pairwise(delays))
    assert delays[-1] == 2.0
    assert backoff.next_delay(found_messages=True) == pytest.approx(0.1)


def test_a_missing_queue_is_waited_for_when_creating_queues_is_off(
    queue_environ: dict[str, str], storage: RunningAzurite, queue_name: str
) -> None:
    conn = storage.connection_string

    async def scenario() -> None:
        async with hosted_queues(queue_environ, create_queues=False) as queues:
            with pytest.raises(ResourceNotFoundError):
                await queue_state(conn, queue_name)
            async with QueueClient.from_connection_string(conn, queue_name) as client:
                await client.create_queue()
            await send(conn, queue_name, "after creation")
            await wait_until(lambda: len(queue_app.CALLS) == 1, 5, "the delivery")
            await queues.wait_for_idle()
        assert await queue_state(conn, queue_name) == (0, [])

    run(scenario())
