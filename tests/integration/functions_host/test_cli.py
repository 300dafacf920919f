"""The command line (`python -m scripts.functions_host`) in subprocesses: exit codes, signals."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.integration.functions_host.support import REPO_ROOT, SAMPLE_APP
from tests.integration.processes import left_running, tagged_environment


def _cli(
    args: list[str], environ: dict[str, str], env: dict[str, str] | None = None, **popen: Any
) -> subprocess.Popen[str]:
    env = {**(env or os.environ), **environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "scripts.functions_host", "--app", SAMPLE_APP,
         "--settings-file", "/nonexistent/local.settings.json", *args],
        cwd=REPO_ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        **popen,
    )  # fmt: skip


def test_cli_port_busy_exits_2_with_one_line(environ: dict[str, str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with _cli(["--port", str(port)], environ) as process:
            _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    assert stderr.strip().splitlines() == [
        f"functions_host: cannot listen on 127.0.0.1:{port}: Address already in use "
        "(is another host running? Stop it, or pick another port: "
        "`make dev DEV_PORT=7072`, or --port 7072 here)"
    ]


def test_cli_port_busy_fails_before_starting_the_local_azure(environ: dict[str, str]) -> None:
    tag, tagged = tagged_environment()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with _cli(["--port", str(port), "--local-azure"], environ, env=tagged) as process:
            _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    assert stderr.strip().splitlines() == [
        f"functions_host: cannot listen on 127.0.0.1:{port}: Address already in use "
        "(is another host running? Stop it, or pick another port: "
        "`make dev DEV_PORT=7072`, or --port 7072 here)"
    ], "nothing else may start (and print) before the port is known to be free"
    assert not left_running(tag), "a local Azure process started here was left running"


def test_cli_sigterm_while_the_local_azure_starts_leaves_no_process(
    environ: dict[str, str],
) -> None:
    tag, tagged = tagged_environment()
    with _cli(["--port", "0", "--local-azure"], environ, env=tagged) as process:
        try:
            assert process.stderr is not None
            # Azurite is up and the simulator is starting: the window where a plain SIGTERM
            # used to kill the runner and orphan Azurite.
            for line in process.stderr:
                if "Azurite blob" in line:
                    break
            process.send_signal(signal.SIGTERM)
            _, rest = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 130
    assert "functions_host: interrupted before the host started; stopped" in rest
    assert "Traceback" not in rest
    assert not left_running(tag), "a local Azure process started here was left running"


def test_cli_import_failure_exits_2_with_one_line(environ: dict[str, str]) -> None:
    process = subprocess.run(
        [sys.executable, "-m", "scripts.functions_host", "--app", "tests.integration.nope:app"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert process.returncode == 2
    assert process.stderr.strip().splitlines() == [
        "functions_host: cannot import the function app module 'tests.integration.nope': "
        "ModuleNotFoundError: No module named 'tests.integration.nope'"
    ]


def test_cli_serves_until_sigint_then_stops_cleanly(environ: dict[str, str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with _cli(["--port", str(port), "--functions", "get_item"], environ) as process:
        try:
            body = _get_when_up(f"http://127.0.0.1:{port}/api/items/5", process)
            assert '"item_id": "5"' in body
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=15)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, stderr
    assert "Executed 'Functions.get_item' (Succeeded" in stderr
    assert "Host stopped" in stderr
    assert "Traceback" not in stderr


def _get_when_up(url: str, process: subprocess.Popen[str]) -> str:
    import urllib.error
    import urllib.request

    # Up is a condition, not a time: starting Azurite, the simulator and the host takes
    # seconds on a quiet machine and much longer beside another test run.
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return str(response.read().decode())
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            # The port is bound before the local Azure starts: a request may wait, then time out.
            if process.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_cli_settings_out_lets_the_operators_command_reach_the_local_azure(
    environ: dict[str, str], tmp_path: Path
) -> None:
    """`make dev` then `hosting --settings .local/dev.settings.json status`, as the README says."""
    settings_out = tmp_path / ".local" / "dev.settings.json"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = ["--port", str(port), "--functions", "get_item", "--local-azure"]
    with _cli([*args, "--settings-out", str(settings_out)], environ) as process:
        try:
            _get_when_up(f"http://127.0.0.1:{port}/api/items/1", process)
            assert stat.S_IMODE(settings_out.stat().st_mode) == 0o600, "it holds secrets"
            values = json.loads(settings_out.read_text(encoding="utf-8"))["Values"]
            assert values["AZURE_AUTH_MODE"] == "local"
            assert values["ARM_ENDPOINT"].startswith("https://127.0.0.1:")
            status = subprocess.run(
                [sys.executable, "-m", "shared.console", "--settings", str(settings_out),
                 "status", "--json"],
                cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
                env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            )  # fmt: skip
            assert status.returncode == 0, status.stderr
            models = json.loads(status.stdout)["models"]
            # make dev serves the demo's hosted models (scripts/dev.hosting.toml).
            assert [(m["model"], m["azure_state"]) for m in models] == [
                ("contracts", None),
                ("rfps", None),
            ]
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, stderr
    assert not settings_out.exists(), "the local Azure is gone, so are its settings"
    assert (
        "Hosted models (scripts/dev.hosting.toml, as in make demo): "
        "contracts (deployment ft-contracts), rfps (deployment ft-rfps)"
    ) in stderr
    assert "default -> contracts" in stderr
