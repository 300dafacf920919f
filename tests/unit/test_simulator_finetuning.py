"""The simulator's fine-tuning rules with a hand-moved clock: statuses over simulated time,
events, checkpoints, the results file, validation failures, cancelling and refusals."""

from __future__ import annotations

import json

import pytest

from simulator.errors import ApiError
from simulator.finetuning import FineTuningStore, FineTuningTimings

T0 = 1_767_225_600.0
TIMINGS = FineTuningTimings(
    file_processing_seconds=5, validating_seconds=60, queued_seconds=120, seconds_per_step=6
)


def _examples(count: int) -> bytes:
    line = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    return b"".join(json.dumps(line).encode() + b"\n" for _ in range(count))


def _job(store: FineTuningStore, content: bytes, **body: object) -> str:
    uploaded = store.upload("train.jsonl", "fine-tune", content, T0)
    created = store.create_job(
        {"model": "gpt-4o-mini", "training_file": uploaded["id"], **body}, T0
    )
    return str(created["id"])


def test_a_file_is_pending_then_processed() -> None:
    store = FineTuningStore(TIMINGS)
    uploaded = store.upload("train.jsonl", "fine-tune", _examples(10), T0)
    assert uploaded["status"] == "pending"
    assert store.file_view(uploaded["id"], T0 + 5)["status"] == "processed"
    assert store.delete_file(uploaded["id"]) == {
        "object": "file",
        "id": uploaded["id"],
        "deleted": True,
    }
    with pytest.raises(ApiError) as missing:
        store.file(uploaded["id"])
    assert missing.value.status == 404


def test_a_job_moves_through_its_statuses_with_simulated_time() -> None:
    store = FineTuningStore(TIMINGS)
    job_id = _job(store, _examples(20), hyperparameters={"n_epochs": 2, "batch_size": 2})
    steps = 20 // 2 * 2
    timeline = [
        (0, "validating_files"),
        (59, "validating_files"),
        (60, "queued"),
        (179, "queued"),
        (180, "running"),
        (180 + steps * 6 - 1, "running"),
        (180 + steps * 6, "succeeded"),
    ]
    for offset, status in timeline:
        assert store.job_view(job_id, T0 + offset)["status"] == status, offset
    job = store.job_view(job_id, T0 + 10_000)
    assert job["fine_tuned_model"] == f"gpt-4o-mini.ft-{job_id.removeprefix('ftjob-')}"
    assert job["finished_at"] == int(T0 + 180 + steps * 6)
    (results_id,) = job["result_files"]
    results = store.file(results_id).content.decode().splitlines()
    assert results[0].startswith("step,train_loss,train_mean_token_accuracy,valid_loss")
    assert len(results) == steps + 1
    messages = [
        e["message"] for e in reversed(store.events(job_id, T0 + 10_000, 100, None)["data"])
    ]
    assert messages[:3] == [
        "Job enqueued. Validating training file.",
        "Training file validated. Job queued.",
        "Fine-tuning job started.",
    ]
    assert messages[-1] == "The job has successfully completed."
    checkpoints = store.checkpoints(job_id, T0 + 10_000, 10)["data"]
    assert [c["step_number"] for c in checkpoints] == [20, 10]


def test_only_the_last_three_checkpoints_are_kept() -> None:
    store = FineTuningStore(TIMINGS)
    job_id = _job(store, _examples(10), hyperparameters={"n_epochs": 5, "batch_size": 1})
    checkpoints = store.checkpoints(job_id, T0 + 100_000, 10)["data"]
    assert [c["step_number"] for c in checkpoints] == [50, 40, 30]


def test_a_bad_training_file_fails_validation_with_an_error_body() -> None:
    store = FineTuningStore(TIMINGS)
    job_id = _job(store, _examples(3))
    assert store.job_view(job_id, T0 + 59)["status"] == "validating_files"
    failed = store.job_view(job_id, T0 + 60)
    assert failed["status"] == "failed"
    assert failed["error"] == {
        "code": "invalid_training_file",
        "message": "The job failed due to an invalid training file. Training file has 3 "
        "example(s), but must have at least 10 examples.",
        "param": "training_file",
    }


def test_cancelling_ends_a_job_and_a_second_cancel_is_refused() -> None:
    store = FineTuningStore(TIMINGS)
    job_id = _job(store, _examples(10))
    assert store.cancel(job_id, T0 + 200)["status"] == "cancelled"
    assert store.job_view(job_id, T0 + 100_000)["status"] == "cancelled"
    with pytest.raises(ApiError) as refused:
        store.cancel(job_id, T0 + 100_001)
    assert refused.value.status == 400


def test_a_model_that_cannot_be_fine_tuned_is_refused() -> None:
    store = FineTuningStore(TIMINGS)
    uploaded = store.upload("train.jsonl", "fine-tune", _examples(10), T0)
    with pytest.raises(ApiError) as refused:
        store.create_job({"model": "gpt-5-chat", "training_file": uploaded["id"]}, T0)
    assert refused.value.body == {
        "error": {
            "code": "invalidPayload",
            "message": "The specified base model does not support fine-tuning.",
        }
    }


def test_a_fine_tuned_model_answers_what_it_learnt() -> None:
    store = FineTuningStore(TIMINGS)
    lines = [
        {
            "messages": [
                {"role": "user", "content": f"Is the {product} service down for everyone?"},
                {"role": "assistant", "content": "outage"},
            ]
        }
        for product in ("mail", "chat", "files", "drive", "maps")
    ] + [
        {
            "messages": [
                {"role": "user", "content": f"Refund the double charge on my {product} bill"},
                {"role": "assistant", "content": "billing"},
            ]
        }
        for product in ("mail", "chat", "files", "drive", "maps")
    ]
    content = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    job_id = _job(store, content, suffix="t")
    job = store.job(job_id, T0 + 100_000)
    model = str(job.fine_tuned_model)
    assert store.learned_answer(model, "Is the photos service down for everyone?") == "outage"
    assert store.learned_answer(model, "refund the double charge on my photos bill") == "billing"
    assert store.learned_answer(model, "What is the weather tomorrow?") is None
    assert store.learned_answer("gpt-4o-mini", "Is the mail service down for everyone?") is None
