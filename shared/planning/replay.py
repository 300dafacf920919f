"""Replaying a trace through the app's own hosting decisions, on a virtual clock.

Nothing here decides when a deployment is created or deleted: the real `DeploymentProvisioner`
takes its provisioning steps and teardowns against the hold ledger (`HoldLedger` over an
in-memory store) and the Azure stand-in, the real `DeploymentReaper` and
`ScheduleReconciler` run on every timer tick, and the idle grace is the hosted deployment's
own (fixed or the break-even rule). What this module adds is the order of events the
Functions host would produce:

- each ad-hoc document is a job that does what the document engine does with its deployment:
  place its job hold, take one provisioning step (`advance`), and either park (the driving
  job for the wait the step asked, a follower for at least `follower_park_seconds`, both
  woken when the provisioning settles, the hold covering the wait) or run; after running it
  releases its hold and asks for a teardown under the idle grace. A job that waited
  `ready_timeout_seconds` fails, as in the engine;
- the batch documents of one timestamp are one batch run, as the batch runner handles them:
  one batch hold, one provisioning step per slice, waiting as the step says, then every
  document in turn, the hold released and a teardown asked for at the end;
- the reaper and the schedule reconciler run once per `tick_seconds` (their timers' minute);
  a reaper pass that could only read the ledger is skipped (see `Replay._tick`);
- the deployment serves documents in arrival order at its rate limits (capacity x 1,000
  tokens per minute, capacity requests per 10 seconds, as the simulator enforces them).

A document's wait is from its arrival until it starts running on a serving deployment.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from shared.catalog import DeploymentType, HostedModel
from shared.cost.billing import Lifetime, LifetimeTally
from shared.cost.learning import RecentLifecycle
from shared.documents.engine import EngineLimits
from shared.hosting.deployments import DeploymentSpec, ProvisioningError
from shared.hosting.holds import HoldKind, LedgerRecord
from shared.hosting.hosted import HostedDeployment
from shared.hosting.ledger import HoldLedger
from shared.hosting.lifecycle import ignore_lifecycle
from shared.hosting.provisioner import DeploymentProvisioner, ProvisioningTimings
from shared.hosting.reaper import DeploymentReaper
from shared.planning.stand_in import (
    AzureTimings,
    ManagementCalls,
    MemoryStore,
    VirtualAzure,
    VirtualChat,
    VirtualClock,
)
from shared.planning.trace import TraceDocument
from shared.planning.waits import Waits
from shared.schedules.flows import ScheduleReconciler
from shared.schedules.models import WindowSettings

PLANNED_MODEL = "planned"
PLANNED_DEPLOYMENT = "planned-deployment"
OWNER_TAG = "hosting-planner"
REQUEST_WINDOW_SECONDS = 10.0


@dataclass(frozen=True)
class ReplayConfig:
    """One strategy, as the hosted-models file and the app's settings would declare it."""

    capacity: int
    deployment_type: DeploymentType = "Standard"
    base_model: str = "gpt-4.1-mini-2025-04-14"
    idle_grace_seconds: float = 300.0
    adaptive_grace: bool = False  # idle_grace = "auto"
    windows: tuple[WindowSettings, ...] = ()
    max_lifetime_seconds: float = 50400.0
    azure: AzureTimings = field(default_factory=AzureTimings)
    provisioning: ProvisioningTimings = field(default_factory=ProvisioningTimings)
    limits: EngineLimits = field(default_factory=EngineLimits)
    tick_seconds: float = 60.0

    def hosted_model(self) -> HostedModel:
        return HostedModel(
            name=PLANNED_MODEL,
            deployment=PLANNED_DEPLOYMENT,
            fine_tuned_model=f"{self.base_model}.ft-planned",
            deployment_type=self.deployment_type,
            capacity=self.capacity,
            idle_grace_seconds=self.idle_grace_seconds,
            idle_grace="auto" if self.adaptive_grace else None,
            max_lifetime_seconds=self.max_lifetime_seconds,
            context_tokens=128_000,
            windows=self.windows,
        )


@dataclass(frozen=True)
class ReplayResult:
    hosting: LifetimeTally  # every deploy cycle's lifetime, folded in as it ended
    waits: Waits  # one per document served, in seconds
    failed: int  # documents the engine gave up on (waited past its ready timeout)
    calls: ManagementCalls


@dataclass
class _Job:
    """A document engine job (one ad-hoc document) or a batch run (its documents)."""

    index: int
    documents: Sequence[TraceDocument]
    hold_id: str
    kind: HoldKind
    waiting_since: datetime | None = None
    generation: int = 0
    parked: bool = False
    done: bool = False


# Event kinds, in the order they run when due at the same instant.
_ARRIVE, _RESUME, _FINISH = 0, 1, 2


