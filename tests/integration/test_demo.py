"""`make demo` as a user runs it: a process that must stop what it started when interrupted."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from scripts.demo import verdict
from tests.integration.processes import left_running, tagged_environment

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_sigterm_mid_demo_stops_the_local_azure_and_says_so() -> None:
    tag, environment = tagged_environment()
    process = subprocess.Popen(
        [sys.executable, "-m", "scripts.demo"],
        cwd=REPO_ROOT,
        env={**environment, "PYTHONUNBUFFERED": "1"},
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
    assert not left_running(tag), "a local Azure process started here was left running"


def outcome(**changes: object) -> dict[str, object]:
    observed: dict[str, object] = {
        "jobs": {
            "uploaded MSA": ("succeeded", "contracts"),
            "uploaded NDA": ("succeeded", "contracts"),
            "submitted RFP": ("succeeded", "rfps"),
        },
        "deleted": True,
        "bill": {"deployments": [{"name": "ft-contracts"}, {"name": "ft-rfps"}]},
    }
    return {**observed, **changes}


def test_the_closing_line_states_only_what_was_observed() -> None:
    assert verdict(outcome()) == (
        True,
        "demo finished: uploaded MSA succeeded on model contracts, uploaded NDA succeeded on "
        "model contracts, submitted RFP succeeded on model rfps, 2 provisioning(s), both "
        "deployments deleted",
    )
    ok, line = verdict(outcome(bill={"deployments": [{}, {}, {}]}, deleted=False))
    assert not ok
    assert line.endswith("3 provisioning(s), a deployment was NOT deleted")
    assert line.startswith("demo failed: ")
    wrong_model = {
        "uploaded MSA": ("succeeded", "rfps"),
        "uploaded NDA": ("succeeded", "contracts"),
        "submitted RFP": ("succeeded", "rfps"),
    }
    assert verdict(outcome(jobs=wrong_model))[0] is False
    failed = {**wrong_model, "uploaded MSA": ("failed", "contracts")}
    assert verdict(outcome(jobs=failed))[0] is False
