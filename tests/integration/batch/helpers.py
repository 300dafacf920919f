"""Helpers for the batch tests: waiting documents uploaded in parallel, the batch queue played
as its trigger would, and the outcomes a run left."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from azure.storage.blob import ContainerClient

from shared.batch.models import BatchRun
from shared.composition import AppServices

# Small prompts and short answers: hundreds of documents in seconds at the simulator's pace.
BATCH_PROFILES = json.dumps(
    {
        "default": {
            "system_prompt": "Summarise the document in one line.",
            "user_prompt_template": "{filename}: {document}",
            "max_output_tokens": 60,
        }
    }
)


def upload_documents(
    container: ContainerClient, prefix: str, count: int, *, threads: int = 16
) -> list[str]:
    names = [f"{prefix}doc-{i:05d}.txt" for i in range(count)]

    def upload(name: str) -> None:
        container.upload_blob(name, f"Invoice {name}: 100 EUR due in 30 days.".encode())

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(upload, names))
    return names


def drive_batches(services: AppServices, run_id: str, *, timeout: float = 120.0) -> BatchRun:
    """Deliver the batch queue's messages to `continue_run` until the run is final."""
    deadline = time.monotonic() + timeout
    while True:
        run = services.batches.runs.get(run_id)
        assert run is not None
        if run.final:
            return run
        if time.monotonic() > deadline:
            raise TimeoutError(f"batch {run_id} not final after {timeout:.0f} s: {run}")
        taken = services.batch_queue.take_visible(lease_seconds=60)
        for message, handle in taken:
            services.batches.continue_run(message.run_id)
            services.batch_queue.done(handle)
        if not taken:
            time.sleep(0.05)


def outcomes_by_input(services: AppServices, output_prefix: str) -> dict[str, list[str]]:
    """Each input's current outcome blobs (result or error) under the output prefix."""
    output = services.blob_service.get_container_client(services.settings.batch_output_container)
    found: dict[str, list[str]] = {}
    for blob in output.list_blobs(name_starts_with=output_prefix):
        for kind in (".result.json", ".error.json"):
            if blob.name.endswith(kind):
                found.setdefault(blob.name.removesuffix(kind), []).append(kind)
    return found


def version_outcomes(services: AppServices, output_prefix: str) -> dict[str, int]:
    output = services.blob_service.get_container_client(services.settings.batch_output_container)
    counts: dict[str, int] = {}
    for blob in output.list_blobs(name_starts_with=f"versions/{output_prefix}"):
        document = blob.name.removeprefix("versions/").rsplit("/", 1)[0]
        counts[document] = counts.get(document, 0) + 1
    return counts


def summary(services: AppServices, run_id: str) -> dict[str, Any]:
    found = services.batches.runs.read_summary(run_id)
    assert found is not None
    return found
