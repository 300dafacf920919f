"""A batch run's state and summary, and the pure decisions over them.

One `BatchRun` record per run id lives in the runs container and is changed only by
compare-and-swap (`JsonBlobStore`), so a second start of the same run, a late continuation or
a crashed worker's successor all agree on where the run stands. The record never holds a list
of documents: the listing's continuation marker says where the unprocessed pages begin, and
counters say what was done, so it stays small for any number of documents.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from shared.names import output_prefix_problem, prefix_problem

RunStatus = Literal[
    "pending", "waiting_for_deployment", "running", "succeeded", "deadline_reached", "failed"
]
TERMINAL_RUN_STATUSES: frozenset[str] = frozenset({"succeeded", "deadline_reached", "failed"})
# Run ids become blob names and hold ids: letters, digits, '-', '_' and '.'.
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# Names the runs container uses for itself beside the runs' folders (`open/<run id>`): a run
# with one of them as its id would mistake the store's own blobs for its own.
RESERVED_RUN_IDS = frozenset({"open"})
# A deadline further away than this is refused (a run without one has none at all).
MAX_DEADLINE = timedelta(days=366)
# A run whose slices fail on every delivery this many times over (each time the queue gave up
# on a continuation) ends `failed` instead of holding its deployment for good.
MAX_FAILED_ROUNDS = 3


class RunInvalid(ValueError):
    """A batch cannot be started as asked (unknown model, bad prefix or run id)."""


class RunCounters(BaseModel):
    """What a run has done so far; added to page by page."""

    model_config = ConfigDict(frozen=True)

    listed: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    requests: int = 0
    throttled: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # What Azure counts against the per-minute limit: prompt plus max_tokens, per answer.
    rate_limit_tokens: int = 0
    processing_seconds: float = 0.0

    def plus(self, other: RunCounters) -> RunCounters:
        return RunCounters(
            **{
                name: getattr(self, name) + getattr(other, name)
                for name in RunCounters.model_fields
            }
        )


class BatchRun(BaseModel):
    """Everything known about one run, stored as one blob under its run id."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    model: str
    input_container: str
    input_prefix: str
    output_prefix: str
    deadline: datetime | None = None
    status: RunStatus = "pending"
    created: datetime
    # When the batch first needed the deployment: the start of its billed hosting.
    needed_since: datetime | None = None
    first_ready_at: datetime | None = None
    finished: datetime | None = None
    waiting_reason: str | None = None
    # The listing's continuation token of the first page not yet finished (None: the start).
    marker: str | None = None
    pages_done: int = 0
    counters: RunCounters = RunCounters()
    slices: int = 0
    # The worker running the run now, and until when its claim holds without renewal.
    worker: str | None = None
    worker_expires: datetime | None = None
    # When the next slice is due (its queue message, or the operator's command coming back):
    # a run not claimed by then, plus a grace, has lost its continuation and is re-queued.
    next_slice_at: datetime | None = None
    error: str | None = None
    left_count: int | None = None
    left_blob: str | None = None
    summary_blob: str | None = None
    # How many times every delivery of a continuation failed (see `MAX_FAILED_ROUNDS`).
    failed_rounds: int = 0

    @property
    def hold_id(self) -> str:
        return f"batch:{self.run_id}"

    @property
    def final(self) -> bool:
        return self.status in TERMINAL_RUN_STATUSES


def run_id_problem(run_id: str) -> str | None:
    """What is wrong with a run id, or None: checked before the id names any blob."""
    if not RUN_ID.fullmatch(run_id):
        return (
            f"run id {run_id[:120]!r} must be 1-100 letters, digits, '.', '_' or '-', starting "
            "with a letter or digit"
        )
    if run_id in RESERVED_RUN_IDS:
        return f"run id {run_id!r} is reserved for the run store's own records; choose another"
    return None


def check_run_id(run_id: str) -> str:
    problem = run_id_problem(run_id)
    if problem is not None:
        raise RunInvalid(problem)
    return run_id


