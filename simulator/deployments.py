"""Deployments of the one simulated account: lifecycle, provisioning state machine, operations.

Nothing here runs in the background. Each deployment records the simulated instants of its
transitions when it is created or deleted (Accepted until `accepted_until`, Creating until
`ready_at`, then Succeeded or Failed; serving on the data plane from `serving_at`; gone at
`deletion_ends_at`), and every read computes the state for "now". That keeps the model
deterministic and unit-testable with a hand-moved clock.

A `Deployment` object is one lifecycle: from the PUT that created it to the moment it was
deleted, vanished, or replaced by a re-create after Failed. The store keeps every lifecycle
ever started so the billing meter can account for all of them.

Deployment names are case-insensitive, as ARM resource names are: `FT1` finds, updates or
deletes `ft1`, and the resource keeps the spelling it was created with. Quota is counted per
SKU (deployment type) and base model, the unit Azure's quota is kept in; a fine-tuned model
`<base>.ft-<id>` draws on its base model's quota.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from simulator.config import SimulatorConfig
from simulator.errors import ApiError, arm_error
from simulator.jsonbody import BodyNotJson, decode_body
from simulator.ratelimit import SlidingWindowRateLimiter

logger = logging.getLogger(__name__)

SKU_NAMES = ("Standard", "GlobalStandard", "DeveloperTier", "ProvisionedManaged")
FINE_TUNED_MARKER = ".ft-"
_DEPLOYMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ProvisioningState(StrEnum):
    ACCEPTED = "Accepted"
    CREATING = "Creating"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    DELETING = "Deleting"


class OperationStatus(StrEnum):
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELED = "Canceled"


class OperationKind(StrEnum):
    CREATE = "create"
    DELETE = "delete"


IN_FLIGHT_STATES = frozenset(
    {ProvisioningState.ACCEPTED, ProvisioningState.CREATING, ProvisioningState.DELETING}
)


@dataclass
class DeploymentSpec:
    """What a PUT asks for."""

    sku_name: str
    capacity: int
    model_format: str
    model_name: str
    model_version: str
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def is_fine_tuned(self) -> bool:
        return FINE_TUNED_MARKER in self.model_name

    @property
    def base_model(self) -> str:
        """The model whose quota this deployment uses: `base` for `base.ft-<id>`."""
        return base_model_name(self.model_name)


def base_model_name(model_name: str) -> str:
    return model_name.split(FINE_TUNED_MARKER, 1)[0]


def name_key(name: str) -> str:
    """The key a deployment name is looked up by: ARM resource names ignore case."""
    return name.lower()


@dataclass
class Deployment:
    """One lifecycle of a named deployment, with the instants of its transitions."""

    name: str
    spec: DeploymentSpec
    created_at: float
    accepted_until: float
    ready_at: float
    serving_at: float
    create_operation_id: str
    modified_at: float
    etag: str
    fails_provisioning: bool = False
    deletion_started_at: float | None = None
    deletion_ends_at: float | None = None
    delete_operation_id: str | None = None
    cooldown_seconds: float = 0.0
    vanished_at: float | None = None
    replaced_at: float | None = None
    rate_limiter: SlidingWindowRateLimiter = field(
        default_factory=SlidingWindowRateLimiter, repr=False
    )

    def ended_at(self, now: float) -> float | None:
        """When this lifecycle stopped existing, if it has by `now`."""
        endings = [t for t in (self.vanished_at, self.replaced_at) if t is not None]
        if self.deletion_ends_at is not None and self.deletion_ends_at <= now:
            endings.append(self.deletion_ends_at)
        return min(endings) if endings else None

    def state(self, now: float) -> ProvisioningState:
        if self.deletion_started_at is not None:
            return ProvisioningState.DELETING
        if now < self.accepted_until:
            return ProvisioningState.ACCEPTED
        if now < self.ready_at:
            return ProvisioningState.CREATING
        return ProvisioningState.FAILED if self.fails_provisioning else ProvisioningState.SUCCEEDED

    def is_serving(self, now: float) -> bool:
        """Whether the data plane answers for it (Succeeded and past the warm-up)."""
        return self.state(now) is ProvisioningState.SUCCEEDED and now >= self.serving_at

    def creation_interrupted_at(self) -> float | None:
        """When a delete or a vanish cut the creation short, if one did."""
        cuts = [
            t
            for t in (self.deletion_started_at, self.vanished_at)
            if t is not None and t < self.ready_at
        ]
        return min(cuts) if cuts else None


@dataclass(frozen=True)
class OperationView:
    """An async operation's status as ARM reports it."""

    operation_id: str
    kind: OperationKind
    deployment_name: str
    status: OperationStatus
    started_at: float
    ended_at: float | None
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class PutOutcome:
    """What a PUT did: started a creation (`created`) or updated a Succeeded deployment."""

    deployment: Deployment
    created: bool


