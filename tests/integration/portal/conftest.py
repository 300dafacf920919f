"""The portal in a real browser: the app under the local Functions host, Debian's Chromium.

One host process (`python -m scripts.functions_host`, as `make dev` runs it) serves the whole
module, against the session's Azurite and simulator, with a function key set so the page must
ask for it. Its hosted-models file declares three models: `contracts` (a document to
process), `rfps` (cold starts, watched while they happen) and `reviews` (a business-hours
window open now, and an operator hold). Screenshots go to `.artifacts/portal/` (or
`PORTAL_ARTIFACTS`), gitignored.

Without Chromium or Playwright every test here skips with one line saying why; under CI
(`CI=true`, set by `.ci/run`) they fail instead, so a CI machine cannot silently skip them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx2
import pytest

from scripts.azurite import RunningAzurite
from scripts.chromium import find_chromium
from scripts.local_azure import LOCAL_MODEL
from shared.composition import AppServices, build_services
from shared.settings import AppSettings
from simulator.process import RunningSimulator
from tests.conftest import SIMULATOR_TEST_CONFIG
from tests.integration.conftest import local_app_settings

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Playwright

REPO_ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = Path(os.environ.get("PORTAL_ARTIFACTS", REPO_ROOT / ".artifacts" / "portal"))
HOST_START_SECONDS = 60.0
HOST_LOG_LINES = 120


def _under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def browser_unavailable(reason: str) -> None:
    """Skip the whole module with one line locally; fail under CI, where it must run."""
    if _under_ci():
        pytest.fail(f"the portal's browser tests cannot run under CI: {reason}", pytrace=False)
    pytest.skip(f"portal browser tests skipped: {reason}", allow_module_level=True)


def require_browser() -> Path:
    """Chromium's path, once Playwright and Chromium are known to be here (else see above)."""
    found = find_chromium()
    if found is None:
        browser_unavailable(
            "no Chromium found (make test installs Debian's 'chromium' as root; set "
            "PORTAL_CHROMIUM to another executable)"
        )
    if importlib.util.find_spec("playwright") is None:
        browser_unavailable("Playwright is not installed (make install installs it)")
    assert found is not None
    return found


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    return require_browser()


@pytest.fixture(scope="module")
def playwright_driver(chromium_path: Path) -> Iterator[Playwright]:
    from playwright.sync_api import expect, sync_playwright

    # The first API call builds the app's services in the host: slower than a page's 5 s
    # default on a busy machine. Every wait is on a condition; this only bounds it.
    expect.set_options(timeout=20_000)
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright, chromium_path: Path) -> Iterator[Browser]:
    try:
        launched = playwright_driver.chromium.launch(
            executable_path=str(chromium_path), headless=True
        )
    except Exception as error:
        browser_unavailable(f"{chromium_path} did not start: {str(error).splitlines()[0]}")
        raise
    yield launched
    launched.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def hosting_file(folder: Path, suffix: str, now: datetime) -> Path:
    """Three models; `reviews` has a UTC window open from an hour ago to two hours on."""
    opens = (now - timedelta(hours=1)).strftime("%H:%M")
    closes = (now + timedelta(hours=2)).strftime("%H:%M")
    lines = ['default_model = "contracts"', ""]
    for name in ("contracts", "rfps", "reviews"):
        lines += [
            f"[models.{name}]",
            f'deployment = "ft-portal-{name}-{suffix}"',
            f'fine_tuned_model = "{LOCAL_MODEL}"',
            "capacity = 10",
            "idle_grace_seconds = 0",
            "",
        ]
    lines += [
        "[[models.reviews.windows]]",
        'name = "office"',
        'time_zone = "UTC"',
        'weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]',
        f'opens = "{opens}"',
        f'closes = "{closes}"',
        "",
        "[profiles.contracts]",
        'model = "contracts"',
        'system_prompt = "You review contracts."',
        'user_prompt_template = "Contract {filename}:\\n{document}\\n\\n{questions}"',
        'questions = ["Who are the parties?"]',
        "",
        "[profiles.rfps]",
        'model = "rfps"',
        'system_prompt = "You read requests for proposals."',
        'user_prompt_template = "RFP {filename}:\\n{document}\\n\\n{questions}"',
        "",
        "[profiles.reviews]",
        'model = "reviews"',
        'system_prompt = "You review documents."',
        'user_prompt_template = "{document}\\n\\n{questions}"',
    ]
    path = folder / "hosting.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class PortalHost:
    base_url: str
    key: str
    settings: dict[str, str]
    services: AppServices
    log: Path

    @property
    def portal_url(self) -> str:
        return f"{self.base_url}/api/portal/"

    def get(self, route: str) -> httpx2.Response:
        return httpx2.get(
            f"{self.base_url}/api/{route}", headers={"x-functions-key": self.key}, timeout=30
        )

    def ops(self) -> dict[str, Any]:
        response = self.get("ops")
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    def model(self, name: str) -> dict[str, Any]:
        return next(m for m in self.ops()["models"] if m["model"] == name)

    def wait_for(self, condition: Any, what: str, timeout: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.2)


