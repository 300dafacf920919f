"""Cold start: what importing the function app costs a new instance, before its first trigger.

`python -m bench import [--against COMMIT]` imports `function_app` in fresh interpreters, each
under `python -X importtime`, and reports the median of the module's cumulative import time
(what the host's indexing of a new instance waits for) and which SDKs the import loaded. With
`--against`, the same for COMMIT's tree (exported as for the warm comparison, bench/against.py),
alternating, and the ratio of the medians.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.against import REPO_ROOT, env_for, export_tree, resolve_commit

# The SDKs the app builds clients with; importing the app should load none of them.
SDKS = ("openai", "azure.mgmt", "azure.storage", "azure.identity")
_PROBE = (
    "import sys, function_app\n"
    f"print(','.join(p for p in {SDKS!r}"
    " if any(m == p or m.startswith(p + '.') for m in sys.modules)))"
)
_TOTAL = re.compile(r"import time:\s+\d+ \|\s+(\d+) \| function_app$", re.MULTILINE)


def import_once(tree: Path, python: str) -> tuple[float, list[str]]:
    """Milliseconds `import function_app` took in a fresh interpreter, and the SDKs it loaded."""
    result = subprocess.run(
        [python, "-X", "importtime", "-c", _PROBE],
        cwd=tree,
        env=env_for(tree),
        capture_output=True,
        text=True,
        check=False,
    )
    found = _TOTAL.search(result.stderr)
    if result.returncode != 0 or found is None:
        raise SystemExit(f"importing {tree}/function_app.py failed:\n{result.stderr[-2000:]}")
    loaded = [name for name in result.stdout.strip().split(",") if name]
    return int(found.group(1)) / 1000, loaded


def bench_imports(
    *, runs: int, against: str | None, python: str | None, console: Console
) -> dict[str, Any]:
    trees: list[tuple[str, Path, str]] = [("this checkout", REPO_ROOT, sys.executable)]
    if against is not None:
        trees.append((against, export_tree(resolve_commit(against)), python or sys.executable))
    times: dict[str, list[float]] = {label: [] for label, _, _ in trees}
    sdks: dict[str, list[str]] = {}
    for run in range(runs):
        for label, tree, interpreter in trees if run % 2 == 0 else list(reversed(trees)):
            milliseconds, loaded = import_once(tree, interpreter)
            times[label].append(round(milliseconds, 1))
            sdks[label] = loaded
        console.print(
            f"import run {run + 1}/{runs}: "
            + ", ".join(f"{label} {values[-1]} ms" for label, values in times.items())
        )
    medians = {label: statistics.median(values) for label, values in times.items()}
    report: dict[str, Any] = {
        "runs": runs,
        "import_function_app_ms": times,
        "median_ms": medians,
        "sdks_loaded": sdks,
    }
    if against is not None:
        report["ratio_of_medians"] = round(medians["this checkout"] / medians[against], 2)
        report["target_ratio"] = 0.5
    return report
