"""Splitting a document's text into parts that each fit a token budget.

Pure: no network, no storage, no SDK. Parts end at paragraph breaks, then lines, then
sentences, then token windows that prefer to end after whitespace.

Hand-written because semantic-text-splitter and semchunk (both tried) rank longer newline runs
as stronger boundaries and end parts at them when the next section does not fit whole, rather
than filling the part with its paragraphs: on 1.9 MB texts where 1% of the paragraph breaks
are two blank lines, they need about 10 and 13 parts more than the 39 this module makes, over
the default limit of 40. semchunk also splits at `?` before `!` and never packs the pieces back
together, so `Seven? 八。九。` (3 words) becomes two parts at a 3-word budget.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# Each pattern marks where a piece may end (the piece keeps the separator).
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_LINE_BREAK = re.compile(r"\n")
# Latin sentence ends (then closing quotes/brackets, then whitespace), and the CJK full stop,
# exclamation and question marks, which need no following space.
_SENTENCE_END = re.compile("[.!?\u2026]+[\"'\u201d\u2019)\\]]*\\s+|[\u3002\uff01\uff1f]+")
_SPLIT_LEVELS = (_PARAGRAPH_BREAK, _LINE_BREAK, _SENTENCE_END)

CountTokens = Callable[[str], int]


def split_into_parts(text: str, *, budget: int, count: CountTokens) -> list[str]:
    """Consecutive slices of `text` whose stripped text is at most `budget` tokens each.

    `"".join(parts) == text` always: nothing is dropped, reordered or repeated. Parts end at
    paragraph breaks (blank lines); a paragraph too long for one part is split at line ends,
    then sentence ends, then into token windows that prefer to end after whitespace. Parts are
    packed greedily, so each holds as many whole pieces as fit. No part is whitespace only
    (unless `text` is).
    """
    if budget < 1:
        raise ValueError(f"budget must be at least 1 token, not {budget}")
    return _absorb_blank_parts(_split(text, 0, budget, count))


def _split(text: str, level: int, budget: int, count: CountTokens) -> list[str]:
    if level == len(_SPLIT_LEVELS):
        return _token_windows(text, budget, count)
    pieces = _cut_after(text, _SPLIT_LEVELS[level])
    if len(pieces) == 1:
        return _split(text, level + 1, budget, count)
    parts: list[str] = []
    group: list[str] = []
    group_tokens = 0
    for piece in pieces:
        piece_tokens = count(piece)
        if piece_tokens > budget and count(piece.strip()) > budget:
            parts.extend(_pack(group, budget, count))
            group, group_tokens = [], 0
            parts.extend(_split(piece, level + 1, budget, count))
            continue
        if group and group_tokens + piece_tokens > budget:
            parts.extend(_pack(group, budget, count))
            group, group_tokens = [], 0
        group.append(piece)
        group_tokens += piece_tokens
    parts.extend(_pack(group, budget, count))
    return parts


def _pack(pieces: list[str], budget: int, count: CountTokens) -> list[str]:
    # Pieces were grouped by the sum of their counts; a tokenizer's count of the joined text
    # can differ slightly from that sum, so check the whole and halve the group if it is over.
    if not pieces:
        return []
    joined = "".join(pieces)
    if len(pieces) == 1 or count(joined.strip()) <= budget:
        return [joined]
    middle = len(pieces) // 2
    return _pack(pieces[:middle], budget, count) + _pack(pieces[middle:], budget, count)


def _cut_after(text: str, separator: re.Pattern[str]) -> list[str]:
    pieces: list[str] = []
    start = 0
    for match in separator.finditer(text):
        end = match.end()
        if start < end < len(text):
            pieces.append(text[start:end])
            start = end
    pieces.append(text[start:])
    return pieces


def _token_windows(text: str, budget: int, count: CountTokens) -> list[str]:
    windows: list[str] = []
    start = 0
    while start < len(text):
        rest = text[start:]
        fitting = _longest_fitting_prefix(rest, budget, count)
        cut = fitting
        if fitting < len(rest):
            # End after the last whitespace in the window if that keeps at least half of it,
            # so words are not cut in two.
            last_space = max(rest.rfind(space, fitting // 2, fitting) for space in " \t\n")
            if last_space >= 0:
                cut = last_space + 1
        windows.append(rest[:cut])
        start += cut
    return windows


def _longest_fitting_prefix(text: str, budget: int, count: CountTokens) -> int:
    """About the longest prefix length within budget (to 1/64), found in few counts; >= 1."""
    length = len(text)
    fits, too_long = 0, length + 1
    probe = min(length, max(1, budget * 4))  # about 4 characters per token
    while True:
        if count(text[:probe]) <= budget:
            fits = probe
            if probe == length:
                return length
            probe = min(length, probe * 2)
        else:
            too_long = probe
            break
    while too_long - fits > max(1, too_long // 64):
        middle = (fits + too_long) // 2
        if count(text[:middle]) <= budget:
            fits = middle
        else:
            too_long = middle
    # A budget smaller than one character's tokens still has to make progress.
    return max(fits, 1)


def _absorb_blank_parts(parts: list[str]) -> list[str]:
    # A whitespace-only part would be an empty request; its whitespace costs nothing once the
    # neighbouring part is stripped, so join it to that part.
    joined: list[str] = []
    for part in parts:
        if joined and (not part.strip() or not joined[-1].strip()):
            joined[-1] += part
        else:
            joined.append(part)
    return joined
