"""What the operator's commands do, as an order of calls on the app's services.

No rule lives here. When a deployment may be deleted, how provisioning proceeds and what a
valid submission is belong to the provisioner, the ledger and `JobSubmissions`; this module
places and releases the operator's hold, calls them, and reports progress through callbacks
so `app.py` can draw it.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from shared.documents.jobs import TERMINAL, JobRecord, JobStatus
from shared.hosting.deployments import DeploymentSnapshot
from shared.hosting.holds import Hold, KnownState, LedgerRecord

if TYPE_CHECKING:
    # Types only: importing these pulls in every SDK (openai alone takes half a second),
    # which `app` imports only once a command needs the services.
    from shared.batch.flows import BatchRunner
    from shared.batch.models import BatchRun
    from shared.documents.job_store import JobStore
    from shared.documents.submissions import JobSubmissions
    from shared.hosting.deployments import AzureDeployments
    from shared.hosting.hosted import HostedDeployment
    from shared.hosting.provisioner import TeardownOutcome

logger = logging.getLogger(__name__)


# --- who the operator is ----------------------------------------------------------------------


@dataclass(frozen=True)
class Operator:
    """`owner` names the person on holds; `worker` names this process on leases."""

    owner: str
    worker: str


def current_operator() -> Operator:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        user = "unknown"
    owner = f"operator:{user}@{socket.gethostname()}"
    # Two commands by one person must not share a lease, so the lease owner names the process.
    return Operator(owner=owner, worker=f"{owner}#{os.getpid()}")


def operator_hold_id(model: str) -> str:
    """One operator hold per hosted model: a second `up` extends it, `down` releases it."""
    return f"operator:{model}"


# --- up -------------------------------------------------------------------------------------


class UpReport(Protocol):
    def azure_state(self, state: str | None) -> None:
        """Azure's provisioningState changed (None: the deployment is absent)."""

    def waiting(self, note: str) -> None:
        """Provisioning waits, and why (no room on the account)."""


@dataclass(frozen=True)
class UpResult:
    hold: Hold
    ready: LedgerRecord


def bring_up(
    hosted: HostedDeployment,
    deployments: AzureDeployments,
    *,
    operator: Operator,
    hold_for: timedelta,
    timeout: float,
    poll_seconds: float,
    report: UpReport,
) -> UpResult:
    """Place the operator's hold, then make the deployment serve (raises ProvisioningError)."""
    hold_id = operator_hold_id(hosted.name)
    held = hosted.ledger.place_hold(hold_id, "operator", operator.owner, hold_for)
    hold = next(h for h in held.holds if h.id == hold_id)
    deadline = time.monotonic() + timeout
    with AzureStateWatch(deployments, hosted.spec.name, poll_seconds, report.azure_state) as watch:
        if held.state is KnownState.READY and watch.first.provisioning_state != "Succeeded":
            # The ledger says ready but Azure disagrees (deleted behind the app's back): the
            # same re-check a job makes when the data plane says DeploymentNotFound.
            hosted.provisioner.mark_suspect(held.ready_since)
        ready = hosted.provisioner.ensure_ready(
            operator.worker, deadline=deadline, on_wait=report.waiting
        )
    return UpResult(hold=hold, ready=ready)


class AzureStateWatch:
    """Reports a deployment's provisioningState whenever it changes, polling from a thread.

    Only for the display: `ensure_ready` may be following another instance's provisioning
    through the ledger, so Azure itself is asked. A failed look is skipped, never raised.
    """

    def __init__(
        self,
        deployments: AzureDeployments,
        name: str,
        interval: float,
        on_change: Callable[[str | None], None],
    ) -> None:
        self._deployments = deployments
        self._name = name
        self._interval = interval
        self._on_change = on_change
        self._looked = False
        self._last: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"watch-{name}", daemon=True)
        self.first = DeploymentSnapshot(name, exists=False)

    def __enter__(self) -> AzureStateWatch:
        self.first = self._look()  # synchronously: the caller decides on it
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=self._interval + 5)
        if exc_type is None:
            self._look_quietly()  # the last state, had the thread's polls missed it

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._look_quietly()

    def _look_quietly(self) -> None:
        try:
            self._look()
        except Exception:  # a display poll; ensure_ready does the real work
            logger.debug("could not read the state of %s", self._name, exc_info=True)

    def _look(self) -> DeploymentSnapshot:
        snapshot = self._deployments.get(self._name)
        state = snapshot.provisioning_state if snapshot.exists else None
        if not self._looked or state != self._last:
            self._looked, self._last = True, state
            self._on_change(state)
        return snapshot


