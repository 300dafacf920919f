"""The savings report of a run against the simulator's billing meter.

Two deployment cycles of one model, as the app lives them: a document arrives cold (the job
parks while Azure provisions, is resumed from the queue, answers), the deployment idles for
its grace, the reaper timer deletes it and confirms it gone at its next pass; then the
operator brings it up and takes it down (`up`, `down`). The report's hosted time, read back
from the hosting log, must equal the meter's within 1%, with the same number of cycles.

The simulator runs 60 times faster than the wall clock, as in the demo, so the report's
`COST_TIME_SCALE` is 60 too. The reaper timer ticks every few tens of milliseconds here: a
deployment's "gone" is recorded at the first pass after Azure finished the delete, so the
report counts a cycle as long as the reaper's period may add (a minute in Azure).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from scripts.azurite import RunningAzurite
from shared.composition import AppServices, build_services
from shared.cost.reporting import ReportRequest
from shared.settings import AppSettings
from simulator.process import RunningSimulator
from tests.integration.conftest import local_app_settings
from tests.integration.drive import process_to_end

SCALE = 60.0
# Simulated seconds: at 60x, provisioning takes about 1.5 real seconds and a delete 0.25.
METER_TIMINGS = {
    "time_scale": SCALE,
    "provisioning_seconds": 60.0,
    "accepted_seconds": 5.0,
    "warmup_seconds": 15.0,
    "deletion_seconds": 15.0,
    "recreate_cooldown_seconds": 5.0,
    "poll_retry_after_seconds": 2.0,
}
IDLE_GRACE_SECONDS = 20.0  # real seconds: twenty simulated minutes


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def services(azurite: RunningAzurite, sim: RunningSimulator) -> Iterator[AppServices]:
    sim.admin.configure(**METER_TIMINGS)
    settings = local_app_settings(
        azurite,
        sim,
        IDLE_GRACE_SECONDS=IDLE_GRACE_SECONDS,
        COST_TIME_SCALE=SCALE,
        EXPECTED_PROVISION_SECONDS=1.5,
        MANAGEMENT_POLL_SECONDS=0.02,
        PARK_MAX_SECONDS=0.3,
    )
    built = build_services(AppSettings.model_validate(settings))
    yield built
    built.blob_service.close()


class ReaperTimer:
    """The reaper's timer trigger, ticking every `period` seconds on a thread."""

    def __init__(self, services: AppServices, period: float) -> None:
        self._services = services
        self._period = period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, name="reaper-timer", daemon=True)
        self.errors: list[BaseException] = []

    def __enter__(self) -> ReaperTimer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _tick(self) -> None:
        while not self._stop.wait(self._period):
            try:
                self._services.reaper.run("reaper:timer")
            except Exception as error:  # surfaced by the test
                self.errors.append(error)


def _meter_lifetimes(sim: RunningSimulator, name: str) -> list[dict[str, object]]:
    return [d for d in sim.admin.billing()["deployments"] if d["name"] == name]


def test_the_reports_hosted_time_equals_the_meters_within_one_percent(
    services: AppServices, sim: RunningSimulator
) -> None:
    hosted = services.model()
    name = hosted.spec.name
    started = datetime.now(UTC)
    with ReaperTimer(services, period=0.02) as reaper:
        outcome = process_to_end(
            services, "contracts/msa.txt", b"Master services agreement.\n\nTerm: 2 years.\n"
        )
        assert outcome.status == "succeeded"
        # The idle grace passes, the reaper sends the delete, and confirms it at a later pass.
        wait_until(
            lambda: all(d["deleted_epoch"] is not None for d in _meter_lifetimes(sim, name)),
            timeout=60,
            what="the reaper to delete the deployment after its grace",
        )
        wait_until(
            lambda: hosted.ledger.read().state.value == "absent",
            timeout=10,
            what="the reaper to confirm the deployment gone",
        )
    assert reaper.errors == []

    # The operator's cycle: `up`, then `down` (which follows the delete to its end).
    hosted.provisioner.ensure_ready("operator:test", deadline=time.monotonic() + 30)
    assert hosted.provisioner.delete_now("operator:test").deleted
    finished = datetime.now(UTC)

    meter = _meter_lifetimes(sim, name)
    assert len(meter) == 2
    meter_seconds = sum(float(str(d["hosted_seconds"])) for d in meter)

    report = services.reports.report(ReportRequest(since=started, until=finished))
    (total,) = [row for row in report.totals if row.model == hosted.name]
    ours = total.on_demand
    print(f"hosted time: report {ours.hosted_seconds:.1f} s, meter {meter_seconds:.1f} s")
    assert ours.deploy_cycles == 2
    assert ours.hosted_seconds == pytest.approx(meter_seconds, rel=0.01), (
        f"report {ours.hosted_seconds:.1f} s, meter {meter_seconds:.1f} s (simulated): "
        f"{[round(lt.hosted_seconds, 1) for lt in report.lifetimes]} against "
        f"{[round(float(str(d['hosted_seconds'])), 1) for d in meter]}"
    )
    assert report.complete, report.gaps
    # The meter's end lies between the deployment last seen and its deletion confirmed.
    unconfirmed = total.unconfirmed_hours * 3600
    assert unconfirmed > 0, "the reaper's confirmation gives a lower bound"
    assert ours.hosted_seconds - unconfirmed <= meter_seconds * 1.005
    assert [lt.ended_by for lt in report.lifetimes] == ["gone", "gone"]
    assert [lt.created_by.split(":")[0] for lt in report.lifetimes][1] == "operator"
    assert report.lifetimes[0].holds, "the create was sent for the job's hold"

    # The document and its tokens, read from its result.
    assert total.documents == 1
    assert total.input_tokens > 0 and total.output_tokens > 0
    # Always-on over the same run: one deployment for its whole length, at the meter's rate.
    run_seconds = (report.until - report.since).total_seconds() * SCALE
    assert total.always_on.hosted_seconds == pytest.approx(run_seconds)
    assert total.always_on.hosting_cost.per_minute == pytest.approx(
        -(-run_seconds // 60) / 60 * sim.admin.billing()["hourly_rate"]
    )
