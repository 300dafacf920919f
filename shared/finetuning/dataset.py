"""Checking a training file (and a validation file) before any upload: `check_dataset`.

Streaming, in memory that does not grow with the file: each file is read a line at a time (a
line longer than `max_line_bytes` is an error and is skipped in chunks, never held whole);
tokens per example go into a fixed-size histogram; each valid example's 8-byte digest (of its
canonical JSON) and line number are spilled to temporary bucket files (`spill.py`, 12 bytes
an example on disk), from which duplicates and examples shared between the two files are found
one bucket at a time once both files are read.
Findings are capped per code (see `report.Findings`). A 1 GB file's peak memory is measured in
`bench/finetune_data.py` (BENCHMARKS.md).

Per-line rules are in `shared.finetuning.examples`; limits and prices in
`shared.finetuning.limits`; counting tokens is `shared.documents.tokens` (never downloads).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
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
from shared.finetuning.spill import DigestBuckets, duplicates, shared

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
    digests: DigestBuckets | None = None
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
        spill_directory: Path,
    ) -> None:
        self.spill_directory = spill_directory
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
            digests=DigestBuckets(self.spill_directory, role),
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
            assert scan.digests is not None
            scan.digests.add(_digest(value), line)

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


def _duplicates(scan: _FileScan, findings: Findings) -> None:
    assert scan.digests is not None
    found = duplicates(scan.digests, findings.max_per_code)
    findings.add_counted(
        [
            Finding(
                Severity.WARNING,
                Code.DUPLICATE,
                f"the same example as line {original}",
                str(scan.path),
                line,
            )
            for line, original in found.pairs
        ],
        found.total,
    )


def _shared(training: _FileScan, validation: _FileScan, findings: Findings) -> None:
    assert training.digests is not None and validation.digests is not None
    found = shared(training.digests, validation.digests, findings.max_per_code)
    findings.add_counted(
        [
            Finding(
                Severity.WARNING,
                Code.SHARED_WITH_TRAINING,
                f"the same example as line {original} of the training file {training.path}; "
                "a validation example seen in training says nothing",
                str(validation.path),
                line,
            )
            for line, original in found.pairs
        ],
        found.total,
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
    with tempfile.TemporaryDirectory(prefix="dataset-check-") as spill:
        scanner = _Scanner(limits, counter, findings, max_line_bytes, Path(spill))
        train_scan = scanner.scan(training, "training")
        _count_rules(train_scan, findings)
        _duplicates(train_scan, findings)
        scans = [train_scan]
        if validation is not None:
            valid_scan = scanner.scan(validation, "validation")
            _duplicates(valid_scan, findings)
            _shared(train_scan, valid_scan, findings)
            scans.append(valid_scan)
        for scan in scans:
            assert scan.digests is not None
            scan.digests.close()
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
