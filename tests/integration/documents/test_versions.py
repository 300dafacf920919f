"""Versions of a document: the same name uploaded again with new content.

Each version is its own job with its own outcome, kept under `versions/`; the current name
holds the newest version's outcome (result or error, never both), whatever order they finish
in; the job API returns each job's own version's outcome. Real blobs in Azurite, processed by
the engine against the simulator.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from shared.composition import AppServices
from shared.names import VERSIONS_PREFIX
from tests.integration.conftest import ServicesFactory
from tests.integration.drive import process_to_end
from tests.integration.outputs import current_outputs

GOOD_1 = b"Contract v1: Contoso supplies Fabrikam."
GOOD_2 = b"Contract v2 (corrected): Contoso supplies Northwind."
BAD = b"%PDF-1.7 binary"


@pytest.fixture
def services(make_services: ServicesFactory) -> AppServices:
    return make_services(IDLE_GRACE_SECONDS=3600)


def upload(services: AppServices, name: str, data: bytes) -> None:
    container = services.blob_service.get_container_client(services.settings.input_container)
    container.upload_blob(name, data, overwrite=True)


def process(services: AppServices, name: str, data: bytes) -> Any:
    return process_to_end(services, name, data)


def output(services: AppServices) -> Any:
    return services.blob_service.get_container_client(services.settings.output_container)


def read(services: AppServices, name: str) -> dict[str, Any]:
    return json.loads(output(services).download_blob(name).readall())  # type: ignore[no-any-return]


def versions(services: AppServices) -> list[str]:
    return sorted(b.name for b in output(services).list_blobs(name_starts_with=VERSIONS_PREFIX))


def own_outcome(services: AppServices, job_id: str) -> dict[str, Any]:
    view = services.submissions.view(job_id)
    blob = view["result_blob"] or view["error_blob"]
    assert blob.startswith(f"{VERSIONS_PREFIX}doc.txt/{job_id}.")
    return read(services, blob)


def test_good_then_good_the_newest_result_is_current_and_both_are_kept(
    services: AppServices,
) -> None:
    upload(services, "doc.txt", GOOD_1)
    first = process(services, "doc.txt", GOOD_1)
    time.sleep(1.1)  # Last-Modified has a one-second resolution
    upload(services, "doc.txt", GOOD_2)
    second = process(services, "doc.txt", GOOD_2)
    assert first.job_id != second.job_id
    assert (first.status, second.status) == ("succeeded", "succeeded")
    assert current_outputs(output(services)) == ["doc.txt.result.json"]
    assert read(services, "doc.txt.result.json")["job_id"] == second.job_id
    assert versions(services) == sorted(
        [
            f"{VERSIONS_PREFIX}doc.txt/{first.job_id}.result.json",
            f"{VERSIONS_PREFIX}doc.txt/{second.job_id}.result.json",
        ]
    )
    assert own_outcome(services, first.job_id)["job_id"] == first.job_id
    assert own_outcome(services, second.job_id)["job_id"] == second.job_id


def test_bad_then_good_leaves_only_the_result(services: AppServices) -> None:
    upload(services, "doc.txt", BAD)
    first = process(services, "doc.txt", BAD)
    assert current_outputs(output(services)) == ["doc.txt.error.json"]
    time.sleep(1.1)
    upload(services, "doc.txt", GOOD_2)
    second = process(services, "doc.txt", GOOD_2)
    assert (first.status, second.status) == ("failed", "succeeded")
    assert current_outputs(output(services)) == ["doc.txt.result.json"]
    assert own_outcome(services, first.job_id)["error"]["code"] == "not_text"
    assert own_outcome(services, second.job_id)["answer"]


def test_good_then_bad_leaves_only_the_error(services: AppServices) -> None:
    upload(services, "doc.txt", GOOD_1)
    first = process(services, "doc.txt", GOOD_1)
    time.sleep(1.1)
    upload(services, "doc.txt", BAD)
    second = process(services, "doc.txt", BAD)
    assert (first.status, second.status) == ("succeeded", "failed")
    assert current_outputs(output(services)) == ["doc.txt.error.json"]
    assert read(services, "doc.txt.error.json")["job_id"] == second.job_id
    assert own_outcome(services, first.job_id)["answer"]


def test_the_older_version_finishing_last_does_not_take_the_name(
    services: AppServices,
) -> None:
    # Both versions were delivered; the newer finishes first, the older one last.
    upload(services, "doc.txt", GOOD_1)
    time.sleep(1.1)
    upload(services, "doc.txt", GOOD_2)
    newer = process(services, "doc.txt", GOOD_2)
    older = process(services, "doc.txt", GOOD_1)
    assert (older.status, newer.status) == ("succeeded", "succeeded")
    assert read(services, "doc.txt.result.json")["job_id"] == newer.job_id
    assert len(versions(services)) == 2
    assert services.submissions.view(older.job_id)["result"]["job_id"] == older.job_id


def test_two_versions_uploaded_moments_apart_are_both_processed_and_the_newest_wins(
    services: AppServices,
) -> None:
    # Within the same second: the stamps tie, the input blob's content decides.
    upload(services, "doc.txt", GOOD_1)
    upload(services, "doc.txt", BAD)
    start = threading.Barrier(2)

    def run(data: bytes) -> Any:
        start.wait()
        return process(services, "doc.txt", data)

    with ThreadPoolExecutor(max_workers=2) as pool:
        older, newer = pool.map(run, [GOOD_1, BAD])
    assert (older.status, newer.status) == ("succeeded", "failed")
    assert current_outputs(output(services)) == ["doc.txt.error.json"]
    assert read(services, "doc.txt.error.json")["job_id"] == newer.job_id
    assert len(versions(services)) == 2
