"""What a dataset check found: findings with their place, per-file statistics, the estimate.

`DatasetReport` is the library call's answer. It renders itself as JSON (`to_json`, the
`--json` report scripts and CI read) and as plain lines for people (`summary_lines`), each
finding as `FILE:LINE: error CODE: message` like a compiler's, so editors and CI annotate it.

Findings are counted in full but kept only up to `max_per_code` each (the first ones in file
order): a million duplicate lines must not grow the report, or the memory, with the file.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from shared.finetuning.examples import Code, Severity
from shared.finetuning.limits import DEFAULT_EPOCH_RULE, BaseModelLimits, Sourced

DEFAULT_MAX_PER_CODE = 50


@dataclass(frozen=True)
class Finding:
    """One error or warning, and where: a file, a line (1-based) and maybe a byte offset."""

    severity: Severity
    code: Code
    message: str
    file: str
    line: int | None = None
    byte_offset: int | None = None

    def location(self) -> str:
        return self.file if self.line is None else f"{self.file}:{self.line}"

    def to_json(self) -> dict[str, Any]:
        return {
            "severity": self.severity.value,
            "code": self.code.value,
            "file": self.file,
            "line": self.line,
            "byte_offset": self.byte_offset,
            "message": self.message,
        }

    def text(self) -> str:
        return f"{self.location()}: {self.severity.value} {self.code.value}: {self.message}"


@dataclass
class Findings:
    """Every finding counted; the first `max_per_code` of each code kept."""

    max_per_code: int = DEFAULT_MAX_PER_CODE
    kept: list[Finding] = field(default_factory=list)
    counts: Counter[tuple[Severity, Code]] = field(default_factory=Counter)

    def add(self, finding: Finding) -> None:
        key = (finding.severity, finding.code)
        self.counts[key] += 1
        if self.counts[key] <= self.max_per_code:
            self.kept.append(finding)

    def add_counted(self, first: list[Finding], total: int) -> None:
        """Findings of one code of which only the `first` (in line order) were kept."""
        for finding in first:
            self.add(finding)
        if first and total > len(first):
            self.counts[(first[0].severity, first[0].code)] += total - len(first)

    @property
    def errors(self) -> int:
        return sum(n for (severity, _), n in self.counts.items() if severity is Severity.ERROR)

    @property
    def warnings(self) -> int:
        return sum(n for (severity, _), n in self.counts.items() if severity is Severity.WARNING)

    def left_out(self) -> dict[str, int]:
        return {
            code.value: n - self.max_per_code
            for (_, code), n in self.counts.items()
            if n > self.max_per_code
        }


@dataclass(frozen=True)
class TokenStats:
    minimum: int
    median: float
    maximum: int
    total: int

    def to_json(self) -> dict[str, Any]:
        return {
            "min": self.minimum,
            "median": self.median,
            "max": self.maximum,
            "total": self.total,
        }


@dataclass(frozen=True)
class FileStats:
    """One file's numbers."""

    path: str
    role: str  # "training" or "validation"
    size_bytes: int
    lines: int
    blank_lines: int
    examples: int  # non-blank lines
    valid_examples: int  # examples with no error
    data_format: str | None
    tokens: TokenStats | None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "role": self.role,
            "size_bytes": self.size_bytes,
            "lines": self.lines,
            "blank_lines": self.blank_lines,
            "examples": self.examples,
            "valid_examples": self.valid_examples,
            "format": self.data_format,
            "tokens_per_example": None if self.tokens is None else self.tokens.to_json(),
        }


@dataclass(frozen=True)
class TrainingEstimate:
    """Billed training tokens and cost: tokens in the training file x epochs x price."""

    epochs: int
    epochs_source: str  # "given" or "default rule" (limits.DEFAULT_EPOCH_RULE)
    tokens_per_epoch: int
    billed_tokens: int
    price_per_million: Sourced

    @property
    def cost_usd(self) -> float:
        return self.billed_tokens / 1_000_000 * self.price_per_million.value

    def to_json(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "epochs_source": self.epochs_source,
            "epochs_rule": None
            if self.epochs_source == "given"
            else {
                "source": DEFAULT_EPOCH_RULE.source,
                "as_of": DEFAULT_EPOCH_RULE.as_of,
                "verified": DEFAULT_EPOCH_RULE.verified,
            },
            "training_tokens_per_epoch": self.tokens_per_epoch,
            "billed_training_tokens": self.billed_tokens,
            "price_per_million_tokens": self.price_per_million.to_json(),
            "cost_usd": round(self.cost_usd, 4),
        }


@dataclass(frozen=True)
class DatasetReport:
    base_model: str
    limits: BaseModelLimits
    files: list[FileStats]
    findings: Findings
    estimate: TrainingEstimate | None
    token_counting: str

    @property
    def ok(self) -> bool:
        return self.findings.errors == 0

    def to_json(self) -> dict[str, Any]:
        counts: dict[str, dict[str, int]] = {"error": {}, "warning": {}}
        for (severity, code), n in sorted(self.findings.counts.items()):
            counts[severity.value][code.value] = n
        return {
            "ok": self.ok,
            "base_model": self.base_model,
            "limits": {
                "model": self.limits.name,
                "format": self.limits.data_format,
                "example_token_limit": self.limits.example_token_limit.to_json(),
            },
            "token_counting": self.token_counting,
            "errors": self.findings.errors,
            "warnings": self.findings.warnings,
            "counts": counts,
            "findings": [finding.to_json() for finding in self.findings.kept],
            "findings_left_out": self.findings.left_out(),
            "files": [stats.to_json() for stats in self.files],
            "estimate": None if self.estimate is None else self.estimate.to_json(),
        }

    def summary_lines(self) -> list[str]:
        """The report for people: findings in file order, then the numbers."""
        lines = [finding.text() for finding in self.findings.kept]
        for code, n in self.findings.left_out().items():
            lines.append(f"... and {n} more {code} (see --json for counts)")
        for stats in self.files:
            shape = f"{stats.examples} examples ({stats.valid_examples} valid)"
            if stats.tokens is not None:
                shape += (
                    f", tokens per example min {stats.tokens.minimum} / median "
                    f"{stats.tokens.median:g} / max {stats.tokens.maximum}"
                )
            lines.append(f"{stats.role} {stats.path}: {shape}, {stats.size_bytes:,} bytes")
        if self.estimate is not None:
            estimate = self.estimate
            price = estimate.price_per_million
            note = "" if price.verified else ", unverified price"
            lines.append(
                f"estimate: {estimate.tokens_per_epoch:,} tokens x {estimate.epochs} epochs "
                f"({estimate.epochs_source}) = {estimate.billed_tokens:,} billed training tokens;"
                f" at ${price.value:g} per million{note}: ${estimate.cost_usd:,.2f}"
            )
        verdict = "FAILED" if not self.ok else "passed"
        lines.append(
            f"{verdict}: {self.findings.errors} error(s), {self.findings.warnings} warning(s) "
            f"for {self.base_model} (tokens counted by {self.token_counting})"
        )
        return lines
