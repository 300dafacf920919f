"""Simulated Azure OpenAI files and fine-tuning jobs (pure state, clock passed in).

What a client sees, in Azure's shapes:

- Files (`purpose="fine-tune"`): uploaded as `pending`, `processed` after
  `file_processing_seconds`; listed, read back, deleted.
- Jobs: `validating_files` for `validating_seconds`, then either `failed` with an error body
  (`{"code": "invalid_training_file", "message": ..., "param": "training_file"}`) when the
  training or validation file would not pass Azure's validation, or `queued` for
  `queued_seconds`, then `running` for `seconds_per_step` x steps, then `succeeded` with a
  `fine_tuned_model` and a `results.csv` result file. Cancelling a job that has not ended
  makes it `cancelled`.
- Events as the job moves (validation, start, a step line every few steps with its loss,
  checkpoints, the new model, completion), newest first as the API lists them; checkpoints
  at the end of each epoch (the last three kept, as Azure keeps).

Everything is a function of the simulated time: a job's state is brought up to `now` when it
is read. The validation here is the simulator's own, much simpler than the app's dataset
checks, so the app's checks are tested against an independent judge.
"""

from __future__ import annotations

import json
import math
import random
import secrets
from dataclasses import dataclass, field
from typing import Any

from simulator.errors import ApiError, gateway_error, invalid_request

FINE_TUNABLE_BASES = (
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "o4-mini",
    "gpt-35-turbo-0125",
    "babbage-002",
    "davinci-002",
)
BASE_MODEL_NOT_SUPPORTED = "The specified base model does not support fine-tuning."
MIN_EXAMPLES = 10
KEPT_CHECKPOINTS = 3
STEP_EVENT_EVERY = 10
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
RESULTS_HEADER = (
    "step,train_loss,train_mean_token_accuracy,valid_loss,validation_mean_token_accuracy,"
    "full_valid_loss,full_valid_mean_token_accuracy"
)


@dataclass(frozen=True)
class FineTuningTimings:
    """Simulated seconds each phase takes."""

    file_processing_seconds: float = 5.0
    validating_seconds: float = 60.0
    queued_seconds: float = 120.0
    seconds_per_step: float = 6.0
    max_steps: int = 300


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: float

    def view(self, now: float, timings: FineTuningTimings) -> dict[str, Any]:
        processed = now >= self.created_at + timings.file_processing_seconds
        return {
            "object": "file",
            "id": self.id,
            "purpose": self.purpose,
            "filename": self.filename,
            "bytes": len(self.content),
            "created_at": int(self.created_at),
            "status": "processed" if processed or self.purpose != "fine-tune" else "pending",
            "status_details": None,
        }


@dataclass
class Event:
    id: str
    created_at: float
    message: str
    level: str = "info"
    data: dict[str, Any] | None = None

    def view(self) -> dict[str, Any]:
        return {
            "object": "fine_tuning.job.event",
            "id": self.id,
            "created_at": int(self.created_at),
            "level": self.level,
            "message": self.message,
            "type": "metrics" if self.data else "message",
            "data": self.data,
        }


