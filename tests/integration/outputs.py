"""Reading the output container as a user does: the current outcome under each document's name."""

from __future__ import annotations

from azure.storage.blob import ContainerClient

from shared.names import VERSIONS_PREFIX


def current_outputs(container: ContainerClient) -> list[str]:
    """The names a user reads: each document's current outcome, not the kept versions."""
    return sorted(b.name for b in container.list_blobs() if not b.name.startswith(VERSIONS_PREFIX))