def new_run(
    *,
    run_id: str,
    model: str,
    input_container: str,
    input_prefix: str,
    output_prefix: str,
    deadline: datetime | None,
    now: datetime,
) -> BatchRun:
    check_run_id(run_id)
    for label, prefix in (("input_prefix", input_prefix), ("output_prefix", output_prefix)):
        problem = prefix_problem(label, prefix)
        if problem is not None:
            raise RunInvalid(problem)
    problem = output_prefix_problem(output_prefix)
    if problem is not None:
        raise RunInvalid(problem)
    if deadline is not None:
        check_deadline(deadline, now=now)
    return BatchRun(
        run_id=run_id,
        model=model,
        input_container=input_container,
        input_prefix=input_prefix,
        output_prefix=output_prefix,
        deadline=deadline,
        created=now,
        next_slice_at=now,
    )


def claim_run(run: BatchRun, *, worker: str, now: datetime, ttl: timedelta) -> BatchRun | None:
    """Take the run for `worker`; None when it is final or another worker's claim is live."""
    if run.final:
        return None
    if (
        run.worker is not None
        and run.worker != worker
        and run.worker_expires is not None
        and run.worker_expires > now
    ):
        return None
    return run.model_copy(
        update={
            "worker": worker,
            "worker_expires": now + ttl,
            "slices": run.slices + 1,
            "next_slice_at": None,
        }
    )


def stalled_run_reason(run: BatchRun, now: datetime, grace: timedelta) -> str | None:
    """Why a run that is not final needs a continuation queued now, or None. Pure."""
    if run.final:
        return None
    if run.worker is not None:
        if run.worker_expires is not None and run.worker_expires + grace <= now:
            return f"its worker {run.worker} stopped renewing its claim"
        return None
    if run.next_slice_at is None:
        return "no next slice is scheduled"
    if run.next_slice_at + grace <= now:
        return f"its next slice, due {run.next_slice_at:%H:%M:%S}, never came"
    return None


def extend_claim(run: BatchRun, *, worker: str, now: datetime, ttl: timedelta) -> BatchRun | None:
    if run.worker != worker or run.final:
        return None
    return run.model_copy(update={"worker_expires": now + ttl})


def release_claim(run: BatchRun, *, worker: str, **fields: Any) -> BatchRun | None:
    """Give the run back (a slice ended); None (no write) when it is no longer ours."""
    if run.worker != worker:
        return None
    return run.model_copy(update={"worker": None, "worker_expires": None, **fields})


def page_done(
    run: BatchRun, *, worker: str, marker: str | None, counters: RunCounters
) -> BatchRun | None:
    """A page's documents all have an outcome: move the marker past it and add its counts."""
    if run.worker != worker:
        return None
    return run.model_copy(
        update={
            "marker": marker,
            "pages_done": run.pages_done + 1,
            "counters": run.counters.plus(counters),
            "status": "running",
            "waiting_reason": None,
            "failed_rounds": 0,
        }
    )


def deadline_passed(run: BatchRun, now: datetime) -> bool:
    return run.deadline is not None and now >= run.deadline


def seconds_until(moment: datetime | None, now: datetime) -> float | None:
    return None if moment is None else (moment - now).total_seconds()


def continuation_delay(wait_seconds: float, run: BatchRun, now: datetime) -> float:
    """When to look again: after `wait_seconds`, but never past the deadline (the run must
    be there to list what is left)."""
    left = seconds_until(run.deadline, now)
    if left is None:
        return max(0.0, wait_seconds)
    return max(0.0, min(wait_seconds, left))


