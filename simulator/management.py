"""HTTP routes of the simulated ARM management plane for Microsoft.CognitiveServices deployments.

Serves exactly what `azure-mgmt-cognitiveservices` 14.x sends: PUT/GET/DELETE of
`.../accounts/{account}/deployments/{name}`, the collection GET, and the two async-operation
monitors a poller follows (`operationsStatus` from `Azure-AsyncOperation` after a PUT,
`operationResults` from `Location` after a DELETE). ARM path segments are case-insensitive,
so the path is parsed by hand rather than by the router.

azure-core's RetryPolicy retries any 4xx/5xx that carries `Retry-After`, so that header only
ever appears on 2xx LRO answers here. It also prefers `Retry-After` over `retry-after-ms` and
treats `Retry-After: 0` as "no hint" (falling back to the client's polling_interval), so a
wait under one real second is sent as `retry-after-ms` alone.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from simulator.clock import iso_timestamp
from simulator.deployments import Deployment, OperationKind, OperationStatus, OperationView
from simulator.errors import ApiError, arm_error
from simulator.faults import Plane
from simulator.http_common import apply_plane_faults, json_answer, state_of
from simulator.ratelimit import request_limit, token_limit
from simulator.state import SimulatorState

logger = logging.getLogger(__name__)

PROVIDER = "Microsoft.CognitiveServices"
DEPLOYMENT_TYPE = f"{PROVIDER}/accounts/deployments"
# The stable api-versions of Microsoft.CognitiveServices deployments the simulator serves:
# 2025-09-01 is what azure-mgmt-cognitiveservices 14.1 sends by default. ARM refuses any other
# version of the resource type, so a typo here fails locally as it would in Azure.
KNOWN_API_VERSIONS = ("2023-05-01", "2024-10-01", "2025-06-01", "2025-09-01")


@dataclass(frozen=True)
class ArmTarget:
    """What an ARM path addresses."""

    kind: str  # "deployment", "deployments", "operationsStatus", "operationResults"
    subscription_id: str
    resource_group: str | None = None
    account: str | None = None
    name: str | None = None  # deployment name or operation id
    location: str | None = None


def parse_arm_path(path: str) -> ArmTarget | None:
    parts = [p for p in path.split("/") if p]
    lower = [p.lower() for p in parts]
    if len(parts) in (9, 10) and (
        lower[0] == "subscriptions"
        and lower[2] == "resourcegroups"
        and lower[4] == "providers"
        and lower[5] == PROVIDER.lower()
        and lower[6] == "accounts"
        and lower[8] == "deployments"
    ):
        return ArmTarget(
            kind="deployment" if len(parts) == 10 else "deployments",
            subscription_id=parts[1],
            resource_group=parts[3],
            account=parts[7],
            name=parts[9] if len(parts) == 10 else None,
        )
    if len(parts) == 8 and (
        lower[0] == "subscriptions"
        and lower[2] == "providers"
        and lower[3] == PROVIDER.lower()
        and lower[4] == "locations"
        and lower[6] in ("operationsstatus", "operationresults")
    ):
        return ArmTarget(
            kind="operationsStatus" if lower[6] == "operationsstatus" else "operationResults",
            subscription_id=parts[1],
            location=parts[5],
            name=parts[7],
        )
    return None


def _stats_kind(method: str, target: ArmTarget | None) -> str:
    if method == "PUT":
        return "PUT"
    if method == "DELETE":
        return "DELETE"
    if target is not None and target.kind in ("operationsStatus", "operationResults"):
        return "POLL"
    if target is not None and target.kind == "deployments":
        return "LIST"
    return "GET"


def _check_authorization(request: web.Request) -> None:
    header = request.headers.get("Authorization")
    if not header:
        raise arm_error(
            401,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
        )
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise arm_error(
            401,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is provided in an invalid format.",
        )


def _api_version(request: web.Request) -> str:
    version = request.query.get("api-version")
    if version is None or not version.strip():
        raise arm_error(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    if version not in KNOWN_API_VERSIONS:
        raise arm_error(
            400,
            "InvalidApiVersionParameter",
            f"The api-version '{version}' is invalid. The supported versions are "
            f"'{','.join(KNOWN_API_VERSIONS)}'.",
        )
    return version


def _check_scope(state: SimulatorState, target: ArmTarget) -> None:
    config = state.config
    if target.subscription_id.lower() != config.subscription_id.lower():
        raise arm_error(
            404,
            "SubscriptionNotFound",
            f"The subscription '{target.subscription_id}' could not be found.",
        )
    if target.resource_group is not None and (
        target.resource_group.lower() != config.resource_group.lower()
    ):
        raise arm_error(
            404,
            "ResourceGroupNotFound",
            f"Resource group '{target.resource_group}' could not be found.",
        )
    if target.account is not None and target.account.lower() != config.account.lower():
        raise arm_error(
            404,
            "ResourceNotFound",
            f"The Resource '{PROVIDER}/accounts/{target.account}' under resource group "
            f"'{target.resource_group}' was not found. For more details please go to "
            "https://aka.ms/ARMResourceNotFoundFix",
        )


def deployment_view(state: SimulatorState, deployment: Deployment) -> dict[str, Any]:
    """The ARM resource body of a deployment as of now."""
    config = state.config
    spec = deployment.spec
    now = state.now()
    resource_id = (
        f"/subscriptions/{config.subscription_id}/resourceGroups/{config.resource_group}"
        f"/providers/{PROVIDER}/accounts/{config.account}/deployments/{deployment.name}"
    )
    return {
        "id": resource_id,
        "name": deployment.name,
        "type": DEPLOYMENT_TYPE,
        "sku": {"name": spec.sku_name, "capacity": spec.capacity},
        "tags": dict(spec.tags),
        "etag": deployment.etag,
        "systemData": {
            "createdBy": "simulator",
            "createdByType": "User",
            "createdAt": iso_timestamp(deployment.created_at),
            "lastModifiedBy": "simulator",
            "lastModifiedByType": "User",
            "lastModifiedAt": iso_timestamp(deployment.modified_at),
        },
        "properties": {
            "model": {
                "format": spec.model_format,
                "name": spec.model_name,
                "version": spec.model_version,
            },
            "provisioningState": deployment.state(now).value,
            "versionUpgradeOption": "NoAutoUpgrade",
            "currentCapacity": spec.capacity,
            "raiPolicyName": "Microsoft.DefaultV2",
            "capabilities": {
                "chatCompletion": "true",
                "maxContextToken": str(config.context_tokens),
                "maxOutputToken": str(config.max_output_tokens),
            },
            "rateLimits": [
                {"key": "request", "renewalPeriod": 10, "count": request_limit(spec.capacity)},
                {"key": "token", "renewalPeriod": 60, "count": token_limit(spec.capacity)},
            ],
        },
    }


def _operation_url(request: web.Request, state: SimulatorState, monitor: str, op_id: str) -> str:
    config = state.config
    return (
        f"https://{request.host}/subscriptions/{config.subscription_id}/providers/{PROVIDER}"
        f"/locations/{config.location}/{monitor}/{op_id}?api-version={request.query['api-version']}"
    )


def _poll_hint_headers(state: SimulatorState) -> dict[str, str]:
    real = state.real_seconds(state.config.poll_retry_after_seconds)
    headers = {"retry-after-ms": str(max(1, round(real * 1000)))}
    if real >= 1:
        headers["Retry-After"] = str(math.ceil(real - 1e-9))
    return headers


def operation_view_body(state: SimulatorState, view: OperationView) -> dict[str, Any]:
    config = state.config
    body: dict[str, Any] = {
        "id": f"/subscriptions/{config.subscription_id}/providers/{PROVIDER}/locations/"
        f"{config.location}/operationsStatus/{view.operation_id}",
        "name": view.operation_id,
        "status": view.status.value,
        "startTime": iso_timestamp(view.started_at),
    }
    if view.ended_at is not None:
        body["endTime"] = iso_timestamp(view.ended_at)
    if view.status is OperationStatus.FAILED:
        body["error"] = {"code": view.error_code, "message": view.error_message}
    return body


async def handle_arm(request: web.Request) -> web.StreamResponse:
    """Every request under /subscriptions."""
    state = state_of(request)
    target = parse_arm_path(request.path)
    state.count_management(_stats_kind(request.method, target))
    await apply_plane_faults(state, Plane.MANAGEMENT)
    _check_authorization(request)
    _api_version(request)
    if target is None:
        raise arm_error(
            404,
            "InvalidResourceType",
            f"The resource type could not be found for path '{request.path}'.",
        )
    _check_scope(state, target)
    method = request.method
    if target.kind == "deployment" and target.name is not None:
        if method == "PUT":
            return await _put(request, state, target.name)
        if method == "GET":
            return json_answer(deployment_view(state, state.get_deployment(target.name)))
        if method == "DELETE":
            return _delete(request, state, target.name)
    elif target.kind == "deployments" and method == "GET":
        return json_answer({"value": [deployment_view(state, d) for d in state.list_deployments()]})
    elif target.kind in ("operationsStatus", "operationResults") and method == "GET":
        return _poll(request, state, target)
    raise arm_error(
        405,
        "MethodNotAllowed",
        f"The requested resource does not support http method '{method}'.",
    )


async def _put(request: web.Request, state: SimulatorState, name: str) -> web.Response:
    result = state.put_deployment(name, await request.read())
    deployment = result.outcome.deployment
    if result.gateway_timeout:
        logger.info("answering 504 for the PUT that started %s (fault)", name)
        raise arm_error(
            504,
            "GatewayTimeout",
            "The gateway did not receive a response from 'Microsoft.CognitiveServices' within "
            "the specified time period.",
        )
    body = deployment_view(state, deployment)
    if not result.outcome.created:
        # No monitor header: the SDK's poller reads provisioningState and finishes at once.
        return json_answer(body, status=200)
    headers = {
        "Azure-AsyncOperation": _operation_url(
            request, state, "operationsStatus", deployment.create_operation_id
        ),
        **_poll_hint_headers(state),
    }
    return json_answer(body, status=201, headers=headers)


def _delete(request: web.Request, state: SimulatorState, name: str) -> web.Response:
    deployment = state.delete_deployment(name)
    if deployment is None or deployment.delete_operation_id is None:
        return web.Response(status=204)
    headers = {
        "Location": _operation_url(
            request, state, "operationResults", deployment.delete_operation_id
        ),
        **_poll_hint_headers(state),
    }
    return web.Response(status=202, headers=headers)


def _poll(request: web.Request, state: SimulatorState, target: ArmTarget) -> web.Response:
    assert target.name is not None  # the path parser always sets it for monitors
    if target.location is not None and target.location.lower() != state.config.location.lower():
        raise _operation_not_found(target.name)
    view = state.operation(target.name)
    if view is None:
        raise _operation_not_found(target.name)
    in_progress = view.status is OperationStatus.IN_PROGRESS
    if target.kind == "operationsStatus":
        headers = _poll_hint_headers(state) if in_progress else {}
        return json_answer(operation_view_body(state, view), headers=headers)
    # operationResults: 202 while running, then the operation's result.
    if in_progress:
        headers = {
            "Location": _operation_url(request, state, "operationResults", view.operation_id),
            **_poll_hint_headers(state),
        }
        return web.Response(status=202, headers=headers)
    if view.status is not OperationStatus.SUCCEEDED:
        raise arm_error(
            400 if view.status is OperationStatus.FAILED else 409,
            view.error_code or "OperationCanceled",
            view.error_message or f"The operation '{view.operation_id}' was canceled.",
        )
    if view.kind is OperationKind.CREATE:
        return json_answer(deployment_view(state, state.get_deployment(view.deployment_name)))
    return web.Response(status=200)


def _operation_not_found(operation_id: str) -> ApiError:
    return arm_error(
        404,
        "OperationNotFound",
        f"The operation '{operation_id}' could not be found.",
    )


def add_routes(app: web.Application) -> None:
    app.router.add_route("*", "/subscriptions/{tail:.*}", handle_arm)
