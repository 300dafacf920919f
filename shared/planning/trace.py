"""A traffic trace: the documents that arrived for one deployment, read from CSV.

Columns: `timestamp` (ISO 8601 with a UTC offset), `prompt_tokens`, `completion_tokens`,
`kind` (`adhoc`: uploaded at that moment; `batch`: waiting for a batch window, timestamped at
the window's start). Extra columns are ignored; rows need not be in order. A bad row is
refused with its line number and what to change, never skipped.

A trace is kept in columns (`TraceDocuments`: 17 bytes a document, against about 150 as one
object each), so a plan of a long trace holds its input in little memory and sends it to
replay processes as a few flat buffers.
"""

from __future__ import annotations

import csv
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, NamedTuple, overload

DocumentKind = Literal["adhoc", "batch"]
COLUMNS = ("timestamp", "prompt_tokens", "completion_tokens", "kind")
KINDS: tuple[DocumentKind, ...] = ("adhoc", "batch")
# Token counts are kept as unsigned 32-bit numbers; no model's context comes near.
LARGEST_TOKEN_COUNT = 2**32 - 1


class TraceError(ValueError):
    """The trace cannot be read; the message names the line and what to do."""


class TraceDocument(NamedTuple):
    """One document: when it arrived (epoch seconds, UTC) and its tokens.

    A named tuple: a replay makes one per document as it reads the trace's columns, and a
    tuple is made in less than half the time of a frozen dataclass.
    """

    at: float
    prompt_tokens: int
    completion_tokens: int
    kind: DocumentKind

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class TraceDocuments(Sequence[TraceDocument]):
    """Documents in arrival order (ties keep the given order), stored by column."""

    __slots__ = ("_at", "_completion", "_kinds", "_prompt")

    def __init__(self, documents: Iterable[TraceDocument] = ()) -> None:
        self._at = array("d")
        self._prompt = array("I")
        self._completion = array("I")
        self._kinds = bytearray()
        for document in documents:
            self._at.append(document.at)
            self._prompt.append(document.prompt_tokens)
            self._completion.append(document.completion_tokens)
            self._kinds.append(KINDS.index(document.kind))
        at = self._at
        if any(at[i] > at[i + 1] for i in range(len(at) - 1)):
            self._reorder(sorted(range(len(at)), key=at.__getitem__))

    def _reorder(self, order: list[int]) -> None:
        self._at = array("d", (self._at[i] for i in order))
        self._prompt = array("I", (self._prompt[i] for i in order))
        self._completion = array("I", (self._completion[i] for i in order))
        self._kinds = bytearray(self._kinds[i] for i in order)

    def __len__(self) -> int:
        return len(self._at)

    @overload
    def __getitem__(self, index: int) -> TraceDocument: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[TraceDocument]: ...

    def __getitem__(self, index: int | slice) -> TraceDocument | Sequence[TraceDocument]:
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(len(self))))
        return TraceDocument(
            self._at[index], self._prompt[index], self._completion[index], KINDS[self._kinds[index]]
        )

    def __iter__(self) -> Iterator[TraceDocument]:
        kinds = KINDS
        for at, prompt, completion, kind in zip(
            self._at, self._prompt, self._completion, self._kinds, strict=True
        ):
            yield TraceDocument(at, prompt, completion, kinds[kind])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TraceDocuments):
            return (self._at, self._prompt, self._completion, self._kinds) == (
                other._at,
                other._prompt,
                other._completion,
                other._kinds,
            )
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"TraceDocuments({len(self)} documents)"


@dataclass(frozen=True)
class Trace:
    """Documents in arrival order (ties keep the file's order)."""

    source: str
    documents: Sequence[TraceDocument]

    def __post_init__(self) -> None:
        if not isinstance(self.documents, TraceDocuments):
            object.__setattr__(self, "documents", TraceDocuments(self.documents))

    @property
    def start(self) -> float:
        return self.documents[0].at

    @property
    def end(self) -> float:
        return self.documents[-1].at

    @property
    def span_seconds(self) -> float:
        return self.end - self.start


def load_trace(path: Path) -> Trace:
    """Read a trace file; TraceError names the line of the first bad row."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return parse_trace(handle, source=str(path))
    except FileNotFoundError:
        raise TraceError(f"{path}: no such trace file") from None
    except UnicodeDecodeError as error:
        raise TraceError(f"{path}: not a UTF-8 text file ({error.reason})") from None


def parse_trace(lines: Iterable[str], *, source: str = "trace") -> Trace:
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise TraceError(f"{source}: the file is empty; expected the header {','.join(COLUMNS)}")
    names = [name.strip().lower() for name in header]
    missing = [column for column in COLUMNS if column not in names]
    if missing:
        raise TraceError(
            f"{source}, line 1: the header lacks {', '.join(missing)}; expected "
            f"{','.join(COLUMNS)} (found {','.join(header) or 'nothing'})"
        )
    positions = [names.index(column) for column in COLUMNS]
    documents = TraceDocuments(_rows(reader, positions, source))
    if not documents:
        raise TraceError(f"{source}: the trace has a header but no documents")
    return Trace(source, documents)


def _rows(
    reader: Iterator[list[str]], positions: list[int], source: str
) -> Iterator[TraceDocument]:
    width = max(positions) + 1
    for row in reader:
        line = reader.line_num  # type: ignore[attr-defined]
        if not row or all(not cell.strip() for cell in row):
            continue
        where = f"{source}, line {line}"
        if len(row) < width:
            raise TraceError(
                f"{where}: {len(row)} column(s), expected {len(COLUMNS)} ({','.join(COLUMNS)})"
            )
        stamp, prompt, completion, kind = (row[i].strip() for i in positions)
        yield TraceDocument(
            at=_timestamp(stamp, where),
            prompt_tokens=_tokens(prompt, "prompt_tokens", where),
            completion_tokens=_tokens(completion, "completion_tokens", where),
            kind=_kind(kind, where),
        )


def _timestamp(text: str, where: str) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise TraceError(
            f"{where}: timestamp {text!r} is not ISO 8601; write it like 2026-03-23T13:01:26+00:00"
        ) from None
    if moment.tzinfo is None:
        raise TraceError(
            f"{where}: timestamp {text!r} has no UTC offset; add one, e.g. {text}+00:00"
        )
    return moment.astimezone(UTC).timestamp()


def _tokens(text: str, column: str, where: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise TraceError(f"{where}: {column} {text!r} is not a whole number") from None
    if value < 0:
        raise TraceError(f"{where}: {column} is {value}; token counts cannot be negative")
    if value > LARGEST_TOKEN_COUNT:
        raise TraceError(
            f"{where}: {column} is {value}, more than any model's context; check the column"
        )
    return value


def _kind(text: str, where: str) -> DocumentKind:
    lowered = text.lower()
    for kind in KINDS:
        if lowered == kind:
            return kind
    raise TraceError(f"{where}: kind {text!r} is not one of {', '.join(KINDS)}")
