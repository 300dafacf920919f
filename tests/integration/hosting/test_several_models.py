"""Several hosted models in one app, and the account's limit, against the simulator and Azurite.

Each model gets its own deployment, ledger, holds and idle grace; documents are routed by their
profile. The account's fine-tuned deployment limit is lowered in the simulator so a model finds
no room: its document waits (saying why), never fails for that alone within its deadline, and
proceeds once one of this app's deployments is torn down; a deployment under a live hold is
never deleted to make room.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.composition import AppServices
from shared.documents.jobs import job_id_for
from shared.documents.submissions import Submission, SubmissionInvalid
from simulator.process import RunningSimulator
from tests.integration.azure_state import deployment_gone
from tests.integration.conftest import ServicesFactory, ShiftedClock
from tests.integration.drive import drive, process_to_end

LOCAL_BASE = "gpt-4.1-mini-2025-04-14"


def write_catalog(
    path: Path,
    *,
    suffix: str,
    grace: dict[str, float] | None = None,
    names: tuple[str, ...] = ("contracts", "reviews"),
) -> Path:
    """A hosted-models file with one model and one profile (same name) per entry of `names`."""
    grace = grace or {}
    lines: list[str] = []
    for name in names:
        lines += [
            f"[models.{name}]",
            f'deployment = "ft-{name}-{suffix}"',
            f'fine_tuned_model = "{LOCAL_BASE}.ft-{name}"',
            "capacity = 10",
            f"idle_grace_seconds = {grace.get(name, 0)}",
            "",
            f"[profiles.{name}]",
            f'model = "{name}"',
            f'system_prompt = "You read {name}."',
            'user_prompt_template = "{filename}:\\n{document}"',
            "max_output_tokens = 100",
            "",
        ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture
def catalog_file(tmp_path: Path) -> Path:
    return write_catalog(tmp_path / "hosting.toml", suffix=uuid.uuid4().hex[:8])


def several(make_services: ServicesFactory, catalog: Path, **overrides: Any) -> AppServices:
    return make_services(
        HOSTING_CONFIG_FILE=str(catalog),
        FINE_TUNED_MODEL=None,
        DEPLOYMENT_NAME=None,
        **overrides,
    )


def deliver(services: AppServices, name: str, data: bytes) -> Any:
    """One delivery of the blob, as the blob trigger makes it."""
    return services.engine.process_blob(services.settings.input_container, name, data)


def process(services: AppServices, name: str, data: bytes) -> Any:
    return process_to_end(services, name, data)


def output_json(services: AppServices, name: str) -> dict[str, Any]:
    container = services.blob_service.get_container_client(services.settings.output_container)
    return json.loads(container.download_blob(name).readall())  # type: ignore[no-any-return]


def exists(services: AppServices, model: str) -> bool:
    return services.deployments.get(services.model(model).spec.name).exists


def start_foreign_deployment(services: AppServices, name: str) -> None:
    """A fine-tuned deployment someone else made: not tagged as this app's."""
    spec = services.model("contracts").spec
    foreign = type(spec)(name, spec.model_name, "1", "Standard", 1, owner_tag="another-team")
    services.deployments.begin_create(foreign).result()


def test_documents_are_routed_by_profile_to_their_own_model(
    make_services: ServicesFactory, catalog_file: Path, sim: RunningSimulator
) -> None:
    services = several(make_services, catalog_file)
    contracts = process(services, "contracts/msa.txt", b"The supplier delivers.")
    reviews = process(services, "reviews/r1.txt", b"Great product.")
    assert (contracts.status, reviews.status) == ("succeeded", "succeeded")
    first = output_json(services, "contracts/msa.txt.result.json")["provenance"]
    second = output_json(services, "reviews/r1.txt.result.json")["provenance"]
    assert first["hosted_model"] == "contracts"
    assert first["deployment"] == services.model("contracts").spec.name
    assert second["hosted_model"] == "reviews"
    assert second["deployment"] == services.model("reviews").spec.name
    record = services.jobs.get(reviews.job_id)
    assert record is not None and record.model == "reviews"
    assert {d["name"] for d in sim.admin.billing()["deployments"]} == {
        services.model("contracts").spec.name,
        services.model("reviews").spec.name,
    }


