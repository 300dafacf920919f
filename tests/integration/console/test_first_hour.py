"""A new user's first commands: a stopped local Azure, and putting documents in."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from tests.integration.console.test_console import Hosting, one_line


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
