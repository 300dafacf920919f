"""The hold ledger against Azurite: conditional writes under real contention."""

from __future__ import annotations

import multiprocessing
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient

from scripts.azurite import RunningAzurite
from shared.hosting.holds import LedgerRecord
from shared.hosting.ledger import HoldLedger
from shared.storage import JsonBlobStore

MINUTE = timedelta(minutes=1)


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def container(azurite: RunningAzurite) -> ContainerClient:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    return service.create_container(f"ledger-{uuid.uuid4().hex[:12]}")


def ledger_on(container: ContainerClient) -> HoldLedger:
    return HoldLedger(JsonBlobStore(container, LedgerRecord), "ft", now)


def test_first_write_creates_the_blob_and_later_writes_need_its_etag(
    container: ContainerClient,
) -> None:
    ledger = ledger_on(container)
    assert ledger.read().holds == ()
    ledger.place_hold("a", "job", "w1", MINUTE)
    etag_before = container.get_blob_client("ft.json").get_blob_properties().etag
    ledger.place_hold("b", "job", "w2", MINUTE)
    etag_after = container.get_blob_client("ft.json").get_blob_properties().etag
    assert etag_before != etag_after
    assert {h.id for h in ledger.read().holds} == {"a", "b"}


def test_the_store_remembers_a_bounded_number_of_versions_and_stays_correct(
    container: ContainerClient,
) -> None:
    store = JsonBlobStore(container, LedgerRecord, remembered=3)
    for i in range(10):
        assert store.create(f"d{i}.json", LedgerRecord(deployment=f"d{i}"))
    assert len(store._known) == 3, "one entry per document ever seen would grow without end"
    # A forgotten document is read again before it is changed: no write is lost.
    changed = store.update("d0.json", lambda r: r and r.model_copy(update={"provision_count": 1}))
    assert changed is not None and changed.provision_count == 1
    assert store.read("d0.json")[0] == changed


def test_a_stale_write_is_retried_from_a_fresh_read(container: ContainerClient) -> None:
    ledger = ledger_on(container)
    ledger.place_hold("a", "job", "w1", MINUTE)
    calls: list[int] = []

    def sneaky_change(record: LedgerRecord) -> LedgerRecord:
        # Another instance writes between our read and our write, once.
        if not calls:
            ledger_on(container).place_hold("intruder", "job", "w9", MINUTE)
        calls.append(len(record.holds))
        return record.model_copy(update={"last_error": "touched"})

    ledger.change(sneaky_change)
    assert calls == [1, 2], "the change must be re-applied to the record that includes the intruder"
    final = ledger.read()
    assert {h.id for h in final.holds} == {"a", "intruder"}
    assert final.last_error == "touched"


def _hammer(connection_string: str, container_name: str, worker: int, count: int) -> None:
    service = BlobServiceClient.from_connection_string(connection_string)
    ledger = ledger_on(service.get_container_client(container_name))
    for i in range(count):
        ledger.place_hold(f"w{worker}-{i}", "job", f"w{worker}", timedelta(hours=1))
        if i % 2:
            ledger.release_hold(f"w{worker}-{i}")


def test_four_processes_lose_no_update(azurite: RunningAzurite, container: ContainerClient) -> None:
    workers, per_worker = 4, 10
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(
            target=_hammer,
            args=(azurite.connection_string, container.container_name, w, per_worker),
        )
        for w in range(workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    holds = {h.id for h in ledger_on(container).read().holds}
    expected = {f"w{w}-{i}" for w in range(workers) for i in range(0, per_worker, 2)}
    assert holds == expected
