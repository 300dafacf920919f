"""Calling the function app as the Functions host does, with whatever an attacker sends.

Every call goes to the decorated handler in function_app.py with real `azure.functions`
objects (HTTP requests with raw bodies and headers, queue messages with their dequeue
counts, blob streams), so a test sees exactly what a caller would.
"""

from __future__ import annotations

import json
import time
from typing import Any

import azure.functions as func
from azure.functions.queue import QueueMessage

from shared.composition import AppServices
from shared.documents.jobs import job_id_for
from tests.integration.drive import drive
from tests.integration.test_function_app import handler

JOBS_URL = "http://localhost:7071/api/jobs"
BATCHES_URL = "http://localhost:7071/api/batches"
JSON = "application/json"


def post(url: str, body: bytes, content_type: str | None = JSON) -> func.HttpResponse:
    headers = {"content-type": content_type} if content_type is not None else {}
    request = func.HttpRequest("POST", url, headers=headers, body=body)
    name = "submit_job" if url == JOBS_URL else "start_batch"
    response: func.HttpResponse = handler(name)(request)
    return response


def post_json(url: str, payload: Any) -> func.HttpResponse:
    return post(url, json.dumps(payload).encode())


def get(url: str, route_value: str) -> func.HttpResponse:
    key, name = ("job_id", "get_job") if url == JOBS_URL else ("run_id", "get_batch")
    request = func.HttpRequest("GET", f"{url}/x", body=b"", route_params={key: route_value})
    response: func.HttpResponse = handler(name)(request)
    return response


def answer(response: func.HttpResponse) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(response.get_body())
    return loaded


def queue_message(body: bytes, dequeue_count: int = 1) -> func.QueueMessage:
    # The worker's own message type, untyped in azure-functions.
    return QueueMessage(id="m", body=body, dequeue_count=dequeue_count)  # type: ignore[no-untyped-call]


def resume(body: bytes, dequeue_count: int = 1) -> None:
    handler("resume_job")(queue_message(body, dequeue_count))


def continue_batch(body: bytes, dequeue_count: int = 1) -> None:
    handler("continue_batch")(queue_message(body, dequeue_count))


def upload_and_deliver(services: AppServices, name: str, data: bytes) -> None:
    """An upload to the input container, then its delivery (see `deliver`)."""
    container = services.settings.input_container
    services.blob_service.get_container_client(container).upload_blob(name, data, overwrite=True)
    deliver(services, name, data)


def deliver(services: AppServices, name: str, data: bytes | None = None) -> None:
    """The blob trigger's delivery of an input blob, and the resume queue's trigger until no
    job is left open."""
    container = services.settings.input_container
    if data is None:
        blobs = services.blob_service.get_container_client(container)
        data = blobs.download_blob(name).readall()
    stream = func.blob.InputStream(
        data=data, name=f"{container}/{name}", length=len(data), uri=f"http://x/{name}"
    )
    handler("process_uploaded_document")(stream)
    drive(services, [job_id_for(container, name, data)], handler=handler("resume_job"))


def drive_batch(services: AppServices, run_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """Play the batch queue's trigger until the run is final; its view."""
    deadline = time.monotonic() + timeout
    while True:
        view = answer(get(BATCHES_URL, run_id))
        if view.get("final"):
            return view
        assert time.monotonic() < deadline, f"run {run_id} not final: {view}"
        taken = services.batch_queue.take_visible(lease_seconds=60)
        for _, message in taken:
            continue_batch(message.content.encode(), message.dequeue_count or 1)
            services.batch_queue.done(message)
        if not taken:
            time.sleep(0.05)
