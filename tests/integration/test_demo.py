"""`make demo` as a user runs it: a process that must stop what it started when interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from scripts.demo import verdict
from tests.integration.processes import azurite_pids

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_sigterm_mid_demo_stops_the_local_azure_and_says_so() -> None:
    before = azurite_pids()
    process = subprocess.Popen(
        [sys.executable, "-m", "scripts.demo"],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if "Creating (management API)" in line:
                break  # mid-provisioning, with both jobs in flight
        else:
            raise AssertionError("the demo never reached provisioning")
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130
    assert stderr.strip().splitlines()[-1] == "demo interrupted; the local Azure is stopped"
    assert not azurite_pids() - before, "an Azurite started here was left running"


def outcome(**changes: object) -> dict[str, object]:
    observed: dict[str, object] = {
        "blob_status": "succeeded",
        "http_status": "succeeded",
        "deleted": True,
        "bill": {"deployments": [{"name": "ft-on-demand"}]},
    }
    return {**observed, **changes}


def test_the_closing_line_states_only_what_was_observed() -> None:
    assert verdict(outcome()) == (
        True,
        "demo finished: uploaded document succeeded, HTTP submission succeeded, "
        "1 provisioning(s), deployment deleted",
    )
    ok, line = verdict(outcome(bill={"deployments": [{}, {}]}, deleted=False))
    assert not ok
    assert line == (
        "demo failed: uploaded document succeeded, HTTP submission succeeded, "
        "2 provisioning(s), deployment NOT deleted"
    )
    assert verdict(outcome(http_status="failed"))[0] is False
