"""Checking a training file (and a validation file) before any upload: `check_dataset`.

Streaming: each file is read a line at a time (a line longer than `max_line_bytes` is an error
and is skipped in chunks, never held whole), and what is remembered per example is fixed-size
numbers in packed arrays: an 8-byte digest of the canonical example, its 4-byte line number and
nothing else (12 bytes an example, whatever the example's size; finding duplicates sorts them,
about 40 bytes an example for a moment). Token counts go into a fixed-size histogram. Duplicates
and examples shared between the two files are found from the digests once both are read.
Findings are capped per code (see `report.Findings`). A 1 GB file's peak memory is measured in
`bench/finetune_data.py` (BENCHMARKS.md).

Per-line rules are in `shared.finetuning.examples`; limits and prices in
`shared.finetuning.limits`; counting tokens is `shared.documents.tokens` (never downloads).
"""

from __future__ import annotations

import hashlib
import json
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from shared.documents.tokens import TokenCounter, make_token_counter
from shared.finetuning.examples import Code, Severity, canonical_bytes, check_example
from shared.finetuning.limits import (
    DEFAULT_EPOCH_RULE,
    FILE_LIMITS,
    BaseModelLimits,
    DataFormat,
    Sourced,
    base_model_limits,
)
from shared.finetuning.report import (
    DEFAULT_MAX_PER_CODE,
    DatasetReport,
    FileStats,
    Finding,
    Findings,
    TokenStats,
    TrainingEstimate,
)

UTF8_BOM = b"\xef\xbb\xbf"
# No example under any model's token limit comes near this; a longer line is refused unread.
DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024
_SKIP_CHUNK = 1024 * 1024
_FORMAT_NAMES: dict[str, str] = {"chat": "chat", "prompt_completion": "prompt/completion"}


