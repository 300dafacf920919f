"""`make demo-finetune`: from training data to a promoted model serving a document, locally.

On the local Azure (Azurite and the simulator), as an operator runs it with the `hosting`
command: the hosted model `default` deploys the base model; a small support-ticket dataset is
checked (`hosting data check`), a model is fine-tuned on it (`hosting finetune start`),
evaluated against the base on held-out tickets (`hosting evaluate`, a CI gate: exit 0 only if
the candidate wins beyond noise), promoted (`hosting promote`; it takes effect at the next
deployment), and a document is then processed the way the blob trigger does, on a deployment
created with the promoted model. The simulator's fine-tuned models answer what they learnt
(see simulator/README.md), so the evaluation finds a real difference. Exits 0 when every step
did what it should, 1 otherwise, saying which step failed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scripts.interrupts import sigterm_as_keyboard_interrupt
from scripts.local_azure import LocalAzure, local_azure
from scripts.resume_player import finish_parked

TIME_SCALE = "600"  # simulated seconds per real second: a fine-tuning job takes seconds
BASE = "gpt-4.1-mini-2025-04-14"
REPO_ROOT = Path(__file__).resolve().parent.parent
CATEGORIES = {
    "billing": [
        "I was charged twice for my {x} subscription this month",
        "Please refund the duplicate payment on my {x} invoice",
        "My card was billed the wrong amount for {x}",
    ],
    "outage": [
        "The {x} service is down and returns errors for everyone",
        "Our {x} dashboard will not load since this morning",
        "Cannot reach {x} at all, the site times out",
    ],
    "access": [
        "I forgot my password for {x} and cannot log in",
        "Please reset the two factor device on my {x} account",
        "My {x} account is locked after too many attempts",
    ],
}
PRODUCTS = ["Contoso Mail", "Fabrikam CRM", "Northwind Storage", "Tailspin Chat", "Litware Docs"]
HELD_OUT_PRODUCT = "Woodgrove Analytics"
SYSTEM = "Classify the support ticket as billing, outage or access. Answer with the category."
DOCUMENT = "Ticket 4711: The Woodgrove Analytics service is down and returns errors for everyone."


class StepFailed(Exception):
    pass


def _example(text: str, label: str) -> str:
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": text},
        {"role": "assistant", "content": label},
    ]
    return json.dumps({"messages": messages})


def write_datasets(folder: Path) -> tuple[Path, Path, Path]:
    """Training and validation tickets about five products; held-out ones about a sixth."""
    rows = [
        (template.format(x=product), label)
        for label, templates in CATEGORIES.items()
        for template in templates
        for product in PRODUCTS
    ]
    train = [r for i, r in enumerate(rows) if i % 4 != 0]
    valid = [r for i, r in enumerate(rows) if i % 4 == 0]
    held_out = [
        (template.format(x=HELD_OUT_PRODUCT), label)
        for label, templates in CATEGORIES.items()
        for template in templates
    ]
    paths = (folder / "train.jsonl", folder / "valid.jsonl", folder / "eval.jsonl")
    for path, chosen in zip(paths, (train, valid, held_out), strict=True):
        path.write_text("".join(_example(t, lab) + "\n" for t, lab in chosen), encoding="utf-8")
    return paths


class Hosting:
    """`hosting --settings FILE ...` in a subprocess, as the operator runs it."""

    def __init__(self, settings: Path) -> None:
        self._settings = settings

    def __call__(self, step: str, *args: str, expect: int = 0, show: bool = True) -> str:
        print(f"\n$ hosting {' '.join(args)}", flush=True)
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "COLUMNS": "120"}
        done = subprocess.run(
            [sys.executable, "-m", "shared.console", "--settings", str(self._settings), *args],
            capture_output=True, text=True, timeout=600, check=False, env=env,
            cwd=self._settings.parent,
        )  # fmt: skip
        if show:
            print(done.stdout.rstrip(), flush=True)
        if done.returncode != expect:
            if not show:
                print(done.stdout.rstrip(), flush=True)
            print(done.stderr.rstrip(), file=sys.stderr, flush=True)
            raise StepFailed(f"{step}: exit {done.returncode}, expected {expect}")
        return done.stdout


def run_demo(azure: LocalAzure, work: Path) -> str:
    settings = azure.app_settings(
        FINE_TUNED_MODEL=BASE,
        DEPLOYMENT_NAME="tickets",
        DEPLOYMENT_SKU="GlobalStandard",
        PROCESSING_PROFILES=json.dumps(
            {"default": {"system_prompt": SYSTEM, "user_prompt_template": "{document}"}}
        ),
    )
    settings_file = work / "local.settings.json"
    settings_file.write_text(json.dumps({"IsEncrypted": False, "Values": settings}), "utf-8")
    hosting = Hosting(settings_file)
    train, valid, held_out = write_datasets(work)

    hosting("dataset check", "data", "check", str(train), str(valid), "--base", BASE)
    tuned: dict[str, Any] = json.loads(
        hosting(
            "fine-tuning", "finetune", "start", str(train), str(valid), "--base", BASE,
            "--suffix", "tickets", "--poll", "0.2", "--out-dir", str(work / "finetune"),
            "--json", show=False,
        )
    )  # fmt: skip
    candidate = str(tuned["job"]["fine_tuned_model"])
    print(f"fine-tuned model: {candidate}", flush=True)

    report = work / "evaluation.html"
    evaluation = json.loads(
        hosting(
            "evaluation", "evaluate", candidate, "--against", "default", "--set",
            str(held_out), "--report", str(report), "--max-tokens", "100", "--json", show=False,
        )
    )  # fmt: skip
    print(json.dumps({k: evaluation[k] for k in ("run_id", "verdict", "comparisons")}, indent=2))
    if evaluation["verdict"] != "candidate_better":
        raise StepFailed(f"evaluation: the fine-tuned model did not win ({evaluation['verdict']})")
    print(f"side-by-side report: {report}")

    hosting("promotion", "promote", "default", candidate)
    hosting("status", "status")
    return serve_document(settings, candidate)


def serve_document(settings: dict[str, str], candidate: str) -> str:
    """Documents arrive the way the blob trigger delivers them. The deployment still up from
    the evaluation keeps serving the model it was created with (a promotion never swaps a model
    under running work); once the reaper has deleted it for idleness, the next document's
    deployment is created with the promoted model."""
    from shared.composition import build_services  # noqa: PLC0415
    from shared.settings import AppSettings  # noqa: PLC0415

    services = build_services(AppSettings.model_validate(settings))
    deployment_name = services.model().spec.name

    def process(name: str) -> str | None:
        container = services.settings.input_container
        data = DOCUMENT.encode()
        print(f"\nuploading {name} to {container}", flush=True)
        client = services.blob_service.get_container_client(container)
        client.upload_blob(name, data, overwrite=True)
        outcome = services.engine.process_blob(container, name, data)
        status = outcome.status
        if outcome.parked:
            status = finish_parked(services, outcome.job_id, timeout=120)
        serves = services.deployments.get(deployment_name).model_name
        print(f"job {outcome.job_id}: {status}; deployment {deployment_name} serves {serves}")
        if status != "succeeded":
            raise StepFailed(f"serving: job {name} {status}")
        return serves

    process("tickets/ticket-4711.txt")
    print("\nthe reaper runs (its timer in Azure), deleting what is idle:", flush=True)
    deadline = time.monotonic() + 60
    while services.deployments.get(deployment_name).exists:
        for report in services.reaper.run("demo-reaper"):
            print(f"  {report}", flush=True)
        if time.monotonic() > deadline:
            raise StepFailed(f"teardown: {deployment_name} was not deleted within 60 s")
        time.sleep(0.2)
    served = process("tickets/ticket-4712.txt")
    if served != candidate:
        raise StepFailed(f"serving: the new deployment serves {served}, not {candidate}")
    return f"{candidate} won its evaluation, was promoted and served the next ticket"


def main() -> int:
    sigterm_as_keyboard_interrupt()
    started = time.monotonic()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="demo-finetune-") as folder,
            local_azure(simulator_args=("--time-scale", TIME_SCALE)) as azure,
        ):
            verdict = run_demo(azure, Path(folder))
    except KeyboardInterrupt:
        print("demo interrupted; the local Azure is stopped", file=sys.stderr)
        return 130
    except StepFailed as failed:
        print(f"demo failed: {failed}", file=sys.stderr)
        return 1
    print(f"\ndemo finished in {time.monotonic() - started:.0f} s: {verdict}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
