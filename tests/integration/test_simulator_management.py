"""Conformance of the simulated management plane, driven through azure-mgmt-cognitiveservices.

Raw HTTP (requests) is used only for what the SDK cannot send: a missing api-version, a
missing token, a body that is not JSON, and reading LRO headers directly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient
from azure.mgmt.cognitiveservices.models import (
    Deployment,
)

from simulator.process import RunningSimulator
from tests.integration.sdk_requests import FT_MODEL, deployment_request, provisioning_state


def create(
    client: CognitiveServicesManagementClient,
    sim: RunningSimulator,
    name: str,
    deployment: Deployment | None = None,
    **kwargs: Any,
) -> Any:
    return client.deployments.begin_create_or_update(
        sim.resource_group, sim.account, name, deployment or deployment_request(), **kwargs
    )


def arm_url(sim: RunningSimulator, name: str | None = None) -> str:
    url = (
        f"{sim.base_url}/subscriptions/{sim.subscription_id}/resourceGroups/{sim.resource_group}"
        f"/providers/Microsoft.CognitiveServices/accounts/{sim.account}/deployments"
    )
    return f"{url}/{name}" if name else url


def raw(sim: RunningSimulator, method: str, url: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": "Bearer local-token", **kwargs.pop("headers", {})}
    return requests.request(
        method, url, headers=headers, verify=str(sim.ca_path), timeout=10, **kwargs
    )


def test_create_poller_finishes_with_a_succeeded_deployment(
    sim: RunningSimulator, mgmt_client: CognitiveServicesManagementClient
) -> None:
    started = time.monotonic()
    result = create(mgmt_client, sim, "ft-a", deployment_request(capacity=2, owner="app")).result()
    elapsed = time.monotonic() - started
    assert provisioning_state(result) == "Succeeded"
    assert result.name == "ft-a"
    assert result.type == "Microsoft.CognitiveServices/accounts/deployments"
    assert result.id.endswith(f"/accounts/{sim.account}/deployments/ft-a")
    assert result.sku.name == "Standard" and result.sku.capacity == 2
    assert result.tags == {"owner": "app"}
    assert result.properties.model.name == FT_MODEL
    limits = {rule.key: (rule.renewal_period, rule.count) for rule in result.properties.rate_limits}
    assert limits == {"request": (10, 2), "token": (60, 2000)}
    assert result.system_data.created_at is not None
    # 300 simulated seconds at 600x is 0.5 s of wall time; the poller must have waited for it,
    # following the simulator's retry-after-ms rather than its own 30 s default interval.
    assert 0.45 <= elapsed < 20.0

    fetched = mgmt_client.deployments.get(sim.resource_group, sim.account, "ft-a")
    assert provisioning_state(fetched) == "Succeeded"
    assert fetched.etag == result.etag
    listed = list(mgmt_client.deployments.list(sim.resource_group, sim.account))
    assert [d.name for d in listed] == ["ft-a"]


def test_poll_headers_are_real_time_and_the_state_moves_through_accepted_and_creating(
    sim: RunningSimulator,
) -> None:
    # Three real seconds of Creating: still InProgress when looked at, however busy the machine.
    sim.admin.configure(provisioning_seconds=1800)
    body = deployment_request().serialize()
    version = {"api-version": "2025-06-01"}
    answer = raw(sim, "PUT", arm_url(sim, "ft-raw"), params=version, json=body)
    assert answer.status_code == 201
    assert answer.json()["properties"]["provisioningState"] == "Accepted"
    monitor = answer.headers["Azure-AsyncOperation"]
    assert monitor.startswith(
        f"{sim.base_url}/subscriptions/{sim.subscription_id}/providers/"
        "Microsoft.CognitiveServices/locations/eastus/operationsStatus/"
    )
    assert monitor.endswith("?api-version=2025-06-01")
    # 10 simulated seconds at 600x: 17 ms, too short for a whole-second Retry-After.
    assert answer.headers["retry-after-ms"] == "17"
    assert "Retry-After" not in answer.headers
    assert answer.headers["x-ms-request-id"]
    assert answer.headers["x-ms-correlation-request-id"]

    time.sleep(0.05)  # past the 10 s (17 ms) in Accepted
    state = raw(sim, "GET", arm_url(sim, "ft-raw"), params=version)
    assert state.json()["properties"]["provisioningState"] == "Creating"
    status = raw(sim, "GET", monitor).json()
    assert status["status"] == "InProgress" and "endTime" not in status
    status = _until(lambda: raw(sim, "GET", monitor).json(), lambda s: s["status"] != "InProgress")
    assert status["status"] == "Succeeded" and status["endTime"] >= status["startTime"]

    sim.admin.configure(time_scale=4.0)  # 10 simulated seconds is now 2.5 real seconds
    answer = raw(sim, "PUT", arm_url(sim, "ft-slow"), params=version, json=body)
    assert answer.headers["Retry-After"] == "3"
    assert answer.headers["retry-after-ms"] == "2500"


def test_get_of_a_missing_deployment_or_account_is_resource_not_found(
    sim: RunningSimulator, mgmt_client: CognitiveServicesManagementClient
) -> None:
    with pytest.raises(ResourceNotFoundError) as missing:
        mgmt_client.deployments.get(sim.resource_group, sim.account, "nope")
    assert missing.value.error is not None and missing.value.error.code == "DeploymentNotFound"
    with pytest.raises(ResourceNotFoundError) as other_account:
        mgmt_client.deployments.get(sim.resource_group, "someone-else", "nope")
    assert other_account.value.error is not None
    assert other_account.value.error.code == "ResourceNotFound"
    assert "Microsoft.CognitiveServices/accounts/someone-else" in str(other_account.value)
    with pytest.raises(ResourceNotFoundError) as other_group:
        list(mgmt_client.deployments.list("rg-other", sim.account))
    assert other_group.value.error is not None
    assert other_group.value.error.code == "ResourceGroupNotFound"


def test_put_while_creating_is_a_conflict(
    sim: RunningSimulator, mgmt_client: CognitiveServicesManagementClient
) -> None:
    first = create(mgmt_client, sim, "ft-busy")
    with pytest.raises(ResourceExistsError) as conflict:
        create(mgmt_client, sim, "ft-busy").result()
    assert conflict.value.status_code == 409
    assert conflict.value.error is not None and conflict.value.error.code == "Conflict"
    assert "in progress" in str(conflict.value)
    assert provisioning_state(first.result()) == "Succeeded"


def test_put_on_a_succeeded_deployment_updates_it_in_place_without_polling(
    sim: RunningSimulator, mgmt_client: CognitiveServicesManagementClient
) -> None:
    create(mgmt_client, sim, "ft-up").result()
    polls_before = sim.admin.stats()["management"]["POLL"]
    started = time.monotonic()
    updated = create(mgmt_client, sim, "ft-up", deployment_request(capacity=4, owner="me")).result()
    # No poll (counted below), so not the 0.5 s a provisioning would take; loose for a busy machine.
    assert time.monotonic() - started < 5
    assert provisioning_state(updated) == "Succeeded"
    assert updated.sku.capacity == 4 and updated.tags == {"owner": "me"}
    assert sim.admin.stats()["management"]["POLL"] == polls_before


def test_capacity_beyond_quota_raises_insufficient_quota(
    sim: RunningSimulator, mgmt_client: CognitiveServicesManagementClient
) -> None:
    create(mgmt_client, sim, "ft-big", deployment_request(capacity=70))
    with pytest.raises(HttpResponseError) as refused:
        create(mgmt_client, sim, "ft-more", deployment_request(capacity=31))
    assert refused.value.status_code == 400
    assert refused.value.error is not None and refused.value.error.code == "InsufficientQuota"
    assert "require 31 new capacity" in str(refused.value)
    assert "current available capacity 30" in str(refused.value)
    with pytest.raises(HttpResponseError) as zero:
        create(mgmt_client, sim, "ft-zero", deployment_request(capacity=0))
    assert zero.value.error is not None and zero.value.error.code == "InvalidCapacity"


def test_quota_is_per_base_model_and_names_what_it_counts(
    sim: RunningSimulator, mgmt_client: CognitiveServicesManagementClient
) -> None:
    create(mgmt_client, sim, "mini", deployment_request(model="gpt-4.1-mini.ft-a", capacity=100))
    other_model = create(
        mgmt_client, sim, "4o", deployment_request(model="gpt-4o.ft-b", capacity=100)
    )
    assert other_model.status() in {"InProgress", "Accepted"}
    with pytest.raises(HttpResponseError) as refused:
        create(mgmt_client, sim, "mini-base", deployment_request(model="gpt-4.1-mini", capacity=1))
    assert refused.value.error is not None and refused.value.error.code == "InsufficientQuota"
    assert (
        "The current quota usage is 100 and the quota limit is 100 for quota "
        "OpenAI.Standard.gpt-4.1-mini." in str(refused.value)
    )


def test_deployment_names_are_case_insensitive_and_keep_their_spelling(
    sim: RunningSimulator, mgmt_client: CognitiveServicesManagementClient
) -> None:
    create(mgmt_client, sim, "ft1", deployment_request(capacity=1)).result()
    fetched = mgmt_client.deployments.get(sim.resource_group, sim.account, "FT1")
    assert fetched.name == "ft1" and str(fetched.id).endswith("/deployments/ft1")
    updated = create(mgmt_client, sim, "FT1", deployment_request(capacity=2)).result()
    assert updated.name == "ft1" and updated.sku.capacity == 2
    listed = list(mgmt_client.deployments.list(sim.resource_group, sim.account))
    assert [(d.name, d.sku and d.sku.capacity) for d in listed] == [("ft1", 2)]
    mgmt_client.deployments.begin_delete(sim.resource_group, sim.account, "Ft1").result()
    with pytest.raises(ResourceNotFoundError):
        mgmt_client.deployments.get(sim.resource_group, sim.account, "ft1")


def test_a_sixth_fine_tuned_deployment_is_refused(
    sim: RunningSimulator, mgmt_client: CognitiveServicesManagementClient
) -> None:
    for index in range(5):
        create(mgmt_client, sim, f"ft-{index}", deployment_request(model=f"base.ft-{index}"))
    with pytest.raises(HttpResponseError) as refused:
        create(mgmt_client, sim, "ft-5", deployment_request(model="base.ft-5"))
    assert refused.value.status_code == 400
    assert refused.value.error is not None
    assert refused.value.error.code == "InvalidResourceProperties"
    assert "5 fine-tuned deployments per resource" in str(refused.value)
    base = create(mgmt_client, sim, "base", deployment_request(model="gpt-4.1-mini"))
    assert base.status() in {"InProgress", "Accepted"}


def test_delete_poller_finishes_and_the_deployment_is_gone(
    sim: RunningSimulator, mgmt_client: CognitiveServicesManagementClient
) -> None:
    sim.admin.configure(deletion_seconds=300)  # 0.5 s, long enough to see Deleting
    create(mgmt_client, sim, "ft-del").result()
    poller = mgmt_client.deployments.begin_delete(sim.resource_group, sim.account, "ft-del")
    listed = list(mgmt_client.deployments.list(sim.resource_group, sim.account))
    assert [(d.name, provisioning_state(d)) for d in listed] == [("ft-del", "Deleting")]
    assert poller.result() is None
    assert poller.status() == "Succeeded"
    with pytest.raises(ResourceNotFoundError):
        mgmt_client.deployments.get(sim.resource_group, sim.account, "ft-del")
    assert list(mgmt_client.deployments.list(sim.resource_group, sim.account)) == []
    # Deleting what does not exist answers 204, which the poller accepts as done.
    mgmt_client.deployments.begin_delete(sim.resource_group, sim.account, "ft-del").result()


def test_delete_location_answers_202_then_200(sim: RunningSimulator) -> None:
    sim.admin.configure(deletion_seconds=1800)  # 3 s of wall time: seen running, then done
    body = deployment_request().serialize()
    raw(sim, "PUT", arm_url(sim, "ft-loc"), params={"api-version": "2025-09-01"}, json=body)
    answer = raw(sim, "DELETE", arm_url(sim, "ft-loc"), params={"api-version": "2025-09-01"})
    assert answer.status_code == 202
    location = answer.headers["Location"]
    assert "/locations/eastus/operationResults/" in location
    assert answer.headers["retry-after-ms"] == "17"
    assert raw(sim, "GET", location).status_code == 202
    done = _until(lambda: raw(sim, "GET", location), lambda answer: answer.status_code != 202)
    assert done.status_code == 200
    missing = raw(sim, "DELETE", arm_url(sim, "ft-loc"), params={"api-version": "2025-09-01"})
    assert missing.status_code == 204


def test_delete_during_creation_cancels_it(
    sim: RunningSimulator, mgmt_client: CognitiveServicesManagementClient
) -> None:
    # 3 s of wall time each: the delete meets the creation under way, however busy the machine.
    sim.admin.configure(provisioning_seconds=1800, deletion_seconds=1800)
    creation = create(mgmt_client, sim, "ft-cancel")
    deletion = mgmt_client.deployments.begin_delete(sim.resource_group, sim.account, "ft-cancel")
    fetched = mgmt_client.deployments.get(sim.resource_group, sim.account, "ft-cancel")
    assert provisioning_state(fetched) == "Deleting"
    with pytest.raises(HttpResponseError):
        creation.result()
    assert creation.status().lower() == "canceled"
    deletion.result()
    with pytest.raises(ResourceNotFoundError):
        mgmt_client.deployments.get(sim.resource_group, sim.account, "ft-cancel")


def test_recreating_a_just_deleted_name_must_wait_for_the_cooldown(
    sim: RunningSimulator, mgmt_client: CognitiveServicesManagementClient
) -> None:
    sim.admin.configure(recreate_cooldown_seconds=1800)  # 3 s of wall time
    create(mgmt_client, sim, "ft-again").result()
    mgmt_client.deployments.begin_delete(sim.resource_group, sim.account, "ft-again").result()
    with pytest.raises(ResourceExistsError) as cooling:
        create(mgmt_client, sim, "ft-again")
    assert cooling.value.error is not None
    assert cooling.value.error.code == "DeploymentRecentlyDeleted"
    assert "wait" in str(cooling.value)
    again = _until(lambda: _try_create(mgmt_client, sim, "ft-again"), lambda p: p is not None)
    assert again is not None and provisioning_state(again.result()) == "Succeeded"


def _try_create(
    mgmt_client: CognitiveServicesManagementClient, sim: RunningSimulator, name: str
) -> Any:
    try:
        return create(mgmt_client, sim, name)
    except ResourceExistsError:
        return None  # still cooling down


def _until(look: Callable[[], Any], done: Callable[[Any], bool], within: float = 30.0) -> Any:
    """Look until `done` says so (a condition, not a sleep): the last look."""
    deadline = time.monotonic() + within
    while True:
        seen = look()
        if done(seen) or time.monotonic() >= deadline:
            return seen
        time.sleep(0.05)


def test_request_errors_have_arm_shapes(sim: RunningSimulator) -> None:
    no_version = raw(sim, "GET", arm_url(sim))
    assert no_version.status_code == 400
    assert no_version.json()["error"]["code"] == "MissingApiVersionParameter"
    bad_version = raw(sim, "GET", arm_url(sim), params={"api-version": "latest"})
    assert bad_version.status_code == 400
    assert bad_version.json()["error"]["code"] == "InvalidApiVersionParameter"
    anonymous = requests.get(
        arm_url(sim), params={"api-version": "2025-09-01"}, verify=str(sim.ca_path), timeout=10
    )
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "AuthenticationFailed"
    assert anonymous.headers["x-ms-request-id"]
    not_json = raw(
        sim,
        "PUT",
        arm_url(sim, "ft-x"),
        params={"api-version": "2025-09-01"},
        data=b"{sku:",
        headers={"Content-Type": "application/json"},
    )
    assert not_json.status_code == 400
    assert not_json.json()["error"]["code"] == "InvalidRequestContent"
    no_model = raw(
        sim,
        "PUT",
        arm_url(sim, "ft-x"),
        params={"api-version": "2025-09-01"},
        json={"sku": {"name": "Standard", "capacity": 1}, "properties": {}},
    )
    assert no_model.status_code == 400
    assert no_model.json()["error"]["code"] == "InvalidResourceProperties"
    assert "properties.model" in no_model.json()["error"]["message"]
    unknown = raw(sim, "GET", f"{sim.base_url}/subscriptions/x/whatever?api-version=2025-09-01")
    assert unknown.status_code == 404 and "error" in unknown.json()


@pytest.mark.parametrize("version", ["2024-10-01", "2025-06-01", "2025-09-01"])
def test_known_api_versions_are_served(sim: RunningSimulator, version: str) -> None:
    assert raw(sim, "GET", arm_url(sim), params={"api-version": version}).status_code == 200


@pytest.mark.parametrize("version", ["2020-01-01", "2025-09-02", "2025-09-01-preview"])
def test_an_unknown_api_version_is_invalid_api_version_parameter(
    sim: RunningSimulator, version: str
) -> None:
    answer = raw(sim, "GET", arm_url(sim), params={"api-version": version})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert set(error) == {"code", "message"}
    assert error["code"] == "InvalidApiVersionParameter"
    assert f"'{version}' is invalid" in error["message"] and "2025-09-01" in error["message"]


def test_malformed_put_bodies_are_arm_400s(sim: RunningSimulator) -> None:
    good = deployment_request().serialize()

    def put(data: bytes) -> requests.Response:
        return raw(
            sim,
            "PUT",
            arm_url(sim, "ft-bad"),
            params={"api-version": "2025-09-01"},
            data=data,
            headers={"Content-Type": "application/json"},
        )

    cases = {
        "tags list": ({**good, "tags": []}, "InvalidResourceProperties", "'tags'"),
        "tags string": ({**good, "tags": ""}, "InvalidResourceProperties", "'tags'"),
        "version object": (
            {**good, "properties": {"model": {**good["properties"]["model"], "version": {"x": 1}}}},
            "InvalidResourceProperties",
            "properties.model.version",
        ),
    }
    for label, (body, code, names) in cases.items():
        answer = put(json.dumps(body).encode())
        assert answer.status_code == 400, label
        assert answer.json()["error"]["code"] == code, label
        assert names in answer.json()["error"]["message"], label
    for hostile in (b'{"sku":' + b"[" * 200_000, json.dumps(good).encode()[:-1] + b', "x": NaN}'):
        answer = put(hostile)
        assert answer.status_code == 400
        assert set(answer.json()["error"]) == {"code", "message"}
        assert answer.json()["error"]["code"] == "InvalidRequestContent"
    assert (
        raw(sim, "GET", arm_url(sim, "ft-bad"), params={"api-version": "2025-09-01"}).status_code
        == 404
    )


def test_a_header_longer_than_8_kib_is_served(sim: RunningSimulator) -> None:
    # Real Entra tokens with many group claims exceed aiohttp's default 8190-byte header line.
    token = "x" * 20_000
    answer = raw(
        sim,
        "GET",
        arm_url(sim),
        params={"api-version": "2025-09-01"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200
    assert answer.json() == {"value": []}


def test_capabilities_advertise_the_context_and_output_limits(
    sim: RunningSimulator, mgmt_client: CognitiveServicesManagementClient
) -> None:
    result = create(mgmt_client, sim, "ft-caps").result()
    assert result.properties.capabilities == {
        "chatCompletion": "true",
        "maxContextToken": "128000",
        "maxOutputToken": "32768",
    }


def test_management_requests_are_counted_by_kind(
    sim: RunningSimulator, mgmt_client: CognitiveServicesManagementClient
) -> None:
    create(mgmt_client, sim, "ft-count").result()
    mgmt_client.deployments.get(sim.resource_group, sim.account, "ft-count")
    list(mgmt_client.deployments.list(sim.resource_group, sim.account))
    mgmt_client.deployments.begin_delete(sim.resource_group, sim.account, "ft-count").result()
    counts = sim.admin.stats()["management"]
    # The create poller's final GET of the resource counts as a GET.
    assert (counts["PUT"], counts["GET"], counts["LIST"], counts["DELETE"]) == (1, 2, 1, 1)
    assert counts["POLL"] >= 3


def test_billing_follows_the_simulated_clock(
    sim: RunningSimulator, mgmt_client: CognitiveServicesManagementClient
) -> None:
    clock_before = sim.admin.clock()["sim_now_epoch"]
    create(mgmt_client, sim, "ft-bill").result()
    time.sleep(0.5)  # 300 more simulated seconds
    mgmt_client.deployments.begin_delete(sim.resource_group, sim.account, "ft-bill").result()
    clock_after = sim.admin.clock()["sim_now_epoch"]
    report = sim.admin.billing()
    (entry,) = report["deployments"]
    assert entry["name"] == "ft-bill" and entry["deleted"] is not None
    assert clock_before <= entry["created_epoch"] < entry["deleted_epoch"] <= clock_after
    hosted = entry["hosted_seconds"]
    assert hosted == pytest.approx(entry["deleted_epoch"] - entry["created_epoch"])
    # provisioning 300 + sleep 300 + deletion 30, plus client overhead at 600x (each real
    # second of it 600 simulated ones; loose, for a busy machine).
    assert 630 <= hosted < 630 + 20 * 600
    minutes = -(-hosted // 60)
    assert report["total_hosted_seconds"] == pytest.approx(hosted)
    assert report["per_minute"]["billed_minutes"] == minutes
    assert report["per_minute"]["cost"] == pytest.approx(minutes * 1.70 / 60, abs=1e-6)
    assert report["per_started_hour"] == {"billed_hours": 1, "cost": 1.7}
    assert report["hourly_rate"] == 1.7


def test_only_fine_tuned_standard_deployments_bill_hosting(
    sim: RunningSimulator, mgmt_client: CognitiveServicesManagementClient
) -> None:
    create(mgmt_client, sim, "ft-std").result()
    create(mgmt_client, sim, "ft-dev", deployment_request(sku="DeveloperTier")).result()
    create(mgmt_client, sim, "base", deployment_request(model="gpt-4.1-mini")).result()
    report = sim.admin.billing()
    entries = {d["name"]: d for d in report["deployments"]}
    assert {name: d["billed"] for name, d in entries.items()} == {
        "ft-std": True,
        "ft-dev": False,
        "base": False,
    }
    assert entries["ft-dev"]["billed_minutes"] == entries["base"]["billed_minutes"] == 0
    assert entries["ft-dev"]["hosted_seconds"] > 0  # the lifetime is still reported
    assert report["per_minute"]["billed_minutes"] == entries["ft-std"]["billed_minutes"]
    assert report["per_started_hour"] == {"billed_hours": 1, "cost": 1.7}
    assert report["billed_hosted_seconds"] == pytest.approx(entries["ft-std"]["hosted_seconds"])


def test_pollers_resume_from_continuation_tokens(
    sim: RunningSimulator, mgmt_client: CognitiveServicesManagementClient
) -> None:
    token = create(mgmt_client, sim, "ft-resume").continuation_token()
    resumed = mgmt_client.deployments.begin_create_or_update(
        sim.resource_group, sim.account, "ft-resume", deployment_request(), continuation_token=token
    )
    assert provisioning_state(resumed.result()) == "Succeeded"
    delete_token = mgmt_client.deployments.begin_delete(
        sim.resource_group, sim.account, "ft-resume"
    ).continuation_token()
    mgmt_client.deployments.begin_delete(
        sim.resource_group, sim.account, "ft-resume", continuation_token=delete_token
    ).result()
    with pytest.raises(ResourceNotFoundError):
        mgmt_client.deployments.get(sim.resource_group, sim.account, "ft-resume")
