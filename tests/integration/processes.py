"""Which local-Azure processes a test started and left running, read from /proc.

Another test run on the same machine starts its own Azurite and simulator at any moment, so a
test never counts every such process: it starts its subprocess with a tag in the environment
(`tagged_environment`), which every process it starts inherits, and asks only about processes
carrying that tag. Stopping is asynchronous (a signal, then the child's exit), so the check
waits for the condition instead of looking once.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

TAG_VARIABLE = "LOCAL_AZURE_TEST_TAG"


def tagged_environment() -> tuple[str, dict[str, str]]:
    """A fresh tag and the environment that carries it (the current one plus the tag)."""
    tag = uuid.uuid4().hex
    return tag, {**os.environ, TAG_VARIABLE: tag}


def local_azure_pids(tag: str) -> set[int]:
    """Azurite and simulator processes started under `tag`."""
    marker = f"{TAG_VARIABLE}={tag}".encode()
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            if not _is_local_azure(command):
                continue
            environment = (entry / "environ").read_bytes()
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if marker in environment.split(b"\0"):
            pids.add(int(entry.name))
    return pids


def _is_local_azure(command: bytes) -> bool:
    azurite = b"azurite" in command and b"--blobPort" in command
    simulator = b"-m\0simulator" in command
    return azurite or simulator


def left_running(tag: str, within: float = 15.0) -> set[int]:
    """The tagged processes still running once `within` seconds have passed (empty as soon as
    none is left)."""
    deadline = time.monotonic() + within
    while True:
        pids = local_azure_pids(tag)
        if not pids or time.monotonic() >= deadline:
            return pids
        time.sleep(0.1)
