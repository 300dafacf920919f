"""Storage queues of delayed work: each message names one item to take up again later.

A parked job (the resume queue) and a batch run's next slice (the batch queue) are both a
message invisible for a computed delay, then delivered to a queue trigger. Messages are
base64-encoded JSON, the Functions queue trigger's default encoding: `{"<key>": id, "reason":
why}`. The callers that play a queue trigger themselves (the operator's command, the demo,
tests) receive visible messages here too.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import ResourceExistsError

if TYPE_CHECKING:  # the SDK is imported where the client is built (shared/composition.py)
    from azure.storage.queue import QueueClient

# Azure keeps a message invisible for at most seven days.
MAX_VISIBILITY_SECONDS = 7 * 24 * 3600


def encode_work_item(key: str, item_id: str, reason: str) -> str:
    return json.dumps({key: item_id, "reason": reason})


def decode_work_item(
    body: str, *, key: str, what: str, id_problem: Callable[[str], str | None]
) -> tuple[str, str]:
    """The item id and reason of a message body; ValueError says what is wrong with it.

    A message that can never name an item (not JSON, nested past the parser's depth, an id
    `id_problem` refuses) is an error here, so the trigger drops it with a log line instead of
    failing on it until the queue poisons it.
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as error:  # JSONDecodeError is a ValueError
        raise ValueError(
            f"a {what} message must be JSON ({type(error).__name__}), got {body[:80]!r}"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get(key), str):
        raise ValueError(f'a {what} message must be {{"{key}": ...}}, got {body[:80]!r}')
    problem = id_problem(data[key])
    if problem is not None:
        raise ValueError(f"a {what} message names no possible item: {problem}")
    return data[key], str(data.get("reason", ""))[:500]


_SDK_MODELS_LOCK = threading.Lock()


@cache
def prepare_queue_sdk_models() -> None:
    """Have the queue SDK describe its message models once, before threads use them.

    azure-storage-queue 12.18's generated models work out their fields on a class's first
    instance, iterating the class while writing to it. Two threads sending the first messages
    of a fresh instance at once (a burst on a cold Functions instance) made one fail with
    "dictionary changed size during iteration", and its job with it. Done here, on the one
    thread that builds the app, each class is described before any handler runs.
    """
    with _SDK_MODELS_LOCK:
        try:  # the SDK's private layout: if it moves, there is nothing to prepare here
            from azure.storage.queue._generated import models  # noqa: PLC0415
            from azure.storage.queue._generated._utils.model_base import Model  # noqa: PLC0415
        except ImportError:
            return
        for value in vars(models).values():
            if isinstance(value, type) and issubclass(value, Model):
                value.__new__(value)  # describes the class; the instance is dropped


class DelayedWorkQueue:
    """One storage queue of delayed work items."""

    def __init__(self, queue: QueueClient) -> None:
        prepare_queue_sdk_models()
        self._queue = queue

    def ensure_exists(self) -> None:
        with contextlib.suppress(ResourceExistsError):
            self._queue.create_queue()

    def send_later(self, body: str, delay_seconds: float) -> int:
        """Send `body`, invisible for `delay_seconds` rounded up (bounded); the whole seconds."""
        delay = int(min(max(0.0, delay_seconds), MAX_VISIBILITY_SECONDS) + 0.999)
        self._queue.send_message(body, visibility_timeout=delay)
        return delay

    def receive_visible(self, *, limit: int, lease_seconds: int) -> list[Any]:
        """The messages due now, each hidden for `lease_seconds` until deleted."""
        return list(
            self._queue.receive_messages(max_messages=limit, visibility_timeout=lease_seconds)
        )

    def delete(self, handle: Any) -> None:
        self._queue.delete_message(handle)
