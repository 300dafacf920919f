"""Business-hours windows end to end: the reconcile timer, the ledger in Azurite, the simulator.

The app's clock is passed in (`ShiftedClock`: the real time plus an offset the test moves),
so a window of an hour is crossed without waiting for it; only the simulator's provisioning
(half a second) runs in real time. Everything else is the real SDKs over HTTP.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from shared import composition
from shared.composition import AppServices, build_services
from shared.hosting.holds import KnownState
from shared.schedules.flows import ScheduleReconciler
from shared.settings import AppSettings
from simulator.process import RunningSimulator
from tests.integration.azure_state import deployment_gone
from tests.integration.drive import process_to_end
from tests.integration.test_function_app import handler

LOCAL_BASE = "gpt-4.1-mini-2025-04-14"
# The window opens this long after the test starts; its lead (10 min) has begun already.
OPENS_IN = timedelta(minutes=5)
LENGTH = timedelta(hours=1)
IDLE_GRACE = timedelta(minutes=2)


class ShiftedClock:
    """The app's clock: real time moved by `offset`, so the test can jump to the close."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def jump_to(self, moment: datetime) -> None:
        self.offset = moment - datetime.now(UTC)


@dataclass
class Scheduled:
    services: AppServices
    clock: ShiftedClock
    opens: datetime
    closes: datetime

    @property
    def hosted(self) -> Any:
        return self.services.hosted["contracts"]

    def hold_id(self) -> str:
        return f"window:office:{self.opens:%Y-%m-%dT%H:%M:%SZ}"


