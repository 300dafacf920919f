"""The savings report from hand-worked lifetimes and work, checked against figures on paper."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.cost.chart import ChartError, draw_chart
from shared.cost.lifetimes import lifetimes_from
from shared.cost.log import HostingEvent, new_event
from shared.cost.prices import ModelPrices
from shared.cost.report import ALL_MODELS, ModelTerms, ReportInputs, build_report, periods
from shared.cost.usage import WorkDone
from shared.hosting.lifecycle import LifecycleEvent

DAY = datetime(2026, 12, 1, tzinfo=UTC)
PRICES = ModelPrices()  # Standard 1.70/h, 0.80 and 3.20 per million tokens


def _at(hours: float) -> datetime:
    return DAY + timedelta(hours=hours)


def _event(
    kind: LifecycleEvent, hours: float, deployment: str = "ft-a", seen: float | None = None
) -> HostingEvent:
    return new_event(
        kind,
        at=_at(hours),
        model="a",
        deployment=deployment,
        sku="Standard",
        capacity=10,
        record=None,
        actor="test",
        last_seen=_at(seen) if seen is not None else None,
    )


def _work(hours: float, documents: int = 1, seconds: float = 60.0) -> WorkDone:
    return WorkDone("a", _at(hours).timestamp(), "job", documents, 0, 1000, 500, seconds)


def test_lifetimes_follow_the_events_and_say_where_a_line_is_missing() -> None:
    events = [
        _event("create_sent", 1),
        _event("serving", 1.1),
        _event("delete_sent", 2),
        _event("gone", 2.05, seen=2.02),
        _event("gone", 2.2),  # the reaper confirming it again: nothing new
        _event("create_sent", 3),
        _event("create_sent", 3.5),  # a Failed deployment replaced
        _event("vanished", 4),
        _event("serving", 5, deployment="ft-b"),  # no create before it
        _event("create_sent", 6),
    ]
    reading = lifetimes_from(reversed(events))  # order of reading does not matter
    spans = [(lt.created, lt.gone, lt.ended_by) for lt in reading.lifetimes]
    assert spans == [
        (_at(1).timestamp(), _at(2.05).timestamp(), "gone"),
        (_at(3).timestamp(), _at(3.5).timestamp(), "replaced"),
        (_at(3.5).timestamp(), _at(4).timestamp(), "vanished"),
        (_at(6).timestamp(), None, None),
    ]
    first = reading.lifetimes[0]
    assert first.provision_seconds == pytest.approx(360)
    assert first.delete_seconds == pytest.approx(180)
    assert first.unconfirmed_seconds == pytest.approx(108), "last seen 02:01:12, gone 02:03"
    assert reading.lifetimes[1].unconfirmed_seconds == 0, "replaced: no bound to give"
    assert len(reading.gaps) == 1
    assert "ft-b: serving" in reading.gaps[0] and "not counted" in reading.gaps[0]


def test_one_day_two_cycles_priced_under_both_readings_against_24x7_and_per_document() -> None:
    # Cycle 1: 01:00 to 01:30:30 (30.5 min, provisioning 6 min, deletion 30 s);
    # cycle 2: 10:00 to 12:10 (130 min, provisioning 4 min). Three documents of 60 s each.
    events = [
        _event("create_sent", 1),
        _event("serving", 1.1),
        _event("delete_sent", 1.5),
        _event("gone", 1.5 + 30 / 3600, seen=1.5),
        _event("create_sent", 10),
        _event("serving", 10 + 4 / 60),
        _event("gone", 12 + 10 / 60),
    ]
    lives = lifetimes_from(events)
    inputs = ReportInputs(
        since=DAY,
        until=DAY + timedelta(days=1),
        now=DAY + timedelta(days=2),
        by="day",
        models=[ModelTerms("a", "Standard", PRICES)],
        lifetimes=lives.lifetimes,
        work=[_work(1.2), _work(10.5, documents=2, seconds=120.0)],
    )
    report = build_report(inputs)
    (row,) = report.periods
    assert row.period == "2026-12-01"
    assert row.documents == 3
    assert (row.input_tokens, row.output_tokens) == (2000, 1000)
    tokens = (2000 * 0.80 + 1000 * 3.20) / 1e6
    assert row.token_cost == pytest.approx(tokens)

    ours = row.on_demand
    assert ours.deploy_cycles == 2
    assert ours.hosted_seconds == pytest.approx(30.5 * 60 + 130 * 60)
    # Per minute: 31 + 130 minutes; per started hour: 1 + 3 hours.
    assert ours.billed_hours.per_minute == pytest.approx(161 / 60)
    assert ours.billed_hours.per_started_hour == 4
    assert ours.hosting_cost.per_minute == pytest.approx(161 / 60 * 1.70)
    assert ours.total_cost.per_started_hour == pytest.approx(4 * 1.70 + tokens)
    assert row.unconfirmed_hours == pytest.approx(30 / 3600)

    always = row.always_on
    assert always.billed_hours.per_minute == 24
    assert always.hosting_cost.per_started_hour == pytest.approx(24 * 1.70)

    # Per document: median provisioning (5 min), the one confirmed deletion (30 s) and each
    # document's own 60 s: 6.5 min each, 7 minutes billed, one started hour each.
    (basis,) = report.models
    assert basis.provision_seconds == pytest.approx(300)
    assert basis.delete_seconds == pytest.approx(30)
    per_doc = row.per_document
    assert per_doc.deploy_cycles == 3
    assert per_doc.hosted_seconds == pytest.approx(3 * 390)
    assert per_doc.billed_hours.per_minute == pytest.approx(21 / 60)
    assert per_doc.billed_hours.per_started_hour == 3

    saving = row.saving_vs_always_on
    assert saving.amount.per_minute == pytest.approx((24 - 161 / 60) * 1.70)
    assert saving.percent_per_minute == pytest.approx(
        100 * (24 - 161 / 60) * 1.70 / (24 * 1.70 + tokens)
    )
    # Per document is cheaper per minute here (three short documents), dearer per started hour.
    assert row.saving_vs_per_document.amount.per_minute < 0
    assert row.saving_vs_per_document.amount.per_started_hour == pytest.approx(-1 * 1.70)

    (model_total, everything) = report.totals
    assert model_total.model == "a" and everything.model == ALL_MODELS
    assert everything.on_demand == ours
    assert report.complete and report.gaps == ()


def test_a_lifetime_across_the_start_is_clipped_and_an_open_one_counts_until_now() -> None:
    events = [_event("create_sent", -2), _event("gone", 1), _event("create_sent", 30)]
    since, now = DAY, DAY + timedelta(hours=31)
    report = build_report(
        ReportInputs(
            since=since,
            until=DAY + timedelta(days=3),
            now=now,
            by="day",
            models=[ModelTerms("a", "Standard", PRICES)],
            lifetimes=lifetimes_from(events).lifetimes,
            work=[],
        )
    )
    assert [row.period for row in report.periods] == ["2026-12-01", "2026-12-02"]
    first, second = report.periods
    assert first.on_demand.hosted_seconds == pytest.approx(3600)
    assert second.on_demand.hosted_seconds == pytest.approx(3600)
    assert second.always_on.hosted_hours == pytest.approx(7), "up to now, not to until"
    assert report.until == now


def test_the_time_scale_turns_app_seconds_into_azure_seconds() -> None:
    events = [_event("create_sent", 1), _event("gone", 1 + 10 / 3600)]  # 10 real seconds
    report = build_report(
        ReportInputs(
            since=_at(0),
            until=_at(2),
            now=_at(2),
            by="day",
            models=[ModelTerms("a", "Standard", PRICES)],
            lifetimes=lifetimes_from(events).lifetimes,
            work=[],
            time_scale=60,
        )
    )
    assert report.periods[0].on_demand.hosted_seconds == pytest.approx(600)
    assert report.lifetimes[0].hosted_seconds == pytest.approx(600)


def test_weeks_are_iso_weeks_clipped_to_the_range() -> None:
    found = list(
        periods(datetime(2026, 12, 2, 12, tzinfo=UTC), datetime(2026, 12, 9, tzinfo=UTC), "week")
    )
    assert [(label, start.day, end.day) for label, start, end in found] == [
        ("2026-W49", 2, 7),
        ("2026-W50", 7, 9),
    ]


@pytest.mark.parametrize("name", ["report.png", "report.svg"])
def test_the_chart_is_drawn_to_png_or_svg(tmp_path: Path, name: str) -> None:
    report = build_report(
        ReportInputs(
            since=DAY,
            until=DAY + timedelta(days=2),
            now=DAY + timedelta(days=2),
            by="day",
            models=[ModelTerms("a", "Standard", PRICES)],
            lifetimes=lifetimes_from([_event("create_sent", 1), _event("gone", 3)]).lifetimes,
            work=[_work(2)],
        )
    )
    path = draw_chart(report, tmp_path / name)
    head = path.read_bytes()[:200]
    assert head.startswith(b"\x89PNG") if name.endswith(".png") else b"<svg" in path.read_bytes()
    with pytest.raises(ChartError, match=r"\*\.png or \*\.svg"):
        draw_chart(report, tmp_path / "report.pdf")