class Replay:
    """One trace replayed under one strategy; `run` says what it cost and how long work waited."""

    def __init__(
        self,
        documents: Sequence[TraceDocument],
        config: ReplayConfig,
        *,
        start: float,
        until: float,
        skip_quiet_passes: bool = True,
        on_lifetime: Callable[[Lifetime], None] | None = None,
    ) -> None:
        self._config = config
        self._hosting = LifetimeTally()
        self._on_lifetime = on_lifetime
        self._skip_quiet_passes = skip_quiet_passes
        self._quiet_record: LedgerRecord | None = None
        self._quiet_until = datetime.min.replace(tzinfo=UTC)
        self._start = start
        self._until = until
        self.clock = VirtualClock(start)
        self.azure = VirtualAzure(self.clock, config.azure, self._lifetime_ended)
        model = config.hosted_model()
        spec = DeploymentSpec(
            name=model.deployment,
            model_name=model.fine_tuned_model,
            model_version=model.version,
            sku=model.deployment_type,
            capacity=model.capacity,
            owner_tag=OWNER_TAG,
        )
        self.ledger = HoldLedger(MemoryStore[LedgerRecord](), spec.name, self.clock.datetime)
        # `idle_grace = "auto"` learns the cold-start time from the hosting log, as the app
        # does: the replay's own log, kept in memory, under the same rule.
        log = RecentLifecycle(model, self.clock.datetime) if config.adaptive_grace else None
        self.provisioner = DeploymentProvisioner(
            on_lifecycle=log.listener if log is not None else ignore_lifecycle,
            spec=spec,
            ledger=self.ledger,
            deployments=self.azure,
            chat=VirtualChat(self.azure, spec.name),
            timings=config.provisioning,
            on_settled=self._wake_waiting,
            keep_lease=lambda _ledger, _owner, _ttl: nullcontext(),
        )
        self.hosted = HostedDeployment(
            model,
            self.provisioner,
            VirtualChat(self.azure, spec.name),
            learned_provision=log.learned if log is not None else None,
        )
        self._reaper = DeploymentReaper(
            deployments=self.azure,
            hosted={model.name: self.hosted},
            provisioner_for=lambda _name: self.provisioner,
            owner_tag=OWNER_TAG,
            idle_grace=self.hosted.idle_grace,
            max_lifetime=self.hosted.max_lifetime,
            on_lifecycle=lambda _model: log.listener if log is not None else ignore_lifecycle,
        )
        self._reconciler = (
            ScheduleReconciler(hosted={model.name: self.hosted}, clock=self.clock.datetime)
            if model.windows
            else None
        )
        self._events: list[tuple[float, int, int, int, int]] = []
        self._sequence = 0
        # Jobs come from the trace one at a time and are forgotten when done, so memory holds
        # what is in flight, not the trace's length.
        self._arrivals = _jobs_of(documents)
        self._next_job: _Job | None = next(self._arrivals, None)
        self._jobs: dict[int, _Job] = {}
        self._parked: set[int] = set()
        self._waits = Waits()
        self._failed = 0
        # The deployment's rate limits: the token window frees R tokens a second, the
        # request window one request per 10 s / capacity.
        self._tokens_per_second = config.capacity * 1000.0 / 60.0
        self._request_spacing = REQUEST_WINDOW_SECONDS / max(1, config.capacity)
        self._free_at = -math.inf
        self._last_start = -math.inf

    # --- the loop --------------------------------------------------------------------------

    def run(self) -> ReplayResult:
        tick = self._start
        while True:
            arriving = self._next_job
            if arriving is not None:
                # Arrivals are read from the trace as they come, not queued up front.
                arrives = arriving.documents[0].at
                if not self._events or arrives < self._events[0][0]:
                    self._push(arrives, _ARRIVE, arriving.index, 0)
                    self._jobs[arriving.index] = arriving
                    self._next_job = next(self._arrivals, None)
            next_event = self._events[0][0] if self._events else math.inf
            if tick <= next_event and tick <= self._until:
                self.clock.now = tick
                self._tick()
                tick += self._config.tick_seconds
                continue
            if next_event == math.inf:
                break
            at, kind, _, index, generation = heapq.heappop(self._events)
            self.clock.now = max(self.clock.now, at)
            job = self._jobs.get(index)
            if job is None:
                continue  # a resume planned before the job was woken, ran and finished
            if kind == _ARRIVE or (
                kind == _RESUME and not job.done and job.generation == generation
            ):
                self._attempt(job)
            elif kind == _FINISH:
                self._finish(job)
                del self._jobs[index]
        self.azure.close(max(self._until, self.clock.now))
        return ReplayResult(
            hosting=self._hosting,
            waits=self._waits,
            failed=self._failed,
            calls=self.azure.calls,
        )

    def _lifetime_ended(self, lifetime: Lifetime) -> None:
        self._hosting.add(lifetime)
        if self._on_lifetime is not None:
            self._on_lifetime(lifetime)

    def _push(self, at: float, kind: int, index: int, generation: int) -> None:
        self._sequence += 1
        heapq.heappush(self._events, (at, kind, self._sequence, index, generation))

    def _tick(self) -> None:
        if self._reconciler is not None:
            self._reconciler.run("schedule")
        # The reaper's minute: a pass that only reads the ledger is skipped, until the ledger
        # changes or the reaper says a pass may matter (`next_pass_due`). A month of minutes
        # is most of a quiet replay's work otherwise; the result is the same (a test runs
        # both ways).
        record = self.ledger.read()
        if (
            self._skip_quiet_passes
            and record is self._quiet_record
            and self.clock.datetime() < self._quiet_until
        ):
            return
        self._reaper.run("reaper")
        self._quiet_record = self.ledger.read()
        self._quiet_until = self._reaper.next_pass_due()

    # --- a job, as the document engine runs it ----------------------------------------------

    def _attempt(self, job: _Job) -> None:
        limits = self._config.limits
        worker = f"worker-{job.index}"
        job.parked = False
        self._parked.discard(job.index)
        held = self.ledger.place_hold(
            job.hold_id, job.kind, worker, timedelta(seconds=limits.job_hold_seconds)
        )
        try:
            step = self.provisioner.advance(worker, waiting_since=job.waiting_since, known=held)
        except ProvisioningError as error:
            if error.retryable:
                self._park(job, worker, limits.retry_base_seconds)
            else:
                self._give_up(job, worker)
            return
        if step.record is None:
            seconds = step.wait_seconds
            if job.kind == "job" and not step.stepped:
                seconds = max(seconds, limits.follower_park_seconds)
            self._park(job, worker, seconds)
            return
        if not self.azure.answers(self.provisioner.spec.name):
            # The ledger says ready but the deployment is gone (the reaper deleted it past
            # its lifetime, or Azure removed a Developer-tier one): re-check, and wait.
            self.provisioner.mark_suspect(step.record.ready_since)
            self._park(job, worker, limits.retry_base_seconds)
            return
        self._run(job, worker)

    def _park(self, job: _Job, worker: str, seconds: float) -> None:
        limits = self._config.limits
        now = self.clock.datetime()
        since = job.waiting_since or now
        waited = (now - since).total_seconds()
        delay = seconds
        if job.kind == "job":
            # A batch run waits until its deadline, which the trace does not carry.
            if waited >= limits.ready_timeout_seconds:
                self._give_up(job, worker)
                return
            delay = min(seconds, limits.ready_timeout_seconds - waited)
        self.ledger.place_hold(
            job.hold_id, job.kind, worker, timedelta(seconds=delay + limits.job_hold_seconds)
        )
        job.waiting_since = since
        job.parked = True
        job.generation += 1
        self._parked.add(job.index)
        self._push(self.clock.now + delay, _RESUME, job.index, job.generation)

    def _wake_waiting(self, _record: LedgerRecord, _owner: str) -> None:
        """The provisioning settled: every parked job comes back now, as the engine wakes them."""
        for index in sorted(self._parked):
            job = self._jobs[index]
            job.generation += 1
            self._push(self.clock.now, _RESUME, index, job.generation)

    def _run(self, job: _Job, worker: str) -> None:
        now = self.clock.now
        ends = now
        for document in job.documents:
            self._waits.add(now - document.at)
            begins = max(now, self._free_at, self._last_start + self._request_spacing)
            ends = begins + document.tokens / self._tokens_per_second
            self._last_start, self._free_at = begins, ends
        hold_seconds = self._config.limits.job_hold_seconds
        if ends - now >= hold_seconds:
            # The hold keeper renews the hold while long work runs (a big batch, a backlog):
            # one placement to its end. Shorter work ends under the hold placed above.
            self.ledger.place_hold(
                job.hold_id, job.kind, worker, timedelta(seconds=ends - now + hold_seconds)
            )
        job.done = True
        self._push(ends, _FINISH, job.index, 0)

    def _finish(self, job: _Job) -> None:
        worker = f"worker-{job.index}"
        released = self.ledger.release_hold(job.hold_id)
        self.provisioner.teardown_if_idle(worker, idle_grace=self.hosted.idle_grace, known=released)

    def _give_up(self, job: _Job, worker: str) -> None:
        job.done = True
        self._failed += len(job.documents)
        self._parked.discard(job.index)
        released = self.ledger.release_hold(job.hold_id)
        self.provisioner.teardown_if_idle(worker, idle_grace=self.hosted.idle_grace, known=released)


def _jobs_of(documents: Iterable[TraceDocument]) -> Iterator[_Job]:
    """In arrival order: each ad-hoc document a job, the batch documents of one timestamp a
    batch run (the trace is in time order, so a run's documents are read together)."""
    index = 0
    run: list[TraceDocument] = []
    for document in documents:
        if run and (document.kind != "batch" or document.at != run[0].at):
            yield _Job(index, tuple(run), f"batch:{index}", "batch")
            index, run = index + 1, []
        if document.kind == "batch":
            run.append(document)
        else:
            yield _Job(index, (document,), f"job:{index}", "job")
            index += 1
    if run:
        yield _Job(index, tuple(run), f"batch:{index}", "batch")


def replay(
    documents: Sequence[TraceDocument],
    config: ReplayConfig,
    *,
    start: float,
    until: float,
    on_lifetime: Callable[[Lifetime], None] | None = None,
) -> ReplayResult:
    """Replay `documents` from `start` to `until` (epoch seconds) under `config`;
    `on_lifetime` sees each deploy cycle's (created, gone) as it ends."""
    return Replay(documents, config, start=start, until=until, on_lifetime=on_lifetime).run()
