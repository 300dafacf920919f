"""Azurite as the project starts it: its garbage collection at the interval asked for.

A GC pass over a test session's store stopped Azurite answering for over a minute, so the test
sessions space it out through `.tools/azurite/launch.js`; `make dev` and the demo keep
Azurite's own ten minutes. Read from Azurite's debug log, where each pass says how long it
sleeps before the next.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from scripts.azurite import start_azurite

SLEEP = re.compile(r"(Blob|Queue)GCManager:markSweepLoop\(\) Sleep for (\d+)")


def gc_sleeps(log: Path, timeout: float = 30.0) -> dict[str, int]:
    """Each service's GC sleep, once both passes at start-up have logged it."""
    deadline = time.monotonic() + timeout
    while True:
        text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
        found = {service: int(ms) for service, ms in SLEEP.findall(text)}
        if {"Blob", "Queue"} <= found.keys():
            return found
        assert time.monotonic() < deadline, f"no GC pass logged in {timeout:.0f} s:\n{text[-2000:]}"
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("interval", "expected"),
    [
        (2 * 3600.0, {"Blob": 7_200_000, "Queue": 7_200_000}),
        (None, {"Blob": 600_000, "Queue": 60_000}),
    ],
    ids=["asked-for", "azurite-default"],
)
def test_the_gc_interval_reaches_azurite(
    tmp_path: Path, interval: float | None, expected: dict[str, int]
) -> None:
    debug = tmp_path / "debug.log"
    with start_azurite(tmp_path / "azurite", gc_interval_seconds=interval, debug_log=debug):
        assert gc_sleeps(debug) == expected
