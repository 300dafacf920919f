"""A FunctionApp with one queue trigger, used only by functions_host's queue tests.

Kept apart from `sample_app` so the other tests' hosts do not poll a queue. The handler's
behaviour is chosen by the message body's prefix: `fail` always raises, `fail-twice` raises
on its first two deliveries, `slow:<seconds>` and `hang` take their time; anything else
succeeds. Every delivery is recorded in `CALLS` (read by the tests in the same process);
`reset()` clears it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

import azure.functions as func

app = func.FunctionApp()


@dataclasses.dataclass(frozen=True)
class Delivery:
    message: func.QueueMessage
    body: bytes
    at: float  # time.monotonic() when the handler started


CALLS: list[Delivery] = []
CONCURRENCY = {"now": 0, "max": 0}


def reset() -> None:
    CALLS.clear()
    CONCURRENCY.update(now=0, max=0)


@app.queue_trigger(arg_name="msg", queue_name="%SAMPLE_QUEUE%", connection="SampleStorage")
async def on_message(msg: func.QueueMessage) -> None:
    body = msg.get_body()
    CALLS.append(Delivery(msg, body, time.monotonic()))
    if body.startswith(b"fail-twice"):
        if (msg.dequeue_count or 0) < 3:
            raise ValueError(f"failing delivery {msg.dequeue_count} of {msg.id}")
        return
    if body.startswith(b"fail"):
        raise ValueError(f"cannot process {msg.id}")
    if body.startswith((b"slow:", b"hang")):
        seconds = 30.0 if body.startswith(b"hang") else float(body.split(b":", 1)[1])
        CONCURRENCY["now"] += 1
        CONCURRENCY["max"] = max(CONCURRENCY["max"], CONCURRENCY["now"])
        try:
            await asyncio.sleep(seconds)
        finally:
            CONCURRENCY["now"] -= 1
