"""The reconcile flow: applies `reconcile.plan_model` to each model's ledger, once per tick.

Per hosted model (those without windows too, so the holds of windows removed from the
settings are ended early rather than left to expire): read the ledger, plan, write the window
holds in one compare-and-swap (no write when they are already right, so a doubled or
concurrent tick costs a read), take one provisioning step when the deployment should serve
and does not yet (`DeploymentProvisioner.advance` never sleeps: the next tick takes the next
step), and start due batch runs through the `BatchStarter` port. One model's failure is logged
and does not stop the others; the next tick tries again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from shared.hosting.deployments import ProvisioningError
from shared.hosting.hosted import HostedDeployment
from shared.observability import log_fields
from shared.schedules.ports import BatchStarter
from shared.schedules.reconcile import ModelPlan, apply_window_holds, plan_model

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class ModelOutcome:
    """What one tick did for one model."""

    model: str
    plan: ModelPlan | None  # None when the ledger could not be read
    ledger_written: bool = False
    provisioning: str | None = None  # the provisioning step's answer, in words
    serving: bool = False
    batches_started: tuple[str, ...] = ()
    error: str | None = None

    @property
    def acted(self) -> bool:
        """Whether the tick did or tried anything for this model (worth a log line)."""
        return bool(self.ledger_written or self.provisioning or self.batches_started or self.error)


@dataclass(frozen=True)
class ReconcileReport:
    now: datetime
    models: tuple[ModelOutcome, ...]

    @property
    def failed(self) -> tuple[ModelOutcome, ...]:
        return tuple(m for m in self.models if m.error is not None)


class ScheduleReconciler:
    """Brings every model's window holds, provisioning and batch runs to what the clock wants."""

    def __init__(
        self,
        *,
        hosted: Mapping[str, HostedDeployment],
        clock: Clock,
        batch_starter: BatchStarter | None = None,
    ) -> None:
        self._hosted = hosted
        self._clock = clock
        self._batch_starter = batch_starter

    def run(self, owner: str) -> ReconcileReport:
        """One tick: every model brought towards what its schedules want now."""
        now = self._clock()
        outcomes: list[ModelOutcome] = []
        for name, hosted in self._hosted.items():
            with log_fields(model=name, deployment=hosted.spec.name):
                outcomes.append(self._reconcile(hosted, owner, now))
        return ReconcileReport(now, tuple(outcomes))

    def _reconcile(self, hosted: HostedDeployment, owner: str, now: datetime) -> ModelOutcome:
        plan: ModelPlan | None = None
        written = False
        try:
            plan = plan_model(hosted.model, hosted.ledger.read(), now)
            if plan.changes_ledger:
                # Re-derived on the stored record inside the compare-and-swap: a concurrent
                # tick that got there first leaves nothing to write.
                written = hosted.ledger.change(lambda r: apply_window_holds(r, plan)) is not None
            if written:
                for hold_id in plan.place:
                    logger.info("window hold %s placed on %s", hold_id, hosted.spec.name)
                for hold_id in plan.end:
                    logger.info("window hold %s ended on %s", hold_id, hosted.spec.name)
            provisioning, serving = None, plan.serving
            if plan.provision:
                provisioning, serving = self._step(hosted, owner)
            started = self._start_batches(plan)
        except Exception as error:  # one model's trouble must not stop the others
            logger.exception("reconciling the schedules of %s failed", hosted.name)
            return ModelOutcome(
                hosted.name, plan, written, error=f"{type(error).__name__}: {error}"
            )
        return ModelOutcome(hosted.name, plan, written, provisioning, serving, started)

    def _step(self, hosted: HostedDeployment, owner: str) -> tuple[str, bool]:
        try:
            step = hosted.provisioner.advance(owner)
        except ProvisioningError as error:
            # Recorded in the ledger by the provisioner; the window's hold stays, and the next
            # tick (or a job) tries again once the cause is fixed.
            logger.error("a window wants %s serving, but: %s", hosted.spec.name, error.reason)
            return f"failed: {error.reason}", False
        if step.ready:
            logger.info("%s serves for its window", hosted.spec.name)
            return "serving", True
        logger.info("%s not serving yet: %s", hosted.spec.name, step.reason)
        return step.reason, False

    def _start_batches(self, plan: ModelPlan) -> tuple[str, ...]:
        if not plan.batches_due:
            return ()
        if self._batch_starter is None:
            logger.warning(
                "batch run(s) %s of %s are due, but batch running is not wired into this app; "
                "nothing started",
                ", ".join(b.run_id for b in plan.batches_due),
                plan.model,
            )
            return ()
        for due in plan.batches_due:
            self._batch_starter.start(
                due.model, due.run_id, due.input_prefix, due.output_prefix, due.deadline
            )
        return tuple(b.run_id for b in plan.batches_due)
