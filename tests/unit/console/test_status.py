"""What `hosting status` says about a hosted model, from plain values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rich.console import Console

from shared.console.display import span, status_table
from shared.console.status import model_status
from shared.hosting.deployments import DeploymentSnapshot
from shared.hosting.holds import KnownState, LedgerRecord, place_hold, release_hold, take_lease

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
GRACE = timedelta(minutes=5)
UP = DeploymentSnapshot("ft-contracts", exists=True, provisioning_state="Succeeded")
ABSENT = DeploymentSnapshot("ft-contracts", exists=False)


def ready() -> LedgerRecord:
    return LedgerRecord(deployment="ft-contracts", state=KnownState.READY, ready_since=T0)


def status_of(record: LedgerRecord, snapshot: DeploymentSnapshot = UP, now: datetime = T0) -> str:
    row = model_status(
        model="contracts", snapshot=snapshot, record=record, idle_grace=GRACE, now=now
    )
    return str(row.why_up)


def test_up_because_of_its_live_holds() -> None:
    held = place_hold(
        ready(), hold_id="operator:contracts", kind="operator", owner="operator:ann@pc",
        now=T0, ttl=timedelta(hours=1),
    )  # fmt: skip
    row = model_status(model="contracts", snapshot=UP, record=held, idle_grace=GRACE, now=T0)
    assert row.why_up == "held"
    assert [hold.kind for hold in row.holds] == ["operator"]
    assert row.ready_since == T0
    assert row.to_json()["holds"][0]["owner"] == "operator:ann@pc"


def test_up_for_the_idle_grace_after_the_last_hold_left_then_for_nothing() -> None:
    held = place_hold(ready(), hold_id="j", kind="job", owner="w", now=T0, ttl=GRACE)
    released = release_hold(held, hold_id="j", now=T0 + timedelta(minutes=1))
    row = model_status(
        model="contracts", snapshot=UP, record=released, idle_grace=GRACE,
        now=T0 + timedelta(minutes=2),
    )  # fmt: skip
    assert row.why_up == "idle_grace"
    assert row.idle_until == T0 + timedelta(minutes=6)
    assert status_of(released, now=T0 + timedelta(minutes=7)) == "nothing"


def test_an_operation_keeps_it_while_its_lease_is_live() -> None:
    leased = take_lease(ready(), owner="i1", operation="delete", now=T0, ttl=timedelta(minutes=2))
    assert leased is not None
    assert status_of(leased) == "operation"


def test_an_absent_deployment_is_up_for_no_reason_and_not_ready_since() -> None:
    absent = ready().model_copy(update={"state": KnownState.ABSENT})
    row = model_status(model="contracts", snapshot=ABSENT, record=absent, idle_grace=GRACE, now=T0)
    assert row.why_up is None
    assert row.azure_state is None
    assert row.ready_since is None, "a deleted deployment's old ready_since says nothing"


def test_the_table_shows_azure_beside_the_ledger_and_each_hold() -> None:
    held = place_hold(
        ready(), hold_id="job:1", kind="job", owner="host-1:abc", now=T0, ttl=timedelta(minutes=10)
    )
    row = model_status(model="contracts", snapshot=UP, record=held, idle_grace=GRACE, now=T0)
    waiting = model_status(
        model="reviews",
        snapshot=DeploymentSnapshot("ft-reviews", exists=False),
        record=LedgerRecord(
            deployment="ft-reviews",
            state=KnownState.PROVISIONING,
            waiting_for="no room on the account",
        ),
        idle_grace=GRACE,
        now=T0,
    )
    console = Console(width=200, record=True)
    console.print(status_table([row, waiting], T0))
    text = console.export_text()
    assert "Succeeded" in text and "ready" in text
    assert "job by host-1:abc, until 09:10:00Z (in 10m00s)" in text
    assert "held by job" in text
    assert "absent" in text and "waiting: no room on the account" in text


def test_spans_are_compact() -> None:
    assert [span(timedelta(seconds=s)) for s in (5, 65, 3700, 90_000)] == [
        "5s",
        "1m05s",
        "1h01m",
        "1d01h",
    ]
