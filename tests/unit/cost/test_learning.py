"""`idle_grace = "auto"` learns a model's cold-start time from its hosting log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.catalog import HostedModel
from shared.cost.learning import (
    LearnedProvisioning,
    RecentLifecycle,
    learned_provision_seconds,
)
from shared.cost.log import HostingEvent, LogReading
from shared.hosting.grace import BreakEvenGrace, resolve_grace
from shared.hosting.holds import LedgerRecord

NOW = datetime(2026, 3, 23, 12, tzinfo=UTC)


def event(kind: str, at: datetime, deployment: str = "ft-m") -> HostingEvent:
    return HostingEvent(
        event=kind,
        at=at.timestamp(),
        model="m",
        deployment=deployment,
        sku="Standard",
        capacity=1,
        actor="test",
        id=f"{kind}-{at.timestamp()}-{deployment}",
    )


def start(created: datetime, seconds: float | None, deployment: str = "ft-m") -> list[HostingEvent]:
    events = [event("create_sent", created, deployment)]
    if seconds is not None:
        events.append(event("serving", created + timedelta(seconds=seconds), deployment))
    events.append(event("delete_sent", created + timedelta(hours=1), deployment))
    events.append(event("gone", created + timedelta(hours=1, seconds=20), deployment))
    return events


def test_one_start_is_what_is_learned() -> None:
    events = start(NOW - timedelta(hours=3), 412.0)
    assert learned_provision_seconds(events, now=NOW) == 412.0


def test_the_median_of_recent_starts_so_one_slow_start_does_not_set_the_grace() -> None:
    events = [
        *start(NOW - timedelta(hours=40), 300.0),
        *start(NOW - timedelta(hours=30), 320.0),
        *start(NOW - timedelta(hours=20), 3000.0),  # a start that waited for room
    ]
    assert learned_provision_seconds(events, now=NOW) == 320.0


def test_a_create_that_never_served_and_old_or_future_starts_teach_nothing() -> None:
    events = [
        *start(NOW - timedelta(days=8), 100.0),  # before the week
        *start(NOW - timedelta(hours=5), None),  # never served
        *start(NOW + timedelta(hours=1), 50.0),  # after now (a log read later than `now`)
    ]
    assert learned_provision_seconds(events, now=NOW) is None
    assert learned_provision_seconds([*events, *start(NOW - timedelta(hours=2), 200.0)], now=NOW)


def test_only_the_last_starts_count() -> None:
    events = [
        e
        for hour, seconds in enumerate([900.0, 900.0, 900.0, 100.0, 100.0])
        for e in start(NOW - timedelta(hours=12 - 2 * hour), seconds)
    ]
    assert learned_provision_seconds(events, now=NOW, starts=2) == 100.0
    assert learned_provision_seconds(events, now=NOW, starts=5) == 900.0


def test_each_deployment_of_the_model_has_its_own_lifetimes() -> None:
    # Two deployments' events interleaved: a serving of one never ends the other's start.
    events = [
        event("create_sent", NOW - timedelta(seconds=1000), "ft-a"),
        event("create_sent", NOW - timedelta(seconds=900), "ft-b"),
        event("serving", NOW - timedelta(seconds=800), "ft-b"),
        event("serving", NOW - timedelta(seconds=400), "ft-a"),
    ]
    assert learned_provision_seconds(events, now=NOW) == 350.0  # median of 100 and 600


class Reader:
    def __init__(self, events: list[HostingEvent]) -> None:
        self.events = events
        self.reads = 0
        self.fail = False

    def read(self, since: datetime, until: datetime, *, model: str | None = None) -> LogReading:
        self.reads += 1
        if self.fail:
            raise OSError("storage is down")
        return LogReading(tuple(self.events))


def test_the_stored_log_is_read_once_per_refresh_and_a_failed_read_keeps_the_last_figure() -> None:
    now = [NOW]
    reader = Reader(start(NOW - timedelta(hours=5), 500.0))
    learned = LearnedProvisioning(reader, "m", lambda: now[0])  # type: ignore[arg-type]
    assert learned() == 500.0
    assert learned() == 500.0
    assert reader.reads == 1
    reader.events += start(NOW - timedelta(hours=2), 700.0)
    reader.fail = True
    now[0] = NOW + timedelta(minutes=11)
    assert learned() == 500.0, "storage down: the figure learned before"
    assert reader.reads == 2
    assert learned() == 500.0 and reader.reads == 2, "asked again only after the refresh"
    reader.fail = False
    now[0] = NOW + timedelta(minutes=22)
    assert learned() == 600.0
    assert reader.reads == 3


def test_the_grace_takes_the_learned_time_else_the_ledgers_else_the_fixed_one() -> None:
    fallback = timedelta(minutes=5)
    observed = LedgerRecord(deployment="d", last_provision_seconds=90.0)
    never = LedgerRecord(deployment="d")
    learned: list[float | None] = [None]
    grace = BreakEvenGrace(fallback, learned=lambda: learned[0])
    assert resolve_grace(grace, observed) == timedelta(seconds=90)
    assert resolve_grace(grace, never) == fallback
    learned[0] = 480.0
    assert resolve_grace(grace, observed) == timedelta(seconds=480)
    assert resolve_grace(grace, never) == timedelta(seconds=480)


def test_the_replays_log_learns_each_start_as_the_stored_one_would() -> None:
    clock = [NOW]
    model = HostedModel(
        name="m",
        deployment="ft-m",
        fine_tuned_model="gpt-4.1-mini.ft-1",
        idle_grace_seconds=0,
        max_lifetime_seconds=3600,
        context_tokens=8192,
    )
    log = RecentLifecycle(model, lambda: clock[0])
    record = LedgerRecord(deployment="ft-m")
    assert log.learned() is None
    log.listener("create_sent", record, "job:1", None)
    clock[0] = NOW + timedelta(seconds=360)
    log.listener("serving", record, "job:1", None)
    assert log.learned() == 360.0
    log.listener("delete_sent", record, "reaper", None)
    log.listener("gone", record, "reaper", None)
    clock[0] = NOW + timedelta(hours=1)
    log.listener("create_sent", record, "job:2", None)
    clock[0] = NOW + timedelta(hours=1, seconds=300)
    log.listener("serving", record, "job:2", None)
    assert log.learned() == 330.0
