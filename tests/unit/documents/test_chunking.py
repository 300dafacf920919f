"""Splitting text into parts within a token budget."""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Callable

import pytest

from shared.documents.chunking import split_into_parts
from shared.documents.tokens import EstimatingTokenCounter

COUNTER = EstimatingTokenCounter()


def words(text: str) -> int:
    """A fake token count: one token per whitespace-separated word."""
    return len(text.split())


# --- Splitting ----------------------------------------------------------------------------------


def test_parts_are_whole_paragraphs_packed_greedily() -> None:
    assert split_into_parts("a b\n\nc d\n\ne f", budget=4, count=words) == [
        "a b\n\nc d\n\n",
        "e f",
    ]


def test_a_paragraph_too_long_alone_is_split_at_line_ends() -> None:
    text = "p p\n\nl1 l1 l1\nl2 l2 l2\n\nq q"

    assert split_into_parts(text, budget=3, count=words) == [
        "p p\n\n",
        "l1 l1 l1\n",
        "l2 l2 l2\n\n",
        "q q",
    ]


def test_a_line_too_long_alone_is_split_at_sentence_ends() -> None:
    text = "One two three. Four five six! Seven? 八。九。"

    assert split_into_parts(text, budget=3, count=words) == [
        "One two three. ",
        "Four five six! ",
        "Seven? 八。九。",
    ]


def test_a_sentence_too_long_alone_is_split_into_windows_ending_after_spaces() -> None:
    text = " ".join(f"w{index}" for index in range(1, 11))

    assert split_into_parts(text, budget=3, count=words) == [
        "w1 w2 w3 ",
        "w4 w5 w6 ",
        "w7 w8 w9 ",
        "w10",
    ]


def test_a_word_too_long_alone_is_cut_into_windows() -> None:
    assert split_into_parts("abcdefghij", budget=4, count=len) == ["abcd", "efgh", "ij"]


def test_parts_are_packed_across_paragraph_breaks_of_any_length() -> None:
    # A longer blank run is no stronger a boundary: ending parts at the longest runs would
    # leave them under-filled, so a document that fits in `max_chunks` parts might not.
    assert split_into_parts("a b\n\n\nc d\n\ne f", budget=4, count=words) == [
        "a b\n\n\nc d\n\n",
        "e f",
    ]


def test_whitespace_only_parts_are_joined_to_a_neighbour() -> None:
    assert split_into_parts("\n\n\nabcdef", budget=3, count=len) == ["\n\n\nabc", "def"]


def test_separators_that_str_strip_removes_are_whitespace_for_parts_and_budgets() -> None:
    # U+001C-U+001F are whitespace to str.strip, which callers apply to parts, though not to
    # Unicode: a part of them alone would be blank.
    assert split_into_parts("\x1c\x1c\x1cabcdef", budget=3, count=len) == ["\x1c\x1c\x1cabc", "def"]
    assert split_into_parts("ab\x1c\x1c\x1c\x1ccd", budget=2, count=len) == [
        "ab\x1c\x1c\x1c\x1c",
        "cd",
    ]


def test_an_empty_text_has_no_parts_and_a_blank_text_one() -> None:
    assert split_into_parts("", budget=3, count=len) == []
    assert split_into_parts("  \n", budget=3, count=len) == ["  \n"]


def test_a_group_the_tokenizer_counts_higher_than_its_pieces_is_halved() -> None:
    # A tokenizer whose count of joined text exceeds the sum of its pieces' counts.
    def paragraph_sensitive(text: str) -> int:
        return len(text.split()) + text.strip().count("\n\n")

    parts = split_into_parts("a b\n\nc d\n\ne f", budget=4, count=paragraph_sensitive)

    assert parts == ["a b\n\n", "c d\n\n", "e f"]


def test_a_budget_below_one_token_is_refused() -> None:
    with pytest.raises(ValueError, match="budget must be at least 1 token, not 0"):
        split_into_parts("a", budget=0, count=len)


