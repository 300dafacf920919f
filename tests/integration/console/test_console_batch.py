"""`hosting batch run` and `hosting batch status` in subprocesses against the local Azure."""

from __future__ import annotations

import json
from pathlib import Path

from simulator.process import RunningSimulator
from tests.integration.batch.helpers import BATCH_PROFILES, upload_documents
from tests.integration.conftest import ServicesFactory
from tests.integration.console.test_console import Hosting


def test_batch_run_shows_progress_and_status_lists_the_run(
    tmp_path: Path,
    app_settings: dict[str, str],
    make_services: ServicesFactory,
    sim: RunningSimulator,
) -> None:
    values = {**app_settings, "PROCESSING_PROFILES": BATCH_PROFILES}
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": values}), encoding="utf-8")
    hosting = Hosting(path)
    services = make_services(PROCESSING_PROFILES=BATCH_PROFILES)
    batch_in = services.blob_service.get_container_client(services.settings.batch_container)
    upload_documents(batch_in, "default/", 12)

    done = hosting("batch", "run", "default", "--run-id", "by-hand", "--json")
    assert done.returncode == 0, done.stderr
    view = json.loads(done.stdout)
    assert view["status"] == "succeeded" and view["summary"]["documents"]["succeeded"] == 12
    assert "batch by-hand on default: waiting_for_deployment" in done.stderr  # progress
    assert "batch by-hand on default: succeeded; 12 succeeded" in done.stderr

    listed = hosting("batch", "status")
    assert listed.returncode == 0 and "by-hand" in listed.stdout and "succeeded" in listed.stdout
    one = json.loads(hosting("batch", "status", "by-hand", "--json").stdout)
    assert one["run_id"] == "by-hand" and one["final"]
    again = hosting("batch", "run", "default", "--run-id", "by-hand", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["counters"]["succeeded"] == 12

    missing = hosting("batch", "status", "no-such-run")
    assert missing.returncode == 1 and "no batch run 'no-such-run'" in missing.stderr
    unknown = hosting("batch", "run", "nope")
    assert unknown.returncode == 2 and "unknown hosted model 'nope'" in unknown.stderr
    late = hosting("batch", "run", "default", "--deadline", "whenever")
    assert late.returncode == 2 and "deadline" in late.stderr
