"""Which endpoints the settings name, and which local ones refuse a connection."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from shared.console.reachability import endpoints, is_local, unreachable_local_endpoints
from shared.settings import AppSettings

BASE = {
    "AZURE_SUBSCRIPTION_ID": "sub",
    "AZURE_RESOURCE_GROUP": "rg",
    "AOAI_ACCOUNT_NAME": "acct",
    "FINE_TUNED_MODEL": "gpt-4.1-mini.ft-1",
}


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_development_storage_means_azurites_default_ports() -> None:
    settings = AppSettings.model_validate(
        {
            **BASE,
            "AOAI_ENDPOINT": "https://a.openai.azure.com",
            "DocumentStorage": "UseDevelopmentStorage=true",
        }
    )
    found = {endpoint.setting: endpoint.address for endpoint in endpoints(settings)}
    assert found["DocumentStorage (BlobEndpoint)"] == ("127.0.0.1", 10000)
    assert found["DocumentStorage (QueueEndpoint)"] == ("127.0.0.1", 10001)
    assert found["AOAI_ENDPOINT"] == ("a.openai.azure.com", 443)
    local = {e.setting for e in endpoints(settings) if is_local(e)}
    assert local == {"DocumentStorage (BlobEndpoint)", "DocumentStorage (QueueEndpoint)"}


def test_only_the_refusing_local_endpoints_are_named(listening: int) -> None:
    down = closed_port()
    settings = AppSettings.model_validate(
        {
            **BASE,
            "ARM_ENDPOINT": f"https://127.0.0.1:{down}",
            "AOAI_ENDPOINT": f"https://localhost:{down}",
            "DocumentStorage": f"DefaultEndpointsProtocol=http;AccountName=a;AccountKey=a2V5;"
            f"BlobEndpoint=http://127.0.0.1:{listening}/a;QueueEndpoint=http://127.0.0.1:{listening}/a;",
        }
    )
    refused = unreachable_local_endpoints(settings)
    assert [endpoint.setting for endpoint in refused] == ["ARM_ENDPOINT", "AOAI_ENDPOINT"]


def test_remote_endpoints_are_never_tried() -> None:
    settings = AppSettings.model_validate(
        {
            **BASE,
            "AOAI_ENDPOINT": "https://a.invalid",
            "ARM_ENDPOINT": "https://management.invalid",
            "DocumentStorage__blobServiceUri": "https://s.invalid",
            "DocumentStorage__queueServiceUri": "https://s.invalid",
        }
    )
    assert unreachable_local_endpoints(settings) == []