def test_an_unknown_profile_is_an_error_record_naming_the_profiles_and_models(
    make_services: ServicesFactory, catalog_file: Path
) -> None:
    services = several(make_services, catalog_file)
    with pytest.raises(SubmissionInvalid) as refused:
        services.submissions.submit(
            Submission(filename="x.txt", data=b"text", profile="transcripts", questions=())
        )
    assert refused.value.status == 400
    assert "the known profiles are: contracts, reviews" in refused.value.message
    # With several models and no default_model there is no built-in default profile either.
    outcome = process(services, "loose.txt", b"text")
    assert outcome.status == "failed"
    error = output_json(services, "loose.txt.error.json")["error"]
    assert error["code"] == "unknown_profile"
    assert "the known profiles are: contracts, reviews" in error["reason"]


def test_two_models_at_once_get_two_deployments_each_torn_down_on_its_own_schedule(
    make_services: ServicesFactory, tmp_path: Path, sim: RunningSimulator
) -> None:
    catalog = write_catalog(
        tmp_path / "hosting.toml", suffix=uuid.uuid4().hex[:8], grace={"reviews": 600}
    )
    clock = ShiftedClock()
    services = several(make_services, catalog, clock=clock)
    documents = [(f"contracts/c{i}.txt", f"contract {i}") for i in range(3)] + [
        (f"reviews/r{i}.txt", f"review {i}") for i in range(3)
    ]
    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(lambda d: process(services, d[0], d[1].encode()), documents))
    assert [o.status for o in outcomes] == ["succeeded"] * 6
    billing = sim.admin.billing()["deployments"]
    assert sorted(d["name"] for d in billing) == sorted(
        [services.model("contracts").spec.name, services.model("reviews").spec.name]
    ), "one deployment per model, shared by its documents"
    # contracts has no idle grace: its last job deleted it; reviews waits out its grace.
    assert deployment_gone(services, services.model("contracts").spec.name)
    assert exists(services, "reviews")
    reports = {r.deployment: r.deleted for r in services.reaper.run("reaper:test")}
    assert reports == {services.model("reviews").spec.name: False}
    clock.advance(601)
    reports = {r.deployment: r.deleted for r in services.reaper.run("reaper:test")}
    assert reports == {services.model("reviews").spec.name: True}
    assert deployment_gone(services, services.model("reviews").spec.name)


def test_no_room_on_the_account_waits_saying_why_then_proceeds_when_room_appears(
    make_services: ServicesFactory, catalog_file: Path, sim: RunningSimulator
) -> None:
    sim.admin.configure(max_fine_tuned_deployments=2)
    services = several(make_services, catalog_file, ACCOUNT_MAX_FINE_TUNED_DEPLOYMENTS=2)
    start_foreign_deployment(services, "theirs-1")
    start_foreign_deployment(services, "theirs-2")
    data = b"The supplier delivers."
    parked = deliver(services, "contracts/a.txt", data)
    assert parked.parked
    record = services.jobs.get(parked.job_id)
    assert record is not None and record.status == "waiting_for_deployment"
    assert record.waiting_reason is not None
    assert record.waiting_reason.startswith(
        f"waiting for room on account {services.settings.aoai_account_name}: 2 of 2 fine-tuned "
        "deployments in use by theirs-1 (not this app, Succeeded), theirs-2 (not this app"
    )
    assert sim.admin.stats()["management"]["PUT"] == 2, "no create was even tried"

    # It waits, parked, without failing; room appears and it proceeds.
    time.sleep(1.5)
    services.engine.resume(parked.job_id)
    record = services.jobs.get(parked.job_id)
    assert record is not None and record.status == "waiting_for_deployment"
    assert record.error is None
    services.deployments.begin_delete("theirs-2").result()
    drive(services, [parked.job_id])
    record = services.jobs.get(parked.job_id)
    assert record is not None and record.status == "succeeded"
    assert record.waiting_reason is None and record.attempts == 1


