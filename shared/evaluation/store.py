"""Blob adapters for evaluations and promotions, in one container (`EVALUATIONS_CONTAINER`).

- `runs/<id>.json`: the run record, changed under ETags;
- `answers/<id>/<side>/<index>.json`: one example's answer on one side, written once as it
  arrives, so whatever was answered before a crash is never asked again;
- `latest/<hosted model>/<candidate digest>.json`: the candidate's last evaluation against
  the model, what `promote` checks;
- `reports/<id>.txt` and `.html`: the side-by-side report;
- `promotions/<hosted model>.json`: every promotion and rollback, changed under ETags; read by
  the deployment adapter each time it creates the model's deployment.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import ContainerClient, ContentSettings
from pydantic import BaseModel, ConfigDict

from shared.evaluation.records import Answer, EvaluationRun, PromotionHistory, Side
from shared.storage import JsonBlobStore

_JSON = ContentSettings(content_type="application/json")
_TEXT = ContentSettings(content_type="text/plain; charset=utf-8")
_HTML = ContentSettings(content_type="text/html; charset=utf-8")
READ_THREADS = 8


class LatestRun(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class EvaluationStore:
    def __init__(self, container: ContainerClient) -> None:
        self._container = container
        self._runs = JsonBlobStore(container, EvaluationRun)
        self._latest = JsonBlobStore(container, LatestRun)

    @property
    def container_name(self) -> str:
        return str(self._container.container_name)

    # --- runs ---------------------------------------------------------------------------

    def get(self, run_id: str) -> EvaluationRun | None:
        return self._runs.read(f"runs/{run_id}.json")[0]

    def create(self, run: EvaluationRun) -> bool:
        created = self._runs.create(f"runs/{run.id}.json", run)
        if created:
            self.point_latest(run)
        return created

    def point_latest(self, run: EvaluationRun) -> None:
        self._latest.update(
            self._latest_name(run.hosted_model, run.candidate.named),
            lambda _current: LatestRun(id=run.id),
        )
        if run.candidate.model != run.candidate.named:
            self._latest.update(
                self._latest_name(run.hosted_model, run.candidate.model),
                lambda _current: LatestRun(id=run.id),
            )

    def change(
        self, run_id: str, change: Callable[[EvaluationRun], EvaluationRun | None]
    ) -> EvaluationRun | None:
        return self._runs.update(
            f"runs/{run_id}.json", lambda current: change(current) if current else None
        )

    def latest(self, hosted_model: str, candidate: str) -> EvaluationRun | None:
        pointer = self._latest.read(self._latest_name(hosted_model, candidate))[0]
        return self.get(pointer.id) if pointer is not None else None

    def runs(self) -> Iterator[EvaluationRun]:
        for blob in self._container.list_blobs(name_starts_with="runs/"):
            run = self._runs.read(blob.name)[0]
            if run is not None:
                yield run

    @staticmethod
    def _latest_name(hosted_model: str, candidate: str) -> str:
        return f"latest/{hosted_model}/{_digest(candidate)}.json"

    # --- answers ------------------------------------------------------------------------

    def save_answer(self, run_id: str, answer: Answer) -> None:
        """Written over a retried failure; a finished answer is never replaced."""
        blob = self._container.get_blob_client(self._answer_name(run_id, answer.side, answer.index))
        try:
            blob.upload_blob(answer.model_dump_json(), overwrite=False, content_settings=_JSON)
        except ResourceExistsError:
            existing = Answer.model_validate_json(blob.download_blob().readall())
            if not existing.finished:
                blob.upload_blob(answer.model_dump_json(), overwrite=True, content_settings=_JSON)

    def answers(self, run_id: str, side: Side) -> dict[int, Answer]:
        prefix = f"answers/{run_id}/{side}/"
        names = [blob.name for blob in self._container.list_blobs(name_starts_with=prefix)]

        def read(name: str) -> Answer:
            return Answer.model_validate_json(self._container.download_blob(name).readall())

        # One small blob per example: read several at once, or a large set waits on latency.
        with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
            return {answer.index: answer for answer in pool.map(read, names)}

    def forget_answers(self, run_id: str) -> int:
        names = [b.name for b in self._container.list_blobs(name_starts_with=f"answers/{run_id}/")]
        for name in names:
            with contextlib.suppress(ResourceNotFoundError):
                self._container.delete_blob(name)
        return len(names)

    @staticmethod
    def _answer_name(run_id: str, side: Side, index: int) -> str:
        return f"answers/{run_id}/{side}/{index:06d}.json"

    # --- reports ------------------------------------------------------------------------

    def save_report(self, run_id: str, text: str, html: str) -> tuple[str, str]:
        names = (f"reports/{run_id}.txt", f"reports/{run_id}.html")
        for name, body, settings in ((names[0], text, _TEXT), (names[1], html, _HTML)):
            self._container.get_blob_client(name).upload_blob(
                body.encode("utf-8"), overwrite=True, content_settings=settings
            )
        return names


class PromotionStore:
    """The promotion history of each hosted model."""

    def __init__(self, container: ContainerClient) -> None:
        self._histories = JsonBlobStore(container, PromotionHistory)

    def history(self, model: str) -> PromotionHistory | None:
        return self._histories.read(f"promotions/{model}.json")[0]

    def change(
        self, model: str, change: Callable[[PromotionHistory | None], PromotionHistory | None]
    ) -> PromotionHistory | None:
        return self._histories.update(f"promotions/{model}.json", change)
