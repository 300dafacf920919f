"""The operator's command as a person or script runs it: subprocesses against the local Azure.

Every command runs as `python -m shared.console --settings <file> ...` (the installed `hosting`
script is the same `main`), with the settings written to a temporary local.settings.json that
points at Azurite and the simulator. What the app would do in Azure (processing an uploaded
document) is played in-process by the engine, from a thread watching the input container.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.composition import AppServices
from shared.settings import AppSettings
from tests.integration.conftest import ServicesFactory
from tests.integration.hosting.test_several_models import write_catalog

REPO_ROOT = Path(__file__).resolve().parents[3]
CONTRACT = "MASTER SERVICES AGREEMENT\n\nThe Supplier delivers. Payment is due in 30 days.\n"


def _environment() -> dict[str, str]:
    """This environment less any app setting, so only the test's settings file counts."""
    names = {field.alias for field in AppSettings.model_fields.values() if field.alias}
    names |= {"DocumentStorage", "DOCUMENT_STORAGE"}
    env = {key: value for key, value in os.environ.items() if key not in names}
    return {**env, "PYTHONPATH": str(REPO_ROOT), "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}


ENVIRONMENT = _environment()


@dataclass
class Hosting:
    """Runs `hosting --settings <file> ...` in a subprocess from a scratch directory."""

    settings: Path

    def __call__(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "shared.console", "--settings", str(self.settings), *args],
            cwd=self.settings.parent, env=ENVIRONMENT, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def json(self, *args: str) -> Any:
        done = self(*args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.fixture
def setup(tmp_path: Path, app_settings: dict[str, str], make_services: ServicesFactory) -> Any:
    def configure(**overrides: Any) -> tuple[Hosting, AppServices]:
        """A settings file and the same services in-process (None removes a setting)."""
        values = {**app_settings, **{k: str(v) for k, v in overrides.items() if v is not None}}
        for name in [k for k, v in overrides.items() if v is None]:
            values.pop(name, None)
        path = tmp_path / "local.settings.json"
        path.write_text(json.dumps({"IsEncrypted": False, "Values": values}), encoding="utf-8")
        return Hosting(path), make_services(**overrides)

    return configure


@contextlib.contextmanager
def processing(services: AppServices) -> Iterator[list[BaseException]]:
    """Plays the blob trigger and the resume queue's trigger: each new blob in the input
    container goes to the engine, and each parked job is resumed when its message is due."""
    container = services.blob_service.get_container_client(services.settings.input_container)
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        seen: set[str] = set()
        while not stop.wait(0.05):
            for blob in container.list_blobs():
                if blob.name not in seen:
                    seen.add(blob.name)
                    data = container.download_blob(blob.name).readall()
                    try:
                        services.engine.process_blob(container.container_name, blob.name, data)
                    except Exception as error:
                        errors.append(error)
            for resume, handle in services.resumes.take_visible(lease_seconds=30):
                try:
                    services.engine.resume(resume.job_id)
                except Exception as error:
                    errors.append(error)
                services.resumes.done(handle)

    thread = threading.Thread(target=run, name="blob-trigger", daemon=True)
    thread.start()
    try:
        yield errors
    finally:
        stop.set()
        thread.join(timeout=30)


def test_two_models_up_status_and_down_refused_deleted_and_forced(
    setup: Any, tmp_path: Path
) -> None:
    catalog = write_catalog(tmp_path / "hosting.toml", suffix=tmp_path.name[-8:].lower())
    hosting, services = setup(
        HOSTING_CONFIG_FILE=str(catalog), FINE_TUNED_MODEL=None, DEPLOYMENT_NAME=None
    )
    contracts, reviews = services.model("contracts"), services.model("reviews")

    before = hosting.json("status")["models"]
    assert [(m["model"], m["azure_state"]) for m in before] == [
        ("contracts", None),
        ("reviews", None),
    ]

    up = hosting("up", "contracts", "--for", "PT10M")
    assert up.returncode == 0, up.stderr
    assert "contracts is serving on deployment " + contracts.spec.name in up.stdout
    assert "Azure: Succeeded" in up.stderr and "serving" in up.stderr
    assert hosting("up", "reviews").returncode == 0

    models = {m["model"]: m for m in hosting.json("status")["models"]}
    for name, hosted in (("contracts", contracts), ("reviews", reviews)):
        row = models[name]
        assert (row["azure_state"], row["ledger_state"], row["why_up"]) == (
            "Succeeded",
            "ready",
            "held",
        )
        [hold] = row["holds"]
        assert (hold["id"], hold["kind"]) == (f"operator:{name}", "operator")
        assert hold["owner"].startswith("operator:") and "@" in hold["owner"]
        assert row["deployment"] == hosted.spec.name and row["ready_since"]

    table = hosting("status")
    assert table.returncode == 0, table.stderr
    for expected in ("contracts", "reviews", "Succeeded", "operator by operator:", "held by"):
        assert expected in table.stdout

    # A job still needs contracts: `down` releases the operator's hold and refuses.
    contracts.ledger.place_hold("job:test", "job", "worker-7", timedelta(minutes=5))
    refused = hosting("down", "contracts")
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "not deleted" in refused.stdout
    assert "held: job by worker-7, until" in refused.stdout
    assert services.deployments.get(contracts.spec.name).exists
    assert [h.id for h in contracts.ledger.read().holds] == ["job:test"]

    contracts.ledger.release_hold("job:test")
    deleted = hosting("down", "contracts")
    assert deleted.returncode == 0, deleted.stderr
    assert f"{contracts.spec.name} deleted" in deleted.stdout
    assert not services.deployments.get(contracts.spec.name).exists

    # Forcing under a hold asks first; with no terminal to ask at, --yes is required.
    reviews.ledger.place_hold("job:test", "job", "worker-8", timedelta(minutes=5))
    unconfirmed = hosting("down", "reviews", "--force")
    assert unconfirmed.returncode == 2
    assert "--yes" in one_line(unconfirmed)
    assert services.deployments.get(reviews.spec.name).exists
    forced = hosting("down", "reviews", "--force", "--yes")
    assert forced.returncode == 0, forced.stderr
    assert "forced by operator:" in forced.stdout
    assert "still live: job by worker-8" in forced.stdout
    assert not services.deployments.get(reviews.spec.name).exists
    assert hosting.json("status")["models"][1]["ledger_state"] == "absent"


def test_up_again_after_a_delete_behind_the_apps_back_provisions_it_again(setup: Any) -> None:
    hosting, services = setup()
    hosted = services.model()
    assert hosting("up", "default", "--for", "PT5M").returncode == 0
    services.deployments.begin_delete(hosted.spec.name).result()
    assert hosted.ledger.read().state.value == "ready", "the ledger does not know yet"
    again = hosting("up", "default", "--for", "PT20M")
    assert again.returncode == 0, again.stderr
    assert "Azure: absent" in again.stderr and "Azure: Succeeded" in again.stderr
    assert services.deployments.get(hosted.spec.name).provisioning_state == "Succeeded"
    [hold] = hosted.ledger.read().live_holds(hosted.ledger.now())
    assert hold.expires - hosted.ledger.now() > timedelta(minutes=19), "the second up extends it"


def test_submit_waits_for_the_app_then_jobs_and_job_show_the_records(
    setup: Any, tmp_path: Path
) -> None:
    hosting, services = setup(MAX_CHUNKS=1)
    document = tmp_path / "msa.txt"
    document.write_text(CONTRACT, encoding="utf-8")
    # Too long for one request at this capacity, and MAX_CHUNKS=1: the app fails the job.
    too_long = tmp_path / "long.txt"
    too_long.write_text("A clause about delivery and payment terms.\n\n" * 2000, encoding="utf-8")

    with processing(services) as errors:
        done = hosting(
            "submit", str(document), "-q", "Who are the parties?", "--wait", "--timeout", "60",
            "--json",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        succeeded = json.loads(done.stdout)
        failed = hosting("submit", str(too_long), "--wait", "--timeout", "60")
    assert errors == []
    assert succeeded["status"] == "succeeded"
    assert succeeded["questions"] == ["Who are the parties?"]
    assert succeeded["result"]["provenance"]["deployment"] == services.settings.deployment_name
    assert f"job {succeeded['job_id']}: succeeded" in done.stderr, "progress goes to stderr"
    assert failed.returncode == 1, failed.stderr
    assert "too_many_chunks" in failed.stdout and "error record" in failed.stdout

    listed = hosting.json("jobs")
    assert [job["status"] for job in listed] == ["failed", "succeeded"], "newest first"
    assert listed[1]["job_id"] == succeeded["job_id"]
    only = hosting.json("jobs", "--status", "succeeded", "--since", "PT1H")
    assert [job["job_id"] for job in only] == [succeeded["job_id"]]
    assert len(hosting.json("jobs", "--limit", "1")) == 1
    table = hosting("jobs")
    assert succeeded["job_id"] in table.stdout and "failed" in table.stdout

    shown = hosting("job", succeeded["job_id"])
    assert shown.returncode == 0, shown.stderr
    for expected in ("waiting_for_deployment", "running", "succeeded", "result (", "sim-answer-"):
        assert expected in shown.stdout
    assert hosting.json("job", succeeded["job_id"])["result"] == succeeded["result"]
    assert hosting("job", "0" * 24).returncode == 1


def test_waiting_past_the_timeout_exits_4_and_the_job_goes_on(setup: Any, tmp_path: Path) -> None:
    hosting, _ = setup()
    document = tmp_path / "msa.txt"
    document.write_text(CONTRACT, encoding="utf-8")
    done = hosting("submit", str(document), "--wait", "--timeout", "0.5")
    assert done.returncode == 4
    assert "is still queued after 0s; it goes on in the app" in done.stderr.splitlines()[-1]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["frobnicate"], "No such command 'frobnicate'"),
        ([], "missing command; the commands are: status, schedule, up, down, submit, jobs, job"),
        (["up", "nosuch"], "unknown hosted model 'nosuch'; the hosted models are: default"),
        (["down", "nosuch"], "unknown hosted model 'nosuch'; the hosted models are: default"),
        (["up", "default", "--for", "soon"], "'soon' is not a duration"),
        (["submit", "/nonexistent/msa.txt"], "'/nonexistent/msa.txt' does not exist"),
        (["submit", "{document}", "--profile", "nope"], "unknown processing profile 'nope'"),
        (["submit", "{empty}"], "empty"),
        (["jobs", "--status", "done"], "'done' is not one of 'queued'"),
        (["jobs", "--since", "last tuesday"], "neither a date/time"),
        (["job", "not-an-id"], "'not-an-id' is not a job id"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    setup: Any, tmp_path: Path, args: list[str], says: str
) -> None:
    hosting, _ = setup()
    (tmp_path / "msa.txt").write_text(CONTRACT, encoding="utf-8")
    (tmp_path / "empty.txt").write_bytes(b"")
    paths = {"document": str(tmp_path / "msa.txt"), "empty": str(tmp_path / "empty.txt")}
    done = hosting(*(arg.format(**paths) for arg in args))
    assert done.returncode == 2, done.stderr
    line = one_line(done)
    assert line.startswith("hosting: ") and says in line
    assert done.stdout == ""


def test_unusable_settings_list_every_problem_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "ops.json"
    path.write_text(json.dumps({"Values": {"AOAI_ENDPOINT": "https://x"}}), encoding="utf-8")
    done = Hosting(path)("status")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith(f"hosting: the settings from {path} over the environment")
    assert "  - AZURE_SUBSCRIPTION_ID: required, not set" in lines
    assert "  - AOAI_ACCOUNT_NAME: required, not set" in lines
    missing = Hosting(tmp_path / "nope.json")("status")
    assert missing.returncode == 2
    assert "does not exist" in one_line(missing)


def test_the_installed_console_script_is_the_same_command() -> None:
    script = Path(sys.executable).with_name("hosting")
    assert script.exists(), "make install puts the `hosting` console script in .venv/bin"
    done = subprocess.run(
        [str(script), "--help"], env=ENVIRONMENT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    for command in ("status", "up", "down", "submit", "jobs", "job"):
        assert command in done.stdout
