"""`DeploymentProvisioner.delete_now`, the operator's `down`, against the simulator and Azurite.

Unforced it is a teardown without idle grace (never under a live hold); forced it deletes under
holds and keeps them. Either way it takes the ledger's delete lease (so never during another
instance's operation), refuses a deployment not tagged as this app's, and records the outcome.
"""

from __future__ import annotations

import time
from datetime import timedelta

from shared.composition import AppServices
from shared.hosting.deployments import DeploymentSpec
from shared.hosting.holds import KnownState
from tests.integration.conftest import ServicesFactory

HOUR = timedelta(hours=1)


def deployed(make_services: ServicesFactory) -> AppServices:
    services = make_services()
    services.model().provisioner.ensure_ready("test", deadline=time.monotonic() + 30)
    return services


def exists(services: AppServices) -> bool:
    return services.deployments.get(services.model().spec.name).exists


def test_unforced_it_refuses_under_a_live_hold_and_says_so(
    make_services: ServicesFactory,
) -> None:
    services = deployed(make_services)
    hosted = services.model()
    hosted.ledger.place_hold("job:1", "job", "worker-1", HOUR)
    outcome = hosted.provisioner.delete_now("operator:ann@pc#1")
    assert not outcome.deleted
    assert outcome.kept_because == "held"
    assert "job:worker-1" in outcome.reason
    assert exists(services)


def test_unforced_it_deletes_at_once_when_nothing_holds_it(make_services: ServicesFactory) -> None:
    # A long idle grace, which `down` does not wait for.
    services = make_services(IDLE_GRACE_SECONDS=3600)
    hosted = services.model()
    hosted.provisioner.ensure_ready("test", deadline=time.monotonic() + 30)
    outcome = hosted.provisioner.delete_now("operator:ann@pc#1")
    assert outcome.deleted, outcome
    assert not exists(services)
    assert hosted.ledger.read().state is KnownState.ABSENT


def test_forced_it_deletes_under_holds_keeps_them_and_records_it(
    make_services: ServicesFactory,
) -> None:
    services = deployed(make_services)
    hosted = services.model()
    hosted.ledger.place_hold("job:1", "job", "worker-1", HOUR)
    outcome = hosted.provisioner.delete_now("operator:ann@pc#1", force=True)
    assert outcome.deleted
    assert outcome.reason == "forced by operator:ann@pc#1 under 1 live hold(s)"
    assert not exists(services)
    record = hosted.ledger.read()
    assert record.state is KnownState.ABSENT
    assert record.lease is None
    # The job still holds it: its next request provisions the deployment again.
    assert [hold.id for hold in record.live_holds(hosted.ledger.now())] == ["job:1"]


def test_forced_it_still_refuses_a_deployment_not_tagged_as_ours(
    make_services: ServicesFactory,
) -> None:
    services = make_services()
    hosted = services.model()
    spec = hosted.spec
    foreign = DeploymentSpec(spec.name, spec.model_name, "1", "Standard", 1, "another-team")
    services.deployments.begin_create(foreign).result()
    outcome = hosted.provisioner.delete_now("operator:ann@pc#1", force=True)
    assert not outcome.deleted
    assert outcome.kept_because == "not_owned"
    assert exists(services)
    record = hosted.ledger.read()
    assert record.lease is None
    assert record.last_error == "deployment is not tagged as ours; not deleting it"


def test_forced_it_waits_for_no_one_but_never_cuts_into_a_running_operation(
    make_services: ServicesFactory,
) -> None:
    services = deployed(make_services)
    hosted = services.model()
    assert hosted.ledger.take_lease("instance-2", "provision", HOUR) is not None
    outcome = hosted.provisioner.delete_now("operator:ann@pc#1", force=True)
    assert not outcome.deleted
    assert outcome.kept_because == "busy"
    assert outcome.reason == "instance-2 is running a provision"
    assert exists(services)


def test_forced_or_not_an_absent_deployment_is_nothing_to_delete(
    make_services: ServicesFactory,
) -> None:
    hosted = make_services().model()
    assert hosted.provisioner.delete_now("op", force=True).kept_because == "absent"
    assert hosted.provisioner.delete_now("op").kept_because == "absent"
