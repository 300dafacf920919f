"""What the hosting log records as the app lives, and that losing a line never fails the work."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from scripts.local_azure import LOCAL_MODEL
from shared.composition import AppServices
from shared.cost.log import HostingLog, HostingLogReader, log_blob_name, new_event
from shared.cost.reporting import ReportRequest
from shared.hosting.grace import resolve_grace
from tests.integration.azure_state import deployment_gone
from tests.integration.conftest import ServicesFactory, ShiftedClock
from tests.integration.drive import process_to_end


def _events(services: AppServices, since: datetime) -> list[tuple[str, str]]:
    reader = HostingLogReader(
        services.blob_service.get_container_client(services.settings.hosting_log_container)
    )
    reading = reader.read(since, datetime.now(UTC) + timedelta(minutes=1))
    return [(e.event, e.actor.split(":")[0]) for e in reading.events]


def test_a_deployment_deleted_behind_the_apps_back_is_logged_as_vanished(
    make_services: ServicesFactory,
) -> None:
    services = make_services()
    hosted = services.model()
    since = datetime.now(UTC) - timedelta(seconds=1)
    hosted.provisioner.ensure_ready("operator:test", deadline=time.monotonic() + 30)
    # Someone deletes it in the portal; the reaper's next pass finds it missing.
    services.deployments.start_delete(hosted.spec.name)
    assert deployment_gone(services, hosted.spec.name)
    services.reaper.run("reaper:test")

    assert _events(services, since) == [
        ("create_sent", "operator"),
        ("serving", "operator"),
        ("vanished", "reaper"),
    ]
    report = services.reports.report(ReportRequest(since=since))
    (lifetime,) = report.lifetimes
    assert lifetime.ended_by == "vanished"
    assert report.complete


def test_a_lost_append_fails_no_job_and_the_report_says_a_gap_may_exist(
    make_services: ServicesFactory,
) -> None:
    services = make_services()
    hosted = services.model()
    since = datetime.now(UTC) - timedelta(seconds=1)
    container = services.blob_service.get_container_client(services.settings.hosting_log_container)
    # Something else took today's log blob (a block blob, not an append blob): appends fail.
    container.upload_blob(log_blob_name(hosted.name, since.date()), b"")
    outcome = process_to_end(services, "contracts/msa.txt", b"Agreement.\n\nTerm: 2 years.\n")
    assert outcome.status == "succeeded"
    assert deployment_gone(services, hosted.spec.name), "idle grace 0: deleted after the job"

    report = services.reports.report(ReportRequest(since=since))
    assert not report.complete
    lost = [gap for gap in report.gaps if gap.startswith("an append was lost")]
    assert any("create_sent of " + hosted.spec.name in gap for gap in lost)
    assert any("delete_sent of " + hosted.spec.name in gap for gap in lost)


def test_an_auto_grace_keeps_an_idle_deployment_for_the_cold_start_its_log_has_seen(
    make_services: ServicesFactory, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:8]
    catalog = tmp_path / "hosting.toml"
    catalog.write_text(
        "\n".join(
            [
                "[models.contracts]",
                f'deployment = "ft-auto-{suffix}"',
                f'fine_tuned_model = "{LOCAL_MODEL}"',
                "capacity = 10",
                'idle_grace = "auto"',
                "idle_grace_seconds = 0",
                "",
            ]
        ),
        encoding="utf-8",
    )
    clock = ShiftedClock()
    services = make_services(
        clock=clock, HOSTING_CONFIG_FILE=str(catalog), FINE_TUNED_MODEL=None, DEPLOYMENT_NAME=None
    )
    hosted = services.model("contracts")
    # Three earlier lifetimes of this model took ten minutes from the create to serving, as the
    # app logs them: the model's cold starts, beside the seconds the simulator's start takes.
    log = HostingLog(
        services.blob_service.get_container_client(services.settings.hosting_log_container),
        clock,
    )
    for hours_ago in (30, 20, 10):
        created = clock() - timedelta(hours=hours_ago)
        for event, at in (
            ("create_sent", created),
            ("serving", created + timedelta(minutes=10)),
            ("delete_sent", created + timedelta(hours=1)),
            ("gone", created + timedelta(hours=1, seconds=20)),
        ):
            assert log.append(
                new_event(
                    event,  # type: ignore[arg-type]
                    at=at,
                    model="contracts",
                    deployment=hosted.spec.name,
                    sku=hosted.spec.sku,
                    capacity=hosted.spec.capacity,
                    record=None,
                    actor="operator:earlier",
                )
            )

    record = hosted.provisioner.ensure_ready("operator:test", deadline=time.monotonic() + 60)
    observed = record.last_provision_seconds
    assert observed is not None and observed < 120, "the simulator starts in seconds"
    # The log now also holds this start; the median of the four is still ten minutes.
    assert resolve_grace(hosted.idle_grace, record) == timedelta(minutes=10)

    # Idle for two minutes: past the ledger's own observation, within the learned start.
    clock.advance(120)
    services.reaper.run("reaper:test")
    assert services.deployments.get(hosted.spec.name).exists, "kept for one learned cold start"

    clock.advance(9 * 60)
    services.reaper.run("reaper:test")
    assert deployment_gone(services, hosted.spec.name), "deleted once the learned grace passed"