def summary_of(run: BatchRun, *, now: datetime, left_sample: list[str]) -> dict[str, Any]:
    """The run summary blob's content: what was done, what it cost, what is left."""
    counters = run.counters
    finished = run.finished or now
    hosting = (finished - run.needed_since).total_seconds() if run.needed_since else 0.0
    elapsed = (finished - run.created).total_seconds()
    processing_window = (finished - run.first_ready_at).total_seconds() if run.first_ready_at else 0
    return {
        "run_id": run.run_id,
        "model": run.model,
        "status": run.status,
        "input": f"{run.input_container}/{run.input_prefix}",
        "output_prefix": run.output_prefix,
        "deadline": run.deadline.isoformat() if run.deadline else None,
        "created": run.created.isoformat(),
        "finished": finished.isoformat(),
        "error": run.error,
        "documents": {
            "listed": counters.listed,
            "succeeded": counters.succeeded,
            "failed": counters.failed,
            "skipped_already_done": counters.skipped,
            "left_at_deadline": run.left_count or 0,
        },
        "left": {
            "count": run.left_count or 0,
            "list_blob": run.left_blob,
            "first": left_sample,
            "note": "left in place in the input container for the next window",
        }
        if run.left_count
        else None,
        "tokens": {
            "prompt": counters.prompt_tokens,
            "completion": counters.completion_tokens,
            "rate_limit_charged": counters.rate_limit_tokens,
        },
        "requests": {"answered": counters.requests, "throttled_429": counters.throttled},
        "durations_seconds": {
            "elapsed": round(elapsed, 3),
            "waiting_for_deployment": round(
                (run.first_ready_at - run.needed_since).total_seconds(), 3
            )
            if run.first_ready_at and run.needed_since
            else None,
            "processing_window": round(processing_window, 3),
            "document_work": round(counters.processing_seconds, 3),
        },
        # From the moment the batch needed the deployment (its provisioning included) to its
        # end; whether Azure prorates a partial hour is a billing setting, not known here.
        "billed_hosting_seconds": round(hosting, 3),
        "slices": run.slices,
        "pages": run.pages_done,
    }


def run_view(run: BatchRun) -> dict[str, Any]:
    """The run as `GET /api/batches/{id}` and `hosting batch status --json` show it."""
    view = run.model_dump(mode="json", exclude={"worker", "worker_expires"})
    view["counters"] = run.counters.model_dump(mode="json")
    view["final"] = run.final
    return view


# How many of the names left at the deadline the summary shows (all are in the list blob).
MAX_SAMPLE = 20


_DURATION = TypeAdapter(timedelta)


def check_deadline(deadline: datetime, *, now: datetime) -> datetime:
    if deadline <= now:
        raise RunInvalid(f"the deadline {deadline.isoformat()} has already passed")
    if deadline - now > MAX_DEADLINE:
        raise RunInvalid(
            f"the deadline {deadline.isoformat()} is more than {MAX_DEADLINE.days} days away; "
            "give a nearer one, or none for a run without a deadline"
        )
    return deadline


def parse_deadline(text: str, *, now: datetime) -> datetime:
    """A deadline: an ISO 8601 date-time (UTC unless it names a zone), or a duration from now
    (ISO 8601 such as `PT2H`, or seconds); at most `MAX_DEADLINE` away."""
    cleaned = text.strip()
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        span = _duration(text, cleaned)
    else:
        moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
        span = moment - now
    if span > MAX_DEADLINE:
        raise RunInvalid(
            f"deadline {text[:80]!r} is more than {MAX_DEADLINE.days} days away; give a nearer "
            "one, or none for a run without a deadline"
        )
    return now + span


def _duration(text: str, cleaned: str) -> timedelta:
    try:
        # Plain seconds come as text; pydantic reads a number as seconds, text as ISO 8601.
        seconds = cleaned.replace(".", "", 1).isdigit()
        span = _DURATION.validate_python(float(cleaned) if seconds else cleaned)
    except (ValidationError, OverflowError):
        raise RunInvalid(
            f"deadline {text[:80]!r} is neither an ISO 8601 date-time nor a duration (PT2H, 3600)"
        ) from None
    if span <= timedelta(0):
        raise RunInvalid(f"deadline {text[:80]!r} is not a positive duration")
    return span
