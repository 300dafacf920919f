"""What the portal's routes answer, without Azure: the expected wait, the profile list, a
model's card in the operations view, and the static pages (what is served, what is not)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from shared.api.operations import model_operations
from shared.api.portal import STATIC_DIR, PortalPages, load_assets
from shared.api.profiles import profiles_view
from shared.api.waits import deployment_wait
from shared.catalog import HostedModel, ModelDefaults, catalog_from_data
from shared.hosting.deployments import DeploymentSnapshot
from shared.hosting.holds import KnownState, LedgerRecord, place_hold
from shared.schedules.models import WEEKDAYS, BatchSchedule, WindowSettings

MONDAY = datetime(2026, 6, 15, tzinfo=UTC)  # a Monday
NOW = MONDAY + timedelta(hours=10)
DEFAULTS = ModelDefaults(idle_grace_seconds=300, max_lifetime_seconds=50400, context_tokens=8000)


# --- the expected wait -----------------------------------------------------------------------


def test_before_any_start_was_seen_the_setting_is_the_expectation_and_nothing_counts_down() -> None:
    wait = deployment_wait(LedgerRecord(deployment="ft"), NOW, default_seconds=300).to_json()
    assert wait["basis"] == "setting" and wait["expected_seconds"] == 300
    assert wait["provisioning_started"] is None
    assert wait["expected_ready_at"] is None and wait["remaining_seconds"] is None


def test_a_start_under_way_counts_down_from_the_last_observed_one() -> None:
    record = LedgerRecord(
        deployment="ft",
        state=KnownState.PROVISIONING,
        provisioning_started=NOW - timedelta(seconds=100),
        last_provision_seconds=250.0,
    )
    wait = deployment_wait(record, NOW, default_seconds=300).to_json()
    assert wait["basis"] == "observed" and wait["expected_seconds"] == 250
    assert wait["expected_ready_at"] == "2026-06-15T10:02:30Z"
    assert wait["remaining_seconds"] == 150 and wait["overdue_seconds"] is None


def test_a_start_slower_than_the_last_is_overdue_not_negative() -> None:
    record = LedgerRecord(
        deployment="ft",
        state=KnownState.PROVISIONING,
        provisioning_started=NOW - timedelta(seconds=400),
        last_provision_seconds=250.0,
        waiting_for=None,
    )
    wait = deployment_wait(record, NOW, default_seconds=300)
    assert wait.remaining_seconds == 0 and wait.overdue_seconds == 150


def test_waiting_for_room_is_passed_on_in_words() -> None:
    note = "waiting for room on account 'oai': 5 of 5 fine-tuned deployments in use"
    wait = deployment_wait(
        LedgerRecord(deployment="ft", waiting_for=note), NOW, default_seconds=300
    )
    assert wait.waiting_for == note


# --- the profile list ------------------------------------------------------------------------


def test_profiles_name_their_model_questions_and_the_limits() -> None:
    prompt = {"system_prompt": "You read.", "user_prompt_template": "{document}"}
    catalog = catalog_from_data(
        {
            "default_model": "contracts",
            "models": {
                name: {"deployment": f"ft-{name}", "fine_tuned_model": f"base.ft-{name}"}
                for name in ("contracts", "rfps")
            },
            "profiles": {
                "leases": {**prompt, "model": "contracts", "questions": ["Who pays?"]},
                "rfps": {
                    **prompt,
                    "model": "rfps",
                    "output_schema": {"type": "object", "properties": {}},
                },
            },
        },
        DEFAULTS,
        source="hosting.toml",
        profiles_json=None,
    )
    view = profiles_view(
        catalog, default_profile="default", max_document_bytes=1000, max_submit_bytes=2000
    )
    by_name = {p["name"]: p for p in view["profiles"]}
    assert by_name["leases"] == {
        "name": "leases",
        "model": "contracts",
        "deployment": "ft-contracts",
        "questions": ["Who pays?"],
        "structured_output": False,
    }
    assert by_name["rfps"]["structured_output"] is True
    assert view["default_profile"] == "default" and by_name["default"]["model"] == "contracts"
    assert view["limits"]["extensions"] == [".txt", ".md", ".json", ".csv"]
    assert (view["limits"]["max_document_bytes"], view["limits"]["max_submit_bytes"]) == (
        1000,
        2000,
    )
    # No prompt leaves the app: they are the team's configuration.
    assert "You read." not in str(view)


def test_without_a_default_profile_none_is_preselected() -> None:
    prompt = {"system_prompt": "You read.", "user_prompt_template": "{document}"}
    catalog = catalog_from_data(
        {
            "models": {
                name: {"deployment": f"ft-{name}", "fine_tuned_model": f"base.ft-{name}"}
                for name in ("a", "b")
            },
            "profiles": {"pa": {**prompt, "model": "a"}},
        },
        DEFAULTS,
        source="hosting.toml",
        profiles_json=None,
    )
    view = profiles_view(
        catalog, default_profile="default", max_document_bytes=1, max_submit_bytes=1
    )
    assert view["default_profile"] is None
    assert [p["name"] for p in view["profiles"]] == ["pa"]


# --- a model's card in the operations view ---------------------------------------------------


def scheduled_model() -> HostedModel:
    window = WindowSettings.model_validate(
        {
            "name": "office",
            "time_zone": "UTC",
            "weekdays": WEEKDAYS,
            "opens": "08:00",
            "closes": "18:00",
            "lead_seconds": 600,
        }
    )
    batch = BatchSchedule.model_validate(
        {
            "name": "nightly",
            "time_zone": "UTC",
            "weekdays": WEEKDAYS,
            "starts": "02:00",
            "deadline": "PT4H",
            "input_prefix": "batches/",
            "output_prefix": "results/",
        }
    )
    return HostedModel(
        name="contracts",
        deployment="ft-contracts",
        fine_tuned_model="base.ft-1",
        idle_grace_seconds=300,
        max_lifetime_seconds=50400,
        context_tokens=8000,
        windows=(window,),
        batches=(batch,),
    )


def test_a_held_model_shows_its_holds_its_open_window_and_the_next_batch() -> None:
    record = LedgerRecord(
        deployment="ft-contracts",
        state=KnownState.READY,
        ready_since=NOW - timedelta(hours=2),
        last_provision_seconds=240.0,
    )
    record = place_hold(
        record,
        hold_id="operator:contracts",
        kind="operator",
        owner="operator:ana@host",
        now=NOW,
        ttl=timedelta(hours=1),
    )
    snapshot = DeploymentSnapshot("ft-contracts", exists=True, provisioning_state="Succeeded")
    card = model_operations(scheduled_model(), snapshot, record, NOW, default_provision_seconds=300)
    assert card["why_up"] == "held" and card["azure_state"] == "Succeeded"
    assert [h["id"] for h in card["holds"]] == ["operator:contracts"]
    assert card["provisioning"]["basis"] == "observed"
    assert card["provisioning"]["expected_seconds"] == 240
    window = card["next_window"]
    assert window["under_way"] is True and window["opens_utc"] == "2026-06-15T08:00:00+00:00"
    batch = card["next_batch"]
    assert batch["under_way"] is False and batch["starts_utc"] == "2026-06-16T02:00:00+00:00"
    assert batch["run_id"] == "contracts-nightly-20260616T020000Z"
    # What the reconciler would do now, from the same plan `hosting schedule` shows.
    assert any(
        said.startswith("place window hold window:office:") for said in card["reconciler_now"]
    )


def test_an_absent_model_without_schedules_says_so() -> None:
    model = scheduled_model().model_copy(update={"windows": (), "batches": ()})
    card = model_operations(
        model,
        DeploymentSnapshot("ft-contracts", exists=False),
        LedgerRecord(deployment="ft-contracts", state=KnownState.ABSENT),
        NOW,
        default_provision_seconds=300,
    )
    assert card["azure_state"] is None and card["why_up"] is None
    assert card["next_window"] is None and card["next_batch"] is None
    assert card["reconciler_now"] == []
    assert card["provisioning"]["basis"] == "setting"


# --- the static pages ------------------------------------------------------------------------


def request(url: str, asset: str | None = None, **headers: str) -> func.HttpRequest:
    return func.HttpRequest(
        "GET",
        url,
        headers=headers,
        route_params={"asset": asset} if asset is not None else {},
        body=b"",
    )


@pytest.fixture
def pages() -> PortalPages:
    return PortalPages(load_assets())


def test_the_portal_root_is_the_submit_page(pages: PortalPages) -> None:
    served = pages.serve(request("https://app.example/api/portal/"))
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "text/html; charset=utf-8"
    assert b"Submit a document" in served.get_body()
    policy = served.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert served.headers["X-Content-Type-Options"] == "nosniff"


def test_without_the_slash_the_page_redirects_so_its_relative_links_resolve(
    pages: PortalPages,
) -> None:
    served = pages.serve(request("https://app.example/api/portal?x=1"))
    assert served.status_code == 308 and served.headers["Location"] == "portal/"


@pytest.mark.parametrize(
    "asset", ["../__init__.py", "..%2F__init__.py", "static/index.html", "missing.js", "x.py"]
)
def test_only_the_files_in_static_are_served(pages: PortalPages, asset: str) -> None:
    served = pages.serve(request(f"https://app.example/api/portal/{asset}", asset))
    assert served.status_code == 404
    assert b"index.html" in served.get_body(), "the answer lists what there is"


def test_an_unchanged_file_is_a_304(pages: PortalPages) -> None:
    first = pages.serve(request("https://app.example/api/portal/ops.js", "ops.js"))
    assert first.headers["Content-Type"] == "text/javascript; charset=utf-8"
    again = pages.serve(
        request(
            "https://app.example/api/portal/ops.js",
            "ops.js",
            **{"if-none-match": first.headers["ETag"]},
        )
    )
    assert again.status_code == 304 and again.get_body() == b""


def referenced(page: Path) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', page.read_text(encoding="utf-8"))


@pytest.mark.parametrize("page", ["index.html", "ops.html"])
def test_pages_load_nothing_from_the_internet_and_every_file_they_name_exists(
    page: str,
) -> None:
    names = referenced(STATIC_DIR / page)
    assert names
    for name in names:
        if name.startswith("#") or name == "./":
            continue
        assert "//" not in name and not name.startswith("/"), name
        assert (STATIC_DIR / name).is_file(), name
    for path in STATIC_DIR.iterdir():
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"https?://", text), f"{path.name} refers to another origin"


def test_the_key_never_goes_into_a_url() -> None:
    scripts: dict[str, Any] = {p.name: p.read_text() for p in STATIC_DIR.glob("*.js")}
    joined = "\n".join(scripts.values())
    assert "x-functions-key" in scripts["common.js"]
    assert "code=" not in joined and "searchParams" not in joined
    assert "localStorage.setItem(KEY" not in joined, "the key lives in sessionStorage only"