def new_etag() -> str:
    return f'"{uuid.uuid4()}"'


class DeploymentStore:
    """The deployments of the account and the async operations that act on them."""

    def __init__(self, config: SimulatorConfig) -> None:
        self._config = config
        self._active: dict[str, Deployment] = {}
        self._history: list[Deployment] = []
        self._operations: dict[str, tuple[OperationKind, Deployment]] = {}
        self._name_free_at: dict[str, float] = {}

    # --- reading -------------------------------------------------------------------------------

    def settle(self, now: float) -> None:
        """Drop lifecycles that have ended by `now`; a finished delete starts the cooldown."""
        for key, deployment in list(self._active.items()):
            ended = deployment.ended_at(now)
            if ended is None:
                continue
            del self._active[key]
            if deployment.deletion_ends_at is not None and deployment.deletion_ends_at == ended:
                self._name_free_at[key] = ended + deployment.cooldown_seconds
            logger.info("deployment %s is gone (ended at sim %.1f)", deployment.name, ended)

    def find(self, name: str, now: float) -> Deployment | None:
        self.settle(now)
        return self._active.get(name_key(name))

    def get(self, name: str, now: float) -> Deployment:
        deployment = self.find(name, now)
        if deployment is None:
            raise self._not_found(name)
        return deployment

    def list_active(self, now: float) -> list[Deployment]:
        self.settle(now)
        return sorted(self._active.values(), key=lambda d: d.created_at)

    def history(self) -> list[Deployment]:
        """Every lifecycle ever started, oldest first (the billing meter's input)."""
        return list(self._history)

    def operation(self, operation_id: str, now: float) -> OperationView | None:
        self.settle(now)
        entry = self._operations.get(operation_id)
        if entry is None:
            return None
        kind, deployment = entry
        if kind is OperationKind.CREATE:
            return _create_operation_view(operation_id, deployment, now)
        return _delete_operation_view(operation_id, deployment, now)

    # --- writing -------------------------------------------------------------------------------

    def put(self, name: str, spec: DeploymentSpec, now: float) -> PutOutcome:
        """Create, re-create (after Failed) or update in place; raise ARM errors otherwise."""
        validate_deployment_name(name)
        existing = self.find(name, now)
        if existing is not None:
            state = existing.state(now)
            if state in IN_FLIGHT_STATES:
                raise arm_error(
                    409,
                    "Conflict",
                    f"Cannot modify deployment '{existing.name}': another operation is in "
                    f"progress on it (provisioningState {state}). Wait for that operation to "
                    "complete.",
                )
            if state is ProvisioningState.SUCCEEDED:
                return PutOutcome(self._update_in_place(existing, spec, now), created=False)
        else:
            free_at = self._name_free_at.get(name_key(name))
            if free_at is not None and now < free_at:
                raise arm_error(
                    409,
                    "DeploymentRecentlyDeleted",
                    f"The deployment '{name}' was deleted recently and its name cannot be reused "
                    "yet. Please wait a moment and try again.",
                )
        self._check_fine_tuned_limit(name, spec, now)
        self._check_quota(name, spec, existing, now)
        if existing is not None:
            # Re-creating over a Failed deployment replaces that resource.
            existing.replaced_at = now
            del self._active[name_key(name)]
        return PutOutcome(self._start_creation(name, spec, now), created=True)

    def delete(self, name: str, now: float) -> Deployment | None:
        """Start (or join) the deletion; None when there is nothing to delete."""
        deployment = self.find(name, now)
        if deployment is None:
            return None
        if deployment.deletion_started_at is not None:
            return deployment
        deployment.deletion_started_at = now
        deployment.deletion_ends_at = now + self._config.deletion_seconds
        deployment.cooldown_seconds = self._config.recreate_cooldown_seconds
        deployment.delete_operation_id = _new_operation_id()
        deployment.modified_at = now
        deployment.etag = new_etag()
        self._operations[deployment.delete_operation_id] = (OperationKind.DELETE, deployment)
        if now < deployment.ready_at:
            logger.info("deployment %s deleted while provisioning: creation canceled", name)
        return deployment

    def vanish(self, name: str, now: float) -> Deployment:
        """Remove a deployment at once, as if Azure deleted it behind the client's back."""
        deployment = self.get(name, now)
        deployment.vanished_at = now
        del self._active[name_key(name)]
        return deployment

    def set_capacity(self, name: str, capacity: int, now: float) -> Deployment:
        deployment = self.get(name, now)
        deployment.spec.capacity = capacity
        deployment.modified_at = now
        deployment.etag = new_etag()
        return deployment

    def clear(self) -> None:
        self._active.clear()
        self._history.clear()
        self._operations.clear()
        self._name_free_at.clear()

    # --- helpers -------------------------------------------------------------------------------

    def _start_creation(self, name: str, spec: DeploymentSpec, now: float) -> Deployment:
        config = self._config
        ready_at = now + config.provisioning_seconds
        deployment = Deployment(
            name=name,
            spec=spec,
            created_at=now,
            accepted_until=min(now + config.accepted_seconds, ready_at),
            ready_at=ready_at,
            serving_at=ready_at + config.warmup_seconds,
            create_operation_id=_new_operation_id(),
            modified_at=now,
            etag=new_etag(),
        )
        self._active[name_key(name)] = deployment
        self._history.append(deployment)
        self._operations[deployment.create_operation_id] = (OperationKind.CREATE, deployment)
        self._name_free_at.pop(name_key(name), None)
        logger.info("deployment %s accepted (model %s)", name, spec.model_name)
        return deployment

    def _update_in_place(
        self, existing: Deployment, spec: DeploymentSpec, now: float
    ) -> Deployment:
        if spec.model_name != existing.spec.model_name:
            raise arm_error(
                400,
                "InvalidResourceProperties",
                f"The model of deployment '{existing.name}' cannot be changed from "
                f"'{existing.spec.model_name}' to '{spec.model_name}'. Delete the deployment "
                "and create it again.",
            )
        self._check_quota(existing.name, spec, existing, now)
        existing.spec = spec
        existing.modified_at = now
        existing.etag = new_etag()
        return existing

    def _check_fine_tuned_limit(self, name: str, spec: DeploymentSpec, now: float) -> None:
        if not spec.is_fine_tuned:
            return
        limit = self._config.max_fine_tuned_deployments
        others = [
            d
            for d in self.list_active(now)
            if name_key(d.name) != name_key(name) and d.spec.is_fine_tuned
        ]
        if len(others) >= limit:
            raise arm_error(
                400,
                "InvalidResourceProperties",
                f"The account '{self._config.account}' already has {len(others)} fine-tuned "
                f"model deployments, the limit of {limit} fine-tuned deployments per resource. "
                "Delete a fine-tuned deployment before creating another.",
            )

    def _check_quota(
        self, name: str, spec: DeploymentSpec, existing: Deployment | None, now: float
    ) -> None:
        limit = self._config.quota_capacity
        quota_key = _quota_key(spec)
        same_quota = [d for d in self.list_active(now) if _quota_key(d.spec) == quota_key]
        used = sum(d.spec.capacity for d in same_quota)
        already_held = (
            existing.spec.capacity
            if existing is not None and _quota_key(existing.spec) == quota_key
            else 0
        )
        required = spec.capacity - already_held
        available = max(0, limit - used)
        if required > available:
            quota_name = f"OpenAI.{spec.sku_name}.{spec.base_model}"
            raise arm_error(
                400,
                "InsufficientQuota",
                f"This operation require {required} new capacity in quota {quota_name}, which is "
                f"bigger than the current available capacity {available}. The current quota "
                f"usage is {used} and the quota limit is {limit} for quota {quota_name}.",
            )

    def _not_found(self, name: str) -> ApiError:
        return arm_error(
            404,
            "DeploymentNotFound",
            f"The deployment '{name}' of account '{self._config.account}' was not found.",
        )


