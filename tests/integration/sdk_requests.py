"""Management SDK request bodies and readers shared by the simulator conformance tests."""

from __future__ import annotations

from azure.mgmt.cognitiveservices.models import (
    Deployment,
    DeploymentModel,
    DeploymentProperties,
    Sku,
)

FT_MODEL = "gpt-4.1-mini-2025-04-14.ft-5f2a9c0d1e3b4a6f"


def provisioning_state(deployment: Deployment) -> str | None:
    """The provisioning state of an SDK Deployment (typed Optional all the way down)."""
    assert deployment.properties is not None
    state = deployment.properties.provisioning_state
    return None if state is None else str(state)


def deployment_request(
    model: str = FT_MODEL, capacity: int = 1, sku: str = "Standard", **tags: str
) -> Deployment:
    return Deployment(
        sku=Sku(name=sku, capacity=capacity),
        properties=DeploymentProperties(
            model=DeploymentModel(format="OpenAI", name=model, version="1")
        ),
        tags=tags or None,
    )
