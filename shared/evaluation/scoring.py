"""Scores that need no network: exact match, token F1 and ROUGE-L, and a paired comparison.

Answers are normalised the way extractive QA benchmarks (SQuAD) do before exact match and F1:
lower case, punctuation and the articles a/an/the removed, whitespace collapsed. ROUGE-L is
`rouge-score`'s (Google's reference implementation of Lin, 2004), F-measure, no stemming, on
its own tokenisation. An example that could not be scored (an error, a refusal, a timeout)
scores 0 on every metric: it stays in the denominator, so a model that fails more is worse.

The comparison pairs the two models on the same examples: the candidate's mean minus the
current's on the primary metric, with a percentile bootstrap confidence interval over the
per-example differences (seeded, so a run's verdict is reproducible). The candidate wins only
when the whole interval is above zero; loses when it is below; anything else is a tie.
Pure: no clock, no I/O.
"""

from __future__ import annotations

import random
import re
import statistics
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rouge_score import rouge_scorer

Metric = Literal["exact_match", "token_f1", "rouge_l"]
METRICS: tuple[Metric, ...] = ("exact_match", "token_f1", "rouge_l")
Verdict = Literal["candidate_better", "tie", "candidate_worse"]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ROUGE = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def normalize(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (SQuAD's normalisation)."""
    lowered = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", lowered).split())


def exact_match(answer: str, reference: str) -> float:
    return 1.0 if normalize(answer) == normalize(reference) else 0.0


def token_f1(answer: str, reference: str) -> float:
    """The harmonic mean of token precision and recall over the normalised words."""
    got = normalize(answer).split()
    want = normalize(reference).split()
    if not got or not want:
        return 1.0 if got == want else 0.0
    common = sum((Counter(got) & Counter(want)).values())
    if common == 0:
        return 0.0
    precision = common / len(got)
    recall = common / len(want)
    return 2 * precision * recall / (precision + recall)


def rouge_l(answer: str, reference: str) -> float:
    """ROUGE-L F-measure (longest common subsequence of tokens)."""
    return float(_ROUGE.score(reference, answer)["rougeL"].fmeasure)


@dataclass(frozen=True)
class ExampleScores:
    exact_match: float
    token_f1: float
    rouge_l: float

    def get(self, metric: Metric) -> float:
        return float(getattr(self, metric))


UNSCORED = ExampleScores(0.0, 0.0, 0.0)


def score(answer: str | None, reference: str) -> ExampleScores:
    """An answer's scores against the reference; no answer (a failure) scores 0 everywhere."""
    if answer is None:
        return UNSCORED
    return ExampleScores(
        exact_match=exact_match(answer, reference),
        token_f1=token_f1(answer, reference),
        rouge_l=rouge_l(answer, reference),
    )


def means(scores: Sequence[ExampleScores]) -> dict[Metric, float]:
    if not scores:
        return dict.fromkeys(METRICS, 0.0)
    return {metric: statistics.fmean(s.get(metric) for s in scores) for metric in METRICS}


@dataclass(frozen=True)
class Comparison:
    """The candidate against the current model on one metric, paired by example."""

    metric: Metric
    difference: float  # candidate mean minus current mean
    low: float  # the confidence interval of the difference
    high: float
    confidence: float
    resamples: int
    verdict: Verdict

    def to_json(self) -> dict[str, object]:
        return {
            "metric": self.metric,
            "difference": round(self.difference, 6),
            "ci_low": round(self.low, 6),
            "ci_high": round(self.high, 6),
            "confidence": self.confidence,
            "resamples": self.resamples,
            "verdict": self.verdict,
        }


def compare(
    candidate: Sequence[ExampleScores],
    current: Sequence[ExampleScores],
    *,
    metric: Metric,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> Comparison:
    """Paired percentile bootstrap of the mean difference; a tie unless the interval excludes 0.

    Fewer than two examples cannot show anything beyond noise: always a tie.
    """
    if len(candidate) != len(current):
        raise ValueError("the two models must be scored on the same examples")
    differences = [a.get(metric) - b.get(metric) for a, b in zip(candidate, current, strict=True)]
    if not differences:
        return Comparison(metric, 0.0, 0.0, 0.0, confidence, 0, "tie")
    observed = statistics.fmean(differences)
    if len(differences) < 2:
        return Comparison(metric, observed, -1.0, 1.0, confidence, 0, "tie")
    rng = random.Random(seed)
    count = len(differences)
    boot = sorted(statistics.fmean(rng.choices(differences, k=count)) for _ in range(resamples))
    tail = (1 - confidence) / 2
    low = boot[max(0, int(tail * resamples))]
    high = boot[min(resamples - 1, int((1 - tail) * resamples) - 1)]
    verdict: Verdict = "tie"
    if low > 0:
        verdict = "candidate_better"
    elif high < 0:
        verdict = "candidate_worse"
    return Comparison(metric, observed, low, high, confidence, resamples, verdict)
