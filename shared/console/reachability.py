"""Whether the local Azure the settings point at is running, asked before any SDK call.

Against a stopped Azurite or simulator the SDKs retry a refused connection for about a minute
and a half before saying so. Endpoints on this machine (loopback) answer a TCP connect at once
or refuse it at once, so each is tried with a short timeout first and a refusal is one clear
error naming the setting, the endpoint, the settings file and `make dev`. Remote endpoints (real
Azure, perhaps behind a proxy) are left to the SDKs.
"""

from __future__ import annotations

import ipaddress
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

from shared.settings import AppSettings

# A loopback connect is answered in microseconds; this only bounds a wedged listener.
CONNECT_TIMEOUT_SECONDS = 2.0
# What `UseDevelopmentStorage=true` means: Azurite's default ports.
DEVELOPMENT_STORAGE = {
    "BlobEndpoint": "http://127.0.0.1:10000/devstoreaccount1",
    "QueueEndpoint": "http://127.0.0.1:10001/devstoreaccount1",
}


@dataclass(frozen=True)
class Endpoint:
    setting: str  # the app setting it comes from, as the settings file spells it
    url: str

    @property
    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        default = 443 if parts.scheme == "https" else 80
        return parts.hostname or "", parts.port or default


def endpoints(settings: AppSettings) -> list[Endpoint]:
    """Every endpoint the settings name: storage (blob and queue), management, data plane."""
    found = [
        Endpoint("ARM_ENDPOINT", settings.arm_endpoint),
        Endpoint("AOAI_ENDPOINT", settings.aoai_endpoint),
    ]
    if settings.storage_connection_string is not None:
        parts = _connection_string(settings.storage_connection_string.get_secret_value())
        if parts.get("UseDevelopmentStorage", "").lower() == "true":
            parts = {**DEVELOPMENT_STORAGE, **parts}
        for key in ("BlobEndpoint", "QueueEndpoint"):
            if key in parts:
                found.append(Endpoint(f"DocumentStorage ({key})", parts[key]))
    for setting, url in (
        ("DocumentStorage__blobServiceUri", settings.storage_blob_service_uri),
        ("DocumentStorage__queueServiceUri", settings.storage_queue_service_uri),
    ):
        if url:
            found.append(Endpoint(setting, url))
    return found


def is_local(endpoint: Endpoint) -> bool:
    host = endpoint.address[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def unreachable_local_endpoints(settings: AppSettings) -> list[Endpoint]:
    """The loopback endpoints among the settings' that refuse a connection, tried at once."""
    local = [endpoint for endpoint in endpoints(settings) if is_local(endpoint)]
    unique = list({endpoint.address: endpoint for endpoint in local}.values())
    if not unique:
        return []
    with ThreadPoolExecutor(max_workers=len(unique)) as pool:
        answers = list(pool.map(_accepts, unique))
    refused = {e.address for e, ok in zip(unique, answers, strict=True) if not ok}
    return [endpoint for endpoint in local if endpoint.address in refused]


def _accepts(endpoint: Endpoint) -> bool:
    try:
        with socket.create_connection(endpoint.address, timeout=CONNECT_TIMEOUT_SECONDS):
            return True
    except OSError:
        return False


def _connection_string(text: str) -> dict[str, str]:
    pairs = (part.split("=", 1) for part in text.split(";") if "=" in part)
    return {key.strip(): value.strip() for key, value in pairs}
