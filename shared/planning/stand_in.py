"""An in-process stand-in for Azure on a virtual clock, for replaying the app's decisions.

It answers the management calls the provisioner and the reaper make (`get`, `list`,
`start_create`, `start_delete`) and the readiness probe, with the timings and rules of the
project's simulator: a create is Accepted, then Creating until `provisioning_seconds` after
the PUT, then Succeeded, and serves after a further `warmup_seconds`; a delete takes
`deletion_seconds`, after which the name cannot be reused for `recreate_cooldown_seconds`
(409); a PUT during an operation is refused with 409; a DeveloperTier deployment is removed
by Azure 24 hours after its create. Every lifetime (accepted PUT to gone) is kept for
billing. The ledger lives in memory (`MemoryStore`), changed through the same
compare-and-swap interface as the blob store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from azure.core.exceptions import HttpResponseError
from azure.core.polling import LROPoller
from azure.mgmt.cognitiveservices.models import Deployment

from shared.hosting.deployments import (
    OWNER_TAG_KEY,
    AzureDeployments,
    DeploymentSnapshot,
    DeploymentSpec,
)
from shared.inference import ChatClient
from shared.storage import JsonBlobStore, ModelT

DEVELOPER_TIER = "DeveloperTier"
DEVELOPER_TIER_LIFETIME_SECONDS = 24 * 3600.0


@dataclass(frozen=True)
class AzureTimings:
    """Seconds each management step takes: the simulator's defaults (see simulator/config)."""

    accepted_seconds: float = 10.0
    provisioning_seconds: float = 300.0
    warmup_seconds: float = 60.0
    deletion_seconds: float = 20.0
    recreate_cooldown_seconds: float = 20.0

    @property
    def serving_after(self) -> float:
        """From the accepted PUT until the deployment serves (the planner's P)."""
        return self.provisioning_seconds + self.warmup_seconds

    @classmethod
    def serving_after_seconds(cls, seconds: float) -> AzureTimings:
        """Timings whose create serves `seconds` after the PUT, warm-up as in the simulator."""
        base = cls()
        warmup = min(base.warmup_seconds, seconds)
        provisioning = seconds - warmup
        return cls(
            accepted_seconds=min(base.accepted_seconds, provisioning),
            provisioning_seconds=provisioning,
            warmup_seconds=warmup,
        )


class VirtualClock:
    """Seconds since the epoch, moved only by the replay."""

    def __init__(self, start: float) -> None:
        self.now = start
        # The engine asks the time many times per event; the answer changes only with `now`.
        self._at = start
        self._datetime = datetime.fromtimestamp(start, UTC)

    def datetime(self) -> datetime:
        if self.now != self._at:
            self._at, self._datetime = self.now, datetime.fromtimestamp(self.now, UTC)
        return self._datetime


class MemoryStore(JsonBlobStore[ModelT]):
    """The ledger's store in memory: documents are immutable, so no copy is needed."""

    def __init__(self) -> None:  # no container: nothing here touches storage
        self._documents: dict[str, ModelT] = {}

    def read(self, name: str) -> tuple[ModelT | None, str | None]:
        document = self._documents.get(name)
        return document, None if document is None else "memory"

    def update(self, name: str, change: Callable[[ModelT | None], ModelT | None]) -> ModelT | None:
        updated = change(self._documents.get(name))
        if updated is not None:
            self._documents[name] = updated
        return updated


@dataclass
class Lifetime:
    """One deployment's life in the stand-in, in virtual seconds."""

    spec: DeploymentSpec
    created: float
    accepted_until: float
    succeeded_at: float
    serving_at: float
    deletion_started: float | None = None
    gone: float | None = None

    def state(self, now: float) -> str:
        if self.deletion_started is not None:
            return "Deleting"
        if now < self.accepted_until:
            return "Accepted"
        return "Creating" if now < self.succeeded_at else "Succeeded"


@dataclass
class ManagementCalls:
    """How many calls the app made, by kind (a rate-limited resource on Azure)."""

    reads: int = 0
    lists: int = 0
    creates: int = 0
    deletes: int = 0
    refused: int = 0
    probes: int = 0


def _conflict(message: str) -> HttpResponseError:
    error = HttpResponseError(message=message)
    error.status_code = 409
    return error


