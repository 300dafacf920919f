"""Which model a hosted model deploys next, and the promotions and rollbacks that change it.

A promotion never touches a running deployment: Azure would swap the model under the work in
flight. It changes what the *next* create sends. `spec_for` is the hook the deployment adapter
calls on every create (`AzureDeployments(resolve_spec=...)`): it replaces the catalog's model
id and version with the promoted ones. A deployment that exists keeps serving what it was
created with until the idle teardown deletes it; the next document or batch that needs the
model creates it again, with the promoted model.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime

from shared.catalog import Catalog
from shared.evaluation.records import (
    EvaluationRun,
    PromotionDecision,
    PromotionHistory,
    PromotionRefused,
    append,
    check_promotion,
    promoted,
    rollback_target,
)
from shared.evaluation.store import EvaluationStore, PromotionStore
from shared.hosting.deployments import DeploymentSpec

logger = logging.getLogger(__name__)


class Promotions:
    def __init__(
        self, store: PromotionStore, catalog: Catalog, clock: Callable[[], datetime]
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._clock = clock

    def history(self, model: str) -> PromotionHistory | None:
        return self._store.history(model)

    def catalog_model(self, model: str) -> tuple[str, str]:
        declared = self._catalog.models[model]
        return declared.fine_tuned_model, declared.version

    def serving(self, model: str) -> tuple[str, str]:
        """(model id, version) the model's next deployment is created with."""
        return promoted(self._store.history(model), self.catalog_model(model))

    def spec_for(self, spec: DeploymentSpec) -> DeploymentSpec:
        """The spec to create: a hosted model's promoted model in place of the catalog's."""
        declared = self._catalog.by_deployment(spec.name)
        if declared is None:
            return spec
        model, version = self.serving(declared.name)
        if (model, version) == (spec.model_name, spec.model_version):
            return spec
        logger.info("creating %s with promoted model %s (version %s)", spec.name, model, version)
        return dataclasses.replace(spec, model_name=model, model_version=version)

    def promote(
        self,
        model: str,
        candidate: str,
        *,
        evaluations: EvaluationStore,
        by: str,
        force: bool = False,
    ) -> PromotionDecision:
        """Promote `candidate` if its last evaluation against `model` won; PromotionRefused
        otherwise. `force` promotes anyway and says so in the record."""
        serving, _ = self.serving(model)
        run = evaluations.latest(model, candidate)
        refusal: str | None = None
        try:
            check_promotion(run, model=model, candidate=candidate, serving=serving)
        except PromotionRefused as refused:
            if not force:
                raise
            refusal = str(refused)
        target = run.candidate.model if run is not None else candidate
        version = run.candidate.version if run is not None else "1"
        if target == serving:
            raise PromotionRefused(f"{model} already promotes {target}; nothing to do")
        decision = PromotionDecision(
            action="promote",
            model=model,
            serves=target,
            version=version,
            previous=serving,
            evaluation_id=run.id if run is not None else None,
            verdict=run.result.verdict if run is not None and run.result else None,
            scores=_scores(run),
            forced=refusal is not None,
            by=by,
            at=self._clock(),
            reason=(
                f"FORCED past the evaluation gate: {refusal}"
                if refusal is not None
                else f"won evaluation {run.id if run else '?'} against {serving}"
            ),
        )
        self._store.change(model, lambda history: append(history, model, decision))
        return decision

    def rollback(self, model: str, *, by: str) -> PromotionDecision:
        history = self._store.history(model)
        default = self.catalog_model(model)
        target = rollback_target(history, default)
        if target is None:
            raise PromotionRefused(
                f"{model} has no promotion to roll back; it deploys {default[0]} from the catalog"
            )
        current, _ = promoted(history, default)
        decision = PromotionDecision(
            action="rollback",
            model=model,
            serves=target[0],
            version=target[1],
            previous=current,
            by=by,
            at=self._clock(),
            reason=f"rolled back from {current} to {target[0]}",
        )
        self._store.change(model, lambda h: append(h, model, decision))
        return decision


def _scores(run: EvaluationRun | None) -> dict[str, object] | None:
    if run is None or run.result is None:
        return None
    result = run.result
    return {
        "primary_metric": result.primary_metric,
        "candidate": result.candidate.means,
        "current": result.current.means,
        "candidate_unscored": result.candidate.unscored,
        "current_unscored": result.current.unscored,
        "comparisons": result.comparisons,
    }
