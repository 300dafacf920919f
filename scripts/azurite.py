"""Starts and stops the repo-local Azurite (blob and queue) on free loopback ports.

Azurite is installed by `make install` into `.tools/azurite` (pinned 3.35.0, the newest that
runs on Node 20). Ports are chosen by Azurite itself (`--blobPort 0`) and read back from its
start-up lines, so parallel runs never collide on a port.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from scripts.check_prereqs import check_node_runtime

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
AZURITE_BIN = REPO_ROOT / ".tools" / "azurite" / "node_modules" / ".bin" / "azurite"
# Runs AZURITE_BIN's code with the garbage collection interval of our choosing (see the file).
AZURITE_LAUNCHER = REPO_ROOT / ".tools" / "azurite" / "launch.js"

# Azurite's fixed development account; public and documented, not a secret.
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_LISTENING = re.compile(
    r"Azurite (Blob|Queue|Table) service (?:successfully listens on|is successfully listening at) (http://\S+)"
)


class AzuriteError(RuntimeError):
    """Azurite could not be started; the message says why in one line."""


@dataclass
class RunningAzurite:
    """A started Azurite process and the endpoints it listens on."""

    process: subprocess.Popen[str]
    blob_url: str
    queue_url: str
    log_path: Path
    _stopped: bool = field(default=False, repr=False)

    @property
    def connection_string(self) -> str:
        return (
            "DefaultEndpointsProtocol=http;"
            f"AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"BlobEndpoint={self.blob_url}/{DEV_ACCOUNT};"
            f"QueueEndpoint={self.queue_url}/{DEV_ACCOUNT};"
        )

    def stop(self, timeout: float = 10.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        _terminate(self.process, timeout)

    def __enter__(self) -> RunningAzurite:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _terminate(process: subprocess.Popen[str], timeout: float) -> None:
    if process.poll() is not None:
        return
    # Azurite runs under its own process group so the npm shim and node both get the signal.
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)


def start_azurite(
    work_dir: Path | None = None,
    startup_timeout: float = 30.0,
    *,
    gc_interval_seconds: float | None = None,
    debug_log: Path | None = None,
) -> RunningAzurite:
    """Start Azurite in memory on free loopback ports and wait until both services listen.

    `gc_interval_seconds`: how often Azurite's blob and queue garbage collection runs (None:
    Azurite's own ten minutes and one minute). A pass stops Azurite answering while it walks
    the store, for over a minute once a test session has written tens of thousands of blobs:
    test sessions, short-lived and in memory, space it out. `debug_log`: Azurite's debug log
    (every request and GC pass, in detail) goes there.
    """
    if not AZURITE_BIN.exists():
        raise AzuriteError(
            f"Azurite is not installed at {AZURITE_BIN}: "
            "run `make install` (needs Node.js and npm)."
        )
    # Checked here too, not only at install: PATH may have changed since.
    node_problem = check_node_runtime()
    if node_problem is not None:
        raise AzuriteError(node_problem)
    work_dir = work_dir or Path(tempfile.mkdtemp(prefix="azurite-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    log_path = work_dir / "azurite.log"
    environment = dict(os.environ)
    environment.pop("AZURITE_GC_INTERVAL_MS", None)
    if gc_interval_seconds is not None:
        environment["AZURITE_GC_INTERVAL_MS"] = str(max(1, round(gc_interval_seconds * 1000)))
    command = [
        "node",
        str(AZURITE_LAUNCHER),
        "--blobHost", "127.0.0.1", "--blobPort", "0",
        "--queueHost", "127.0.0.1", "--queuePort", "0",
        "--tableHost", "127.0.0.1", "--tablePort", "0",
        "--inMemoryPersistence",
        "--skipApiVersionCheck",
        "--disableProductStyleUrl",
        "--disableTelemetry",
        "--loose",
    ]  # fmt: skip
    if debug_log is not None:
        command += ["--debug", str(debug_log)]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=work_dir,
        env=environment,
        start_new_session=True,
    )
    endpoints: dict[str, str] = {}
    ready = threading.Event()
    log_file = log_path.open("w", encoding="utf-8")

    def pump() -> None:
        # Keep draining stdout for the life of the process so Azurite never blocks on a full pipe.
        assert process.stdout is not None
        for line in process.stdout:
            log_file.write(line)
            log_file.flush()
            match = _LISTENING.search(line)
            if match:
                endpoints[match.group(1).lower()] = match.group(2).rstrip("/")
                if {"blob", "queue"} <= endpoints.keys():
                    ready.set()
        log_file.close()
        process.stdout.close()
        ready.set()

    # Until the caller holds the RunningAzurite, this function owns the process: an error
    # or an interrupt (Ctrl-C, SIGTERM) on the way out must not orphan it.
    try:
        threading.Thread(target=pump, name="azurite-log", daemon=True).start()
        deadline = time.monotonic() + startup_timeout
        while not ready.wait(timeout=0.1):
            if time.monotonic() > deadline:
                raise AzuriteError(
                    f"Azurite did not start within {startup_timeout:.0f} s; see {log_path}"
                )
        if not {"blob", "queue"} <= endpoints.keys():
            tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
            raise AzuriteError(f"Azurite exited during start-up: {' | '.join(tail)}")
        logger.info("Azurite blob %s queue %s", endpoints["blob"], endpoints["queue"])
        return RunningAzurite(process, endpoints["blob"], endpoints["queue"], log_path)
    except BaseException:
        _terminate(process, 5)
        raise