class TokenHistogram:
    """Tokens per example as a histogram up to the model's limit: exact min, median, max and
    total in fixed memory (an example over the limit counts as limit + 1 for the median)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.counts = array("Q", bytes(8 * (limit + 2)))
        self.examples = 0
        self.minimum: int | None = None
        self.maximum = 0
        self.total = 0

    def add(self, tokens: int) -> None:
        self.counts[min(tokens, self.limit + 1)] += 1
        self.examples += 1
        self.total += tokens
        self.maximum = max(self.maximum, tokens)
        self.minimum = tokens if self.minimum is None else min(self.minimum, tokens)

    def _value_at(self, rank: int, cumulative: np.ndarray) -> int:
        return int(np.searchsorted(cumulative, rank, side="right"))

    def stats(self) -> TokenStats:
        cumulative = np.cumsum(np.frombuffer(self.counts, dtype=np.uint64))
        middle = self.examples // 2
        if self.examples % 2:
            median = float(self._value_at(middle, cumulative))
        else:
            low, high = self._value_at(middle - 1, cumulative), self._value_at(middle, cumulative)
            median = (low + high) / 2
        return TokenStats(
            minimum=self.minimum or 0, median=median, maximum=self.maximum, total=self.total
        )


@dataclass
class _FileScan:
    """What one pass over a file keeps: fixed-size numbers per example, and counts."""

    path: Path
    role: str
    size_bytes: int
    lines: int = 0
    blank_lines: int = 0
    examples: int = 0
    valid_examples: int = 0
    data_format: DataFormat | None = None
    format_line: int = 0
    digests: array[int] = field(default_factory=lambda: array("Q"))
    digest_lines: array[int] = field(default_factory=lambda: array("I"))
    token_counts: TokenHistogram | None = None
    billed_tokens: int = 0

    def stats(self) -> FileStats:
        token_stats = None
        if self.token_counts is not None and self.token_counts.examples:
            token_stats = self.token_counts.stats()
        return FileStats(
            path=str(self.path),
            role=self.role,
            size_bytes=self.size_bytes,
            lines=self.lines,
            blank_lines=self.blank_lines,
            examples=self.examples,
            valid_examples=self.valid_examples,
            data_format=self.data_format,
            tokens=token_stats,
        )


def _digest(value: object) -> int:
    return int.from_bytes(hashlib.blake2b(canonical_bytes(value), digest_size=8).digest(), "little")


def _lines(handle: BinaryIO, max_line_bytes: int) -> Iterator[tuple[int, bytes | None, int]]:
    """Per line: its byte offset, its bytes without the line end (None when longer than
    `max_line_bytes`, then skipped in chunks, never held whole), and its length without the
    line end, as an editor counts it."""
    offset = 0
    while True:
        raw = handle.readline(max_line_bytes + 1)
        if not raw:
            return
        length = len(raw)
        if length <= max_line_bytes or raw.endswith(b"\n"):
            body = raw.rstrip(b"\r\n")
            yield offset, body, len(body)
            offset += length
            continue
        newline = False
        while not newline:
            chunk = handle.readline(_SKIP_CHUNK)
            if not chunk:
                break
            length += len(chunk)
            newline = chunk.endswith(b"\n")
        yield offset, None, length - 1 if newline else length
        offset += length


class _Scanner:
    def __init__(
        self,
        limits: BaseModelLimits,
        counter: TokenCounter,
        findings: Findings,
        max_line_bytes: int,
    ) -> None:
        self.limits = limits
        self.counter = counter
        self.findings = findings
        self.max_line_bytes = max_line_bytes
        self.token_limit = int(limits.example_token_limit.value)

    def _add(
        self,
        scan: _FileScan,
        severity: Severity,
        code: Code,
        message: str,
        line: int | None = None,
        *,
        byte_offset: int | None = None,
    ) -> None:
        self.findings.add(Finding(severity, code, message, str(scan.path), line, byte_offset))

    def scan(self, path: Path, role: str) -> _FileScan:
        scan = _FileScan(
            path=path,
            role=role,
            size_bytes=path.stat().st_size,
            token_counts=TokenHistogram(self.token_limit),
        )
        upload_limit = int(FILE_LIMITS.max_upload_bytes.value)
        if scan.size_bytes > upload_limit:
            self._add(
                scan,
                Severity.ERROR,
                Code.FILE_TOO_LARGE,
                f"the file is {scan.size_bytes:,} bytes, over Azure's upload limit of "
                f"{upload_limit:,} bytes ({upload_limit // (1024 * 1024)} MB); split it or "
                "remove examples",
            )
        with path.open("rb") as handle:
            for offset, body, length in _lines(handle, self.max_line_bytes):
                scan.lines += 1
                self._line(scan, scan.lines, offset, body, length)
        return scan

    def _line(
        self, scan: _FileScan, line: int, offset: int, body: bytes | None, length: int
    ) -> None:
        if body is None:
            scan.examples += 1
            self._add(
                scan,
                Severity.ERROR,
                Code.LINE_TOO_LONG,
                f"the line is {length:,} bytes, longer than {self.max_line_bytes:,}; no example "
                "within the token limit is this long",
                line,
                byte_offset=offset,
            )
            return
        if line == 1 and body.startswith(UTF8_BOM):
            body, offset = body[len(UTF8_BOM) :], offset + len(UTF8_BOM)
        if not body.strip():
            scan.blank_lines += 1
            return
        scan.examples += 1
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as error:
            bad = body[error.start]
            self._add(
                scan,
                Severity.ERROR,
                Code.NOT_UTF8,
                f"not UTF-8: byte 0x{bad:02x} at byte offset {offset + error.start} of the file "
                f"({error.reason}); save the file as UTF-8",
                line,
                byte_offset=offset + error.start,
            )
            return
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            self._add(
                scan,
                Severity.ERROR,
                Code.NOT_JSON,
                f"not JSON: {error.msg} at column {error.colno}; each line must be one JSON object",
                line,
                byte_offset=offset + len(text[: error.pos].encode()),
            )
            return
        checked = check_example(value)
        for problem in checked.problems:
            self._add(scan, problem.severity, problem.code, problem.message, line)
        has_error = checked.has_error
        if checked.data_format is not None:
            has_error = self._format(scan, line, checked.data_format) or has_error
            tokens = self._tokens(checked.messages, checked.extra_text)
            if tokens > self.token_limit:
                has_error = True
                self._add(
                    scan,
                    Severity.ERROR,
                    Code.OVER_TOKEN_LIMIT,
                    f"the example has {tokens:,} tokens, over {self.limits.name}'s limit of "
                    f"{self.token_limit:,} per example; shorten or split it",
                    line,
                )
            assert scan.token_counts is not None
            scan.token_counts.add(tokens)
            scan.billed_tokens += min(tokens, self.token_limit)
        if not has_error:
            scan.valid_examples += 1
            scan.digests.append(_digest(value))
            scan.digest_lines.append(line)

    def _format(self, scan: _FileScan, line: int, data_format: DataFormat) -> bool:
        """Record the file's format from its first example; True if this line breaks it."""
        if scan.data_format is None:
            scan.data_format, scan.format_line = data_format, line
            if data_format != self.limits.data_format:
                self._add(
                    scan,
                    Severity.ERROR,
                    Code.FORMAT_NOT_FOR_MODEL,
                    f"{_FORMAT_NAMES[data_format]} examples, but {self.limits.name} trains on "
                    f"{_FORMAT_NAMES[self.limits.data_format]} examples",
                    line,
                )
            return False
        if data_format != scan.data_format:
            self._add(
                scan,
                Severity.ERROR,
                Code.MIXED_FORMATS,
                f"a {_FORMAT_NAMES[data_format]} example in a file of "
                f"{_FORMAT_NAMES[scan.data_format]} examples (the first example, line "
                f"{scan.format_line}, is {_FORMAT_NAMES[scan.data_format]}); one file holds "
                "one format",
                line,
            )
            return True
        return False

    def _tokens(self, messages: list[dict[str, str]], extra_text: list[str]) -> int:
        total = sum(self.counter.count(text) for text in extra_text)
        if messages:
            total += self.counter.count_messages(messages)
        return total


