"""Traces whose answers are worked out on paper, replayed through the app's own decisions.

Timings throughout (the simulator's): a create is Succeeded 300 s after the PUT and serves
60 s later (P = 360 s); a delete takes 20 s. Capacity 10 serves 10,000 tokens a minute, so a
1,000-token document runs 6 s. The reaper and the reconciler tick on each whole minute of the
replay (which starts at midnight UTC). The provisioner looks again after the expected 300 s,
then every 15 s until the endpoint serves, so a cold start's first document waits exactly
360 s when the create goes out at its arrival.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time

import pytest

from shared.cost.billing import Lifetime, LifetimeTally, bill
from shared.planning.baselines import clairvoyant_bound, clairvoyant_lifetimes
from shared.planning.replay import ReplayConfig, ReplayResult, replay
from shared.planning.trace import TraceDocument
from shared.planning.waits import Waits
from shared.schedules.models import WindowSettings

MONDAY = datetime(2026, 3, 23, tzinfo=UTC).timestamp()
WEEK = 7 * 86400.0
P = 360.0
RATE = 10_000 / 60.0  # tokens per second at capacity 10


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def document(moment: str, tokens: int = 1000) -> TraceDocument:
    return TraceDocument(at(moment), tokens, 0, "adhoc")


@dataclass(frozen=True)
class Replayed:
    """A replay's result and every lifetime it reported as it ended (the planner keeps only
    their tally, `result.hosting`)."""

    result: ReplayResult
    lifetimes: tuple[Lifetime, ...]

    @property
    def waits(self) -> Waits:
        return self.result.waits

    @property
    def hosting(self) -> LifetimeTally:
        return self.result.hosting


def run(documents: list[TraceDocument], **config: object) -> Replayed:
    seen: list[Lifetime] = []
    result = replay(
        tuple(documents),
        ReplayConfig(capacity=10, **config),  # type: ignore[arg-type]
        start=MONDAY,
        until=MONDAY + WEEK,
        on_lifetime=seen.append,
    )
    # The tally is the same whether lifetimes are kept or folded in as they end.
    assert result.hosting == LifetimeTally.of(seen)
    return Replayed(result, tuple(seen))


def lifetimes_from(replayed: Replayed, origin: float) -> list[tuple[float, float]]:
    return [(created - origin, gone - origin) for created, gone in replayed.lifetimes]


def test_one_document_waits_one_provisioning_and_is_deleted_after_the_grace() -> None:
    # Create at 0, serving at 360, runs 6 s: idle from 366. A 300 s grace ends at 666; the
    # reaper's next whole minute is 720 (the document came at 01:00), and the delete takes
    # 20 s: one lifetime of 740 s, 13 billed minutes, 1 started hour.
    result = run([document("2026-03-23T01:00:00+00:00")], idle_grace_seconds=300)
    origin = at("2026-03-23T01:00:00+00:00")
    assert result.waits.as_sorted() == (P,)
    assert lifetimes_from(result, origin) == [(0.0, 740.0)]
    billed = bill(result.lifetimes, 1.70)
    assert billed.billed_hours_per_minute == pytest.approx(13 / 60)
    assert billed.billed_hours_per_started_hour == 1.0
    assert billed.cost_per_minute == pytest.approx(13 / 60 * 1.70)


def test_two_documents_closer_than_p_share_one_cold_start() -> None:
    # The second arrives at 100 s, while the first's create is provisioning: it parks as a
    # follower and is woken when the deployment serves at 360, so it waits 260 s. Both run
    # (6 s each, 360-372); with no grace the last release deletes at 372, gone at 392.
    # The zero-wait bound runs them at 0-6 and 100-106 and holds the union of [t - P,
    # finish]: [-360, 106] = 466 s, more than the 392 s billed here, bought with waiting.
    documents = [document("2026-03-23T01:00:00+00:00"), document("2026-03-23T01:01:40+00:00")]
    result = run(documents, idle_grace_seconds=0)
    origin = documents[0].at
    assert result.waits.as_sorted() == (260.0, P)
    assert lifetimes_from(result, origin) == [(0.0, 392.0)]
    spans = clairvoyant_lifetimes(tuple(documents), serving_after=P, tokens_per_second=RATE)
    assert [(a - origin, b - origin) for a, b in spans] == [(-360.0, 106.0)]
    bound = clairvoyant_bound(tuple(documents), serving_after=P, tokens_per_second=RATE)
    assert bound.hosting.hosted_seconds == 466.0 and bound.hosting.deploy_cycles == 1


def test_two_documents_farther_apart_than_the_grace_pay_two_cold_starts() -> None:
    # An hour apart with a 60 s grace: each is idle from 366, its grace ends at 426, the
    # reaper deletes at 480 and it is gone at 500. Two lifetimes of 500 s, both wait P.
    documents = [document("2026-03-23T01:00:00+00:00"), document("2026-03-23T02:00:00+00:00")]
    result = run(documents, idle_grace_seconds=60)
    origin = documents[0].at
    assert result.waits.as_sorted() == (P, P)
    assert lifetimes_from(result, origin) == [(0.0, 500.0), (3600.0, 4100.0)]
    assert bill(result.lifetimes, 1.70).deploy_cycles == 2


def test_an_auto_grace_keeps_the_deployment_for_one_cold_start_its_log_has_seen() -> None:
    # idle_grace = "auto" with a fixed grace of 0 until a start is seen. The first document
    # starts it (create 0, serving 360: the replay's hosting log learns P), runs to 366 and is
    # kept for 360 s: the grace ends at 726, the reaper's minute at 780 finds the second
    # document (600 s, waits 0) has moved it: idle from 606, grace to 966, deleted at 1020,
    # gone 1040. The third, an hour on, is a cold start again: P, gone at 3600 + 800.
    documents = [
        document("2026-03-23T01:00:00+00:00"),
        document("2026-03-23T01:10:00+00:00"),
        document("2026-03-23T02:00:00+00:00"),
    ]
    result = run(documents, idle_grace_seconds=0, adaptive_grace=True)
    origin = documents[0].at
    assert result.waits.as_sorted() == (0.0, P, P)
    assert lifetimes_from(result, origin) == [(0.0, 1040.0), (3600.0, 4400.0)]
    fixed = run(documents, idle_grace_seconds=0)
    assert bill(fixed.lifetimes, 1.70).deploy_cycles == 3, "without it, a start per document"


def test_a_window_serves_documents_inside_it_and_a_cold_start_serves_one_outside() -> None:
    # Window Monday 09:00-10:00 UTC, lead 600 s: the reconciler places its hold and sends the
    # create at 08:50; the create is Succeeded at 08:55, serves from 08:56 (the tick's probe).
    # The 09:30 document waits 0. The hold ends at 10:00; with no grace the reaper deletes at
    # 10:00, gone 10:00:20: 70 min 20 s. The 12:00 document is a cold start: waits 360 s,
    # runs to 12:06:06, deleted at once, gone 12:06:26 (386 s).
    window = WindowSettings(
        name="office", time_zone="UTC", weekdays=("mon",), opens=time(9), closes=time(10)
    )
    documents = [document("2026-03-23T09:30:00+00:00"), document("2026-03-23T12:00:00+00:00")]
    result = run(documents, idle_grace_seconds=0, windows=(window,))
    assert result.waits.as_sorted() == (0.0, P)
    assert lifetimes_from(result, at("2026-03-23T08:50:00+00:00")) == [
        (0.0, 4220.0),
        (3 * 3600 + 600.0, 3 * 3600 + 600.0 + 386.0),
    ]
    billed = bill(result.lifetimes, 1.70)
    assert billed.billed_hours_per_minute == pytest.approx((71 + 7) / 60)
    assert billed.billed_hours_per_started_hour == 3.0


def test_an_overnight_window_across_the_clocks_going_forward_lasts_seven_hours() -> None:
    # Europe/London, Saturday 22:00 to 06:00: on 28-29 March 2026 the clocks go forward at
    # 01:00 UTC, so the window opens at 22:00 UTC (GMT) and closes at 05:00 UTC (06:00 BST):
    # 7 hours, not 8. Provisioning starts 600 s early (21:50 UTC); the delete at the close
    # takes 20 s: 7 h 10 min 20 s. The document at 02:00 UTC finds it serving.
    window = WindowSettings(
        name="night",
        time_zone="Europe/London",
        weekdays=("sat",),
        opens=time(22),
        closes=time(6),
    )
    result = run([document("2026-03-29T02:00:00+00:00")], idle_grace_seconds=0, windows=(window,))
    assert result.waits.as_sorted() == (0.0,)
    assert lifetimes_from(result, at("2026-03-28T21:50:00+00:00")) == [(0.0, 7 * 3600 + 620.0)]
    assert bill(result.lifetimes, 1.70).billed_hours_per_started_hour == 8.0
