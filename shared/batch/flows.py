"""Running a batch: start it once per run id, then one slice per invocation until it ends.

`BatchRunner.start` records the run (created with If-None-Match, so starting the same run id
twice starts it once) and queues its first slice. `continue_run` is one slice, what the
`continue_batch` queue trigger calls:

1. claim the run (one worker at a time; a live claim elsewhere means "look again after it");
2. at the deadline, list what is left and end the run;
3. place or refresh the batch hold, take one provisioning step (`advance`, never sleeping);
   not serving yet: note why, keep the hold for the wait, and continue through a queue
   message when the deployment should be ready;
4. serving: process the input listing page by page from the run's marker, documents in
   parallel under the pacer, moving the marker past each finished page, until the listing
   ends (the run succeeds), the deadline passes (what is left is listed), or the slice's
   budget (`BATCH_SLICE_SECONDS`, well under the function timeout) is spent (a queue message
   continues it at once);
5. at the end: the summary blob, the hold released, the deployment torn down if idle.

A deployment that stops serving mid-batch is marked suspect and the run continues after the
provisioner's next look; the page it interrupted is done again, skipping what has an outcome.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import chain
from typing import Any

from shared.batch.locations import OutputMapping, overlap_message, shares_outcome_names
from shared.batch.models import (
    MAX_FAILED_ROUNDS,
    MAX_SAMPLE,
    BatchRun,
    RunCounters,
    RunInvalid,
    check_run_id,
    claim_run,
    continuation_delay,
    deadline_passed,
    extend_claim,
    new_run,
    page_done,
    release_claim,
    run_id_problem,
    run_view,
    stalled_run_reason,
    summary_of,
)
from shared.batch.pacing import RatePacer, budget_for
from shared.batch.processing import (
    DocumentContext,
    DocumentOutcome,
    DocumentProcessor,
    PacedChat,
    Tally,
    counters_of,
)
from shared.batch.store import BatchQueue, InputListing, RunStore, WaitingDocument
from shared.catalog import Catalog, declared_batch_outputs
from shared.documents.answering import readiness_window_end
from shared.documents.profiles import ProcessingProfile
from shared.documents.tokens import TokenCounter
from shared.hosting.deployments import ProvisioningError
from shared.hosting.holds import LedgerRecord
from shared.hosting.hosted import HostedDeployment
from shared.observability import log_fields
from shared.renewal import PeriodicRenewal

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class BatchTimings:
    """Bounds of a run's slices (seconds) and its parallelism."""

    hold_seconds: float = 600.0
    slice_seconds: float = 600.0
    page_size: int = 100
    concurrency: int = 8
    # Azure's rate-limit minute on this clock (60; shorter against the faster simulator).
    minute_seconds: float = 60.0
    not_found_retry_seconds: float = 60.0
    # How long to wait after a transient provisioning failure or a vanished deployment.
    retry_seconds: float = 15.0
    # How late a run's next slice may be before the sweeper queues one again.
    sweep_grace_seconds: float = 60.0


@dataclass(frozen=True)
class SliceOutcome:
    """What one slice did: the run afterwards, and when it continues (None: it ended or
    another worker has it and will continue it)."""

    run: BatchRun
    continue_in: float | None
    note: str
    # How long the batch hold must last after the slice (the wait plus the work after it);
    # placed once the slice's renewals have stopped, so a late renewal cannot cut it short.
    hold_seconds: float | None = None


class RunKeeper(PeriodicRenewal):
    """Renews the run's claim and its batch hold while a slice works."""

    def __init__(
        self, runner: BatchRunner, run: BatchRun, hosted: HostedDeployment, worker: str
    ) -> None:
        ttl = runner.timings.hold_seconds
        super().__init__(f"batch-{run.run_id}", ttl, self._renew)
        self._runner = runner
        self._run_id = run.run_id
        self._hold_id = run.hold_id
        self._hosted = hosted
        self._worker = worker
        self._ttl = timedelta(seconds=ttl)

    def _renew(self) -> None:
        if self.stopped:
            return
        now = self._runner.clock()
        extended = self._runner.runs.change(
            self._run_id, lambda r: extend_claim(r, worker=self._worker, now=now, ttl=self._ttl)
        )
        if extended is None:
            return  # the run ended or another worker took it: its hold is not ours to keep
        if not self._hosted.ledger.renew_hold(self._hold_id, self._ttl) and not self.stopped:
            logger.warning("batch hold %s had lapsed; placing it again", self._hold_id)
            self._hosted.ledger.place_hold(self._hold_id, "batch", self._worker, self._ttl)


