"""Offline security checks of the Bicep templates: checkov over `infra/`, judged strictly.

Run by `make infra-check` (part of `make test`) with the dev virtual environment's Python;
checkov itself lives in its own environment (`.tools/checkov/venv`), since it pins old
dependencies that conflict with pytest. This wrapper exists because checkov's exit code alone
is not enough: a Bicep file it cannot parse is reported as a "parsing error" and simply not
checked, with exit code 0. Here the run fails when any check fails, any file fails to parse,
or no check ran at all (a wrong path would otherwise pass silently).

checkov is run with `--skip-download`: it would otherwise try to fetch guideline links from
its vendor's API, which this machine (and CI) cannot reach.

Usage: `python -m scripts.infra_check [--checkov PATH] [DIRECTORY]` (default: `infra`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CHECKOV = ROOT / ".tools" / "checkov" / "venv" / "bin" / "checkov"


@dataclass
class CheckovReport:
    """What one checkov run found, from its JSON output."""

    passed: int = 0
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    parsing_errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.passed > 0 and not self.failed and not self.parsing_errors


def _describe(check: Mapping[str, Any]) -> str:
    lines = check.get("file_line_range") or []
    where = f"{check.get('file_path', '?')}:{'-'.join(str(n) for n in lines)}"
    return f"{check.get('check_id')} {check.get('resource')} ({where}): {check.get('check_name')}"


def parse_report(output: str) -> CheckovReport:
    """Read checkov's `-o json` output: one object per framework, or a list of them."""
    data: Any = json.loads(output) if output.strip() else []
    reports = data if isinstance(data, list) else [data]
    report = CheckovReport()
    for framework in reports:
        results = framework.get("results", {}) if isinstance(framework, dict) else {}
        report.passed += len(results.get("passed_checks", []))
        report.failed += [_describe(c) for c in results.get("failed_checks", [])]
        report.skipped += [
            f"{_describe(c)} -- {(c.get('check_result') or {}).get('suppress_comment', '')}"
            for c in results.get("skipped_checks", [])
        ]
        report.parsing_errors += [str(p) for p in results.get("parsing_errors", [])]
    return report


def run_checkov(checkov: Path, directory: Path) -> CheckovReport:
    command = [
        str(checkov),
        "--directory",
        str(directory),
        "--framework",
        "bicep",
        "--output",
        "json",
        "--skip-download",
    ]
    # checkov exits 1 when a check fails; the JSON says which, so the code is not used here.
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        return parse_report(completed.stdout)
    except (json.JSONDecodeError, AttributeError) as exc:
        sys.stderr.write(completed.stderr[-4000:])
        raise SystemExit(f"infra-check: checkov gave no readable report ({exc})") from exc


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", type=Path, default=ROOT / "infra")
    parser.add_argument("--checkov", type=Path, default=DEFAULT_CHECKOV)
    args = parser.parse_args(argv)
    if not args.checkov.exists():
        print(f"infra-check: {args.checkov} is missing (run `make infra-check`)", file=sys.stderr)
        return 2
    report = run_checkov(args.checkov, args.directory)
    for line in report.skipped:
        print(f"skipped  {line}")
    for line in report.failed:
        print(f"FAILED   {line}")
    for line in report.parsing_errors:
        print(f"UNPARSED {line}")
    print(
        f"checkov (bicep): passed {report.passed}, failed {len(report.failed)}, "
        f"skipped {len(report.skipped)}, parsing errors {len(report.parsing_errors)}"
    )
    if report.passed == 0 and not report.failed:
        print("infra-check: no check ran; is the directory right?", file=sys.stderr)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