def write_catalog(path: Path, opens: datetime, *, batches: str = "") -> Path:
    """One model with a daily window in UTC opening at `opens` (to the second)."""
    suffix = uuid.uuid4().hex[:8]
    closes = opens + LENGTH
    path.write_text(
        f"""
[models.contracts]
deployment = "ft-contracts-{suffix}"
fine_tuned_model = "{LOCAL_BASE}.ft-contracts"
idle_grace_seconds = {IDLE_GRACE.total_seconds():g}

[[models.contracts.windows]]
name = "office"
time_zone = "UTC"
weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
opens = "{opens:%H:%M:%S}"
closes = "{closes:%H:%M:%S}"
lead_seconds = 600
{batches}
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def scheduled(
    app_settings: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Scheduled]:
    clock = ShiftedClock()
    opens = (clock() + OPENS_IN).replace(microsecond=0)
    catalog = write_catalog(tmp_path / "hosting.toml", opens)
    values = {k: v for k, v in app_settings.items() if k not in ("FINE_TUNED_MODEL",)}
    values["HOSTING_CONFIG_FILE"] = str(catalog)
    services = build_services(AppSettings.model_validate(values), clock=clock)
    # The function app's handlers use the composition root's services: these.
    monkeypatch.setattr(composition, "_services", services)
    yield Scheduled(services, clock, opens, opens + LENGTH)
    services.blob_service.close()


def tick(past_due: bool = False) -> None:
    """One firing of the reconcile timer, through the function app's handler."""
    handler("reconcile_schedules")(func.timer.TimerRequest(past_due=past_due))


def tick_until_serving(scheduled: Scheduled, ticks: int = 200) -> int:
    """Fire the timer (a tick every 50 ms) until the ledger says ready; the ticks it took."""
    for count in range(1, ticks + 1):
        tick()
        if scheduled.hosted.ledger.read().state is KnownState.READY:
            return count
        threading.Event().wait(0.05)
    raise AssertionError(f"not serving after {ticks} ticks: {scheduled.hosted.ledger.read()}")


def test_the_reconcile_timer_provisions_a_window_before_it_opens(
    scheduled: Scheduled, sim: RunningSimulator
) -> None:
    ticks = tick_until_serving(scheduled)
    assert scheduled.clock() < scheduled.opens, "serving before the window opens"
    deployment = scheduled.services.deployments.get(scheduled.hosted.spec.name)
    assert deployment.exists and deployment.provisioning_state == "Succeeded"
    record = scheduled.hosted.ledger.read()
    assert [(h.id, h.kind, h.expires) for h in record.holds] == [
        (scheduled.hold_id(), "window", scheduled.closes)
    ]
    # Many ticks, one create: every tick takes at most one step, under the ledger's lease.
    assert ticks > 1 and len(sim.admin.billing()["deployments"]) == 1
    assert record.provision_count == 1


def test_a_document_during_a_window_leaves_it_up_and_the_reaper_ends_it_after_the_grace(
    scheduled: Scheduled, sim: RunningSimulator
) -> None:
    services, name = scheduled.services, scheduled.hosted.spec.name
    tick_until_serving(scheduled)
    scheduled.clock.jump_to(scheduled.opens + timedelta(minutes=10))
    tick(past_due=True)
    services.blob_service.get_container_client(services.settings.input_container).upload_blob(
        "lease.txt", b"Lease between Contoso and Fabrikam."
    )
    outcome = process_to_end(services, "lease.txt", b"Lease between Contoso and Fabrikam.")
    assert outcome.status == "succeeded"
    # The job's hold is gone; the window's keeps the deployment past the idle grace.
    scheduled.clock.jump_to(scheduled.opens + timedelta(minutes=30))
    assert [h.kind for h in scheduled.hosted.ledger.read().live_holds(scheduled.clock())] == [
        "window"
    ]
    reaped = {r.deployment: r for r in services.reaper.run("reaper:test")}
    assert not reaped[name].deleted and "window:schedule:office" in reaped[name].reason
    assert services.deployments.get(name).exists

    # The first tick after the close ends the hold; the grace runs from the close.
    scheduled.clock.jump_to(scheduled.closes + timedelta(seconds=20))
    tick()
    record = scheduled.hosted.ledger.read()
    assert record.holds == () and record.last_hold_released == scheduled.closes
    scheduled.clock.jump_to(scheduled.closes + IDLE_GRACE - timedelta(seconds=10))
    within_grace = {r.deployment: r for r in services.reaper.run("reaper:test")}
    assert name not in within_grace or not within_grace[name].deleted
    assert services.deployments.get(name).exists
    scheduled.clock.jump_to(scheduled.closes + IDLE_GRACE + timedelta(seconds=1))
    assert {r.deployment: r for r in services.reaper.run("reaper:test")}[name].deleted
    assert deployment_gone(services, name)
    assert len(sim.admin.billing()["deployments"]) == 1, "one deployment for the whole window"


def run_tick(
    services: AppServices, owner: str, barrier: threading.Barrier, errors: list[BaseException]
) -> None:
    """One instance's tick, started with the others at the barrier; failures into `errors`."""
    try:
        barrier.wait()
        report = services.schedules.run(owner)
        errors.extend(RuntimeError(m.error) for m in report.failed if m.error)
    except BaseException as error:  # reported by the test's assertion
        errors.append(error)


def test_concurrent_ticks_from_several_instances_place_one_hold_and_create_once(
    scheduled: Scheduled, app_settings: dict[str, str], sim: RunningSimulator
) -> None:
    # Three app instances (their own services and clients) tick at the same instants.
    others = [build_services(scheduled.services.settings, clock=scheduled.clock) for _ in range(2)]
    instances = [scheduled.services, *others]
    rounds = 0
    try:
        while scheduled.hosted.ledger.read().state is not KnownState.READY:
            rounds += 1
            assert rounds < 100, "not serving after 100 rounds of concurrent ticks"
            start = threading.Barrier(len(instances) * 2)
            errors: list[BaseException] = []
            threads = [
                threading.Thread(
                    target=run_tick, args=(services, f"schedules:{i}-{j}", start, errors)
                )
                for i, services in enumerate(instances)
                for j in range(2)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
            assert errors == []
            threading.Event().wait(0.05)
    finally:
        for services in others:
            services.blob_service.close()
    record = scheduled.hosted.ledger.read()
    assert [h.id for h in record.holds] == [scheduled.hold_id()]
    assert len(sim.admin.billing()["deployments"]) == 1
    assert record.provision_count == 1


@dataclass
class RecordingStarter:
    """A hand-written BatchStarter: records every start it is asked for."""

    calls: list[tuple[str, str, str, str, datetime]]

    def start(
        self, model: str, run_id: str, input_prefix: str, output_prefix: str, deadline: datetime
    ) -> None:
        self.calls.append((model, run_id, input_prefix, output_prefix, deadline))


def test_a_due_batch_is_started_under_its_run_id_on_every_tick_until_its_deadline(
    app_settings: dict[str, str], tmp_path: Path
) -> None:
    clock = ShiftedClock()
    starts = (clock() - timedelta(minutes=1)).replace(microsecond=0)
    batch = f"""
[[models.contracts.batches]]
name = "nightly"
time_zone = "UTC"
weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
starts = "{starts:%H:%M:%S}"
deadline = "PT30M"
input_prefix = "batches/in/"
output_prefix = "batches/out/"
"""
    catalog = write_catalog(tmp_path / "hosting.toml", starts + timedelta(hours=3), batches=batch)
    values = {k: v for k, v in app_settings.items() if k != "FINE_TUNED_MODEL"}
    values["HOSTING_CONFIG_FILE"] = str(catalog)
    services = build_services(AppSettings.model_validate(values), clock=clock)
    try:
        starter = RecordingStarter([])
        reconciler = ScheduleReconciler(hosted=services.hosted, clock=clock, batch_starter=starter)
        reconciler.run("schedules:a")
        reconciler.run("schedules:b")  # a doubled tick asks again, under the same run id
        run_id = f"contracts-nightly-{starts:%Y%m%dT%H%M%SZ}"
        wanted = (
            "contracts",
            run_id,
            "batches/in/",
            "batches/out/",
            starts + timedelta(minutes=30),
        )
        assert starter.calls == [wanted, wanted]
        clock.jump_to(starts + timedelta(minutes=30))
        reconciler.run("schedules:c")
        assert len(starter.calls) == 2, "not due past its deadline"

        # The composition root wires the batch runner in: the due run is recorded once, however
        # many ticks ask, and its first slice is queued.
        clock.offset = timedelta(0)
        report = services.schedules.run("schedules:d")
        assert report.models[0].batches_started == (run_id,)
        services.schedules.run("schedules:e")
        run = services.batches.runs.get(run_id)
        assert run is not None and run.status == "pending" and run.model == "contracts"
        assert (run.input_prefix, run.output_prefix) == ("batches/in/", "batches/out/")
        assert run.deadline == starts + timedelta(minutes=30)
        queued = services.batch_queue.take_visible()
        assert [message.run_id for message, _ in queued] == [run_id], "queued once"
    finally:
        services.blob_service.close()