class BatchRunner:
    """Starts batch runs and runs their slices."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        hosted: Mapping[str, HostedDeployment],
        runs: RunStore,
        listing: InputListing,
        processor: DocumentProcessor,
        queue: BatchQueue,
        counter: TokenCounter,
        timings: BatchTimings,
        default_profile: str,
        clock: Clock,
        monotonic: Callable[[], float] = time.monotonic,
        instance: str | None = None,
    ) -> None:
        self._catalog = catalog
        self._hosted = hosted
        self.runs = runs
        self._listing = listing
        self._processor = processor
        self._queue = queue
        self._counter = counter
        self.timings = timings
        self._default_profile = default_profile
        self.clock = clock
        self._monotonic = monotonic
        self._instance = instance or uuid.uuid4().hex[:8]
        # One pacer per deployment in this process: two runs on one model share its budget.
        self._pacers: dict[str, RatePacer] = {}

    # --- starting -------------------------------------------------------------------------

    def start(
        self,
        model: str,
        run_id: str,
        input_prefix: str,
        output_prefix: str,
        deadline: datetime | None,
        *,
        queue_first_slice: bool = True,
    ) -> BatchRun:
        """Record the run and queue its first slice; an existing run id is returned as is."""
        check_run_id(run_id)  # before the id names any blob
        if model not in self._hosted:
            known = ", ".join(sorted(self._hosted))
            raise RunInvalid(f"unknown hosted model {model!r}; the hosted models are: {known}")
        # The reconciler calls again on every tick while the run is due: an existing run is
        # answered as it is, before any check that only a new run must pass (its deadline).
        existing = self.runs.get(run_id)
        if existing is not None:
            return self._existing(existing, model, input_prefix)
        self.profile_for(model)
        self._check_outputs(run_id, input_prefix, output_prefix)
        run = new_run(
            run_id=run_id,
            model=model,
            input_container=self._listing.container_name,
            input_prefix=input_prefix,
            output_prefix=output_prefix,
            deadline=deadline,
            now=self.clock(),
        )
        self.runs.record_output_mapping(run_id, input_prefix, output_prefix)
        if not self.runs.create(run):  # another caller created it a moment ago
            created = self.runs.get(run_id)
            assert created is not None, "create refused: the run exists"
            return self._existing(created, model, input_prefix)
        logger.info("batch %s started on model %s over %r", run_id, model, input_prefix)
        if queue_first_slice:
            self._queue.schedule(run_id, delay_seconds=0, reason="started")
        return run

    def _check_outputs(self, run_id: str, input_prefix: str, output_prefix: str) -> None:
        """Refuse a run whose outcomes would take names another run or schedule gives to
        other documents (see `locations.py`); ad-hoc outcomes live in another container."""
        ours = OutputMapping(f"run {run_id!r}", input_prefix, output_prefix)
        others = chain(
            declared_batch_outputs(self._catalog.models.values()), self.runs.output_mappings()
        )
        for other in others:
            if shares_outcome_names(ours, other):
                raise RunInvalid(overlap_message(ours, other))

    def _existing(self, existing: BatchRun, model: str, input_prefix: str) -> BatchRun:
        if existing.model != model or existing.input_prefix != input_prefix:
            raise RunInvalid(
                f"run {existing.run_id!r} exists already for model {existing.model!r} and input "
                f"prefix {existing.input_prefix!r}; choose another run id"
            )
        logger.info("batch %s exists (%s); not started again", existing.run_id, existing.status)
        return existing

    def profile_for(self, model: str) -> ProcessingProfile:
        """The profile a batch on `model` runs with: one named like the model, else the
        default profile when it runs on the model, else the model's only profile."""
        profiles = self._catalog.profiles
        on_model = [p for p in profiles.values() if self._catalog.model_for(p).name == model]
        for name in (model, self._default_profile):
            profile = profiles.get(name)
            if profile is not None and profile in on_model:
                return profile
        if len(on_model) == 1:
            return on_model[0]
        listed = ", ".join(p.name for p in on_model) or "(none)"
        raise RunInvalid(
            f"no profile for a batch on model {model!r}: name a profile {model!r}, or make the "
            f"default profile run on it (profiles on it: {listed})"
        )

    def status(self, run_id: str) -> dict[str, Any] | None:
        """The run's view; None when there is no such run (or the id cannot name one)."""
        if run_id_problem(run_id) is not None:
            return None
        run = self.runs.get(run_id)
        if run is None:
            return None
        view = run_view(run)
        if run.summary_blob is not None:
            view["summary"] = self.runs.read_summary(run_id)
        return view

    def recent(self, limit: int = 20) -> list[BatchRun]:
        runs = sorted(self.runs.runs(), key=lambda r: r.created, reverse=True)
        return runs[:limit]

    # --- one slice ------------------------------------------------------------------------

    def continue_run(self, run_id: str, *, schedule_next: bool = True) -> SliceOutcome | None:
        """One slice of the run; None when there is no such run.

        With `schedule_next` (the queue trigger) the run's next slice is queued; without it
        (the operator's `batch run`, which drives the run itself) the caller calls again
        after `continue_in`.
        """
        with log_fields(batch_run=run_id):
            current = self.runs.get(run_id)
            if current is None:
                return None
            if current.final:
                return SliceOutcome(current, None, f"already {current.status}")
            worker = f"{self._instance}:{uuid.uuid4().hex[:8]}"
            ttl = timedelta(seconds=self.timings.hold_seconds)
            now = self.clock()
            claimed = self.runs.change(
                run_id, lambda r: claim_run(r, worker=worker, now=now, ttl=ttl)
            )
            if claimed is None or claimed.worker != worker:
                return self._not_ours(run_id)
            hosted = self._hosted[claimed.model]
            try:
                with RunKeeper(self, claimed, hosted, worker):
                    outcome = self._slice(claimed, hosted, worker)
            except BaseException:
                self.runs.change(run_id, lambda r: release_claim(r, worker=worker))
                raise
            # After the keeper stopped: a renewal still under way could otherwise put back a
            # released hold, or shorten the longer hold of a wait.
            if outcome.run.final:
                self._release(outcome.run, hosted, worker)
            elif outcome.hold_seconds is not None:
                hosted.ledger.place_hold(
                    claimed.hold_id, "batch", worker, timedelta(seconds=outcome.hold_seconds)
                )
            if outcome.continue_in is not None and not outcome.run.final:
                due = self.clock() + timedelta(seconds=outcome.continue_in)
                self.runs.change(
                    run_id,
                    lambda r: (
                        r.model_copy(update={"next_slice_at": due})
                        if r.worker is None and not r.final
                        else None
                    ),
                )
                if schedule_next:
                    self._queue.schedule(
                        run_id, delay_seconds=outcome.continue_in, reason=outcome.note
                    )
            return outcome

    def sweep_stalled(self) -> list[str]:
        """Queue a continuation for every open run that lost its own (its worker died, its
        message was lost or its first one never sent); close the markers of finished runs.

        A duplicate continuation is harmless: the run's claim lets one slice run at a time.
        """
        resumed: list[str] = []
        grace = timedelta(seconds=self.timings.sweep_grace_seconds)
        for run_id in self.runs.open_run_ids():
            run = self.runs.get(run_id)
            if run is None or run.final:
                self.runs.mark_closed(run_id)
                continue
            now = self.clock()
            reason = stalled_run_reason(run, now, grace)
            if reason is None:
                continue
            logger.warning("batch %s is stalled (%s); queueing a continuation", run_id, reason)
            self.runs.change(
                run_id,
                lambda r, due=now: (
                    r.model_copy(update={"next_slice_at": due})
                    if not r.final and r.worker is None
                    else None
                ),
            )
            self._queue.schedule(run_id, delay_seconds=0, reason=f"sweeper: {reason}")
            resumed.append(run_id)
        return resumed

    def slices_failed(self, run_id: str, reason: str) -> bool:
        """Every delivery of a continuation failed (the queue would poison it): count it, and
        at `MAX_FAILED_ROUNDS` end the run `failed` with its hold released. True when the run
        is final (nothing to queue again), False when it should be tried again later."""
        counted = self.runs.change(
            run_id,
            lambda r: (
                r.model_copy(update={"failed_rounds": r.failed_rounds + 1}) if not r.final else None
            ),
        )
        if counted is None:
            return True  # gone or already final
        if counted.failed_rounds < MAX_FAILED_ROUNDS:
            return False
        worker = f"{self._instance}:{uuid.uuid4().hex[:8]}"
        # Taken even from a live claim: its holder's slices are the ones failing.
        claimed = self.runs.change(
            run_id,
            lambda r: (
                None
                if r.final
                else r.model_copy(update={"worker": worker, "worker_expires": self.clock()})
            ),
        )
        if claimed is None:
            return True
        hosted = self._hosted[claimed.model]
        ended = self._end(
            claimed,
            hosted,
            worker,
            "failed",
            error=f"its slices failed on every delivery {counted.failed_rounds} times over; "
            f"last: {reason}",
        )
        self._release(ended.run, hosted, worker)
        logger.error("batch %s failed for good: %s", run_id, reason)
        return True

    def _not_ours(self, run_id: str) -> SliceOutcome:
        """Another worker holds the run. Nothing is queued: the holder's own message comes
        back if it dies (the queue redelivers an unfinished invocation's message), and a
        second chain of continuations would live as long as the run. The operator's `batch
        run`, which drives the run without the queue, waits until the claim lapses."""
        current = self.runs.get(run_id)
        assert current is not None
        if current.final:
            return SliceOutcome(current, None, f"already {current.status}")
        expires = current.worker_expires or self.clock()
        delay = max(0.0, (expires - self.clock()).total_seconds()) + 1
        return SliceOutcome(current, delay, f"another worker ({current.worker}) is running it")

    def _slice(self, run: BatchRun, hosted: HostedDeployment, worker: str) -> SliceOutcome:
        now = self.clock()
        if deadline_passed(run, now):
            return self._end_at_deadline(run, hosted, worker, self._left_from(run, run.marker))
        if run.needed_since is None:
            # Nothing is asked of the deployment until a document needs it: a run over a
            # prefix already done (a nightly batch with nothing new) provisions nothing.
            found = self._first_needing_model(run, hosted, worker)
            if isinstance(found, SliceOutcome):
                return found
            run = self._update(found, worker, needed_since=self.clock())
        ttl = timedelta(seconds=self.timings.hold_seconds)
        held = hosted.ledger.place_hold(run.hold_id, "batch", worker, ttl)
        try:
            step = hosted.provisioner.advance(worker, waiting_since=run.needed_since, known=held)
        except ProvisioningError as error:
            if not error.retryable:
                return self._end(run, hosted, worker, "failed", error=error.reason)
            return self._wait(run, hosted, worker, error.reason, self.timings.retry_seconds)
        if step.record is None:
            return self._wait(run, hosted, worker, step.reason, step.wait_seconds)
        return self._process(run, hosted, worker, step.record)

    def _first_needing_model(
        self, run: BatchRun, hosted: HostedDeployment, worker: str
    ) -> BatchRun | SliceOutcome:
        """Move the marker past the pages whose documents all have an outcome already, with
        storage reads only; the run (its marker at the first page with a document to answer),
        or how the slice ends (the listing is done, the deadline or the slice's time came)."""
        stop_at = self._monotonic() + self.timings.slice_seconds
        with ThreadPoolExecutor(
            max_workers=self.timings.concurrency, thread_name_prefix=f"batch-{run.run_id}"
        ) as pool:
            for documents, next_marker in self._listing.pages(run.input_prefix, run.marker):
                if deadline_passed(run, self.clock()):
                    return self._end_at_deadline(
                        run, hosted, worker, self._left_from(run, run.marker)
                    )
                if self._monotonic() >= stop_at:
                    released = self.runs.change(
                        run.run_id, lambda r: release_claim(r, worker=worker)
                    )
                    return SliceOutcome(released or run, 0.0, "looking for work; continuing")
                page_started = self._monotonic()
                done = list(
                    pool.map(lambda d, r=run: self._processor.settle_if_done(d, r), documents)
                )
                if not all(done):
                    return run
                counters = RunCounters(
                    listed=len(documents),
                    skipped=len(documents),
                    processing_seconds=self._monotonic() - page_started,
                )
                run = self._checked(
                    self.runs.change(
                        run.run_id,
                        lambda r, m=next_marker, c=counters: page_done(
                            r, worker=worker, marker=m, counters=c
                        ),
                    ),
                    run,
                )
                if next_marker is None:
                    break
        logger.info("batch %s: every document has an outcome; the model was not needed", run.run_id)
        return self._end(run, hosted, worker, "succeeded")

    def _wait(
        self, run: BatchRun, hosted: HostedDeployment, worker: str, reason: str, seconds: float
    ) -> SliceOutcome:
        now = self.clock()
        delay = continuation_delay(seconds, run, now)
        waiting = self.runs.change(
            run.run_id,
            lambda r: release_claim(
                r, worker=worker, status="waiting_for_deployment", waiting_reason=reason
            ),
        )
        logger.info("batch %s waits %.1f s: %s", run.run_id, delay, reason)
        # The hold covers the wait and the work after it, so the deployment being made ready
        # for the batch is not torn down before the batch comes back for it.
        return SliceOutcome(
            waiting or run, delay, reason, hold_seconds=delay + self.timings.hold_seconds
        )

    def _process(
        self, run: BatchRun, hosted: HostedDeployment, worker: str, ready: LedgerRecord
    ) -> SliceOutcome:
        started = self._monotonic()
        now = self.clock()
        if run.first_ready_at is None:
            run = self._update(run, worker, first_ready_at=now)
        run = self._update(run, worker, status="running", waiting_reason=None)
        budget = self.timings.slice_seconds
        if run.deadline is not None:
            budget = min(budget, (run.deadline - now).total_seconds())
        stop_at = started + budget
        pacer = self._pacer_for(hosted)
        context = DocumentContext(
            run_id=run.run_id,
            model=hosted.name,
            input_prefix=run.input_prefix,
            output_prefix=run.output_prefix,
            profile=self.profile_for(hosted.name),
            chat=PacedChat(hosted.chat, pacer, self._counter, Tally()),
            context_tokens=hosted.model.usable_context_tokens,
            deployment=hosted.spec.name,
            readiness_until=readiness_window_end(
                ready.ready_since,
                now=now,
                monotonic_now=started,
                window_seconds=self.timings.not_found_retry_seconds,
            ),
            stop_at=stop_at,
        )
        pages = self._listing.pages(run.input_prefix, run.marker)
        with ThreadPoolExecutor(
            max_workers=self.timings.concurrency, thread_name_prefix=f"batch-{run.run_id}"
        ) as pool:
            for documents, next_marker in pages:
                if self._monotonic() >= stop_at:
                    return self._out_of_time(
                        run,
                        hosted=hosted,
                        worker=worker,
                        unfinished=[d.name for d in documents],
                        next_marker=next_marker,
                        counters=None,
                    )
                page_started = self._monotonic()
                # Each page has its own tally, so a page done again later counts once.
                tally = Tally()
                page_context = replace(
                    context, chat=PacedChat(hosted.chat, pacer, self._counter, tally)
                )
                outcomes = list(pool.map(lambda d, c=page_context: self._one(d, c), documents))
                counters = counters_of(tally, outcomes, self._monotonic() - page_started)
                if "not_serving" in outcomes:
                    return self._vanished(run, hosted, worker, ready)
                unfinished = [
                    d.name
                    for d, outcome in zip(documents, outcomes, strict=True)
                    if outcome == "unfinished"
                ]
                if unfinished:
                    return self._out_of_time(
                        run,
                        hosted=hosted,
                        worker=worker,
                        unfinished=unfinished,
                        next_marker=next_marker,
                        counters=counters,
                    )
                run = self._checked(
                    self.runs.change(
                        run.run_id,
                        lambda r, m=next_marker, c=counters: page_done(
                            r, worker=worker, marker=m, counters=c
                        ),
                    ),
                    run,
                )
                if next_marker is None:
                    break
        return self._end(run, hosted, worker, "succeeded")

    def _one(self, document: WaitingDocument, context: DocumentContext) -> DocumentOutcome:
        if self._monotonic() >= context.stop_at:
            return "unfinished"
        try:
            return self._processor.process(document, context)
        except Exception:
            # Storage failing under one document: the page is done again in a later slice.
            logger.exception("batch %s: %s could not be processed", context.run_id, document.name)
            return "unfinished"

    def _out_of_time(
        self,
        run: BatchRun,
        *,
        hosted: HostedDeployment,
        worker: str,
        unfinished: list[str],
        next_marker: str | None,
        counters: RunCounters | None,
    ) -> SliceOutcome:
        """The slice's time ran out mid-listing: at the deadline the run ends with what is
        left listed; otherwise the next slice goes on from the unfinished page."""
        if deadline_passed(run, self.clock()):
            if counters is not None:
                # The page ends here: what was done in it counts, the rest is left.
                done = counters.model_copy(update={"listed": counters.listed - len(unfinished)})
                run = self._update(run, worker, counters=run.counters.plus(done))
            left = chain(unfinished, self._left_from(run, next_marker) if next_marker else ())
            return self._end_at_deadline(run, hosted, worker, left)
        released = self.runs.change(run.run_id, lambda r: release_claim(r, worker=worker))
        return SliceOutcome(released or run, 0.0, "the slice's time is spent; continuing")

    def _vanished(
        self, run: BatchRun, hosted: HostedDeployment, worker: str, ready: LedgerRecord
    ) -> SliceOutcome:
        logger.warning("batch %s: deployment %s stopped serving", run.run_id, hosted.spec.name)
        hosted.provisioner.mark_suspect(ready.ready_since)
        return self._wait(
            run,
            hosted,
            worker,
            f"deployment {hosted.spec.name!r} stopped serving; it is being checked",
            self.timings.retry_seconds,
        )

    def _left_from(self, run: BatchRun, marker: str | None) -> Iterator[str]:
        return self._listing.names_from(run.input_prefix, marker)

    # --- ending ---------------------------------------------------------------------------

    def _end_at_deadline(
        self, run: BatchRun, hosted: HostedDeployment, worker: str, left: Iterable[str]
    ) -> SliceOutcome:
        blob, count, first = self.runs.write_left(run.run_id, left)
        logger.warning("batch %s reached its deadline with %d document(s) left", run.run_id, count)
        return self._end(
            run,
            hosted,
            worker,
            "deadline_reached",
            left=(blob, count, first[:MAX_SAMPLE]),
        )

    def _end(
        self,
        run: BatchRun,
        hosted: HostedDeployment,
        worker: str,
        status: str,
        *,
        error: str | None = None,
        left: tuple[str, int, list[str]] | None = None,
    ) -> SliceOutcome:
        now = self.clock()
        fields: dict[str, Any] = {
            "status": status,
            "finished": now,
            "error": error,
            "waiting_reason": None,
            "worker": None,
            "worker_expires": None,
        }
        if left is not None:
            fields.update(left_blob=left[0], left_count=left[1])
        ended = self._checked(
            self.runs.change(
                run.run_id, lambda r: r.model_copy(update=fields) if r.worker == worker else None
            ),
            run,
        )
        summary = summary_of(ended, now=now, left_sample=left[2] if left else [])
        summary_blob = self.runs.write_summary(run.run_id, summary)
        ended = (
            self.runs.change(
                run.run_id, lambda r: r.model_copy(update={"summary_blob": summary_blob})
            )
            or ended
        )
        return SliceOutcome(ended, None, status)

    def _release(self, run: BatchRun, hosted: HostedDeployment, worker: str) -> None:
        released = hosted.ledger.release_hold(run.hold_id)
        self.runs.mark_closed(run.run_id)
        try:
            teardown = hosted.provisioner.teardown_if_idle(
                worker, idle_grace=hosted.idle_grace, known=released
            )
            logger.info("batch %s ended %s; teardown: %s", run.run_id, run.status, teardown.reason)
        except Exception:  # the reaper finishes what the fast path could not
            logger.exception("teardown after batch %s failed; the reaper will retry", run.run_id)

    # --- helpers --------------------------------------------------------------------------

    def _update(self, run: BatchRun, worker: str, **fields: Any) -> BatchRun:
        changed = self.runs.change(
            run.run_id, lambda r: r.model_copy(update=fields) if r.worker == worker else None
        )
        return self._checked(changed, run)

    def _checked(self, changed: BatchRun | None, run: BatchRun) -> BatchRun:
        if changed is None:
            raise ClaimLost(f"batch {run.run_id}: another worker took the run over")
        return changed

    def _pacer_for(self, hosted: HostedDeployment) -> RatePacer:
        pacer = self._pacers.get(hosted.spec.name)
        if pacer is None:
            budget = budget_for(hosted.model.capacity, minute_seconds=self.timings.minute_seconds)
            pacer = self._pacers.setdefault(hosted.spec.name, RatePacer(budget))
        return pacer


class ClaimLost(Exception):
    """The run's claim lapsed and another worker took it over: this slice stops."""


class BatchStarter:
    """The port the schedule reconciler starts due runs through
    (`shared.schedules.ports.BatchStarter`): idempotent per run id."""

    def __init__(self, runner: BatchRunner) -> None:
        self._runner = runner

    def start(
        self,
        model: str,
        run_id: str,
        input_prefix: str,
        output_prefix: str,
        deadline: datetime | None,
    ) -> None:
        self._runner.start(model, run_id, input_prefix, output_prefix, deadline)