@dataclass
class Job:
    id: str
    model: str
    training_file: str
    validation_file: str | None
    created_at: float
    hyperparameters: dict[str, Any]
    seed: int
    suffix: str | None
    training_type: str | None
    examples: int
    tokens_per_epoch: int
    validation_error: dict[str, Any] | None
    status: str = "validating_files"
    finished_at: float | None = None
    fine_tuned_model: str | None = None
    result_files: list[str] | None = None
    error: dict[str, Any] | None = None
    events: list[Event] = field(default_factory=list)
    steps_reported: int = 0
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    # What the fine-tuned model "learnt": (words of the last user turn, the assistant's answer)
    # of each training example, read when the job was created (the file may be deleted since).
    learned: list[tuple[frozenset[str], str]] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return int(self.hyperparameters["n_epochs"])

    @property
    def total_steps(self) -> int:
        batch = int(self.hyperparameters["batch_size"])
        return max(1, math.ceil(self.examples / batch)) * self.epochs

    def view(self, timings: FineTuningTimings) -> dict[str, Any]:
        running_from = self.created_at + timings.validating_seconds + timings.queued_seconds
        estimated = running_from + self.steps(timings) * timings.seconds_per_step
        body: dict[str, Any] = {
            "object": "fine_tuning.job",
            "id": self.id,
            "model": self.model,
            "created_at": int(self.created_at),
            "finished_at": None if self.finished_at is None else int(self.finished_at),
            "fine_tuned_model": self.fine_tuned_model,
            "hyperparameters": dict(self.hyperparameters),
            "organization_id": None,
            "result_files": self.result_files,
            "status": self.status,
            "training_file": self.training_file,
            "validation_file": self.validation_file,
            "seed": self.seed,
            "suffix": self.suffix,
            "trained_tokens": (
                self.tokens_per_epoch * self.epochs if self.status == "succeeded" else None
            ),
            "estimated_finish": None if self.status in TERMINAL else int(estimated),
            "error": self.error,
        }
        if self.training_type is not None:
            body["trainingType"] = self.training_type
        return body

    def steps(self, timings: FineTuningTimings) -> int:
        return min(self.total_steps, timings.max_steps)


def _id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(16)}"


