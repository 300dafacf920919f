"""Checks the machine tools the Makefile needs and fails with a one-line reason.

Run as `python scripts/check_prereqs.py python|node` before the install steps so a missing
tool shows as one sentence, not as a page of pip or npm output.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys

MIN_PYTHON = (3, 11)
MIN_NODE_MAJOR = 18


def check_python() -> str | None:
    if sys.version_info < MIN_PYTHON:
        found = ".".join(map(str, sys.version_info[:3]))
        return f"Python {found} is too old: this project needs Python 3.11 or newer."
    if importlib.util.find_spec("venv") is None or importlib.util.find_spec("ensurepip") is None:
        return "Python's venv module is missing: install python3-venv (Debian) and retry."
    return None


def check_node() -> str | None:
    """Node.js and npm, as installing Azurite needs them."""
    problem = check_node_runtime()
    if problem is None and shutil.which("npm") is None:
        return "npm is not installed: Azurite is installed with npm (apt-get install npm)."
    return problem


def check_node_runtime() -> str | None:
    """Node.js alone, as running Azurite needs it."""
    node = shutil.which("node")
    if node is None:
        return (
            "node is not installed: Azurite needs Node.js 18 or newer (apt-get install nodejs npm)."
        )
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    text = version.stdout.strip().lstrip("v")
    try:
        major = int(text.split(".")[0])
    except ValueError:
        return (
            f"could not read the Node.js version from {text!r}: check that `node --version` works."
        )
    if major < MIN_NODE_MAJOR:
        return f"Node.js {text} is too old: Azurite 3.35.0 needs Node.js 18 or newer."
    return None


def main(argv: list[str]) -> int:
    checks = {"python": check_python, "node": check_node}
    wanted = argv[1:] or list(checks)
    for name in wanted:
        if name not in checks:
            print(
                f"check_prereqs: unknown check {name!r}; use one of {sorted(checks)}",
                file=sys.stderr,
            )
            return 2
        problem = checks[name]()
        if problem is not None:
            print(f"prerequisite missing: {problem}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
