"""Scores on hand-computed examples, and the paired comparison's verdicts."""

from __future__ import annotations

import pytest

from shared.evaluation.scoring import (
    UNSCORED,
    ExampleScores,
    compare,
    exact_match,
    means,
    normalize,
    rouge_l,
    score,
    token_f1,
)


def test_normalize_drops_case_punctuation_and_articles() -> None:
    assert normalize("The  Cat, sat on A mat!") == "cat sat on mat"


@pytest.mark.parametrize(
    ("answer", "reference", "expected"),
    [
        ("Paris.", "paris", 1.0),
        ("The answer is Paris", "Paris", 0.0),
        ("", "", 1.0),
    ],
)
def test_exact_match(answer: str, reference: str, expected: float) -> None:
    assert exact_match(answer, reference) == expected


def test_token_f1_by_hand() -> None:
    # answer words: cat sat on mat (4); reference: cat sat (2); common 2.
    # precision 2/4, recall 2/2, F1 = 2 * 0.5 * 1 / 1.5 = 2/3.
    assert token_f1("the cat sat on the mat", "a cat sat") == pytest.approx(2 / 3)
    # Repeated words count once per occurrence in both: common = min counts.
    # answer: yes yes no (3); reference: yes no no (3); common yes 1 + no 1 = 2 -> F1 2/3.
    assert token_f1("yes yes no", "yes no no") == pytest.approx(2 / 3)
    assert token_f1("nothing shared", "entirely different") == 0.0
    assert token_f1("", "something") == 0.0


def test_rouge_l_by_hand() -> None:
    # reference a c e, answer a b c d: LCS a c = 2; P = 2/4, R = 2/3; F = 2PR/(P+R) = 4/7.
    assert rouge_l("a b c d", "a c e") == pytest.approx(4 / 7)
    assert rouge_l("same words here", "same words here") == pytest.approx(1.0)
    assert rouge_l("x y", "a b") == 0.0


def test_a_failure_scores_zero_and_stays_in_the_mean() -> None:
    assert score(None, "anything") == UNSCORED
    both = [score("Paris", "Paris"), score(None, "Paris")]
    assert means(both)["exact_match"] == pytest.approx(0.5)


def _scores(values: list[float]) -> list[ExampleScores]:
    return [ExampleScores(v, v, v) for v in values]


def test_identical_models_tie() -> None:
    same = _scores([1, 0, 1, 0.5, 0.25, 0, 1, 1])
    result = compare(same, same, metric="token_f1")
    assert result.verdict == "tie"
    assert result.difference == 0.0


def test_a_consistent_gain_is_better_beyond_noise() -> None:
    result = compare(_scores([1.0] * 20), _scores([0.2] * 20), metric="token_f1")
    assert result.verdict == "candidate_better"
    assert result.low == pytest.approx(0.8) and result.high == pytest.approx(0.8)


def test_a_small_noisy_difference_is_a_tie() -> None:
    # The candidate wins 5 examples and loses 4 by the same margin: a mean gain of 1/10 that
    # a bootstrap interval cannot separate from zero.
    candidate = _scores([1, 0, 1, 0, 1, 0, 1, 0, 1, 0.5])
    current = _scores([0, 1, 0, 1, 0, 1, 0, 1, 0, 0.5])
    result = compare(candidate, current, metric="token_f1")
    assert result.difference == pytest.approx(0.1)
    assert result.low < 0 < result.high
    assert result.verdict == "tie"


def test_a_consistent_loss_is_worse() -> None:
    result = compare(_scores([0.1] * 10), _scores([0.9] * 10), metric="rouge_l")
    assert result.verdict == "candidate_worse"


def test_one_example_is_never_beyond_noise() -> None:
    assert compare(_scores([1]), _scores([0]), metric="exact_match").verdict == "tie"


def test_the_verdict_is_reproducible() -> None:
    candidate = _scores([1, 1, 0, 1, 0.5, 1, 0, 1, 1, 0.75])
    current = _scores([0, 1, 0, 0.5, 0.5, 0, 0, 1, 0, 0.25])
    first = compare(candidate, current, metric="token_f1")
    assert compare(candidate, current, metric="token_f1") == first
