"""The benchmark's own tools: round-trip labels, and the side-by-side run's environment check."""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.core.rest import HttpRequest

from bench.against import differing_pins
from bench.roundtrips import RoundTripCounter

ROLES = {"jobs-1": "jobs", "out-1": "output", "ledger-1": "ledger", "in-1": "input", "q-1": "queue"}
AZURITE = "http://127.0.0.1:10000/devstoreaccount1"


@pytest.mark.parametrize(
    ("method", "url", "headers", "label"),
    [
        (
            "PUT",
            f"{AZURITE}/jobs-1/abc.json",
            {"If-None-Match": "*"},
            "job record: create if absent",
        ),
        (
            "PUT",
            f"{AZURITE}/jobs-1/abc.json",
            {"If-Match": '"0x1"'},
            "job record: replace if unchanged",
        ),
        (
            "PUT",
            f"{AZURITE}/jobs-1/open/abc",
            {"If-None-Match": "*"},
            "open-job marker: create if absent",
        ),
        ("DELETE", f"{AZURITE}/jobs-1/payloads/abc", {}, "parked payload: delete"),
        ("HEAD", f"{AZURITE}/in-1/doc.txt", {}, "input document: read properties"),
        ("GET", f"{AZURITE}/ledger-1/ft.json", {}, "ledger (holds): read"),
        (
            "PUT",
            f"{AZURITE}/out-1/versions/doc.txt/abc.result.json",
            {"If-None-Match": "*"},
            "outcome, own version: create if absent",
        ),
        (
            "HEAD",
            f"{AZURITE}/out-1/doc.txt.error.json",
            {},
            "outcome, current name: read properties",
        ),
        ("POST", f"{AZURITE}/q-1/messages", {}, "queue: POST messages"),
        ("GET", "https://acct.blob.core.windows.net/jobs-1/abc.json", {}, "job record: read"),
        (
            "GET",
            "https://management.azure.com/subscriptions/s/resourceGroups/g/providers/"
            "Microsoft.CognitiveServices/accounts/a/deployments/ft?api-version=1",
            {},
            "management: GET deployments",
        ),
    ],
)
def test_round_trips_are_labelled_by_what_they_touch_and_how(
    method: str, url: str, headers: dict[str, str], label: str
) -> None:
    request = HttpRequest(method, url, headers=headers)
    assert RoundTripCounter(ROLES).label(request) == label


def test_pins_the_environment_lacks_are_listed(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(
        "pydantic==0.0.1\n    # via -r requirements.in\nno-such-package-here==1.0\n"
    )
    listed = differing_pins(tmp_path)
    assert len(listed) == 2
    assert listed[0].startswith("pydantic==0.0.1 (here: ")
    assert listed[1] == "no-such-package-here==1.0 (here: absent)"