# --- down -----------------------------------------------------------------------------------


def release_operator_hold(hosted: HostedDeployment) -> LedgerRecord:
    return hosted.ledger.release_hold(operator_hold_id(hosted.name))


@dataclass(frozen=True)
class DownResult:
    outcome: TeardownOutcome
    after: LedgerRecord  # the ledger once done: what still holds the deployment, if anything
    before: DeploymentSnapshot  # Azure's state when `down` began

    @property
    def was_being_deleted(self) -> bool:
        """Azure was already deleting it (the app's teardown sends a DELETE and moves on)."""
        return self.before.exists and self.before.provisioning_state == "Deleting"


def take_down(
    hosted: HostedDeployment,
    deployments: AzureDeployments,
    *,
    operator: Operator,
    force: bool,
    poll_seconds: float,
    on_state: Callable[[str | None], None],
) -> DownResult:
    """Delete the deployment now and follow the delete, reporting Azure's state as it goes."""
    with AzureStateWatch(deployments, hosted.spec.name, poll_seconds, on_state) as watch:
        outcome = hosted.provisioner.delete_now(operator.worker, force=force)
    return DownResult(outcome=outcome, after=hosted.ledger.read(), before=watch.first)


# --- jobs -----------------------------------------------------------------------------------


def job_details(submissions: JobSubmissions, job_id: str) -> dict[str, Any]:
    """The job as the HTTP API shows it, plus its error record once it failed."""
    view = submissions.view(job_id)
    if view["status"] == "failed" and view["error_blob"]:
        view["error_record"] = submissions.read_output(view["error_blob"])
    return view


@dataclass(frozen=True)
class WaitResult:
    view: dict[str, Any]
    finished: bool


def wait_for_job(
    submissions: JobSubmissions,
    job_id: str,
    *,
    timeout: float,
    poll_seconds: float,
    on_change: Callable[[dict[str, Any]], None],
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> WaitResult:
    """Read the job record until it is final or `timeout` passes; the app does the work."""
    deadline = monotonic() + timeout
    seen: tuple[Any, ...] | None = None
    while True:
        view = job_details(submissions, job_id)
        state = (view["status"], view["waiting_reason"], view["attempts"])
        if state != seen:
            seen = state
            on_change(view)
        if view["status"] in TERMINAL:
            return WaitResult(view, finished=True)
        left = deadline - monotonic()
        if left <= 0:
            return WaitResult(view, finished=False)
        sleep(min(poll_seconds, left))


def recent_jobs(
    jobs: JobStore, *, status: JobStatus | None, since: datetime | None, limit: int
) -> list[JobRecord]:
    matching: Iterator[JobRecord] = (
        record
        for record in jobs.newest_first(since=since)
        if status is None or record.status == status
    )
    return list(islice(matching, limit))


# --- batches --------------------------------------------------------------------------------


def drive_batch(
    runner: BatchRunner,
    run_id: str,
    *,
    on_change: Callable[[BatchRun], None],
    poll_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> BatchRun:
    """Run the batch's slices in this process until it ends, as the queue trigger would.

    A watcher thread reads the run record every `poll_seconds` and reports each change, since
    one slice may work for many minutes. Another instance holding the run (the function app,
    or a crashed `batch run` whose claim has not lapsed yet) is waited for, then taken over.
    """
    stop = threading.Event()

    def watch() -> None:
        seen: BatchRun | None = None
        while not stop.wait(poll_seconds):
            with contextlib.suppress(Exception):  # a display poll; the slices do the work
                current = runner.runs.get(run_id)
                if current is not None and current != seen:
                    seen = current
                    on_change(current)

    watcher = threading.Thread(target=watch, name=f"watch-{run_id}", daemon=True)
    watcher.start()
    try:
        while True:
            outcome = runner.continue_run(run_id, schedule_next=False)
            if outcome is None:
                raise LookupError(f"no batch run {run_id!r}")
            on_change(outcome.run)
            if outcome.continue_in is None and outcome.run.final:
                return outcome.run
            sleep(outcome.continue_in or 0.0)
    finally:
        stop.set()
        watcher.join(timeout=poll_seconds + 5)