def _quota_key(spec: DeploymentSpec) -> tuple[str, str]:
    """What a deployment's capacity is counted against: its SKU and its base model."""
    return spec.sku_name, spec.base_model


def validate_deployment_name(name: str) -> None:
    if not _DEPLOYMENT_NAME.match(name):
        raise arm_error(
            400,
            "InvalidResourceName",
            f"The deployment name '{name}' is invalid. It must be 1 to 64 characters of letters, "
            "digits, '-', '_' and '.', starting with a letter or digit.",
        )


def _new_operation_id() -> str:
    return str(uuid.uuid4())


def _create_operation_view(operation_id: str, deployment: Deployment, now: float) -> OperationView:
    def view(
        status: OperationStatus,
        ended: float | None,
        code: str | None = None,
        message: str | None = None,
    ) -> OperationView:
        return OperationView(
            operation_id=operation_id,
            kind=OperationKind.CREATE,
            deployment_name=deployment.name,
            status=status,
            started_at=deployment.created_at,
            ended_at=ended,
            error_code=code,
            error_message=message,
        )

    interrupted = deployment.creation_interrupted_at()
    if interrupted is not None and interrupted <= now:
        if deployment.vanished_at == interrupted:
            return view(
                OperationStatus.FAILED,
                interrupted,
                "DeploymentFailed",
                f"The deployment '{deployment.name}' was removed while it was being created.",
            )
        return view(OperationStatus.CANCELED, interrupted)
    if now < deployment.ready_at:
        return view(OperationStatus.IN_PROGRESS, None)
    if deployment.fails_provisioning:
        return view(
            OperationStatus.FAILED,
            deployment.ready_at,
            "DeploymentFailed",
            f"The deployment '{deployment.name}' failed to provision: the model "
            f"'{deployment.spec.model_name}' could not be loaded. Delete the deployment and "
            "try again.",
        )
    return view(OperationStatus.SUCCEEDED, deployment.ready_at)


