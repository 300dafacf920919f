"""Fine-tuning jobs against the simulator: the real openai client over HTTPS, no Azure.

First the adapter (`shared.finetuning.jobs.FineTuning`) through a job's whole life, a job
that fails Azure's validation, and a cancelled one; then the operator's command as a person
runs it (`hosting finetune start|status|list|events|cancel`, `hosting data check`) with a
settings file pointing at the simulator: `start` in a subprocess, the others through the same
`main` in this process.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.fine_tuning import FineTuningJob, FineTuningJobEvent

from shared.catalog import ModelDefaults, catalog_from_data
from shared.console.app import main
from shared.finetuning.curves import check_curves, parse_results_csv
from shared.finetuning.jobs import FineTuning, FineTuningError, JobSpec
from tests.integration.console.test_console import ENVIRONMENT

DATASETS = Path(__file__).resolve().parents[2] / "unit" / "finetuning" / "datasets"
CLEAN = DATASETS / "clean.jsonl"
VALID = DATASETS / "valid.jsonl"
TOO_FEW = DATASETS / "broken" / "too_few_examples.jsonl"
WAIT_SECONDS = 60.0


@pytest.fixture
def tuning(aoai_client: openai.AzureOpenAI) -> FineTuning:
    return FineTuning(aoai_client, poll_seconds=0.02)


def _wait_for(tuning: FineTuning, job_id: str, status: str) -> FineTuningJob:
    deadline = time.monotonic() + WAIT_SECONDS
    while (job := tuning.get(job_id)).status != status:
        assert time.monotonic() < deadline, f"{job_id} still {job.status}"
        time.sleep(0.02)
    return job


def test_a_job_moves_through_every_status_to_a_model_with_results(tuning: FineTuning) -> None:
    training = tuning.upload(CLEAN)
    validation = tuning.upload(VALID)
    assert (training.status, training.filename, training.bytes) == (
        "processed",
        "clean.jsonl",
        CLEAN.stat().st_size,
    )
    job = tuning.create(
        JobSpec(
            model="gpt-4.1-mini-2025-04-14",
            n_epochs=2,
            seed=7,
            suffix="tickets",
            training_type="globalstandard",
        ),
        training.id,
        validation.id,
    )
    assert job.status == "validating_files"
    assert (job.hyperparameters.n_epochs, job.seed) == (2, 7)
    assert getattr(job, "trainingType", None) == "globalstandard"  # Azure's own field
    statuses: list[str] = []
    messages: list[str] = []

    def seen(current: FineTuningJob, events: Sequence[FineTuningJobEvent]) -> None:
        if not statuses or statuses[-1] != current.status:
            statuses.append(current.status)
        messages.extend(event.message for event in events)

    ended = tuning.follow(job.id, seen, max_wait_seconds=WAIT_SECONDS)
    assert statuses == ["validating_files", "queued", "running", "succeeded"]
    assert ended.fine_tuned_model == f"gpt-4.1-mini-2025-04-14.ft-{job.id[6:]}-tickets"
    assert messages[0] == "Job enqueued. Validating training file."
    assert messages[-1] == "The job has successfully completed."
    assert any(message.startswith("Step 10/120: training loss=") for message in messages)
    assert [event.message for event in tuning.events(job.id)][-1] == messages[-1]
    checkpoints = tuning.checkpoints(job.id)
    assert [checkpoint.step_number for checkpoint in checkpoints] == [120, 60]
    results = tuning.results_csv(ended)
    assert results is not None
    curves = parse_results_csv(results)
    assert curves.last_step == 120
    assert check_curves(curves).ok
    assert ended.trained_tokens is not None and ended.trained_tokens > 0
    # A fine-tuned model can be fine-tuned again (continuous fine-tuning).
    again = tuning.create(JobSpec(model=str(ended.fine_tuned_model)), training.id)
    assert again.model == ended.fine_tuned_model
    tuning.cancel(again.id)
    listed = {listed_job.id: listed_job.status for listed_job in tuning.list_jobs(100)}
    assert (listed[job.id], listed[again.id]) == ("succeeded", "cancelled")
    tuning.delete_file(validation.id)
    remaining = {file.id for file in tuning.client.files.list()}
    assert training.id in remaining and validation.id not in remaining


def test_a_job_that_fails_validation_carries_azures_error_body(tuning: FineTuning) -> None:
    training = tuning.upload(TOO_FEW)
    job = tuning.create(JobSpec(model="gpt-4o-mini"), training.id)
    ended = tuning.follow(job.id, lambda _job, _events: None, max_wait_seconds=WAIT_SECONDS)
    assert ended.status == "failed"
    assert ended.fine_tuned_model is None
    assert ended.error is not None
    assert ended.error.model_dump() == {
        "code": "invalid_training_file",
        "message": "The job failed due to an invalid training file. Training file has 5 "
        "example(s), but must have at least 10 examples.",
        "param": "training_file",
    }
    assert tuning.results_csv(ended) is None


def test_a_running_job_is_cancelled_and_stays_cancelled(tuning: FineTuning) -> None:
    training = tuning.upload(CLEAN)
    job = tuning.create(JobSpec(model="gpt-4o-mini"), training.id)
    _wait_for(tuning, job.id, "running")
    assert tuning.cancel(job.id).status == "cancelled"
    with pytest.raises(openai.BadRequestError, match="has already cancelled"):
        tuning.cancel(job.id)
    later = tuning.get(job.id)
    assert later.status == "cancelled"
    assert later.fine_tuned_model is None
    assert not later.result_files  # Azure sends null
    assert tuning.events(job.id)[-1].message == "Job cancelled."


def test_following_gives_up_after_its_limit_and_the_job_goes_on(tuning: FineTuning) -> None:
    training = tuning.upload(CLEAN)
    job = tuning.create(JobSpec(model="gpt-4o-mini"), training.id)
    gave_up = f"job {job.id} is still [a-z_]+ after 0 s; it goes on in Azure"
    with pytest.raises(FineTuningError, match=gave_up):
        tuning.follow(job.id, lambda _job, _events: None, max_wait_seconds=0.0)
    assert tuning.get(job.id).status not in {"failed", "cancelled"}


def test_azure_refuses_a_model_it_cannot_fine_tune(tuning: FineTuning) -> None:
    training = tuning.upload(CLEAN)
    with pytest.raises(openai.BadRequestError) as refused:
        tuning.create(JobSpec(model="gpt-5-chat"), training.id)
    assert refused.value.body == {
        "code": "invalidPayload",
        "message": "The specified base model does not support fine-tuning.",
    }


# --- the operator's command -----------------------------------------------------------------


@pytest.fixture
def hosting(tmp_path: Path, app_settings: dict[str, str]) -> Any:
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": app_settings}))

    def run(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "shared.console", "--settings", str(settings), *args],
            cwd=tmp_path, env=ENVIRONMENT, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    return run


@pytest.fixture
def in_process(
    tmp_path: Path, app_settings: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> Iterator[Any]:
    """The same command's `main`, in this process (a subprocess costs seconds of imports)."""
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": app_settings}))
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["--settings", str(settings), *args])
        out, err = capsys.readouterr()
        return code, out, err

    yield run
    root.handlers[:], root.level = handlers, level  # `main` sends logs to its console


