"""Queue triggers: polling Storage queues as the host's Storage Queues extension does.

Owns: `queueTrigger` bindings (`queueName`, which may hold `%SETTING%` expressions, and the
storage `connection`), host.json `extensions.queues` (`maxPollingInterval`,
`visibilityTimeout`, `batchSize`, `newBatchThreshold`, `maxDequeueCount`, `messageEncoding`)
with `QueueOptions` over them, and each function's listener: polling with the host's
randomized exponential backoff while the queue is empty (again at once when a batch was
found), receiving up to `batchSize` messages invisible for a renewed lease while they run,
fetching another batch once no more than `newBatchThreshold` are in flight, handing each
handler a `func.QueueMessage` decoded per `messageEncoding`, then deleting the message on
success, releasing it after `visibilityTimeout` on failure, or copying it to
`<queue>-poison` (and deleting it) once its dequeue count has reached `maxDequeueCount`.

Differs from the host on purpose, for local work: by default (`QueueOptions.create_queues`)
the trigger queue and its poison queue are created when missing, where the host creates
neither up front (it waits for the trigger queue, and creates the poison queue at the first
poison message); an idle queue is polled at least every second unless host.json sets
`maxPollingInterval` (Azure's default is a minute); running messages are leased for 60 s
rather than 10 minutes (both renewed at half-time), so a killed local host's messages come
back sooner; and an invocation cut off by the shutdown timeout makes its message visible
again at once (a sync handler's thread may still be running: it cannot be cancelled).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import logging
import random
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.functions.queue import QueueMessage as FunctionsQueueMessage
from azure.storage.queue import QueueMessage as StorageQueueMessage
from azure.storage.queue.aio import QueueClient

from scripts.functions_host.errors import FunctionsHostError
from scripts.functions_host.indexing import (
    IndexedFunction,
    resolve_setting_expressions,
    storage_connection,
)
from scripts.functions_host.triggers import HostContext, TriggerKind

logger = logging.getLogger(__name__)

# The host's defaults (QueuesOptions in the Storage Queues extension, v5).
DEFAULT_BATCH_SIZE = 16
MAX_BATCH_SIZE = 32  # the queue service returns at most 32 messages per request
DEFAULT_MAX_DEQUEUE_COUNT = 5
DEFAULT_VISIBILITY_TIMEOUT = 0.0
AZURE_MAX_POLLING_INTERVAL = 60.0
MIN_POLLING_INTERVAL = 0.1  # QueuePollingIntervals.Minimum: also the backoff's first step
MESSAGE_ENCODINGS = ("base64", "none")
POISON_SUFFIX = "-poison"

# Local choices: Azure's 1-minute ceiling would make every `make dev` message wait up to a
# minute after an idle spell, so the local host polls an idle queue at least every second
# unless host.json or QueueOptions say otherwise.
LOCAL_MAX_POLLING_INTERVAL = 1.0
# The host receives messages invisible for 10 minutes and renews that at half-time. A shorter
# lease (still renewed at half-time) brings a message back sooner after the local host is
# killed outright.
DEFAULT_MESSAGE_LEASE = 60.0
# How long stopping waits for a poll's request before cancelling it.
_POLL_STOP_TIMEOUT = 5.0
# Bounds each storage call made while an invocation is being cancelled.
_RELEASE_TIMEOUT = 5.0

# Azure's queue names: 3-63 characters, lowercase letters, digits and single hyphens, starting
# and ending with a letter or digit.
_QUEUE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")
# .NET TimeSpan text as host.json writes it: [d.]hh:mm[:ss[.fffffff]].
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?$")


@dataclasses.dataclass(frozen=True)
class QueueOptions:
    """Queue-trigger settings; None means host.json's `extensions.queues` value, else the default.

    Durations are in seconds. `visibility_timeout` is the delay before a failed message is
    retried (not the lease while it runs, which is `message_lease`); the queue service counts
    visibility in whole seconds, so fractions are dropped as the host drops them.
    """

    max_polling_interval: float | None = None  # default LOCAL_MAX_POLLING_INTERVAL (Azure: 60)
    visibility_timeout: float | None = None  # default 0
    batch_size: int | None = None  # default 16, at most 32
    new_batch_threshold: int | None = None  # default batch_size // 2
    max_dequeue_count: int | None = None  # default 5
    message_encoding: str | None = None  # "base64" (default) or "none"
    message_lease: float = DEFAULT_MESSAGE_LEASE
    # False waits for a missing trigger queue instead of creating it, as the host does.
    create_queues: bool = True

    def __post_init__(self) -> None:
        _check_settings(
            "QueueOptions",
            max_polling_interval=self.max_polling_interval,
            visibility_timeout=self.visibility_timeout,
            batch_size=self.batch_size,
            new_batch_threshold=self.new_batch_threshold,
            max_dequeue_count=self.max_dequeue_count,
            message_encoding=self.message_encoding,
        )
        if self.message_lease < 2:
            # Half of it is the renewal period, and the service counts whole seconds.
            raise FunctionsHostError("QueueOptions.message_lease must be at least 2 seconds")


@dataclasses.dataclass(frozen=True)
class QueueSettings:
    """The queue settings in effect: QueueOptions over host.json over the defaults."""

    max_polling_interval: float
    visibility_timeout: float
    batch_size: int
    new_batch_threshold: int
    max_dequeue_count: int
    message_encoding: str
    message_lease: float
    create_queues: bool

    @property
    def max_concurrency(self) -> int:
        """Messages of one function in flight at most: a batch arrives at the threshold."""
        return self.batch_size + self.new_batch_threshold


def _in_range(name: str, value: Any) -> bool:
    if name == "message_encoding":
        return str(value).lower() in MESSAGE_ENCODINGS
    if name == "max_polling_interval":
        return bool(value >= MIN_POLLING_INTERVAL)
    if name == "batch_size":
        return bool(1 <= value <= MAX_BATCH_SIZE)
    if name == "max_dequeue_count":
        return bool(value >= 1)
    return bool(value >= 0)  # visibility_timeout, new_batch_threshold


_LIMITS = {
    "max_polling_interval": f"at least {MIN_POLLING_INTERVAL} s",
    "visibility_timeout": ">= 0",
    "batch_size": f"1 to {MAX_BATCH_SIZE}",
    "new_batch_threshold": ">= 0",
    "max_dequeue_count": ">= 1",
    "message_encoding": " or ".join(MESSAGE_ENCODINGS),
}


def _check_settings(where: str, **values: Any) -> None:
    """One-line errors for out-of-range settings, named as `where` spells them."""
    for name, value in values.items():
        if value is not None and not _in_range(name, value):
            raise FunctionsHostError(f"{where} {name}={value!r} must be {_LIMITS[name]}")


def parse_timespan(value: object, *, where: str) -> float:
    """Seconds in a host.json TimeSpan such as "00:01:00" or "00:00:00.500"."""
    match = _TIMESPAN.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise FunctionsHostError(
            f'{where} must be a TimeSpan string like "00:00:30" ([d.]hh:mm:ss), not {value!r}'
        )
    days, hours, minutes, seconds, fraction = match.groups()
    if int(hours) > 23 or int(minutes) > 59 or int(seconds or 0) > 59:
        raise FunctionsHostError(f"{where}: {value!r} is not a valid TimeSpan")
    return (
        int(days or 0) * 86400
        + int(hours) * 3600
        + int(minutes) * 60
        + int(seconds or 0)
        + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)
    )


def queue_settings(options: QueueOptions, extensions: Mapping[str, Any]) -> QueueSettings:
    """The settings in effect: each QueueOptions field, else host.json's, else the default."""
    section = extensions.get("queues")
    # The host binds host.json with .NET configuration, which ignores the keys' case.
    configured = (
        {str(key).lower(): value for key, value in section.items()}
        if isinstance(section, Mapping)
        else {}
    )

    def from_host_json(name: str, kind: str) -> Any:
        value = configured.get(name.lower())
        if value is None:
            return None
        where = f"host.json extensions.queues.{name}"
        if kind == "timespan":
            return parse_timespan(value, where=where)
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise FunctionsHostError(f"{where} must be an integer, not {value!r}")
            try:
                return int(value)
            except ValueError:
                raise FunctionsHostError(f"{where} must be an integer, not {value!r}") from None
        return str(value)

    json_values = {
        "max_polling_interval": from_host_json("maxPollingInterval", "timespan"),
        "visibility_timeout": from_host_json("visibilityTimeout", "timespan"),
        "batch_size": from_host_json("batchSize", "int"),
        "new_batch_threshold": from_host_json("newBatchThreshold", "int"),
        "max_dequeue_count": from_host_json("maxDequeueCount", "int"),
        "message_encoding": from_host_json("messageEncoding", "str"),
    }
    _check_settings("host.json extensions.queues", **json_values)

    def pick(name: str, default: Any) -> Any:
        given = getattr(options, name)
        if given is not None:
            return given
        return default if json_values[name] is None else json_values[name]

    batch_size = int(pick("batch_size", DEFAULT_BATCH_SIZE))
    return QueueSettings(
        max_polling_interval=float(pick("max_polling_interval", LOCAL_MAX_POLLING_INTERVAL)),
        visibility_timeout=float(pick("visibility_timeout", DEFAULT_VISIBILITY_TIMEOUT)),
        batch_size=batch_size,
        # The host's default is batchSize/2 times the vCPUs on dedicated plans and once on
        # Consumption and Flex; the local host takes the single-instance figure.
        new_batch_threshold=int(pick("new_batch_threshold", batch_size // 2)),
        max_dequeue_count=int(pick("max_dequeue_count", DEFAULT_MAX_DEQUEUE_COUNT)),
        message_encoding=str(pick("message_encoding", "base64")).lower(),
        message_lease=options.message_lease,
        create_queues=options.create_queues,
    )


def normalize_queue_name(name: str, *, where: str) -> str:
    """Lower-case and validate a queue name, as the host does before it listens."""
    normalized = name.strip().lower()
    if not _QUEUE_NAME.match(normalized):
        raise FunctionsHostError(
            f"{where}: {name!r} is not a valid queue name (3-63 characters: lowercase letters, "
            "digits and single hyphens, starting and ending with a letter or digit)"
        )
    return normalized


def poison_queue_name(queue_name: str) -> str | None:
    """`<queue>-poison`, or None where the host has no poison queue (see `_fail`)."""
    if queue_name.endswith(POISON_SUFFIX):
        return None
    candidate = queue_name + POISON_SUFFIX
    return candidate if _QUEUE_NAME.match(candidate) else None


class PollBackoff:
    """The host's RandomizedExponentialBackoffStrategy between polls of one queue.

    After a poll that found messages, the next empty poll waits the minimum (100 ms); each
    further empty poll waits the minimum plus 100 ms * 2^(n-1), randomized by +-20%, until
    the ceiling (`maxPollingInterval`) is reached.
    """

    def __init__(self, maximum: float, minimum: float = MIN_POLLING_INTERVAL) -> None:
        self.minimum = minimum
        self.maximum = max(maximum, minimum)
        self.current = minimum
        self._exponent = 0

    def next_delay(self, found_messages: bool) -> float:
        if found_messages:
            self.current = self.minimum
            self._exponent = 1
        elif self.current != self.maximum:
            interval = self.minimum
            if self._exponent > 0:
                interval += random.uniform(0.8, 1.2) * 2 ** (self._exponent - 1) * self.minimum
            if interval < self.maximum:
                self.current = interval
                self._exponent += 1
            else:
                self.current = self.maximum
        return self.current


def decode_message(content: str, encoding: str) -> bytes:
    """A message's body bytes; raises ValueError when base64 text does not decode."""
    if encoding == "none":
        return content.encode("utf-8")
    try:
        # .NET's Convert.FromBase64String, which the host uses, skips white space.
        return base64.b64decode("".join(content.split()), validate=True)
    except binascii.Error as exc:
        raise ValueError(str(exc)) from exc


def _is_pop_receipt_mismatch(error: AzureError) -> bool:
    # The storage SDK sets `error_code` on the errors it raises; azure-core does not declare it.
    code = getattr(error, "error_code", None)
    return isinstance(error, HttpResponseError) and code == "PopReceiptMismatch"


def _is_gone(error: AzureError) -> bool:
    """The message (or its queue) is gone, or someone else now holds it: nothing to do."""
    return isinstance(error, ResourceNotFoundError) or _is_pop_receipt_mismatch(error)


def _one_line(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"


@dataclasses.dataclass(eq=False)  # hashed by identity: one per delivery
class _Lease:
    """A received message's current pop receipt, shared by its renewals and its completion.

    Every update of the message returns a new pop receipt, which the next update needs; the
    lock keeps a renewal and the completion from using the same receipt at once.
    """

    message_id: str
    pop_receipt: str
    done: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)


@dataclasses.dataclass
class _QueueWatch:
    """One queue-trigger function: its queue clients and its listener's state."""

    function: IndexedFunction
    queue_name: str
    poison_name: str | None
    setting: str
    queue: QueueClient
    poison: QueueClient | None
    # One lease per delivery being processed (a message id could be held twice, if its lease
    # lapsed while it ran).
    in_flight: set[_Lease] = dataclasses.field(default_factory=set)
    wake: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    slot_freed: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    queue_ready: bool = False
    missing_queue_logged: bool = False
    polls_started: int = 0
    # The number of the last poll that found the queue empty with nothing in flight.
    last_idle_poll: int = 0
    last_poll_error: str | None = None


class QueueTriggers(TriggerKind):
    """`queueTrigger` functions, each fed by a listener polling its queue."""

    def __init__(self, context: HostContext) -> None:
        super().__init__(context)
        self.settings = queue_settings(context.options_for(QueueOptions), context.extensions)
        self._watches: list[_QueueWatch] = []
        self._pollers: list[asyncio.Task[None]] = []
        self._stop_requested = asyncio.Event()

    def add(self, function: IndexedFunction) -> None:
        where = f"queue trigger '{function.name}'"
        raw_name = resolve_setting_expressions(
            str(function.trigger.get("queueName", "")),
            self.context.environ,
            where=f"queueName of {where}",
        )
        queue_name = normalize_queue_name(raw_name, where=where)
        setting, connection_string = storage_connection(
            str(function.trigger.get("connection") or ""), self.context.environ, where=where
        )
        poison_name = poison_queue_name(queue_name)
        try:
            # No message encode/decode policies: the listener reads the raw text, decodes it
            # per messageEncoding itself, and copies it to the poison queue unchanged.
            queue = QueueClient.from_connection_string(
                connection_string, queue_name, **self._client_retry()
            )
            poison = (
                None
                if poison_name is None
                else QueueClient.from_connection_string(
                    connection_string, poison_name, **self._client_retry()
                )
            )
        except ValueError as exc:
            raise FunctionsHostError(
                f"{where}: the app setting {setting} is not a valid storage connection string "
                "with a queue endpoint"
            ) from exc
        self._watches.append(_QueueWatch(function, queue_name, poison_name, setting, queue, poison))

    @staticmethod
    def _client_retry() -> dict[str, Any]:
        # The SDK's default waits 15 s and more between attempts; a poll should fail in
        # seconds when storage is down (the next poll retries), and so should a stop.
        return {
            "initial_backoff": 1,
            "increment_base": 2,
            "retry_total": 2,
            "random_jitter_range": 1,
        }

    def describe(self) -> list[str]:
        return [
            f"{watch.function.name}: queueTrigger ({watch.queue_name} via {watch.setting})"
            for watch in self._watches
        ]

    async def start(self) -> None:
        for watch in self._watches:
            self._pollers.append(
                asyncio.create_task(self._listen(watch), name=f"queues:{watch.function.name}")
            )

    async def stop(self) -> None:
        """Stop polling; running invocations are drained by the host meanwhile.

        A poll's request is let finish rather than cancelled, so messages it received are
        not left invisible for a whole lease: they are released unprocessed instead.
        """
        self._stop_requested.set()
        for watch in self._watches:
            watch.wake.set()
            watch.slot_freed.set()
        if not self._pollers:
            return
        _, pending = await asyncio.wait(self._pollers, timeout=_POLL_STOP_TIMEOUT)
        for task in pending:
            task.cancel()
        await asyncio.gather(*self._pollers, return_exceptions=True)

    async def close(self) -> None:
        for watch in self._watches:
            await watch.queue.close()
            if watch.poison is not None:
                await watch.poison.close()

    async def wait_for_idle(self, timeout: float = 10.0) -> None:
        """Return once every queue was polled empty after this call with nothing in flight.

        Listeners are woken at once, so this does not wait for the backoff. Messages that are
        not visible yet (sent with a delay, or waiting out `visibilityTimeout` after a
        failure) do not count: wait for what they cause instead.
        """
        targets = {id(watch): watch.polls_started for watch in self._watches}
        deadline = time.monotonic() + timeout
        while True:
            pending = [
                watch for watch in self._watches if watch.last_idle_poll <= targets[id(watch)]
            ]
            if not pending:
                return
            if time.monotonic() > deadline:
                errors = [w.last_poll_error for w in self._watches if w.last_poll_error]
                in_flight = sum(len(w.in_flight) for w in self._watches)
                raise TimeoutError(
                    f"queue listeners not idle after {timeout:.1f}s "
                    f"({in_flight} in flight; last errors: {errors or 'none'})"
                )
            for watch in pending:
                watch.wake.set()
            await asyncio.sleep(0.02)

    # -- polling --

    async def _listen(self, watch: _QueueWatch) -> None:
        backoff = PollBackoff(self.settings.max_polling_interval)
        found_since_last_delay = False
        while not self._stop_requested.is_set():
            # A new batch only once no more than newBatchThreshold messages are in flight.
            while len(watch.in_flight) > self.settings.new_batch_threshold:
                watch.slot_freed.clear()
                await watch.slot_freed.wait()
                if self._stop_requested.is_set():
                    return
            watch.polls_started += 1
            poll = watch.polls_started
            idle_at_start = not watch.in_flight
            messages = await self._poll(watch)
            if self._stop_requested.is_set():
                await self._release_unstarted(watch, messages or [])
                return
            if messages:
                found_since_last_delay = True
                for message in messages:
                    lease = _Lease(message.id, str(message.pop_receipt))
                    watch.in_flight.add(lease)
                    self.context.invoker.track(
                        self._process(watch, message, lease),
                        f"queue:{watch.function.name}:{message.id}",
                    )
                continue  # straight back for the next batch, as the host does
            if messages is not None and idle_at_start:
                watch.last_idle_poll = poll
            delay = backoff.next_delay(found_since_last_delay)
            found_since_last_delay = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watch.wake.wait(), delay)
            watch.wake.clear()

    async def _poll(self, watch: _QueueWatch) -> list[StorageQueueMessage] | None:
        """One receive of up to batchSize messages; None when the queue could not be read."""
        try:
            if not watch.queue_ready and not await self._ensure_queue(watch):
                return []  # no queue yet (create_queues off): nothing to deliver
            pages = watch.queue.receive_messages(
                messages_per_page=self.settings.batch_size,
                max_messages=self.settings.batch_size,
                visibility_timeout=int(self.settings.message_lease),
            ).by_page()
            # The first page only: one request per poll, like the host's. An empty queue
            # gives no page at all.
            page = await anext(pages, None)
            messages = [] if page is None else [message async for message in page]
        except ResourceNotFoundError:
            # Deleted under us: check (or create) it again on the next poll.
            watch.queue_ready = False
            return None
        except Exception as exc:
            # Storage down or refusing: log once per distinct error and keep polling.
            message = _one_line(exc)
            if message != watch.last_poll_error:
                logger.warning("Polling queue '%s' failed: %s", watch.queue_name, message)
            watch.last_poll_error = message
            return None
        watch.last_poll_error = None
        return messages

    async def _ensure_queue(self, watch: _QueueWatch) -> bool:
        """Create the queue and its poison queue, or (create_queues off) check it exists."""
        if self.settings.create_queues:
            for client in (watch.queue, watch.poison):
                if client is not None:
                    with contextlib.suppress(ResourceExistsError):
                        await client.create_queue()
        else:
            try:
                await watch.queue.get_queue_properties()
            except ResourceNotFoundError:
                if not watch.missing_queue_logged:
                    watch.missing_queue_logged = True
                    logger.warning(
                        "Queue '%s' for queue trigger '%s' does not exist yet; waiting for it",
                        watch.queue_name,
                        watch.function.name,
                    )
                return False
        watch.missing_queue_logged = False
        watch.queue_ready = True
        return True

    async def _release_unstarted(
        self, watch: _QueueWatch, messages: Iterable[StorageQueueMessage]
    ) -> None:
        """Make messages received while stopping visible again, without invoking anything."""
        for message in messages:
            with contextlib.suppress(AzureError, TimeoutError):
                await asyncio.wait_for(
                    watch.queue.update_message(
                        message.id, message.pop_receipt, visibility_timeout=0
                    ),
                    _RELEASE_TIMEOUT,
                )

    # -- processing one message --

    async def _process(
        self, watch: _QueueWatch, message: StorageQueueMessage, lease: _Lease
    ) -> None:
        renewal = asyncio.create_task(self._renew(watch, lease))
        try:
            await self._run(watch, message, lease)
        except asyncio.CancelledError:
            # The host's shutdown timeout cut the invocation off: make the message visible
            # again now (it keeps the dequeue count this delivery gave it), rather than when
            # its lease runs out.
            with contextlib.suppress(AzureError, TimeoutError):
                await self._settle(watch, lease, "release", 0)
            raise
        except Exception as exc:
            # The message stays invisible until its lease runs out, then is delivered again.
            logger.warning(
                "Queue message %s of '%s' not completed: %s",
                message.id,
                watch.queue_name,
                _one_line(exc),
            )
        finally:
            lease.done.set()
            await asyncio.gather(renewal, return_exceptions=True)
            watch.in_flight.discard(lease)
            watch.slot_freed.set()

    async def _run(self, watch: _QueueWatch, message: StorageQueueMessage, lease: _Lease) -> None:
        content = "" if message.content is None else str(message.content)
        dequeue_count = int(message.dequeue_count or 0)
        try:
            body = decode_message(content, self.settings.message_encoding)
        except ValueError:
            # The extension's MessageDecodingFailed handler: straight to poison, no invocation.
            await self._poison(
                watch,
                lease,
                content,
                "Message decoding has failed! Check MessageEncoding settings. "
                f"MessageId={message.id}.",
            )
            return
        if dequeue_count > self.settings.max_dequeue_count:
            # Dequeued more often than allowed without completing (a host died mid-run):
            # the host poisons it before invoking.
            await self._poison(watch, lease, content)
            return
        # The worker's own class (a func.QueueMessage) with the trigger metadata it fills in;
        # azure-functions leaves its constructor unannotated.
        value = FunctionsQueueMessage(  # type: ignore[no-untyped-call]
            id=message.id,
            body=body,
            dequeue_count=dequeue_count,
            expiration_time=message.expires_on,
            insertion_time=message.inserted_on,
            time_next_visible=message.next_visible_on,
            pop_receipt=message.pop_receipt,
        )
        record, _ = await self.context.invoker.invoke(
            watch.function, value, f"New queue message detected on '{watch.queue_name}'."
        )
        if record.succeeded:
            await self._settle(watch, lease, "delete")
        elif watch.poison is None:
            # As the host: with no poison queue (the queue is one, or its name is too long
            # for the suffix) a failed message is left invisible, so it cannot spin.
            logger.warning(
                "Queue '%s' has no poison queue; message %s stays invisible until its lease "
                "expires",
                watch.queue_name,
                message.id,
            )
        elif dequeue_count >= self.settings.max_dequeue_count:
            await self._poison(watch, lease, content)
        else:
            await self._settle(watch, lease, "release", self.settings.visibility_timeout)

    async def _poison(
        self, watch: _QueueWatch, lease: _Lease, content: str, reason: str | None = None
    ) -> None:
        """Copy the message's text unchanged to `<queue>-poison`, then delete it."""
        reason = reason or (
            f"Message has reached MaxDequeueCount of {self.settings.max_dequeue_count}."
        )
        if watch.poison is None:
            # Left invisible until its lease runs out, as a failure is (see `_run`).
            logger.warning("%s Queue '%s' has no poison queue.", reason, watch.queue_name)
            return
        logger.warning("%s Moving message to queue '%s'.", reason, watch.poison_name)
        try:
            await watch.poison.send_message(content)
        except ResourceNotFoundError:
            # Created at the first poison message, as the host does (or deleted since start).
            with contextlib.suppress(ResourceExistsError):
                await watch.poison.create_queue()
            await watch.poison.send_message(content)
        await self._settle(watch, lease, "delete")

    async def _settle(
        self, watch: _QueueWatch, lease: _Lease, action: str, visibility: float = 0.0
    ) -> None:
        """Delete the message, or make it visible after `visibility` seconds."""
        lease.done.set()
        try:
            # Waits for a renewal in progress, whose new pop receipt this call needs.
            async with lease.lock:
                if action == "delete":
                    await asyncio.wait_for(
                        watch.queue.delete_message(lease.message_id, lease.pop_receipt),
                        _RELEASE_TIMEOUT * 4,
                    )
                else:
                    await asyncio.wait_for(
                        watch.queue.update_message(
                            lease.message_id,
                            lease.pop_receipt,
                            visibility_timeout=int(visibility),
                        ),
                        _RELEASE_TIMEOUT * 4,
                    )
        except AzureError as exc:
            if not _is_gone(exc):
                raise
            # Deleted by the handler, or its lease lapsed and another delivery holds it.
            logger.debug("Queue message %s already gone or re-leased: %s", lease.message_id, exc)

    async def _renew(self, watch: _QueueWatch, lease: _Lease) -> None:
        """Keep a running message invisible: extend its lease at half-time until it is done."""
        period = self.settings.message_lease / 2
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lease.done.wait(), period)
                return
            async with lease.lock:
                if lease.done.is_set():
                    return
                try:
                    updated = await watch.queue.update_message(
                        lease.message_id,
                        lease.pop_receipt,
                        visibility_timeout=int(self.settings.message_lease),
                    )
                except AzureError as exc:
                    if _is_gone(exc):
                        logger.warning(
                            "Queue message %s of '%s' was lost while its function ran (%s); "
                            "it may be delivered again",
                            lease.message_id,
                            watch.queue_name,
                            _one_line(exc),
                        )
                        return
                    # Transient: the lease still has half its time; try again sooner.
                    logger.warning(
                        "Renewing queue message %s failed: %s", lease.message_id, _one_line(exc)
                    )
                    period = max(1.0, period / 2)
                    continue
                lease.pop_receipt = str(updated.pop_receipt)
                period = self.settings.message_lease / 2