def random_text(rng: random.Random) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFG0123456789éü日本,;:-'\""

    def word() -> str:
        length = rng.choice([rng.randint(1, 12)] * 9 + [rng.randint(40, 250)])
        return "".join(rng.choice(alphabet) for _ in range(length))

    def sentence() -> str:
        return " ".join(word() for _ in range(rng.randint(1, 25))) + rng.choice(
            [".", "!", "?", "", "。", '."', ";"]
        )

    def line() -> str:
        return rng.choice([" ", "  ", "\t", ""]).join(sentence() for _ in range(rng.randint(1, 6)))

    paragraphs = [
        "\n".join(line() for _ in range(rng.randint(1, 5))) for _ in range(rng.randint(1, 12))
    ]
    separators = ["\n\n", "\n \n", "\n\n\n\n", "\n\t\n  ", "\n"]
    text = "".join(paragraph + rng.choice(separators) for paragraph in paragraphs)
    prefix = rng.choice(["", "\n\n", "   ", "\n \n\n"])
    return prefix + (text if rng.random() < 0.5 else text.rstrip())


COUNTERS: dict[str, Callable[[str], int]] = {
    "words": words,
    "characters": len,
    "estimate": COUNTER.count,
}


@pytest.mark.parametrize("counter_name", sorted(COUNTERS))
@pytest.mark.parametrize("seed", range(40))
def test_random_texts_split_into_fitting_parts_that_rebuild_the_text(
    seed: int, counter_name: str
) -> None:
    rng = random.Random(f"{seed}-{counter_name}")
    count = COUNTERS[counter_name]
    text = random_text(rng)
    budget = rng.choice([1, 2, 5, 17, 60, 400, 5000])

    parts = split_into_parts(text, budget=budget, count=count)

    assert "".join(parts) == text
    for part in parts:
        assert part.strip(), f"blank part in {parts!r}"
        assert count(part.strip()) <= budget


@pytest.mark.parametrize("seed", range(20))
def test_random_paragraphs_that_fit_are_never_cut(seed: int) -> None:
    rng = random.Random(seed)
    paragraphs = [
        " ".join("w" * rng.randint(1, 8) for _ in range(rng.randint(1, 20)))
        for _ in range(rng.randint(2, 30))
    ]
    text = "\n\n".join(paragraphs)
    budget = max(words(paragraph) for paragraph in paragraphs) + rng.randint(0, 30)

    parts = split_into_parts(text, budget=budget, count=words)

    assert "".join(parts) == text
    assert [piece for part in parts for piece in part.strip().split("\n\n")] == paragraphs
    for part, following in itertools.pairwise(parts):
        assert re.search(r"\n\n\Z", part)
        # Greedy: the next paragraph would not have fitted in this part.
        assert words(part) + words(following.split("\n\n")[0]) > budget


@pytest.mark.parametrize("seed", range(20))
def test_random_paragraphs_between_blank_runs_of_any_length_are_packed_greedily(seed: int) -> None:
    rng = random.Random(f"blank-runs-{seed}")
    paragraphs = [
        " ".join("w" * rng.randint(1, 8) for _ in range(rng.randint(1, 20)))
        for _ in range(rng.randint(2, 30))
    ]
    breaks = ["\n\n", "\n\n", "\n\n\n", "\n \n", "\n\n\n\n"]
    text = paragraphs[0] + "".join(rng.choice(breaks) + paragraph for paragraph in paragraphs[1:])
    budget = max(words(paragraph) for paragraph in paragraphs) + rng.randint(0, 30)

    parts = split_into_parts(text, budget=budget, count=words)

    assert "".join(parts) == text
    assert [piece for part in parts for piece in re.split(r"\n\s*\n", part.strip())] == paragraphs
    for part, following in itertools.pairwise(parts):
        assert re.search(r"\n\s*\n\Z", part)
        assert words(part) + words(re.split(r"\n\s*\n", following)[0]) > budget
