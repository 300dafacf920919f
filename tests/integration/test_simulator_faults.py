"""Every fault the simulator can inject, observed through the real SDKs; and its process life
(SIGTERM, a busy port, a failed start-up)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import openai
import pytest
import requests
from aiohttp import test_utils
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient

from simulator.admin import SimulatorAdminError
from simulator.clock import ManualClock
from simulator.config import SimulatorConfig
from simulator.faults import ErrorFault, FaultPlan, Plane
from simulator.process import PROJECT_ROOT, RunningSimulator, start_simulator
from simulator.server import create_app
from simulator.state import SimulatorState
from tests.integration.sdk_requests import deployment_request, provisioning_state


def deploy_and_warm(
    client: CognitiveServicesManagementClient, sim: RunningSimulator, name: str, capacity: int = 10
) -> None:
    client.deployments.begin_create_or_update(
        sim.resource_group, sim.account, name, deployment_request(capacity=capacity)
    ).result()
    time.sleep(0.15)  # 60 simulated seconds of warm-up at 600x


def ask(client: openai.AzureOpenAI, name: str) -> openai.types.chat.ChatCompletion:
    return client.chat.completions.create(
        model=name, messages=[{"role": "user", "content": "Hello"}], max_tokens=20
    )


def test_failed_provisioning_fails_the_poller_and_a_recreate_succeeds(
    sim: RunningSimulator, mgmt_client: CognitiveServicesManagementClient
) -> None:
    sim.admin.fail_next_provisionings(1)
    poller = mgmt_client.deployments.begin_create_or_update(
        sim.resource_group, sim.account, "ft-fail", deployment_request(capacity=10)
    )
    with pytest.raises(HttpResponseError):
        poller.result()
    assert poller.status() == "Failed"
    failed = mgmt_client.deployments.get(sim.resource_group, sim.account, "ft-fail")
    assert provisioning_state(failed) == "Failed"
    again = mgmt_client.deployments.begin_create_or_update(
        sim.resource_group, sim.account, "ft-fail", deployment_request(capacity=10)
    ).result()
    assert provisioning_state(again) == "Succeeded"
    lifetimes = sim.admin.billing()["deployments"]
    assert [d["deleted"] is None for d in lifetimes] == [False, True]


def test_gateway_timeout_on_create_still_starts_the_creation(
    sim: RunningSimulator, mgmt_client: CognitiveServicesManagementClient
) -> None:
    sim.admin.gateway_timeout_on_next_creates(1)
    with pytest.raises(HttpResponseError) as timed_out:
        mgmt_client.deployments.begin_create_or_update(
            sim.resource_group,
            sim.account,
            "ft-504",
            deployment_request(capacity=10),
            retry_total=0,
        )
    assert timed_out.value.status_code == 504
    assert timed_out.value.error is not None and timed_out.value.error.code == "GatewayTimeout"
    state = mgmt_client.deployments.get(sim.resource_group, sim.account, "ft-504")
    assert provisioning_state(state) in {"Accepted", "Creating"}
    deadline = time.monotonic() + 5
    while provisioning_state(state) != "Succeeded" and time.monotonic() < deadline:
        time.sleep(0.05)
        state = mgmt_client.deployments.get(sim.resource_group, sim.account, "ft-504")
    assert provisioning_state(state) == "Succeeded"


def test_the_sdk_retries_a_timed_out_put_into_a_conflict(
    sim: RunningSimulator, mgmt_client: CognitiveServicesManagementClient
) -> None:
    # azure-core retries a PUT answered 504; the creation already runs, so the retry is a 409.
    sim.admin.gateway_timeout_on_next_creates(1)
    with pytest.raises(ResourceExistsError) as conflict:
        mgmt_client.deployments.begin_create_or_update(
            sim.resource_group, sim.account, "ft-retry", deployment_request(capacity=10)
        )
    assert conflict.value.error is not None and conflict.value.error.code == "Conflict"
    assert sim.admin.stats()["management"]["PUT"] == 2


def test_injected_management_errors_are_seen_and_retried_by_the_sdk(
    sim: RunningSimulator, mgmt_client: CognitiveServicesManagementClient
) -> None:
    sim.admin.inject_errors("management", 503, rate=1.0, count=1)
    with pytest.raises(HttpResponseError) as unavailable:
        list(mgmt_client.deployments.list(sim.resource_group, sim.account, retry_total=0))
    assert unavailable.value.status_code == 503
    assert unavailable.value.error is not None
    assert unavailable.value.error.code == "ServiceUnavailable"
    assert list(mgmt_client.deployments.list(sim.resource_group, sim.account)) == []

    sim.admin.inject_errors("management", 500, rate=1.0, count=1)
    assert list(mgmt_client.deployments.list(sim.resource_group, sim.account)) == []
    assert sim.admin.stats()["management"]["LIST"] == 4  # one retried transparently


def test_injected_data_plane_errors_are_seen(
    sim: RunningSimulator,
    mgmt_client: CognitiveServicesManagementClient,
    aoai_client: openai.AzureOpenAI,
) -> None:
    deploy_and_warm(mgmt_client, sim, "ft-err")
    sim.admin.inject_errors("data", 500, rate=1.0, count=2)
    for _ in range(2):
        with pytest.raises(openai.InternalServerError) as failed:
            ask(aoai_client, "ft-err")
        assert failed.value.status_code == 500
        assert failed.value.code == "InternalServerError"
    assert ask(aoai_client, "ft-err").usage is not None


def test_an_injected_504_has_each_planes_timeout_body(
    sim: RunningSimulator,
    mgmt_client: CognitiveServicesManagementClient,
    aoai_client: openai.AzureOpenAI,
) -> None:
    deploy_and_warm(mgmt_client, sim, "ft-504s")
    sim.admin.inject_errors("data", 504, rate=1.0, count=1)
    with pytest.raises(openai.InternalServerError) as data_timeout:
        ask(aoai_client, "ft-504s")
    assert data_timeout.value.status_code == 504
    assert data_timeout.value.body == {"code": "Timeout", "message": "The operation was timeout."}
    assert ask(aoai_client, "ft-504s").usage is not None

    sim.admin.inject_errors("management", 504, rate=1.0, count=1)
    with pytest.raises(HttpResponseError) as arm_timeout:
        mgmt_client.deployments.get(sim.resource_group, sim.account, "ft-504s", retry_total=0)
    assert arm_timeout.value.status_code == 504
    assert arm_timeout.value.error is not None
    assert arm_timeout.value.error.code == "GatewayTimeout"
    assert "did not receive a response from 'Microsoft.CognitiveServices'" in str(arm_timeout.value)
    assert (
        provisioning_state(mgmt_client.deployments.get(sim.resource_group, sim.account, "ft-504s"))
        == "Succeeded"
    )


def test_a_seeded_half_rate_with_a_count_fires_reproducibly_and_at_most_count_times(
    sim: RunningSimulator, mgmt_client: CognitiveServicesManagementClient
) -> None:
    seed = sim.admin.config()["seed"]

    def outcomes() -> list[int | None]:
        sim.admin.clear_faults()  # re-seeds the fault dice
        sim.admin.inject_errors("management", 503, rate=0.5, count=3)
        seen: list[int | None] = []
        for _ in range(12):
            try:
                list(mgmt_client.deployments.list(sim.resource_group, sim.account, retry_total=0))
                seen.append(None)
            except HttpResponseError as error:
                assert error.error is not None and error.error.code == "ServiceUnavailable"
                seen.append(error.status_code)
        return seen

    first = outcomes()
    assert first.count(503) == 3  # the count caps a rate that would fire about 6 times in 12
    assert first == outcomes()  # same seed, same request order: same failures
    expected = FaultPlan(seed)
    expected.errors[Plane.MANAGEMENT] = ErrorFault(status=503, rate=0.5, remaining=3)
    assert first == [expected.draw_error(Plane.MANAGEMENT) for _ in range(12)]
    assert sim.admin.faults()["errors"]["management"]["remaining"] == 0


def test_injected_latency_is_added_to_each_request(
    sim: RunningSimulator,
    mgmt_client: CognitiveServicesManagementClient,
    aoai_client: openai.AzureOpenAI,
) -> None:
    deploy_and_warm(mgmt_client, sim, "ft-slow")
    # Latencies far above what a busy machine adds on its own, so "without it" is told apart.
    sim.admin.add_latency("data", 3000)
    sim.admin.add_latency("management", 2000)
    started = time.monotonic()
    ask(aoai_client, "ft-slow")
    assert time.monotonic() - started >= 3.0
    started = time.monotonic()
    mgmt_client.deployments.get(sim.resource_group, sim.account, "ft-slow")
    assert time.monotonic() - started >= 2.0
    sim.admin.clear_faults()
    started = time.monotonic()
    ask(aoai_client, "ft-slow")
    assert time.monotonic() - started < 2.5


def test_token_latency_follows_the_completion_length(
    sim: RunningSimulator,
    mgmt_client: CognitiveServicesManagementClient,
    aoai_client: openai.AzureOpenAI,
) -> None:
    deploy_and_warm(mgmt_client, sim, "ft-tokens")
    sim.admin.configure(token_latency_ms=10, base_latency_ms=20)
    started = time.monotonic()
    response = aoai_client.chat.completions.with_raw_response.create(
        model="ft-tokens", messages=[{"role": "user", "content": "Hello"}], max_tokens=30
    )
    elapsed_ms = (time.monotonic() - started) * 1000
    usage = response.parse().usage
    assert usage is not None
    expected_ms = 20 + 10 * usage.completion_tokens
    assert float(response.headers["x-sim-inference-ms"]) == pytest.approx(expected_ms)
    assert elapsed_ms >= expected_ms


def test_a_vanished_deployment_is_gone_from_both_planes_and_billing_stops(
    sim: RunningSimulator,
    mgmt_client: CognitiveServicesManagementClient,
    aoai_client: openai.AzureOpenAI,
) -> None:
    deploy_and_warm(mgmt_client, sim, "ft-gone")
    ask(aoai_client, "ft-gone")
    sim.admin.vanish("ft-gone")
    with pytest.raises(ResourceNotFoundError):
        mgmt_client.deployments.get(sim.resource_group, sim.account, "ft-gone")
    with pytest.raises(openai.NotFoundError) as missing:
        ask(aoai_client, "ft-gone")
    assert missing.value.code == "DeploymentNotFound"
    (entry,) = sim.admin.billing()["deployments"]
    assert entry["deleted"] is not None
    time.sleep(0.1)
    (later,) = sim.admin.billing()["deployments"]
    assert later["hosted_seconds"] == entry["hosted_seconds"]
    with pytest.raises(SimulatorAdminError) as absent:
        sim.admin.vanish("ft-gone")
    assert absent.value.status == 404


def test_rate_limits_follow_a_capacity_change(
    sim: RunningSimulator,
    mgmt_client: CognitiveServicesManagementClient,
    aoai_client: openai.AzureOpenAI,
) -> None:
    deploy_and_warm(mgmt_client, sim, "ft-cap", capacity=1)
    sim.admin.configure(time_scale=1)  # keep the 10 s request window shut during the test
    ask(aoai_client, "ft-cap")
    with pytest.raises(openai.RateLimitError):
        ask(aoai_client, "ft-cap")
    sim.admin.set_capacity("ft-cap", 3)
    assert ask(aoai_client, "ft-cap").usage is not None
    assert ask(aoai_client, "ft-cap").usage is not None
    with pytest.raises(openai.RateLimitError):
        ask(aoai_client, "ft-cap")
    fetched = mgmt_client.deployments.get(sim.resource_group, sim.account, "ft-cap")
    assert fetched.sku is not None and fetched.sku.capacity == 3
    assert fetched.properties is not None and fetched.properties.rate_limits is not None
    assert {r.key: r.count for r in fetched.properties.rate_limits} == {
        "request": 3,
        "token": 3000,
    }


def test_bad_admin_input_is_refused_with_a_reason(sim: RunningSimulator) -> None:
    with pytest.raises(SimulatorAdminError, match="unknown setting 'warmup'"):
        sim.admin.configure(warmup=1)
    with pytest.raises(SimulatorAdminError, match="'status' must be one of"):
        sim.admin.inject_errors("data", 404, rate=1.0)
    with pytest.raises(SimulatorAdminError, match="'plane' must be"):
        sim.admin.add_latency("storage", 10)
    with pytest.raises(SimulatorAdminError, match="'capacity' must be"):
        sim.admin.set_capacity("anything", 0)
    sim.admin.fail_next_provisionings(2)
    sim.admin.clear_faults()
    assert sim.admin.faults()["fail_provisionings"] == 0
    assert sim.admin.health()["status"] == "ok"


def test_admin_settings_must_be_finite_and_bounded(
    sim: RunningSimulator,
    mgmt_client: CognitiveServicesManagementClient,
    aoai_client: openai.AzureOpenAI,
) -> None:
    deploy_and_warm(mgmt_client, sim, "ft-cfg")
    with pytest.raises(SimulatorAdminError, match="'time_scale' must be at most") as huge:
        sim.admin.configure(time_scale=1e12)
    assert huge.value.status == 400
    with pytest.raises(SimulatorAdminError, match="'provisioning_seconds' must be at most"):
        sim.admin.configure(provisioning_seconds=1e300)
    # requests refuses to send NaN or Infinity, so these bodies go raw.
    hostile = (
        b'{"hourly_rate": NaN}',
        b'{"quota_capacity": Infinity}',
        b'{"time_scale": 1e999}',
        b"[" * 200_000,
    )
    for raw_body in hostile:
        answer = requests.post(
            f"{sim.base_url}/admin/config", data=raw_body, verify=str(sim.ca_path), timeout=10
        )
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "BadRequest"
        assert answer.json()["error"]["message"].startswith("body is not JSON")
    # Nothing was applied: the clock, the billing JSON and both planes still work.
    assert sim.admin.config()["time_scale"] == 600.0
    billing = requests.get(f"{sim.base_url}/admin/billing", verify=str(sim.ca_path), timeout=10)
    json.loads(billing.text, parse_constant=lambda name: pytest.fail(f"billing has {name}"))
    assert ask(aoai_client, "ft-cfg").usage is not None
    assert mgmt_client.deployments.get(sim.resource_group, sim.account, "ft-cfg").name == "ft-cfg"


def one_line_start_failure(args: list[str], env: dict[str, str] | None = None) -> str:
    """Run `python -m simulator` expecting it to refuse to start: status 2 and one line."""
    finished = subprocess.run(
        [sys.executable, "-m", "simulator", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert finished.returncode == 2
    assert finished.stdout == ""
    assert "Traceback" not in finished.stderr
    lines = finished.stderr.strip().splitlines()
    assert len(lines) == 1, finished.stderr
    return lines[0]


def test_a_non_finite_sim_variable_is_one_line_and_status_two() -> None:
    line = one_line_start_failure(["--port", "0"], env={"SIM_TIME_SCALE": "nan"})
    assert "'time_scale' must be a finite number" in line


def test_sigterm_stops_the_process_with_status_zero(tmp_path: Path) -> None:
    running = start_simulator(state_dir=tmp_path)
    assert running.admin.health()["pid"] == running.pid
    running.process.send_signal(signal.SIGTERM)
    assert running.process.wait(timeout=15) == 0
    running.stop()
    assert "Traceback" not in running.log_path.read_text()


def test_a_busy_port_is_one_line_on_stderr_and_status_two() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        line = one_line_start_failure(["--port", str(port)])
    assert f"cannot listen on 127.0.0.1:{port}" in line
    assert "in use" in line


def test_a_failed_start_raises_with_the_log_tail(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="exited with status 2") as failed:
        start_simulator(state_dir=tmp_path, extra_args=["--time-scale", "0"])
    assert "time_scale" in str(failed.value)


def test_an_unexpected_error_is_an_azure_shaped_500_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = SimulatorState(SimulatorConfig(), ManualClock())

    def broken() -> list[Any]:
        raise RuntimeError("bug in the simulator")

    monkeypatch.setattr(state, "list_deployments", broken)
    path = (
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-local/providers/"
        "Microsoft.CognitiveServices/accounts/aoai-local/deployments?api-version=2025-09-01"
    )

    async def call() -> tuple[int, Any, str]:
        async with test_utils.TestClient(test_utils.TestServer(create_app(state))) as client:
            answer = await client.get(path, headers={"Authorization": "Bearer x"})
            return answer.status, await answer.json(), answer.headers["x-ms-request-id"]

    status, body, request_id = asyncio.run(call())
    assert status == 500
    assert body == {
        "error": {
            "code": "InternalServerError",
            "message": "Encountered internal server error. Please try again.",
        }
    }
    assert request_id


def test_a_start_that_times_out_leaves_no_process(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"did not report ready within 0\.01 s"):
        start_simulator(state_dir=tmp_path, startup_timeout=0.01)
