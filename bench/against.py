"""The warm path of this checkout against another commit's, side by side in one run.

`python -m bench warm --against <commit>` exports `<commit>` (`git archive`, into a cache
directory outside the checkout), then runs each tree's own `python -m bench warm` in turn,
alternating which goes first each round, so both see the same machine at the same moments;
it prints each run's median and the ratio of the medians (this checkout over the other). A
regression shows as a ratio, which a shared, noisy machine moves much less than an absolute
time.

Both trees run under the same interpreter by default, this checkout's environment: an older
commit's pins are usually a subset of today's, and differing pins are listed before the runs
(`--against-python` runs the other tree under another interpreter instead). The other tree
uses this checkout's Azurite install (`.tools/azurite/node_modules`, linked in).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console

REPO_ROOT = Path(__file__).resolve().parent.parent
_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)", re.MULTILINE)


def resolve_commit(commit: str) -> str:
    """The full id of `commit` in this checkout's repository."""
    result = subprocess.run(
        ["git", "rev-parse", "--verify", f"{commit}^{{commit}}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(
            f"--against {commit}: not a commit of this repository ({result.stderr.strip()})"
        )
    return result.stdout.strip()


def export_tree(sha: str) -> Path:
    """The commit's files in a cache directory (exported once, reused by later runs)."""
    tree = Path(tempfile.gettempdir()) / f"bench-against-{sha[:12]}"
    done = tree / ".exported"
    if not done.exists():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", "--format=tar", sha], cwd=REPO_ROOT, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
        done.write_text(sha)
    modules = tree / ".tools" / "azurite" / "node_modules"
    ours = REPO_ROOT / ".tools" / "azurite" / "node_modules"
    if not modules.exists() and ours.exists():
        modules.parent.mkdir(parents=True, exist_ok=True)
        modules.symlink_to(ours, target_is_directory=True)
    return tree


def differing_pins(tree: Path) -> list[str]:
    """The other tree's pinned requirements this environment does not have at that version."""
    requirements = tree / "requirements.txt"
    if not requirements.exists():
        return []
    differing = []
    for name, version in _PIN.findall(requirements.read_text()):
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "absent"
        if installed != version:
            differing.append(f"{name}=={version} (here: {installed})")
    return differing


def run_warm(tree: Path, python: str, documents: int) -> dict[str, Any]:
    """One `python -m bench warm` of `tree` (its own Azurite and simulator); its warm figures."""
    result = subprocess.run(
        [python, "-m", "bench", "warm", "--warm-documents", str(documents)],
        cwd=tree,
        env=env_for(tree),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"the warm benchmark of {tree} failed:\n{result.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(result.stdout)["warm_path"]
    return figures


def env_for(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    # The tree's own packages first (this checkout is installed in editable mode).
    env["PYTHONPATH"] = str(tree)
    return env


def bench_against(
    commit: str, *, rounds: int, documents: int, python: str | None, console: Console
) -> dict[str, Any]:
    sha = resolve_commit(commit)
    tree = export_tree(sha)
    other_python = python or sys.executable
    differing = differing_pins(tree) if python is None else []
    if differing:
        console.print(
            f"[yellow]{commit} pins versions this environment does not have: "
            f"{', '.join(differing)}; --against-python runs it under another interpreter[/]"
        )
    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    for round_number in range(rounds):
        order = [
            ("this checkout", REPO_ROOT, sys.executable, ours),
            (commit, tree, other_python, theirs),
        ]
        if round_number % 2:
            order.reverse()
        for label, root, interpreter, runs in order:
            figures = run_warm(root, interpreter, documents)
            runs.append(figures)
            console.print(
                f"round {round_number + 1}/{rounds}: {label}: median {figures['median_ms']} ms"
            )
    our_medians = [run["median_ms"] for run in ours]
    their_medians = [run["median_ms"] for run in theirs]
    ratio = statistics.median(our_medians) / statistics.median(their_medians)
    return {
        "against": commit,
        "against_sha": sha,
        "rounds": rounds,
        "documents": documents,
        "same_interpreter": python is None,
        "differing_pins": differing,
        "medians_ms": {"this checkout": our_medians, commit: their_medians},
        "per_round_ratio": [
            round(a / b, 2) for a, b in zip(our_medians, their_medians, strict=True)
        ],
        "ratio_of_medians": round(ratio, 2),
        "target_ratio": 1.2,
        "round_trips_per_document": ours[-1].get("round_trips_per_document"),
    }
