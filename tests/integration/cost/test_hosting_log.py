"""The hosting log in Azurite: appends from several OS processes at once, and lost appends."""

from __future__ import annotations

import logging
import multiprocessing
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient

from scripts.azurite import RunningAzurite
from shared.cost.log import HostingLog, HostingLogReader, log_blob_name, new_event
from shared.hosting.holds import Hold, LedgerRecord

PROCESSES = 4
EVENTS_PER_PROCESS = 40
# Near the end of a UTC day, so the writers also race to create the next day's blob.
START = datetime(2026, 12, 3, 23, 59, 59, 900000, tzinfo=UTC)


def _container(connection_string: str, name: str) -> ContainerClient:
    return BlobServiceClient.from_connection_string(connection_string).get_container_client(name)


def _writer(connection_string: str, container: str, index: int, start: Any, done: Any) -> None:
    log = HostingLog(_container(connection_string, container), lambda: START)
    record = LedgerRecord(
        deployment="ft-contracts",
        holds=(
            Hold(
                id=f"job-{index}",
                kind="job",
                owner=f"worker-{index}",
                created=START,
                expires=START + timedelta(hours=1),
            ),
        ),
    )
    start.wait(timeout=60)
    failures = 0
    for number in range(EVENTS_PER_PROCESS):
        at = START + timedelta(milliseconds=5 * number)
        event = new_event(
            "create_sent" if number % 2 == 0 else "gone",
            at=at,
            model="contracts",
            deployment="ft-contracts",
            sku="Standard",
            capacity=10,
            record=record,
            actor=f"process-{index}",
            note=f"{index}:{number}",
        )
        failures += 0 if log.append(event) else 1
    done.put((index, failures))


def test_several_processes_append_at_once_and_every_line_survives_whole(
    azurite: RunningAzurite,
) -> None:
    container = f"hosting-log-{uuid.uuid4().hex[:8]}"
    context = multiprocessing.get_context("spawn")
    start, done = context.Event(), context.Queue()
    processes = [
        context.Process(target=_writer, args=(azurite.connection_string, container, i, start, done))
        for i in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    start.set()
    failures = dict(done.get(timeout=120) for _ in processes)
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert failures == dict.fromkeys(range(PROCESSES), 0)

    client = _container(azurite.connection_string, container)
    names = sorted(blob.name for blob in client.list_blobs())
    # The first events fall on Dec 3, the later ones on Dec 4: one blob per model and day.
    assert names == [
        log_blob_name("contracts", START.date()),
        log_blob_name("contracts", START.date() + timedelta(days=1)),
    ]
    raw = b"".join(client.download_blob(name).readall() for name in names)
    assert raw.count(b"\n") == PROCESSES * EVENTS_PER_PROCESS, "one line per event"

    reading = HostingLogReader(client).read(
        START - timedelta(hours=1), START + timedelta(hours=1), model="contracts"
    )
    assert reading.gaps == ()
    assert len(reading.events) == PROCESSES * EVENTS_PER_PROCESS
    assert len({event.id for event in reading.events}) == len(reading.events)
    for index in range(PROCESSES):
        own = [e for e in reading.events if e.actor == f"process-{index}"]
        assert [e.note for e in own] == [f"{index}:{n}" for n in range(EVENTS_PER_PROCESS)]
        assert all(e.holds[0].id == f"job-{index}" for e in own)


def _event(at: datetime) -> Any:
    return new_event(
        "serving",
        at=at,
        model="contracts",
        deployment="ft-contracts",
        sku="Standard",
        capacity=10,
        record=None,
        actor="test",
    )


def test_a_lost_append_returns_false_logs_the_event_and_leaves_a_gap_marker(
    azurite: RunningAzurite, caplog: pytest.LogCaptureFixture
) -> None:
    container = f"hosting-log-{uuid.uuid4().hex[:8]}"
    client = _container(azurite.connection_string, container)
    client.create_container()
    at = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    # Something else wrote a block blob where the day's append blob goes: appends fail.
    client.upload_blob(log_blob_name("contracts", at.date()), b"not an append blob\n")
    event = _event(at)
    with caplog.at_level(logging.ERROR, logger="shared.cost.log"):
        assert HostingLog(client, lambda: at).append(event) is False
    assert event.id in caplog.text, "the lost event is in the log, to be recovered by hand"

    reading = HostingLogReader(client).read(at - timedelta(hours=1), at + timedelta(hours=1))
    assert any("an append was lost: serving of ft-contracts" in gap for gap in reading.gaps)
    assert any("line 1: not a hosting event" in gap for gap in reading.gaps)
    assert reading.lost == (event,)


def test_with_storage_down_an_append_fails_quietly(caplog: pytest.LogCaptureFixture) -> None:
    # Nothing listens on port 9 of the loopback: every request fails to connect.
    dead = BlobServiceClient(
        "http://127.0.0.1:9/devstoreaccount1",
        credential={"account_name": "devstoreaccount1", "account_key": "a2V5"},
        retry_total=0,
    ).get_container_client("hosting-log")
    at = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    with caplog.at_level(logging.ERROR, logger="shared.cost.log"):
        assert HostingLog(dead, lambda: at).append(_event(at)) is False
    assert "could not mark the gap either" in caplog.text
