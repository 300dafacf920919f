"""A small client for the simulator's admin API, used by fixtures, the demo and tools.

Every method maps to one `/admin/...` endpoint and returns its decoded JSON; a non-2xx answer
raises `SimulatorAdminError` with the simulator's message, so a mistyped fault or setting fails
loudly where it was made.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import requests

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 10.0


class SimulatorAdminError(RuntimeError):
    """The admin API refused a request."""

    def __init__(self, status: int, body: Any) -> None:
        message = body
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            message = body["error"].get("message", body)
        super().__init__(f"simulator admin answered {status}: {message}")
        self.status = status
        self.body = body


class SimulatorAdmin:
    """Drives `/admin/...` on a running simulator over HTTPS (verified with its CA)."""

    def __init__(self, base_url: str, ca_path: Path | str) -> None:
        self.base_url = base_url.rstrip("/")
        self.ca_path = Path(ca_path)
        self._session = requests.Session()
        self._session.verify = str(self.ca_path)

    def close(self) -> None:
        self._session.close()

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        response = self._session.request(
            method,
            f"{self.base_url}/admin/{path}",
            json=payload,
            timeout=DEFAULT_TIMEOUT_SECONDS,
            # Per request: requests lets REQUESTS_CA_BUNDLE override a session-level verify.
            verify=str(self.ca_path),
        )
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if not response.ok:
            raise SimulatorAdminError(response.status_code, body)
        return body

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "health")
        return result

    def reset(self) -> None:
        self._call("POST", "reset")

    def billing(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "billing")
        return result

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "stats")
        return result

    def clock(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "clock")
        return result

    def config(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "config")
        return result

    def configure(self, **settings: Any) -> dict[str, Any]:
        """Change runtime settings (e.g. `provisioning_seconds=60`); returns the new config."""
        result: dict[str, Any] = self._call("POST", "config", settings)
        return result

    def faults(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "faults")
        return result

    def fail_next_provisionings(self, count: int) -> None:
        self._call("POST", "faults/fail-provisioning", {"count": count})

    def gateway_timeout_on_next_creates(self, count: int) -> None:
        self._call("POST", "faults/gateway-timeout-on-create", {"count": count})

    def inject_errors(self, plane: str, status: int, rate: float, count: int | None = None) -> None:
        payload: dict[str, Any] = {"plane": plane, "status": status, "rate": rate}
        if count is not None:
            payload["count"] = count
        self._call("POST", "faults/errors", payload)

    def add_latency(self, plane: str, ms: float) -> None:
        self._call("POST", "faults/latency", {"plane": plane, "ms": ms})

    def clear_faults(self) -> None:
        self._call("POST", "faults/clear")

    def vanish(self, name: str) -> None:
        self._call("POST", f"deployments/{name}/vanish")

    def set_capacity(self, name: str, capacity: int) -> None:
        self._call("POST", f"deployments/{name}/capacity", {"capacity": capacity})