def _delete_operation_view(operation_id: str, deployment: Deployment, now: float) -> OperationView:
    started = deployment.deletion_started_at
    ends = deployment.deletion_ends_at
    assert started is not None and ends is not None  # a delete operation always has both
    ended: float | None = None
    if deployment.vanished_at is not None and deployment.vanished_at < ends:
        ended = deployment.vanished_at
    elif now >= ends:
        ended = ends
    return OperationView(
        operation_id=operation_id,
        kind=OperationKind.DELETE,
        deployment_name=deployment.name,
        status=OperationStatus.IN_PROGRESS if ended is None else OperationStatus.SUCCEEDED,
        started_at=started,
        ended_at=ended,
    )


def parse_deployment_spec(raw_body: bytes) -> DeploymentSpec:
    """Validate a PUT body the way ARM does; raise its 400 answers naming the bad field."""
    try:
        body = decode_body(raw_body) if raw_body.strip() else None
    except BodyNotJson as error:
        raise arm_error(
            400,
            "InvalidRequestContent",
            f"The request content was invalid and could not be deserialized: '{error}'.",
        ) from None
    if not isinstance(body, dict):
        raise arm_error(
            400,
            "InvalidRequestContent",
            "The request content was invalid and could not be deserialized: the body must be "
            "a JSON object.",
        )
    sku = body.get("sku")
    if not isinstance(sku, dict):
        raise _invalid_property("sku", "The 'sku' property is required and must be an object.")
    sku_name = sku.get("name")
    if sku_name not in SKU_NAMES:
        raise _invalid_property(
            "sku.name",
            f"The specified SKU '{sku_name}' (sku.name) is not supported. Supported SKUs are "
            f"{', '.join(SKU_NAMES)}.",
        )
    capacity = sku.get("capacity")
    if isinstance(capacity, float) and capacity.is_integer():
        capacity = int(capacity)
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
        raise arm_error(
            400,
            "InvalidCapacity",
            f"The specified capacity '{capacity}' (sku.capacity) of account deployment should "
            "be at least 1.",
        )
    properties = body.get("properties")
    model = properties.get("model") if isinstance(properties, dict) else None
    if not isinstance(model, dict):
        raise _invalid_property("properties.model", "The 'properties.model' property is required.")
    for field_name in ("format", "name"):
        if not isinstance(model.get(field_name), str) or not model[field_name]:
            raise _invalid_property(
                f"properties.model.{field_name}",
                f"The 'properties.model.{field_name}' property is required.",
            )
    version = model.get("version")
    if version is None:
        version = "1"
    elif not isinstance(version, str) or not version:
        raise _invalid_property(
            "properties.model.version",
            f"The 'properties.model.version' property must be a non-empty string, got "
            f"{_json_excerpt(version)}.",
        )
    # Only an absent or null `tags` means "no tags"; [] or "" is a malformed request.
    tags = body.get("tags")
    if tags is None:
        tags = {}
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise _invalid_property(
            "tags",
            f"The 'tags' property must be an object mapping names to string values, got "
            f"{_json_excerpt(tags)}.",
        )
    return DeploymentSpec(
        sku_name=sku_name,
        capacity=capacity,
        model_format=model["format"],
        model_name=model["name"],
        model_version=version,
        tags=dict(tags),
    )


def _json_excerpt(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _invalid_property(field_name: str, message: str) -> ApiError:
    logger.debug("rejected PUT body: bad %s", field_name)
    return arm_error(400, "InvalidResourceProperties", message)