def _first_of_each(digests: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions (sorted by digest) and, for each, the position of its digest's first copy."""
    order = np.argsort(digests, kind="stable")
    ordered = digests[order]
    starts = np.ones(len(ordered), dtype=bool)
    starts[1:] = ordered[1:] != ordered[:-1]
    run_of = np.cumsum(starts) - 1
    first = order[np.flatnonzero(starts)][run_of]
    return order, first


def _duplicates(scan: _FileScan, findings: Findings) -> None:
    if len(scan.digests) < 2:
        return
    digests = np.frombuffer(scan.digests, dtype=np.uint64)
    lines = np.frombuffer(scan.digest_lines, dtype=np.uint32)
    order, first = _first_of_each(digests)
    repeated = order != first
    pairs = np.stack([lines[order[repeated]], lines[first[repeated]]], axis=1)
    pairs = pairs[np.argsort(pairs[:, 0], kind="stable")]
    for line, original in pairs.tolist():
        findings.add(
            Finding(
                Severity.WARNING,
                Code.DUPLICATE,
                f"the same example as line {original}",
                str(scan.path),
                int(line),
            )
        )


def _shared(training: _FileScan, validation: _FileScan, findings: Findings) -> None:
    if not len(training.digests) or not len(validation.digests):
        return
    train_digests = np.frombuffer(training.digests, dtype=np.uint64)
    train_lines = np.frombuffer(training.digest_lines, dtype=np.uint32)
    order = np.argsort(train_digests, kind="stable")
    ordered = train_digests[order]
    valid_digests = np.frombuffer(validation.digests, dtype=np.uint64)
    valid_lines = np.frombuffer(validation.digest_lines, dtype=np.uint32)
    where = np.searchsorted(ordered, valid_digests)
    inside = where < len(ordered)
    found = np.zeros(len(valid_digests), dtype=bool)
    found[inside] = ordered[where[inside]] == valid_digests[inside]
    for line, position in zip(valid_lines[found].tolist(), where[found].tolist(), strict=True):
        findings.add(
            Finding(
                Severity.WARNING,
                Code.SHARED_WITH_TRAINING,
                f"the same example as line {int(train_lines[order[position]])} of the training "
                f"file {training.path}; a validation example seen in training says nothing",
                str(validation.path),
                int(line),
            )
        )


def _count_rules(scan: _FileScan, findings: Findings) -> None:
    minimum = int(FILE_LIMITS.min_examples.value)
    advised = int(FILE_LIMITS.advised_examples.value)
    if scan.valid_examples < minimum:
        findings.add(
            Finding(
                Severity.ERROR,
                Code.TOO_FEW_EXAMPLES,
                f"{scan.valid_examples} valid example(s); Azure needs at least {minimum} in a "
                "training file",
                str(scan.path),
            )
        )
    elif scan.valid_examples < advised:
        findings.add(
            Finding(
                Severity.WARNING,
                Code.FEW_EXAMPLES,
                f"{scan.valid_examples} valid examples; at least {advised} are advised for a "
                "noticeable effect",
                str(scan.path),
            )
        )


def check_dataset(
    training: Path,
    validation: Path | None = None,
    *,
    base_model: str,
    epochs: int | None = None,
    price_per_million: float | None = None,
    counter: TokenCounter | None = None,
    max_per_code: int = DEFAULT_MAX_PER_CODE,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> DatasetReport:
    """Check the files for fine-tuning `base_model`; raise `UnknownBaseModel` or `OSError`.

    `epochs` defaults to Azure's default-epoch estimate for the training file's size;
    `price_per_million` to the model's row in the limits table.
    """
    limits = base_model_limits(base_model)
    counter = counter or make_token_counter(limits.encoding)
    findings = Findings(max_per_code=max_per_code)
    scanner = _Scanner(limits, counter, findings, max_line_bytes)
    train_scan = scanner.scan(training, "training")
    _count_rules(train_scan, findings)
    _duplicates(train_scan, findings)
    scans = [train_scan]
    if validation is not None:
        valid_scan = scanner.scan(validation, "validation")
        _duplicates(valid_scan, findings)
        _shared(train_scan, valid_scan, findings)
        scans.append(valid_scan)
    findings.kept.sort(key=lambda f: (f.file != str(training), f.line or 0))
    rule = DEFAULT_EPOCH_RULE
    chosen_epochs = epochs if epochs is not None else rule.epochs_for(train_scan.valid_examples)
    price = limits.training_price_per_million
    if price_per_million is not None:
        price = Sourced(price_per_million, "given (--price-per-million)", "now", True)
    estimate = TrainingEstimate(
        epochs=chosen_epochs,
        epochs_source="given" if epochs is not None else "default rule",
        tokens_per_epoch=train_scan.billed_tokens,
        billed_tokens=train_scan.billed_tokens * chosen_epochs,
        price_per_million=price,
    )
    return DatasetReport(
        base_model=base_model,
        limits=limits,
        files=[scan.stats() for scan in scans],
        findings=findings,
        estimate=estimate,
        token_counting=counter.method,
    )
