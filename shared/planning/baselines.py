"""The rows that need no replay: the clairvoyant bound, always-on and per-document. Pure.

All three serve documents in arrival order at the deployment's token rate R (capacity x 1,000
tokens per minute): `finish_i = max(t_i, finish_(i-1)) + tokens_i / R`.

- The clairvoyant bound knows every arrival in advance: it creates the deployment P before it
  is needed and deletes it the moment it is idle, unless the next need is less than P away.
  Its hosting is the union of the intervals `[t_i - P, finish_i]`, and no document waits.
- Always-on (24x7) keeps one deployment for the whole horizon; no document waits.
- Per-document (the original design) deploys, infers and deletes for each document: each
  document has its own lifetime of P, its inference and the delete, and waits P.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from shared.cost.billing import Lifetime, LifetimeTally
from shared.planning.trace import TraceDocument
from shared.planning.waits import Waits


@dataclass(frozen=True)
class BaselineResult:
    hosting: LifetimeTally  # tallied as the lifetimes are made: memory does not grow with them
    waits: Waits


def finishes(documents: Sequence[TraceDocument], tokens_per_second: float) -> Iterator[float]:
    """When each document finishes when served in arrival order at the token rate."""
    finish = float("-inf")
    for document in documents:
        finish = max(document.at, finish) + document.tokens / tokens_per_second
        yield finish


def clairvoyant_bound(
    documents: Sequence[TraceDocument], *, serving_after: float, tokens_per_second: float
) -> BaselineResult:
    """The zero-wait lower bound: the union of `[t_i - P, finish_i]` as lifetimes."""
    spans = clairvoyant_lifetimes(
        documents, serving_after=serving_after, tokens_per_second=tokens_per_second
    )
    return BaselineResult(LifetimeTally.of(spans), _all_waiting(0.0, documents))


def clairvoyant_lifetimes(
    documents: Sequence[TraceDocument], *, serving_after: float, tokens_per_second: float
) -> Iterator[Lifetime]:
    """The clairvoyant bound's lifetimes, in time order."""
    start = end = None
    for document, finish in zip(documents, finishes(documents, tokens_per_second), strict=True):
        needed_from = document.at - serving_after
        if start is None or end is None or needed_from > end:
            if start is not None and end is not None:
                yield (start, end)
            start, end = needed_from, finish
        else:
            end = max(end, finish)
    if start is not None and end is not None:
        yield (start, end)


def always_on(documents: Sequence[TraceDocument], *, start: float, until: float) -> BaselineResult:
    return BaselineResult(LifetimeTally.of([(start, until)]), _all_waiting(0.0, documents))


def per_document(
    documents: Sequence[TraceDocument],
    *,
    serving_after: float,
    deletion_seconds: float,
    tokens_per_second: float,
) -> BaselineResult:
    """Deploy, infer, delete for each document, on a deployment of its own."""
    lifetimes = (
        (d.at, d.at + serving_after + d.tokens / tokens_per_second + deletion_seconds)
        for d in documents
    )
    return BaselineResult(LifetimeTally.of(lifetimes), _all_waiting(serving_after, documents))


def _all_waiting(seconds: float, documents: Sequence[TraceDocument]) -> Waits:
    waits = Waits()
    waits.add(seconds, times=len(documents))
    return waits
