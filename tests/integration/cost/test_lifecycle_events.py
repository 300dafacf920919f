"""What the hosting log records as the app lives, and that losing a line never fails the work."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from shared.composition import AppServices
from shared.cost.log import HostingLogReader, log_blob_name
from shared.cost.reporting import ReportRequest
from tests.integration.azure_state import deployment_gone
from tests.integration.conftest import ServicesFactory
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
