"""Which local-Azure processes are running, read from /proc, for tests that must leave none."""

from __future__ import annotations

from pathlib import Path


def azurite_pids() -> set[int]:
    """Processes running Azurite's launcher (the project's, on free ports)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"azurite" in command and b"--blobPort" in command:
            pids.add(int(entry.name))
    return pids
