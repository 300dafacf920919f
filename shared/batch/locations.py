"""Where outcomes go, and which output locations would make two inputs share one. Pure.

An ad-hoc document's outcome is named after its input blob (`<name>.result.json` in
`OUTPUT_CONTAINER` for `<name>` in `INPUT_CONTAINER`), and an input blob can have any name, so
every name in the output container may belong to an ad-hoc document. Batch outcomes therefore
live in their own container, `BATCH_OUTPUT_CONTAINER`: there a run names the outcome of
`<input prefix><rest>` as `<output prefix><rest>`, and the two kinds of outcome can never meet.

Within the batch output container, two runs may write under overlapping output prefixes only
when they give every input the same name: the same prefixes, or one pair extending the other
by the same folder (`in/` -> `out/` and `in/2026/` -> `out/2026/`). Any other overlap lets two
different inputs take one outcome name, and is refused with both named.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Container settings that must name different containers, and why, for the message.
SEPARATE_CONTAINERS: tuple[tuple[str, str, str], ...] = (
    (
        "OUTPUT_CONTAINER",
        "BATCH_OUTPUT_CONTAINER",
        "ad-hoc outcomes take their input blob's name, any name, so a batch's outcome could "
        "replace a document's",
    ),
    (
        "INPUT_CONTAINER",
        "OUTPUT_CONTAINER",
        "the blob trigger would take every outcome for a new document",
    ),
    (
        "INPUT_CONTAINER",
        "BATCH_OUTPUT_CONTAINER",
        "the blob trigger would take every batch outcome for a new document",
    ),
    (
        "INPUT_CONTAINER",
        "BATCH_CONTAINER",
        "the blob trigger would process every batch document as an ad-hoc one too",
    ),
    (
        "BATCH_CONTAINER",
        "BATCH_OUTPUT_CONTAINER",
        "a batch run would list its own outcomes as documents to process",
    ),
    (
        "BATCH_CONTAINER",
        "OUTPUT_CONTAINER",
        "a batch run would list ad-hoc outcomes as documents to process",
    ),
)


def container_overlaps(containers: Mapping[str, str]) -> list[str]:
    """Every pair of container settings that name one container where that loses outcomes."""
    problems: list[str] = []
    for first, second, why in SEPARATE_CONTAINERS:
        if containers[first].lower() == containers[second].lower():
            problems.append(
                f"{first} and {second} are both {containers[first]!r}: {why}. Give "
                f"{second} a container of its own"
            )
    return problems


@dataclass(frozen=True)
class OutputMapping:
    """Who writes batch outcomes under `output_prefix`, for documents under `input_prefix`."""

    owner: str  # in words: "model 'contracts', batch 'nightly'", "run 'r-1'"
    input_prefix: str
    output_prefix: str


def shares_outcome_names(first: OutputMapping, second: OutputMapping) -> bool:
    """Whether some input of one and a different input of the other get the same name."""
    if second.output_prefix.startswith(first.output_prefix):
        outer, inner = first, second
    elif first.output_prefix.startswith(second.output_prefix):
        outer, inner = second, first
    else:
        return False
    # outer names <outer in><rest> as <outer out><rest>; inner's output prefix is outer's plus
    # `extra`, so they agree on every name only if inner's input prefix is outer's plus `extra`.
    extra = inner.output_prefix[len(outer.output_prefix) :]
    return inner.input_prefix != outer.input_prefix + extra


def overlap_message(ours: OutputMapping, theirs: OutputMapping) -> str:
    return (
        f"{ours.owner} writes outcomes under {ours.output_prefix!r} (for {ours.input_prefix!r}), "
        f"which overlaps {theirs.owner}'s {theirs.output_prefix!r} (for "
        f"{theirs.input_prefix!r}): two different documents would share an outcome name. "
        "Choose an output prefix neither inside nor around the other"
    )


def overlapping_pairs(mappings: Iterable[OutputMapping]) -> list[str]:
    """One message per pair of mappings that would share outcome names."""
    listed = list(mappings)
    return [
        overlap_message(later, earlier)
        for index, earlier in enumerate(listed)
        for later in listed[index + 1 :]
        if shares_outcome_names(earlier, later)
    ]