def test_this_apps_idle_deployment_is_torn_down_early_to_make_room(
    make_services: ServicesFactory, tmp_path: Path, sim: RunningSimulator
) -> None:
    sim.admin.configure(max_fine_tuned_deployments=1)
    catalog = write_catalog(
        tmp_path / "hosting.toml",
        suffix=uuid.uuid4().hex[:8],
        grace={"contracts": 600, "reviews": 600},
    )
    services = several(make_services, catalog, ACCOUNT_MAX_FINE_TUNED_DEPLOYMENTS=1)
    assert process(services, "contracts/a.txt", b"one").status == "succeeded"
    assert exists(services, "contracts"), "kept for its idle grace of 600 s"
    # No hold needs the contracts deployment, so the reviews document need not wait 600 s.
    assert process(services, "reviews/b.txt", b"two").status == "succeeded"
    assert deployment_gone(services, services.model("contracts").spec.name)
    assert exists(services, "reviews")


def test_a_deployment_under_a_live_hold_is_never_deleted_to_make_room(
    make_services: ServicesFactory, tmp_path: Path, sim: RunningSimulator
) -> None:
    sim.admin.configure(max_fine_tuned_deployments=1)
    catalog = write_catalog(
        tmp_path / "hosting.toml", suffix=uuid.uuid4().hex[:8], grace={"contracts": 600}
    )
    services = several(
        make_services, catalog, ACCOUNT_MAX_FINE_TUNED_DEPLOYMENTS=1, PROVISION_TIMEOUT_SECONDS=8
    )
    assert process(services, "contracts/a.txt", b"one").status == "succeeded"
    contracts = services.model("contracts")
    contracts.ledger.place_hold("operator:test", "operator", "someone", timedelta(seconds=3))
    waiting = threading.Event()

    def reviews_document() -> Any:
        waiting.set()
        return process(services, "reviews/b.txt", b"two")

    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(reviews_document)
        waiting.wait()
        time.sleep(1.5)
        assert exists(services, "contracts"), "under a live hold: not deleted for room"
        record = services.jobs.get(
            job_id_for(services.settings.input_container, "reviews/b.txt", b"two")
        )
        assert record is not None and record.waiting_reason is not None
        assert "1 of 1 fine-tuned deployments in use by" in record.waiting_reason
        assert f"{contracts.spec.name} (this app, Succeeded)" in record.waiting_reason
        # The hold lapses after 3 s; then the idle contracts deployment makes way.
        outcome = future.result(timeout=30)
    assert outcome.status == "succeeded"
    assert deployment_gone(services, services.model("contracts").spec.name)


def test_a_create_refused_for_the_limit_waits_instead_of_failing(
    make_services: ServicesFactory, catalog_file: Path, sim: RunningSimulator
) -> None:
    # The app believes there is room (limit 5), Azure knows better (limit 1): another creator
    # took the last place between the app's look and its create.
    sim.admin.configure(max_fine_tuned_deployments=1)
    services = several(make_services, catalog_file)
    start_foreign_deployment(services, "theirs-1")
    parked = deliver(services, "contracts/a.txt", b"one")
    assert parked.parked
    record = services.jobs.get(parked.job_id)
    assert record is not None and record.status == "waiting_for_deployment"
    assert record.waiting_reason is not None and "waiting for room" in record.waiting_reason
    assert record.error is None and record.attempts == 1
    services.deployments.begin_delete("theirs-1").result()
    drive(services, [parked.job_id])
    record = services.jobs.get(parked.job_id)
    assert record is not None and record.status == "succeeded"


def test_a_create_refused_for_quota_names_the_quota_and_the_capacity(
    make_services: ServicesFactory, tmp_path: Path, sim: RunningSimulator
) -> None:
    sim.admin.configure(quota_capacity=15)
    catalog = write_catalog(tmp_path / "hosting.toml", suffix=uuid.uuid4().hex[:8])
    text = catalog.read_text().replace("capacity = 10", "capacity = 20", 1)
    catalog.write_text(text)
    services = several(make_services, catalog)
    outcome = process(services, "contracts/a.txt", b"one")
    assert outcome.status == "failed"
    error = output_json(services, "contracts/a.txt.error.json")["error"]
    assert error["code"] == "insufficient_quota"
    assert "with capacity 20" in error["reason"]
    assert f"not enough Standard quota for base model '{LOCAL_BASE}'" in error["reason"]
    assert f"models.contracts.capacity in HOSTING_CONFIG_FILE ({catalog})" in error["reason"]
