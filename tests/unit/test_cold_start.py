"""Cold start: importing the function app (the host's indexing of a new instance) needs no
settings, opens no connection and loads none of the SDKs the app builds clients with."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Run in a fresh interpreter with no settings: every socket connection attempt is recorded
# (and refused) before the import, and the SDK packages loaded afterwards are listed.
_PROBE = """
import json, socket, sys
attempts = []
def refuse(self, address, *args, **kwargs):
    attempts.append(repr(address))
    raise OSError("no connection may be opened while importing the app")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
import function_app
functions = [f.get_function_name() for f in function_app.app.get_functions()]
sdks = ("openai", "azure.mgmt", "azure.storage", "azure.identity")
loaded = sorted(p for p in sdks if any(m == p or m.startswith(p + ".") for m in sys.modules))
print(json.dumps({"functions": functions, "attempts": attempts, "loaded": loaded}))
"""


def probe() -> dict[str, list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, list[str]] = json.loads(result.stdout)
    return report


def test_importing_the_app_opens_no_connection_and_loads_no_sdk() -> None:
    report = probe()
    assert len(report["functions"]) >= 4, report["functions"]
    assert report["attempts"] == [], "importing function_app tried to connect"
    assert report["loaded"] == [], f"importing function_app loaded {report['loaded']}"


def test_the_probe_sees_an_sdk_import_and_a_connection_attempt() -> None:
    # The checks above can fail: the same probe lists the SDKs the composition root imports
    # and a connection attempted after the app's import.
    reaching = (
        "import function_app\n"
        "import shared.composition\n"
        "try:\n"
        "    socket.create_connection(('127.0.0.1', 9), timeout=1)\n"
        "except OSError:\n"
        "    pass\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", _PROBE.replace("import function_app\n", reaching)],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {"openai", "azure.mgmt", "azure.storage", "azure.identity"} <= set(report["loaded"])
    assert report["attempts"] == ["('127.0.0.1', 9)"]
