"""Debian's Chromium for the portal's browser tests: where it is, and installing it when missing.

`make test` runs `python -m scripts.chromium` first. It installs the Debian package
`chromium` with apt-get when no Chromium is found and this runs as root (as CI does), and
otherwise says in one line why it cannot, without failing: the browser tests then skip with
that reason, except under CI (`CI=true`), where they fail. Playwright drives this system
browser through its executable path; `playwright install` (a browser download) is never used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

# Overrides the search, e.g. for a Chromium installed elsewhere.
EXECUTABLE_SETTING = "PORTAL_CHROMIUM"
PACKAGE = "chromium"
# Debian's /usr/bin/chromium is a wrapper script; the binary is the one Playwright launches.
CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser")


def find_chromium() -> Path | None:
    """The Chromium executable to drive, or None when there is none."""
    configured = os.environ.get(EXECUTABLE_SETTING, "").strip()
    if configured:
        path = Path(configured)
        return path if path.is_file() and os.access(path, os.X_OK) else None
    for candidate in CANDIDATES:
        found = shutil.which(candidate) if "/" not in candidate else candidate
        if found and Path(found).is_file() and os.access(found, os.X_OK):
            return Path(found)
    return None


def _apt_get(*args: str) -> bool:
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    completed = subprocess.run(
        ["apt-get", *args],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        last = (completed.stderr.strip().splitlines() or ["no message"])[-1]
        print(f"chromium: apt-get {' '.join(args)} failed: {last}", file=sys.stderr)
    return completed.returncode == 0


def ensure_chromium() -> str:
    """Install Chromium if it is missing and can be installed; one line saying the outcome."""
    found = find_chromium()
    if found is not None:
        return f"chromium: {found}"
    if os.environ.get(EXECUTABLE_SETTING, "").strip():
        return (
            f"chromium: {EXECUTABLE_SETTING}={os.environ[EXECUTABLE_SETTING]} is not an "
            "executable; the portal's browser tests will skip"
        )
    if shutil.which("apt-get") is None:
        return "chromium: not installed and no apt-get here; the portal's browser tests will skip"
    if os.geteuid() != 0:
        return (
            "chromium: not installed, and installing it needs root (sudo apt-get install "
            "chromium); the portal's browser tests will skip"
        )
    print("chromium: installing the Debian package 'chromium' (once)", file=sys.stderr)
    # The package lists may be missing on a fresh machine: refresh them only if needed.
    installed = _apt_get("install", "-y", "--no-install-recommends", PACKAGE) or (
        _apt_get("update") and _apt_get("install", "-y", "--no-install-recommends", PACKAGE)
    )
    found = find_chromium()
    if installed and found is not None:
        return f"chromium: installed {found}"
    return "chromium: could not be installed (see above); the portal's browser tests will skip"


def main() -> int:
    # Never fails the build: the tests decide (skip locally, fail under CI).
    print(ensure_chromium())
    return 0


if __name__ == "__main__":
    sys.exit(main())
