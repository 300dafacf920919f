"""Thin adapter over azure-mgmt-cognitiveservices for the one thing the app manages.

It turns SDK models and errors into plain values (`DeploymentSnapshot`) and clear
`ProvisioningError`s, and leaves every decision to `provisioner.py`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.core.polling import LROPoller
from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient
from azure.mgmt.cognitiveservices.models import (
    Deployment,
    DeploymentModel,
    DeploymentProperties,
    Sku,
)
from azure.mgmt.core.polling.arm_polling import ARMPolling

logger = logging.getLogger(__name__)

OWNER_TAG_KEY = "managed-by"
# The role infra/ gives the app: deployments read, write, delete and inference, no key access.
MANAGEMENT_ROLE = "Cognitive Services OpenAI Contributor (a001fd3d-188f-4b5d-821b-7da978bf7442)"
TRANSITIONAL_STATES = frozenset({"Accepted", "Creating", "Deleting", "Moving"})
RECREATE_STATES = frozenset({"Failed", "Canceled"})
FINE_TUNED_MARKER = ".ft-"


@dataclass(frozen=True)
class DeploymentSpec:
    """What the app deploys: the fine-tuned model, SKU and capacity, and its ownership tag."""

    name: str
    model_name: str
    model_version: str
    sku: str
    capacity: int
    owner_tag: str
    # Where a person changes the capacity, for error messages.
    capacity_setting: str = "the model's capacity"


@dataclass(frozen=True)
class DeploymentSnapshot:
    """Azure's view of one deployment at one moment."""

    name: str
    exists: bool
    provisioning_state: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    created_at: datetime | None = None
    capacity: int | None = None
    model_name: str | None = None
    model_version: str | None = None

    def owned_by(self, owner_tag: str) -> bool:
        return self.tags.get(OWNER_TAG_KEY) == owner_tag

    @property
    def is_fine_tuned(self) -> bool:
        # Fine-tuned model ids are `<base>.ft-<job>`; the account limit counts only those.
        return self.model_name is not None and FINE_TUNED_MARKER in self.model_name


