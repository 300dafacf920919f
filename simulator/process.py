"""Start and stop the simulator as a subprocess, for tests, the demo and the local Functions host.

`start_simulator` runs `python -m simulator` with a free port, waits for its one-line JSON
"ready" announcement on stdout, and returns a `RunningSimulator` holding everything a client
needs (base URL, CA bundle, key, ids) plus an admin client. If the process dies or stays silent,
it is killed and a RuntimeError carries the tail of its log; no process is left behind.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from simulator.admin import SimulatorAdmin

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOG_FILE_NAME = "simulator.log"
_LOG_TAIL_CHARS = 2000


@dataclass
class RunningSimulator:
    """A started simulator process and how to reach it."""

    process: subprocess.Popen[str]
    base_url: str
    ca_path: Path
    api_key: str
    subscription_id: str
    resource_group: str
    account: str
    location: str
    pid: int
    state_dir: Path
    log_path: Path
    admin: SimulatorAdmin
    stdout_reader: threading.Thread = field(repr=False)
    _stopped: bool = field(default=False, repr=False)

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait up to `timeout`, then kill; returns the exit status."""
        if not self._stopped:
            self._stopped = True
            _terminate(self.process, timeout, self.stdout_reader)
            self.admin.close()
        return self.process.returncode

    def __enter__(self) -> RunningSimulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _terminate(process: subprocess.Popen[str], timeout: float, reader: threading.Thread) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            logger.warning("simulator pid %s ignored SIGTERM; killing it", process.pid)
            process.kill()
            process.wait()
    # The reader sees EOF once the process is gone; closing the pipe under it could block.
    reader.join(timeout=2.0)
    if process.stdout is not None and not reader.is_alive():
        process.stdout.close()


def _pump_lines(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    # Keeps reading after the ready line so a chatty child can never block on a full pipe.
    try:
        for line in stream:
            lines.put(line)
    except (OSError, ValueError):
        pass  # the pipe was closed by stop()
    finally:
        lines.put(None)


def _log_tail(log_path: Path) -> str:
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return text[-_LOG_TAIL_CHARS:].strip() or "(log is empty)"


def start_simulator(
    *,
    state_dir: Path | None = None,
    port: int = 0,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    startup_timeout: float = 20.0,
) -> RunningSimulator:
    """Start `python -m simulator` and wait until it listens."""
    state_dir = Path(tempfile.mkdtemp(prefix="simulator-")) if state_dir is None else state_dir
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / LOG_FILE_NAME
    child_env = dict(os.environ)
    child_env.update(env or {})
    child_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PROJECT_ROOT), child_env.get("PYTHONPATH", "")) if p
    )
    child_env["PYTHONUNBUFFERED"] = "1"
    command = [
        sys.executable,
        "-m",
        "simulator",
        "--port",
        str(port),
        "--state-dir",
        str(state_dir),
        *extra_args,
    ]
    with log_path.open("a", encoding="utf-8") as log_file:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log_file,
            env=child_env,
            text=True,
            encoding="utf-8",
        )
    assert process.stdout is not None  # stdout=PIPE always gives a stream
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(
        target=_pump_lines, args=(process.stdout, lines), name="simulator-stdout", daemon=True
    )
    reader.start()
    try:
        ready = _wait_for_ready(process, lines, startup_timeout, log_path)
    except BaseException:
        _terminate(process, 5.0, reader)
        raise
    ca_path = Path(ready["ca_path"])
    running = RunningSimulator(
        process=process,
        base_url=ready["base_url"],
        ca_path=ca_path,
        api_key=ready["api_key"],
        subscription_id=ready["subscription_id"],
        resource_group=ready["resource_group"],
        account=ready["account"],
        location=ready.get("location", "eastus"),
        pid=int(ready["pid"]),
        state_dir=state_dir,
        log_path=log_path,
        admin=SimulatorAdmin(ready["base_url"], ca_path),
        stdout_reader=reader,
    )
    logger.info("simulator pid %s ready at %s", running.pid, running.base_url)
    return running


def _wait_for_ready(
    process: subprocess.Popen[str],
    lines: queue.Queue[str | None],
    startup_timeout: float,
    log_path: Path,
) -> dict[str, Any]:
    deadline = time.monotonic() + startup_timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeError(
                f"simulator did not report ready within {startup_timeout:g} s; "
                f"log tail:\n{_log_tail(log_path)}"
            )
        try:
            line = lines.get(timeout=min(remaining, 0.2))
        except queue.Empty:
            continue
        if line is None:
            process.wait(timeout=5.0)
            raise RuntimeError(
                f"simulator exited with status {process.returncode} before it was ready; "
                f"log tail:\n{_log_tail(log_path)}"
            )
        try:
            message = json.loads(line)
        except ValueError:
            logger.debug("simulator stdout: %s", line.rstrip())
            continue
        if isinstance(message, dict) and message.get("event") == "ready":
            return message
