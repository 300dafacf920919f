"""Starts the whole local Azure (Azurite + simulator) and says which app settings point at it.

Used by the demo, the local Functions host and the test fixtures, so all three configure the app the
same way: the same settings names the app reads in Azure, with local endpoints and the
simulator's throwaway CA.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from scripts.azurite import AzuriteError, RunningAzurite, start_azurite
from simulator.process import RunningSimulator, start_simulator

# The fine-tuned model the local demo deploys; any name with ".ft-" counts as fine-tuned.
LOCAL_MODEL = "gpt-4.1-mini-2025-04-14.ft-local0001"


@dataclass
class LocalAzure:
    azurite: RunningAzurite
    simulator: RunningSimulator

    def app_settings(self, **overrides: str) -> dict[str, str]:
        """App settings (as environment variables) that point the app at the local Azure.

        The simulator runs faster than Azure (60x by default): the app's own timings are
        scaled by the same factor, so an idle grace of 5 simulated minutes is 5 real seconds,
        and the billing meter shows what the same work would cost in Azure, not hours of
        hosting for a few seconds of local work.
        """
        scale = float(self.simulator.admin.config()["time_scale"])

        def scaled(azure_seconds: float) -> str:
            return f"{azure_seconds / scale:g}"

        settings = {
            "AZURE_AUTH_MODE": "local",
            "AZURE_SUBSCRIPTION_ID": self.simulator.subscription_id,
            "AZURE_RESOURCE_GROUP": self.simulator.resource_group,
            "AOAI_ACCOUNT_NAME": self.simulator.account,
            "ARM_ENDPOINT": self.simulator.base_url,
            "AOAI_ENDPOINT": self.simulator.base_url,
            "AZURE_CA_BUNDLE": str(self.simulator.ca_path),
            "FINE_TUNED_MODEL": LOCAL_MODEL,
            "DocumentStorage": self.azurite.connection_string,
            "AzureWebJobsStorage": self.azurite.connection_string,
            # Trigger bindings read these through %SETTING% expressions, which the Functions
            # host resolves from app settings only: the app's defaults do not reach it.
            "INPUT_CONTAINER": "documents-in",
            "RESUME_QUEUE": "job-resumes",
            "BATCH_QUEUE": "batch-continuations",
            "REAPER_SCHEDULE": "*/5 * * * * *",
            "SCHEDULE_RECONCILE_SCHEDULE": "*/5 * * * * *",
            # Azure's timings (the settings' defaults) at the simulator's pace.
            "MANAGEMENT_POLL_SECONDS": scaled(15),
            "IDLE_GRACE_SECONDS": scaled(300),
            "EXPECTED_PROVISION_SECONDS": scaled(300),
            "PARK_MAX_SECONDS": scaled(300),
            "SWEEP_GRACE_SECONDS": scaled(60),
            "INTAKE_GRACE_SECONDS": scaled(600),
            "NOT_FOUND_RETRY_SECONDS": scaled(60),
            "BATCH_HOLD_SECONDS": scaled(600),
            # The simulator's rate-limit minute, so a batch paces to its windows.
            "RATE_LIMIT_MINUTE_SECONDS": scaled(60),
            # The savings report reads the app's seconds as the meter's simulated ones.
            "COST_TIME_SCALE": f"{scale:g}",
        }
        settings.update(overrides)
        return settings


@contextlib.contextmanager
def local_azure(
    work_dir: Path | None = None, simulator_args: Sequence[str] = ()
) -> Iterator[LocalAzure]:
    """Start Azurite and the simulator; stop both on exit, whatever happens.

    Without `work_dir` their logs and the simulator's CA go to a temporary folder that is
    removed once both have stopped.
    """
    with contextlib.ExitStack() as stack:
        if work_dir is None:
            temporary = tempfile.TemporaryDirectory(
                prefix="local-azure-", ignore_cleanup_errors=True
            )
            work_dir = Path(stack.enter_context(temporary))
        azurite = stack.enter_context(start_azurite(work_dir / "azurite"))
        sim = stack.enter_context(
            start_simulator(state_dir=work_dir / "simulator", extra_args=simulator_args)
        )
        yield LocalAzure(azurite, sim)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the local Azure until interrupted.")
    parser.add_argument("--settings-out", type=Path, help="write the app settings JSON here")
    parser.add_argument("simulator_args", nargs="*", help="extra `python -m simulator` flags")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with local_azure(simulator_args=args.simulator_args) as running:
            settings: Mapping[str, str] = running.app_settings()
            text = json.dumps({"IsEncrypted": False, "Values": settings}, indent=2)
            if args.settings_out:
                args.settings_out.write_text(text, encoding="utf-8")
            print(text, flush=True)
            print("local Azure running; Ctrl-C to stop", file=sys.stderr, flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                stop.wait()
    except (AzuriteError, RuntimeError) as error:
        print(f"local Azure failed to start: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
