"""Finding duplicate examples in fixed memory: digests spilled to disk in buckets.

While a file is read, each valid example's 8-byte digest and 4-byte line number go to one of
`BUCKETS` temporary files, chosen by the digest's top byte, so equal examples always land in
the same bucket. Afterwards the buckets are read one at a time: memory holds one bucket (about
1/256 of the records, 12 bytes each) and the first `keep` findings, whatever the file's size;
the disk holds 12 bytes an example until the check ends.

Only the first `keep` pairs in line order are returned, with the total count: the report lists
that many per code anyway (see `report.Findings`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

BUCKETS = 256
_RECORD = struct.Struct("<QI")
_DTYPE = np.dtype([("digest", "<u8"), ("line", "<u4")])
# Small buffers: 256 open files x 8 KiB is 2 MiB.
_BUFFER_BYTES = 8 * 1024


class DigestBuckets:
    """One file's (digest, line) records, spread over `BUCKETS` files in `directory`."""

    def __init__(self, directory: Path, name: str) -> None:
        self.paths = [directory / f"{name}-{index:03d}.bin" for index in range(BUCKETS)]
        self._handles: list[BinaryIO] | None = [
            path.open("wb", buffering=_BUFFER_BYTES) for path in self.paths
        ]
        self.records = 0

    def add(self, digest: int, line: int) -> None:
        assert self._handles is not None, "add after close"
        self._handles[digest >> 56].write(_RECORD.pack(digest, line))
        self.records += 1

    def close(self) -> None:
        if self._handles is not None:
            for handle in self._handles:
                handle.close()
            self._handles = None

    def bucket(self, index: int) -> np.ndarray:
        """The bucket's records in the order they were added (line order)."""
        self.close()
        return np.fromfile(self.paths[index], dtype=_DTYPE)


@dataclass(frozen=True)
class LinePairs:
    """(line, earlier line) pairs: the first `keep` by line, and how many there are in all."""

    pairs: list[tuple[int, int]]
    total: int


class _FirstByLine:
    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.best = np.empty((0, 2), dtype=np.int64)
        self.total = 0

    def offer(self, lines: np.ndarray, earlier: np.ndarray) -> None:
        if not len(lines):
            return
        self.total += len(lines)
        merged = np.concatenate([self.best, np.stack([lines, earlier], axis=1).astype(np.int64)])
        self.best = merged[np.argsort(merged[:, 0], kind="stable")][: self.keep]

    def result(self) -> LinePairs:
        return LinePairs([(int(a), int(b)) for a, b in self.best.tolist()], self.total)


def _firsts(records: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted digests, their lines, and each one's first line (records are in line order)."""
    order = np.argsort(records["digest"], kind="stable")
    digests, lines = records["digest"][order], records["line"][order]
    starts = np.ones(len(digests), dtype=bool)
    starts[1:] = digests[1:] != digests[:-1]
    first = lines[np.flatnonzero(starts)][np.cumsum(starts) - 1]
    return digests, lines, first


def duplicates(buckets: DigestBuckets, keep: int) -> LinePairs:
    """Each example that repeats an earlier one: (its line, the first copy's line)."""
    found = _FirstByLine(keep)
    for index in range(BUCKETS):
        records = buckets.bucket(index)
        if len(records) < 2:
            continue
        _, lines, first = _firsts(records)
        repeated = lines != first
        found.offer(lines[repeated], first[repeated])
    return found.result()


def shared(training: DigestBuckets, validation: DigestBuckets, keep: int) -> LinePairs:
    """Each validation example also in training: (its line, the training file's first line)."""
    found = _FirstByLine(keep)
    for index in range(BUCKETS):
        valid = validation.bucket(index)
        train = training.bucket(index)
        if not len(valid) or not len(train):
            continue
        digests, _, first = _firsts(train)
        where = np.searchsorted(digests, valid["digest"])
        inside = where < len(digests)
        hit = np.zeros(len(valid), dtype=bool)
        hit[inside] = digests[where[inside]] == valid["digest"][inside]
        found.offer(valid["line"][hit], first[where[hit]])
    return found.result()