class VirtualAzure(AzureDeployments):
    """The management plane of one account, for the deployments the replay creates."""

    def __init__(
        self,
        clock: VirtualClock,
        timings: AzureTimings,
        on_lifetime: Callable[[tuple[float, float]], None],
    ) -> None:  # no SDK client
        self._clock = clock
        self._timings = timings
        self._active: dict[str, Lifetime] = {}
        self._name_free_at: dict[str, float] = {}
        # Each ended lifetime goes to `on_lifetime` as (created, gone) and is forgotten here,
        # so a replay's memory does not grow with its deploy cycles.
        self._on_lifetime = on_lifetime
        self.calls = ManagementCalls()

    def _settle(self, name: str) -> Lifetime | None:
        """The live lifetime of `name`, after ending any that ended by now."""
        now = self._clock.now
        current = self._active.get(name)
        if current is None:
            return None
        if current.gone is not None and current.gone <= now:
            del self._active[name]
            self._on_lifetime((current.created, current.gone))
            if current.deletion_started is not None:
                self._name_free_at[name] = current.gone + self._timings.recreate_cooldown_seconds
            return None
        return current

    def _snapshot(self, name: str, lifetime: Lifetime | None) -> DeploymentSnapshot:
        if lifetime is None:
            return DeploymentSnapshot(name=name, exists=False)
        return DeploymentSnapshot(
            name=name,
            exists=True,
            provisioning_state=lifetime.state(self._clock.now),
            tags={OWNER_TAG_KEY: lifetime.spec.owner_tag},
            created_at=datetime.fromtimestamp(lifetime.created, UTC),
            capacity=lifetime.spec.capacity,
            model_name=lifetime.spec.model_name,
        )

    def get(self, name: str) -> DeploymentSnapshot:
        self.calls.reads += 1
        return self._snapshot(name, self._settle(name))

    def list(self) -> list[DeploymentSnapshot]:
        self.calls.lists += 1
        return [
            self._snapshot(name, lifetime)
            for name in list(self._active)
            if (lifetime := self._settle(name)) is not None
        ]

    def start_create(self, spec: DeploymentSpec) -> None:
        now = self._clock.now
        current = self._settle(spec.name)
        if current is not None:
            state = current.state(now)
            if state != "Succeeded":
                self.calls.refused += 1
                raise _conflict(f"another operation is in progress ({state})")
            return  # an update in place of a serving deployment: nothing changes here
        if now < self._name_free_at.get(spec.name, float("-inf")):
            self.calls.refused += 1
            raise _conflict("the deployment was deleted recently; its name cannot be reused yet")
        self.calls.creates += 1
        t = self._timings
        succeeded = now + t.provisioning_seconds
        lifetime = Lifetime(
            spec=spec,
            created=now,
            accepted_until=min(now + t.accepted_seconds, succeeded),
            succeeded_at=succeeded,
            serving_at=succeeded + t.warmup_seconds,
        )
        if spec.sku == DEVELOPER_TIER:
            lifetime.gone = now + DEVELOPER_TIER_LIFETIME_SECONDS
        self._active[spec.name] = lifetime

    def begin_create(self, spec: DeploymentSpec) -> LROPoller[Deployment]:
        raise NotImplementedError("the replay takes provisioning steps; it never follows a create")

    def start_delete(self, name: str) -> None:
        now = self._clock.now
        current = self._settle(name)
        self.calls.deletes += 1
        if current is None or current.deletion_started is not None:
            return
        current.deletion_started = now
        gone = now + self._timings.deletion_seconds
        current.gone = gone if current.gone is None else min(current.gone, gone)

    def begin_delete(self, name: str) -> LROPoller[None]:
        raise NotImplementedError("the replay sends deletes; it never follows one")

    def serves(self, name: str) -> bool:
        """The readiness probe (counted)."""
        self.calls.probes += 1
        return self.answers(name)

    def answers(self, name: str) -> bool:
        """Whether the data plane would answer a document's request now."""
        current = self._settle(name)
        return (
            current is not None
            and current.deletion_started is None
            and self._clock.now >= current.serving_at
        )

    def close(self, until: float) -> None:
        """End the replay at `until`: the lifetimes not yet reported end there (or when gone)."""
        for name, lifetime in sorted(self._active.items(), key=lambda item: item[1].created):
            gone = lifetime.gone if lifetime.gone is not None else until
            self._on_lifetime((lifetime.created, min(until, gone)))
            del self._active[name]


class VirtualChat(ChatClient):
    """The data plane's readiness answer for one deployment of the stand-in."""

    def __init__(self, azure: VirtualAzure, deployment: str) -> None:  # no HTTP client
        self._azure = azure
        self._deployment = deployment

    def serves(self) -> bool:
        return self._azure.serves(self._deployment)
