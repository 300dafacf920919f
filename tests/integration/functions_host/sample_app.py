"""A small FunctionApp used only by functions_host's tests: one function per kind of trigger.

Handlers record what they received in module-level lists, which the tests (running the host
in the same process) read back; `reset()` clears them between tests.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

TIMER_CALLS: list[func.TimerRequest] = []
TICK_SAYS: list[str] = []  # what `tick` logs when it fires (nothing by default)
BLOB_CALLS: list[dict[str, object]] = []
SLOW_STARTED = threading.Event()
SLOW_RELEASE = threading.Event()
TIMER_STARTED = threading.Event()
TIMER_RELEASE = threading.Event()
_blob_gauge = threading.Lock()
BLOB_CONCURRENCY = {"now": 0, "max": 0}


def reset() -> None:
    TIMER_CALLS.clear()
    TICK_SAYS.clear()
    BLOB_CALLS.clear()
    for event in (SLOW_STARTED, SLOW_RELEASE, TIMER_STARTED, TIMER_RELEASE):
        event.clear()
    BLOB_CONCURRENCY.update(now=0, max=0)


def _json(value: object, status_code: int = 200) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(value), status_code=status_code, mimetype="application/json"
    )


@app.route(route="items/{item_id:int}", methods=["GET"])
def get_item(req: func.HttpRequest) -> func.HttpResponse:
    return _json(
        {
            "item_id": req.route_params["item_id"],
            "query": dict(req.params),
            "method": req.method,
            "url": req.url,
        }
    )


@app.route(route="files/{folder}/{name?}", methods=["GET", "DELETE"])
def get_file(req: func.HttpRequest) -> func.HttpResponse:
    return _json(dict(req.route_params))


# Declared after get_file on purpose: the literal segment must still win over {folder}.
@app.route(route="files/latest", methods=["GET"])
def latest_file(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"literal": True})


@app.route(route="echo", methods=["POST"])
async def echo(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(0)
    return func.HttpResponse(
        json.dumps({"received": req.get_json(), "content_type": req.headers.get("content-type")}),
        status_code=201,
        headers={"X-Echo": "yes"},
        mimetype="application/json",
    )


@app.route(route="secret", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def secret(req: func.HttpRequest) -> str:
    return "the secret"


@app.route(route="boom", methods=["GET"])
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("handler exploded")


@app.route(route="slow", methods=["GET"])
def slow(req: func.HttpRequest) -> func.HttpResponse:
    SLOW_STARTED.set()
    released = SLOW_RELEASE.wait(timeout=10)
    return func.HttpResponse("released" if released else "timed out")


@app.timer_trigger(schedule="%SAMPLE_TICK_SCHEDULE%", arg_name="timer", run_on_startup=False)
def tick(timer: func.TimerRequest) -> None:
    TIMER_CALLS.append(timer)
    for line in TICK_SAYS:
        logging.getLogger("sample_app").info("%s", line)


@app.timer_trigger(schedule="0 0 0 1 1 *", arg_name="timer", run_on_startup=False)
def slow_tick(timer: func.TimerRequest) -> None:
    TIMER_STARTED.set()
    TIMER_RELEASE.wait(timeout=10)


@app.blob_trigger(
    arg_name="blob",
    path="%SAMPLE_INPUT_CONTAINER%/incoming/{name}.txt",
    connection="SampleStorage",
)
def on_blob(blob: func.blob.InputStream) -> None:
    data = blob.read()
    BLOB_CALLS.append({"name": blob.name, "data": data, "length": blob.length, "uri": blob.uri})
    if data.startswith(b"fail"):
        raise ValueError(f"cannot process {blob.name}")
    if data.startswith(b"slow"):
        with _blob_gauge:
            BLOB_CONCURRENCY["now"] += 1
            BLOB_CONCURRENCY["max"] = max(BLOB_CONCURRENCY["max"], BLOB_CONCURRENCY["now"])
        time.sleep(0.15)
        with _blob_gauge:
            BLOB_CONCURRENCY["now"] -= 1