def _started_url(log: Path) -> str | None:
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        marker = "Host started on "
        if marker in line:
            return line.split(marker, 1)[1].split()[0]
    return None


@pytest.fixture(scope="module")
def portal_host(
    azurite: RunningAzurite,
    simulator: RunningSimulator,
    tmp_path_factory: pytest.TempPathFactory,
    artifacts: Path,
) -> Iterator[PortalHost]:
    """The function app under `python -m scripts.functions_host`, with a function key."""
    simulator.admin.reset()
    simulator.admin.clear_faults()
    simulator.admin.configure(**SIMULATOR_TEST_CONFIG)
    folder = tmp_path_factory.mktemp("portal")
    suffix = uuid.uuid4().hex[:8]
    key = f"portal-test-key-{uuid.uuid4().hex[:12]}"
    settings = local_app_settings(azurite, simulator)
    settings.pop("FINE_TUNED_MODEL")
    settings.pop("DEPLOYMENT_NAME")
    settings.update(
        {
            "HOSTING_CONFIG_FILE": str(hosting_file(folder, suffix, datetime.now(UTC))),
            "FUNCTIONS_LOCAL_KEY": key,
            "AzureWebJobsStorage": azurite.connection_string,
            # Every two seconds: soon enough for the tests that wait on a teardown or a
            # window's hold, and leaves the host's threads to the documents on a busy machine.
            "REAPER_SCHEDULE": "*/2 * * * * *",
            "SCHEDULE_RECONCILE_SCHEDULE": "*/2 * * * * *",
        }
    )
    log = artifacts / "functions_host.log"
    command = [
        sys.executable,
        "-m",
        "scripts.functions_host",
        "--port",
        "0",
        "--settings-file",
        str(folder / "no-local.settings.json"),
        "--blob-poll-seconds",
        "0.2",
        "--no-blob-receipts",
        "--shutdown-timeout",
        "3",
    ]
    environment = {**os.environ, **settings}
    with log.open("w", encoding="utf-8") as output:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    services: AppServices | None = None
    try:
        deadline = time.monotonic() + HOST_START_SECONDS
        base_url = _started_url(log)
        while base_url is None:
            if process.poll() is not None:
                raise AssertionError(
                    f"the functions host exited with {process.returncode}:\n{log.read_text()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"the functions host did not start:\n{log.read_text()}")
            time.sleep(0.1)
            base_url = _started_url(log)
        # The same storage and simulator as the host's app, for what a test sets up or reads.
        services = build_services(AppSettings.model_validate(settings))
        yield PortalHost(base_url, key, settings, services, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if services is not None:
            services.blob_service.close()
        simulator.admin.configure(**SIMULATOR_TEST_CONFIG)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test's report carries the end of the host's log: CI keeps no artefacts."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    log = ARTIFACTS / "functions_host.log"
    if report.failed and report.when == "call" and log.exists():
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-HOST_LOG_LINES:]
        report.sections.append(("functions host log (end)", "\n".join(tail)))


def shot(page: Any, artifacts: Path, name: str) -> Path:
    """A full-page screenshot kept as a test artefact."""
    path = artifacts / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def dump(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2), encoding="utf-8")
