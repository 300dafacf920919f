"""A new user's first commands: a stopped local Azure, and putting documents in."""

from __future__ import annotations

import json
import socket
from functools import partial
from pathlib import Path
from typing import Any

from shared.composition import AppServices
from shared.documents.jobs import TERMINAL
from simulator.process import RunningSimulator
from tests.integration.batch.test_batch_runs import wait_for
from tests.integration.console.test_console import (  # noqa: F401 - the fixture
    CONTRACT,
    Hosting,
    one_line,
    processing,
    setup,
)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_a_stopped_local_azure_is_named_at_once_with_its_settings_file(tmp_path: Path) -> None:
    arm, storage = closed_port(), closed_port()
    values = {
        "AZURE_AUTH_MODE": "local",
        "AZURE_SUBSCRIPTION_ID": "sub",
        "AZURE_RESOURCE_GROUP": "rg",
        "AOAI_ACCOUNT_NAME": "acct",
        "ARM_ENDPOINT": f"https://127.0.0.1:{arm}",
        "AOAI_ENDPOINT": f"https://127.0.0.1:{arm}",
        "FINE_TUNED_MODEL": "gpt-4.1-mini.ft-1",
        "DocumentStorage": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:{storage}/devstoreaccount1;"
        f"QueueEndpoint=http://127.0.0.1:{storage}/devstoreaccount1;",
    }
    path = tmp_path / "dev.settings.json"
    path.write_text(json.dumps({"Values": values}), encoding="utf-8")
    hosting = Hosting(path)
    document = tmp_path / "msa.txt"
    document.write_text("An agreement.\n", encoding="utf-8")
    # Without the check each of these retried for about 90 s; the timeout fails them.
    for args in (["status"], ["up", "default"], ["jobs"], ["submit", str(document)]):
        done = hosting(*args, timeout=20)
        assert done.returncode == 1, done.stderr
        line = one_line(done)
        assert line.startswith("hosting: the local Azure is not running: nothing answers at ")
        assert f"ARM_ENDPOINT https://127.0.0.1:{arm}" in line
        assert f"DocumentStorage (BlobEndpoint) http://127.0.0.1:{storage}" in line
        assert f"(from the settings file {path})" in line
        assert "make dev" in line


def finished(services: AppServices, job_id: str) -> bool:
    record = services.jobs.get(job_id)
    return record is not None and record.status in TERMINAL


def test_upload_puts_documents_in_and_their_job_ids_lead_to_the_results(
    setup: Any,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    hosting, services = setup()
    files = []
    for name in ("msa.txt", "nda.txt"):
        path = tmp_path / name
        path.write_text(CONTRACT.replace("Supplier", name), encoding="utf-8")
        files.append(str(path))

    with processing(services) as errors:
        done = hosting("upload", *files, "--profile", "default", "--json")
        assert done.returncode == 0, done.stderr
        uploaded = json.loads(done.stdout)
        for item in uploaded:
            wait_for(partial(finished, services, item["job_id"]), 120, "the upload's job")
    assert errors == []
    for item in uploaded:
        assert hosting.json("job", item["job_id"])["status"] == "succeeded"
    input_container = services.settings.input_container
    assert [(item["container"], item["blob"]) for item in uploaded] == [
        (input_container, "default/msa.txt"),
        (input_container, "default/nda.txt"),
    ]
    assert done.stderr == "", "--json: nothing but the JSON"

    batch = hosting("upload", files[0], "--batch", "default/december")
    assert batch.returncode == 0, batch.stderr
    batch_container = services.settings.batch_container
    assert f"-> {batch_container}/default/december/msa.txt" in batch.stdout
    assert "1 file(s) uploaded; run them with" in batch.stderr
    assert "--input-prefix default/december/" in batch.stderr
    blob = services.blob_service.get_blob_client(batch_container, "default/december/msa.txt")
    assert blob.download_blob().readall() == (tmp_path / "msa.txt").read_bytes()

    unknown = hosting("upload", files[0], "--profile", "nope")
    assert unknown.returncode == 2
    assert "unknown processing profile 'nope'; the profiles are: default" in one_line(unknown)
    both = hosting("upload", files[0], "--profile", "default", "--batch", "x/")
    assert both.returncode == 2 and "--profile and --batch together" in one_line(both)


def test_down_shows_the_delete_and_says_when_azure_was_already_deleting_it(
    setup: Any,  # noqa: F811 - the fixture imported above
    sim: RunningSimulator,
) -> None:
    hosting, services = setup()
    assert hosting("up", "default").returncode == 0
    name = services.settings.deployment_name
    sim.admin.configure(deletion_seconds=9000)  # 15 s of wall time: Deleting is seen
    # The app's teardown sends the DELETE and moves on; the operator then forces a `down`.
    services.deployments.start_delete(name)
    assert services.deployments.get(name).provisioning_state == "Deleting"

    forced = hosting("down", "default", "--force", "--yes")
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.strip() == (
        f"{name} was already being deleted (Azure said Deleting); it is gone now"
    )
    progress = forced.stderr.splitlines()
    assert progress[0].endswith(f"{name}: Azure: Deleting")
    assert progress[-1].endswith(f"{name}: Azure: absent")
    assert not services.deployments.get(name).exists

    again = hosting("down", "default", "--force", "--yes")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"{name} is absent; nothing to delete"
    assert "deleted" not in again.stdout
