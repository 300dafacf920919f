"""Reading Azure's (the simulator's) view of a deployment in integration tests.

The app sends a teardown's DELETE without following it: Azure finishes the delete on its own
a little later (the simulator's `deletion_seconds`). A test that checks a teardown therefore
asks whether the deployment is gone within a few seconds, not in the same instant.
"""

from __future__ import annotations

import time

from shared.composition import AppServices


def deployment_gone(services: AppServices, name: str, within: float = 10.0) -> bool:
    """True once Azure has no deployment `name`; False if it is still there after `within` s."""
    deadline = time.monotonic() + within
    while True:
        snapshot = services.deployments.get(name)
        if not snapshot.exists:
            return True
        if snapshot.provisioning_state != "Deleting" or time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