class ProvisioningError(Exception):
    """The deployment could not be made ready; `reason` says why and what to do."""

    def __init__(self, reason: str, *, code: str = "provisioning_failed", retryable: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.retryable = retryable


def error_code(error: HttpResponseError) -> str | None:
    """The ARM error code (`InsufficientQuota`, `Conflict`, ...) of an SDK error, if any."""
    odata = getattr(error, "error", None)
    code = getattr(odata, "code", None)
    return str(code) if code else None


def describe_create_error(error: HttpResponseError, spec: DeploymentSpec) -> ProvisioningError:
    """Turn a failed create into a message a person can act on."""
    code = error_code(error) or str(error.status_code)
    message = getattr(getattr(error, "error", None), "message", None) or str(error)
    if code == "InsufficientQuota":
        return ProvisioningError(
            f"Azure refused to create deployment {spec.name!r} with capacity {spec.capacity}: "
            f"not enough {spec.sku} quota for base model {base_model(spec.model_name)!r} "
            f"({message}). Lower {spec.capacity_setting} or request more quota for this "
            "model, deployment type and region.",
            code="insufficient_quota",
        )
    if "fine-tuned" in message.lower() or "fine tuned" in message.lower():
        return ProvisioningError(
            f"Azure refused to create deployment {spec.name!r}: the account already has the "
            f"maximum number of fine-tuned deployments ({message}). Delete an unused fine-tuned "
            "deployment or use another Azure OpenAI resource.",
            code="deployment_limit",
        )
    return ProvisioningError(
        f"Azure refused to create deployment {spec.name!r} ({code}): {message}",
        code="create_refused",
        retryable=error.status_code is not None and error.status_code >= 500,
    )


def base_model(model_name: str) -> str:
    """The base model whose quota a fine-tuned model draws on: `base` for `base.ft-<job>`."""
    return model_name.split(FINE_TUNED_MARKER, 1)[0]


class PatientArmPolling(ARMPolling):
    """ARM polling that never polls faster than the app's interval, backing off to 4x it.

    A fine-tuned deployment takes minutes to provision while ARM may ask for a poll every few
    seconds; each poll is a management call, so the app waits at least its own interval and
    lengthens it by half on each poll up to four times (15 s growing to 60 s by default).
    The SDK still does every other part of the long-running operation.
    """

    def __init__(self, interval: float, **kwargs: Any) -> None:
        super().__init__(interval, **kwargs)
        self._next_interval = interval
        self._max_interval = 4 * interval

    def _extract_delay(self) -> float:
        server_asked = float(super()._extract_delay())
        delay = max(server_asked, self._next_interval)
        self._next_interval = min(self._next_interval * 1.5, self._max_interval)
        return delay


class AzureDeployments:
    """Management-plane calls for deployments of one Azure OpenAI account."""

    def __init__(
        self,
        client: CognitiveServicesManagementClient,
        *,
        resource_group: str,
        account: str,
        polling_interval: float,
        resolve_spec: Callable[[DeploymentSpec], DeploymentSpec] | None = None,
    ) -> None:
        self._client = client
        # What a create sends may differ from the catalog's spec: a promoted model replaces
        # the declared one (shared/evaluation/promotion.py), read at each create.
        self._resolve_spec = resolve_spec
        self._resource_group = resource_group
        self._account = account
        self._polling_interval = polling_interval

    @contextlib.contextmanager
    def _refusals_named(self, action: str) -> Iterator[None]:
        """A 401 or 403 is a missing role, not a passing fault: say which role, at once."""
        try:
            yield
        except HttpResponseError as error:
            if not isinstance(error, ClientAuthenticationError) and error.status_code not in (
                401,
                403,
            ):
                raise
            message = getattr(getattr(error, "error", None), "message", None) or str(error)
            raise ProvisioningError(
                f"the management API refused to let the app's identity {action} on account "
                f"{self._account!r} ({error.status_code} {error_code(error) or ''}: "
                f"{message}). Give the app's managed identity the {MANAGEMENT_ROLE} role on the "
                "account.",
                code="not_authorized",
            ) from error

    def get(self, name: str) -> DeploymentSnapshot:
        try:
            with self._refusals_named(f"read deployment {name!r}"):
                deployment = self._client.deployments.get(self._resource_group, self._account, name)
        except ResourceNotFoundError:
            return DeploymentSnapshot(name=name, exists=False)
        return _snapshot(deployment)

    def list(self) -> list[DeploymentSnapshot]:
        with self._refusals_named("list deployments"):
            return [
                _snapshot(d)
                for d in self._client.deployments.list(self._resource_group, self._account)
            ]

    def begin_create(self, spec: DeploymentSpec) -> LROPoller[Deployment]:
        """Send the create and follow it with the SDK's poller (a thread polls until done)."""
        with self._refusals_named(f"create deployment {spec.name!r}"):
            return self._begin_create(spec, follow=True)

    def start_create(self, spec: DeploymentSpec) -> None:
        """Send the create and return: no poller thread follows it. The provisioner reads the
        deployment's state on later steps instead, so no invocation waits for Azure."""
        with self._refusals_named(f"create deployment {spec.name!r}"):
            self._begin_create(spec, follow=False)

    def _begin_create(self, spec: DeploymentSpec, *, follow: bool) -> LROPoller[Deployment]:
        if self._resolve_spec is not None:
            spec = self._resolve_spec(spec)
        deployment = Deployment(
            sku=Sku(name=spec.sku, capacity=spec.capacity),
            tags={OWNER_TAG_KEY: spec.owner_tag},
            properties=DeploymentProperties(
                model=DeploymentModel(
                    format="OpenAI", name=spec.model_name, version=spec.model_version
                )
            ),
        )
        return self._client.deployments.begin_create_or_update(
            self._resource_group,
            self._account,
            spec.name,
            deployment,
            polling=self._create_polling() if follow else False,
        )

    def begin_delete(self, name: str) -> LROPoller[None]:
        with self._refusals_named(f"delete deployment {name!r}"):
            return self._client.deployments.begin_delete(
                self._resource_group,
                self._account,
                name,
                polling=PatientArmPolling(self._polling_interval),
            )

    def start_delete(self, name: str) -> None:
        """Send the delete and return: Azure finishes it on its own, and nobody polls it."""
        with self._refusals_named(f"delete deployment {name!r}"):
            self._client.deployments.begin_delete(
                self._resource_group, self._account, name, polling=False
            )

    def _create_polling(self) -> PatientArmPolling:
        # The same final-state rule the SDK uses for this operation.
        return PatientArmPolling(
            self._polling_interval, lro_options={"final-state-via": "azure-async-operation"}
        )


def _snapshot(deployment: Deployment) -> DeploymentSnapshot:
    properties = deployment.properties
    system_data = deployment.system_data
    return DeploymentSnapshot(
        name=str(deployment.name),
        exists=True,
        provisioning_state=properties.provisioning_state if properties else None,
        tags=dict(deployment.tags or {}),
        created_at=system_data.created_at if system_data else None,
        capacity=deployment.sku.capacity if deployment.sku else None,
        model_name=(properties.model.name if properties is not None and properties.model else None),
        model_version=(
            properties.model.version if properties is not None and properties.model else None
        ),
    )