def _validate_file(content: bytes, param: str) -> tuple[dict[str, Any] | None, int, int]:
    """Azure-style validation: (error body or None, examples, tokens per epoch (estimated))."""
    examples = tokens = 0
    text = content.decode("utf-8-sig", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        examples += 1
        tokens += max(1, len(line) // 4)
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            return (
                _file_error(param, f"Invalid file format. Line {number} is not valid JSON."),
                0,
                0,
            )
        messages = value.get("messages") if isinstance(value, dict) else None
        if isinstance(value, dict) and "prompt" in value and "completion" in value:
            continue
        if not isinstance(messages, list) or not any(
            isinstance(message, dict) and message.get("role") == "assistant" for message in messages
        ):
            return (
                _file_error(
                    param,
                    f"Invalid file format. Example {examples} must have at least one message "
                    "with role 'assistant'.",
                ),
                0,
                0,
            )
    if examples < MIN_EXAMPLES:
        return (
            _file_error(
                param,
                f"Training file has {examples} example(s), but must have at least "
                f"{MIN_EXAMPLES} examples.",
            ),
            0,
            0,
        )
    return None, examples, tokens


LEARNED_SIMILARITY = 0.5


def _words(text: str) -> frozenset[str]:
    return frozenset("".join(c if c.isalnum() else " " for c in text.lower()).split())


def _learned_pairs(content: bytes) -> list[tuple[frozenset[str], str]]:
    pairs: list[tuple[frozenset[str], str]] = []
    for line in content.decode("utf-8-sig", errors="replace").splitlines():
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        messages = value.get("messages") if isinstance(value, dict) else None
        if not isinstance(messages, list):
            continue
        users = [
            m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == "user"
        ]
        answers = [
            m.get("content")
            for m in messages
            if isinstance(m, dict) and m.get("role") == "assistant"
        ]
        if users and answers and isinstance(users[-1], str) and isinstance(answers[-1], str):
            pairs.append((_words(users[-1]), answers[-1]))
    return pairs


def _file_error(param: str, detail: str) -> dict[str, Any]:
    which = "training" if param == "training_file" else "validation"
    return {
        "code": f"invalid_{which}_file",
        "message": f"The job failed due to an invalid {which} file. {detail}",
        "param": param,
    }


def _default_epochs(examples: int) -> int:
    if examples * 3 < 100:
        return min(25, 100 // max(1, examples))
    if examples * 3 > 25_000:
        return max(1, 25_000 // examples)
    return 3


class FineTuningStore:
    """Files and jobs; every read first brings jobs up to `now`."""

    def __init__(self, timings: FineTuningTimings | None = None) -> None:
        self.timings = timings or FineTuningTimings()
        self.files: dict[str, StoredFile] = {}
        self.jobs: dict[str, Job] = {}

    def clear(self) -> None:
        self.files.clear()
        self.jobs.clear()

    # --- files ---------------------------------------------------------------------------

    def upload(self, filename: str, purpose: str, content: bytes, now: float) -> dict[str, Any]:
        if purpose != "fine-tune":
            raise invalid_request(
                f"Invalid value for purpose: '{purpose}'. Supported values: 'fine-tune'.",
                "purpose",
            )
        if not content:
            raise invalid_request("The file is empty.", "file")
        stored = StoredFile(_id("file"), filename, purpose, content, now)
        self.files[stored.id] = stored
        return stored.view(now, self.timings)

    def file(self, file_id: str) -> StoredFile:
        stored = self.files.get(file_id)
        if stored is None:
            raise gateway_error(404, "fileNotFound", f"File with id '{file_id}' not found.")
        return stored

    def file_view(self, file_id: str, now: float) -> dict[str, Any]:
        return self.file(file_id).view(now, self.timings)

    def list_files(self, now: float) -> dict[str, Any]:
        ordered = sorted(self.files.values(), key=lambda f: f.created_at, reverse=True)
        return {
            "object": "list",
            "data": [stored.view(now, self.timings) for stored in ordered],
            "has_more": False,
        }

    def delete_file(self, file_id: str) -> dict[str, Any]:
        self.file(file_id)
        del self.files[file_id]
        return {"object": "file", "id": file_id, "deleted": True}

    # --- jobs ----------------------------------------------------------------------------

    def _fine_tunable(self, model: str) -> bool:
        if any(job.fine_tuned_model == model for job in self.jobs.values()):
            return True  # continuous fine-tuning from a model this account trained
        base = model.lower()
        return any(
            base == name or (base.startswith(name + "-") and base[len(name) + 1 :][:1].isdigit())
            for name in FINE_TUNABLE_BASES
        )

    def _hyperparameters(self, given: Any, examples: int) -> dict[str, Any]:
        given = given if isinstance(given, dict) else {}
        epochs = given.get("n_epochs", "auto")
        batch = given.get("batch_size", "auto")
        multiplier = given.get("learning_rate_multiplier", "auto")
        for name, value, kind in (
            ("n_epochs", epochs, int),
            ("batch_size", batch, int),
            ("learning_rate_multiplier", multiplier, (int, float)),
        ):
            if value != "auto" and (
                isinstance(value, bool) or not isinstance(value, kind) or value <= 0
            ):
                raise invalid_request(
                    f"Invalid value for hyperparameters.{name}: {json.dumps(value)}.",
                    f"hyperparameters.{name}",
                )
        return {
            "n_epochs": _default_epochs(examples) if epochs == "auto" else epochs,
            "batch_size": max(1, min(256, math.ceil(examples * 0.002)))
            if batch == "auto"
            else batch,
            "learning_rate_multiplier": 1.0 if multiplier == "auto" else float(multiplier),
        }

    def create_job(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        model = body.get("model")
        training_file = body.get("training_file")
        if not isinstance(model, str) or not model:
            raise invalid_request("Missing required parameter: 'model'.", "model")
        if not isinstance(training_file, str) or not training_file:
            raise invalid_request("Missing required parameter: 'training_file'.", "training_file")
        if not self._fine_tunable(model):
            raise ApiError(
                400, {"error": {"code": "invalidPayload", "message": BASE_MODEL_NOT_SUPPORTED}}
            )
        validation_file = body.get("validation_file")
        for param, file_id in (
            ("training_file", training_file),
            ("validation_file", validation_file),
        ):
            if file_id is None:
                continue
            if not isinstance(file_id, str) or file_id not in self.files:
                raise invalid_request(f"File with id '{file_id}' not found.", param)
        error, examples, tokens = _validate_file(self.files[training_file].content, "training_file")
        if error is None and isinstance(validation_file, str):
            error = _validate_file(self.files[validation_file].content, "validation_file")[0]
        seed = body.get("seed")
        suffix = body.get("suffix")
        training_type = body.get("trainingType")
        job = Job(
            id=_id("ftjob"),
            model=model,
            training_file=training_file,
            validation_file=validation_file if isinstance(validation_file, str) else None,
            created_at=now,
            hyperparameters=self._hyperparameters(body.get("hyperparameters"), max(examples, 1)),
            seed=seed if isinstance(seed, int) else random.randrange(2**31),
            suffix=suffix if isinstance(suffix, str) else None,
            training_type=training_type if isinstance(training_type, str) else None,
            examples=examples,
            tokens_per_epoch=tokens,
            validation_error=error,
            learned=_learned_pairs(self.files[training_file].content) if error is None else [],
        )
        job.events.append(Event(_id("ftevent"), now, "Job enqueued. Validating training file."))
        self.jobs[job.id] = job
        return job.view(self.timings)

    def learned_answer(self, model: str, question: str) -> str | None:
        """How a model fine-tuned here answers: the answer of the training example whose last
        user turn shares the most words with `question` (at least half of them, by Jaccard),
        else None (the model answers like any other). Deterministic, so an evaluation of a
        fine-tuned model against its base has a real difference to find."""
        job = next(
            (j for j in self.jobs.values() if j.fine_tuned_model == model and j.learned), None
        )
        if job is None:
            return None
        words = _words(question)
        best, best_score = None, 0.0
        for known, answer in job.learned:
            union = len(words | known)
            similarity = len(words & known) / union if union else 0.0
            if similarity > best_score:
                best, best_score = answer, similarity
        return best if best_score >= LEARNED_SIMILARITY else None

    def job(self, job_id: str, now: float) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise gateway_error(404, "NotFound", f"Job with id '{job_id}' not found.")
        _advance(job, now, self.timings, self.files)
        return job

    def job_view(self, job_id: str, now: float) -> dict[str, Any]:
        return self.job(job_id, now).view(self.timings)

    def list_jobs(self, now: float, limit: int, after: str | None) -> dict[str, Any]:
        ordered = sorted(self.jobs.values(), key=lambda j: j.created_at, reverse=True)
        if after is not None:
            ids = [job.id for job in ordered]
            ordered = ordered[ids.index(after) + 1 :] if after in ids else []
        page = ordered[:limit]
        for job in page:
            _advance(job, now, self.timings, self.files)
        return {
            "object": "list",
            "data": [job.view(self.timings) for job in page],
            "has_more": len(ordered) > limit,
        }

    def cancel(self, job_id: str, now: float) -> dict[str, Any]:
        job = self.job(job_id, now)
        if job.status in TERMINAL:
            raise invalid_request(
                f"Job {job_id} has already {job.status}; only a job that has not ended can be "
                "cancelled.",
                None,
            )
        job.status, job.finished_at = "cancelled", now
        job.events.append(Event(_id("ftevent"), now, "Job cancelled."))
        return job.view(self.timings)

    def events(self, job_id: str, now: float, limit: int, after: str | None) -> dict[str, Any]:
        newest_first = list(reversed(self.job(job_id, now).events))
        if after is not None:
            ids = [event.id for event in newest_first]
            newest_first = newest_first[ids.index(after) + 1 :] if after in ids else []
        return {
            "object": "list",
            "data": [event.view() for event in newest_first[:limit]],
            "has_more": len(newest_first) > limit,
        }

    def checkpoints(self, job_id: str, now: float, limit: int) -> dict[str, Any]:
        newest_first = list(reversed(self.job(job_id, now).checkpoints))
        return {
            "object": "list",
            "data": newest_first[:limit],
            "has_more": len(newest_first) > limit,
            "first_id": newest_first[0]["id"] if newest_first else None,
            "last_id": newest_first[-1]["id"] if newest_first else None,
        }


def _metrics(job: Job, step: int, steps: int) -> dict[str, float]:
    """Deterministic, plausible curves: loss falls and accuracy rises with progress."""
    noise = random.Random(f"{job.id}:{step}")
    progress = step / steps
    train_loss = 0.35 + 1.6 * math.exp(-4 * progress) + noise.uniform(-0.04, 0.04)
    accuracy = 0.55 + 0.4 * (1 - math.exp(-4 * progress)) + noise.uniform(-0.01, 0.01)
    return {
        "train_loss": round(train_loss, 5),
        "train_mean_token_accuracy": round(min(accuracy, 1.0), 5),
        "valid_loss": round(train_loss + 0.08 + noise.uniform(-0.02, 0.02), 5),
        "validation_mean_token_accuracy": round(min(accuracy - 0.03, 1.0), 5),
    }


def _advance(
    job: Job, now: float, timings: FineTuningTimings, files: dict[str, StoredFile]
) -> None:
    if job.status in TERMINAL:
        return
    validated_at = job.created_at + timings.validating_seconds
    if now < validated_at:
        return
    if job.status == "validating_files":
        if job.validation_error is not None:
            job.status, job.finished_at, job.error = "failed", validated_at, job.validation_error
            job.events.append(
                Event(_id("ftevent"), validated_at, job.validation_error["message"], "error")
            )
            return
        job.status = "queued"
        job.events.append(
            Event(_id("ftevent"), validated_at, "Training file validated. Job queued.")
        )
    started_at = validated_at + timings.queued_seconds
    if now < started_at:
        return
    if job.status == "queued":
        job.status = "running"
        job.events.append(Event(_id("ftevent"), started_at, "Fine-tuning job started."))
    steps = job.steps(timings)
    per_epoch = max(1, steps // job.epochs)
    done = min(steps, int((now - started_at) / timings.seconds_per_step))
    for step in range(job.steps_reported + 1, done + 1):
        at = started_at + step * timings.seconds_per_step
        metrics = _metrics(job, step, steps)
        if step % STEP_EVENT_EVERY == 0 or step == steps:
            job.events.append(
                Event(
                    _id("ftevent"),
                    at,
                    f"Step {step}/{steps}: training loss={metrics['train_loss']:.4f}",
                    data={"step": step, "total_steps": steps, **metrics},
                )
            )
        if step % per_epoch == 0 or step == steps:
            _checkpoint(job, step, at, metrics)
    job.steps_reported = done
    if done < steps:
        return
    finished_at = started_at + steps * timings.seconds_per_step
    model = f"{job.model.split('.ft-')[0]}.ft-{job.id.removeprefix('ftjob-')}"
    job.fine_tuned_model = model + (f"-{job.suffix}" if job.suffix else "")
    results = StoredFile(
        _id("file"), "results.csv", "fine-tune-results", _results_csv(job, steps), finished_at
    )
    files[results.id] = results
    job.status, job.finished_at, job.result_files = "succeeded", finished_at, [results.id]
    job.events.append(Event(_id("ftevent"), finished_at, f"Completed results file: {results.id}"))
    job.events.append(
        Event(_id("ftevent"), finished_at, f"New fine-tuned model created: {job.fine_tuned_model}")
    )
    job.events.append(Event(_id("ftevent"), finished_at, "The job has successfully completed."))


def _checkpoint(job: Job, step: int, at: float, metrics: dict[str, float]) -> None:
    base = f"{job.model.split('.ft-')[0]}.ft-{job.id.removeprefix('ftjob-')}"
    job.checkpoints.append(
        {
            "object": "fine_tuning.job.checkpoint",
            "id": _id("ftckpt"),
            "created_at": int(at),
            "fine_tuned_model_checkpoint": f"{base}:ckpt-step-{step}",
            "fine_tuning_job_id": job.id,
            "metrics": {"step": float(step), **metrics},
            "step_number": step,
        }
    )
    del job.checkpoints[:-KEPT_CHECKPOINTS]
    job.events.append(Event(_id("ftevent"), at, f"Checkpoint created at step {step}."))


def _results_csv(job: Job, steps: int) -> bytes:
    per_epoch = max(1, steps // job.epochs)
    rows = [RESULTS_HEADER]
    for step in range(1, steps + 1):
        metrics = _metrics(job, step, steps)
        validated = step % 5 == 0 or step == steps
        full = step % per_epoch == 0 or step == steps
        rows.append(
            ",".join(
                [
                    str(step),
                    f"{metrics['train_loss']}",
                    f"{metrics['train_mean_token_accuracy']}",
                    f"{metrics['valid_loss']}" if validated and job.validation_file else "",
                    f"{metrics['validation_mean_token_accuracy']}"
                    if validated and job.validation_file
                    else "",
                    f"{metrics['valid_loss']}" if full and job.validation_file else "",
                    f"{metrics['validation_mean_token_accuracy']}"
                    if full and job.validation_file
                    else "",
                ]
            )
        )
    return ("\n".join(rows) + "\n").encode()