def test_start_follows_the_job_and_prints_the_toml_to_host_it(
    hosting: Any, in_process: Any, tmp_path: Path
) -> None:
    done = hosting(
        "finetune", "start", str(CLEAN), str(VALID), "--base", "gpt-4o-mini-2024-07-18",
        "--suffix", "tickets", "--name", "tickets", "--epochs", "2", "--poll", "0.05",
        "--out-dir", str(tmp_path / "out"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "uploaded clean.jsonl: file-" in done.stderr
    assert "Fine-tuning job started." in done.stderr
    assert "The job has successfully completed." in done.stderr
    assert "curves: training loss falls, token accuracy rises" in done.stdout
    toml_text = done.stdout[done.stdout.index("# Host ") :]
    catalog = catalog_from_data(
        tomllib.loads(toml_text),
        ModelDefaults(idle_grace_seconds=300, max_lifetime_seconds=3600, context_tokens=128_000),
        source="printed",
        profiles_json=None,
    )
    model = catalog.models["tickets"]
    assert model.fine_tuned_model.startswith("gpt-4o-mini-2024-07-18.ft-")
    assert model.fine_tuned_model.endswith("-tickets")
    assert "# [models.tickets-step-60]" in toml_text
    job_id = model.fine_tuned_model.split(".ft-")[1].removesuffix("-tickets")
    job_dir = tmp_path / "out" / f"ftjob-{job_id}"
    assert (job_dir / "results.csv").read_text().startswith("step,train_loss,")
    assert (job_dir / "curves.png").read_bytes().startswith(b"\x89PNG")

    code, out, err = in_process("finetune", "status", f"ftjob-{job_id}", "--json")
    assert code == 0, err
    view = json.loads(out)
    assert view["job"]["status"] == "succeeded"
    assert [c["step_number"] for c in view["checkpoints"]] == [120, 60]
    code, out, _ = in_process("finetune", "events", f"ftjob-{job_id}", "--json")
    assert json.loads(out)[-1]["message"] == "The job has successfully completed."
    code, out, _ = in_process("finetune", "list", "--json")
    assert f"ftjob-{job_id}" in [job["id"] for job in json.loads(out)]


def test_start_refuses_a_dataset_with_errors_before_uploading(in_process: Any) -> None:
    code, _, err = in_process("finetune", "start", str(TOO_FEW), "--base", "gpt-4o-mini")
    assert code == 1
    assert "error too_few_examples: 5 valid example(s)" in err
    assert err.strip().splitlines()[-1] == (
        "hosting: the dataset check found errors; fix them (or pass --skip-check to let Azure "
        "judge)"
    )


def test_a_failed_job_prints_azures_error_body_and_exits_1(in_process: Any) -> None:
    code, out, err = in_process(
        "finetune", "start", str(TOO_FEW), "--base", "gpt-4o-mini", "--skip-check",
        "--poll", "0.02", "--json",
    )  # fmt: skip
    assert code == 1, err
    answer = json.loads(out)
    assert answer["job"]["status"] == "failed"
    assert answer["error"] == {
        "code": "invalid_training_file",
        "message": "The job failed due to an invalid training file. Training file has 5 "
        "example(s), but must have at least 10 examples.",
        "param": "training_file",
    }
    code, out, _ = in_process("finetune", "status", answer["job"]["id"])
    assert code == 1
    assert '"code": "invalid_training_file"' in out


def test_cancel_and_status_of_a_cancelled_job(in_process: Any) -> None:
    code, out, err = in_process(
        "finetune", "start", str(CLEAN), "--base", "gpt-4o-mini", "--no-follow", "--poll", "0.02"
    )
    assert code == 0, err
    job_id = out.strip()
    code, out, _ = in_process("finetune", "cancel", job_id, "--json")
    assert (code, json.loads(out)["status"]) == (0, "cancelled")
    code, out, _ = in_process("finetune", "status", job_id)
    assert code == 1
    assert "cancelled" in out
    code, _, err = in_process("finetune", "cancel", job_id)
    assert code == 1
    assert err.startswith("hosting: Azure answered 400: ")
    assert f"Job {job_id} has already cancelled" in err


def test_data_check_exit_codes_for_ci(in_process: Any) -> None:
    code, out, _ = in_process(
        "data", "check", str(CLEAN), str(VALID), "--base", "gpt-4o-mini", "--json"
    )
    assert code == 0
    assert json.loads(out)["ok"] is True
    code, out, _ = in_process("data", "check", str(TOO_FEW), "--base", "gpt-4o-mini")
    assert code == 1
    assert out.splitlines()[-1].startswith("FAILED: 1 error(s), 0 warning(s) for gpt-4o-mini")
    code, _, err = in_process("data", "check", str(CLEAN), "--base", "gpt-9")
    assert code == 2
    assert err.startswith("hosting: unknown base model 'gpt-9'")
    code, _, err = in_process("data", "check", "nowhere.jsonl", "--base", "gpt-4o-mini")
    assert code == 2
    assert "nowhere.jsonl" in err


def test_status_follow_finishes_a_job_started_without_following(
    in_process: Any, tmp_path: Path
) -> None:
    code, out, err = in_process(
        "finetune", "start", str(CLEAN), "--base", "gpt-4o-mini", "--no-follow", "--poll", "0.02"
    )
    assert code == 0, err
    job_id = out.strip()
    code, out, err = in_process(
        "finetune", "status", job_id, "--follow", "--poll", "0.02", "--json",
        "--out-dir", str(tmp_path / "out"), "--name", "followed",
    )  # fmt: skip
    assert code == 0, err
    answer = json.loads(out)
    assert answer["job"]["status"] == "succeeded"
    assert answer["curves"]["ok"] is True
    assert Path(answer["plot"]).is_file()
    assert (
        tomllib.loads(answer["hosting_toml"])["models"]["followed"]["fine_tuned_model"]
        == (answer["job"]["fine_tuned_model"])
    )
