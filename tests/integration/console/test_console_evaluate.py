"""`hosting evaluate` and `hosting promote` as a CI job runs them: exit codes, --json, reports."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from simulator.process import RunningSimulator
from tests.integration.conftest import ServicesFactory
from tests.integration.console.test_console import Hosting

CANDIDATE = "gpt-4o-2024-08-06.ft-console01"


def _set(path: Path, count: int = 6) -> Path:
    rows = [
        {"prompt": f"Name colour number {i}.", "completion": f"colour {i}"} for i in range(count)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_exit_codes_json_report_and_promotion_gate(
    tmp_path: Path,
    app_settings: dict[str, str],
    make_services: ServicesFactory,
    sim: RunningSimulator,
) -> None:
    values = {**app_settings, "EVALUATIONS_CONTAINER": f"evals-{uuid.uuid4().hex[:8]}"}
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": values}), encoding="utf-8")
    hosting = Hosting(path)
    eval_set = _set(tmp_path / "eval.jsonl")
    report = tmp_path / "report.html"

    tied = hosting(
        "evaluate", CANDIDATE, "--against", "default", "--set", str(eval_set),
        "--report", str(report), "--max-tokens", "40", "--json", timeout=120,
    )  # fmt: skip
    assert tied.returncode == 5, tied.stderr  # lost or tied: the gate fails
    view = json.loads(tied.stdout)
    assert view["run_id"].startswith("ev-") and view["verdict"] == "tie"
    assert view["exit_code"] == 5 and view["candidate"]["unscored"] == 0
    # gpt-4o has no Developer tier: the candidate ran on the current model's type.
    assert view["candidate"]["sku"] == "Standard" and view["candidate"]["ephemeral"]
    page = report.read_text(encoding="utf-8")
    assert "Verdict on token_f1" in page and "Worst examples of the candidate" in page

    text = hosting("evaluate", CANDIDATE, "--against", "default", "--set", str(eval_set),
                   "--max-tokens", "40")  # fmt: skip
    assert text.returncode == 5 and "a tie: the difference is within noise" in text.stdout
    assert f"resuming evaluation {view['run_id']}" in text.stderr

    refused = hosting("promote", "default", CANDIDATE)
    assert refused.returncode == 3
    assert "promotion refused" in refused.stderr and "tied with (within noise)" in refused.stderr

    forced = hosting("promote", "default", CANDIDATE, "--force", "--json")
    assert forced.returncode == 0, forced.stderr
    assert "WARNING: --force" in forced.stderr
    decision = json.loads(forced.stdout)
    assert decision["forced"] and decision["evaluation_id"] == view["run_id"]
    status = json.loads(hosting("status", "--json").stdout)
    assert status["promotions"][0]["promoted"] == CANDIDATE

    rolled = hosting("promote", "--rollback", "default")
    assert rolled.returncode == 0 and "rollback" in rolled.stdout

    # Could not run: every create fails, so no verdict (exit 1, not the gate's 5).
    make_services()  # the settings' containers exist
    sim.admin.fail_next_provisionings(50)
    broken = hosting(
        "evaluate", "gpt-4.1-mini-2025-04-14.ft-broken", "--against", "default",
        "--set", str(eval_set), "--json", timeout=120,
    )  # fmt: skip
    assert broken.returncode == 1, broken.stderr
    assert json.loads(broken.stdout)["status"] == "failed"
    assert "could not run" in broken.stderr

    unknown = hosting("evaluate", CANDIDATE, "--against", "nope", "--set", str(eval_set))
    assert unknown.returncode == 2 and "not a hosted model" in unknown.stderr
