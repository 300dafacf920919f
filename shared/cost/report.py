"""The savings report: what hosting cost, beside what the same work costs under other strategies.

For each period (UTC day or ISO week) and hosted model: the deploy cycles, hosted and billed
hours and hosting cost the hosting log records (this app, "on demand"), the documents, tokens
and token cost the job and batch records hold, and the same work under

- always-on (24x7): one deployment up for the whole period;
- per-document, the original design: for each document a deployment is created, answers it
  and is deleted, taking the provisioning (and deletion) time this app observed;

with the saving in money and percent. Every hosting figure is shown under both billing
readings (`per_minute`, prorated, and `per_started_hour`), since Azure does not document
which one applies. A lifetime belongs to the period it started in (clipped to the report's
range). Token cost is the same work under every strategy, so it is in every total alike.

Pure: lifetimes, work and prices in, a `SavingsReport` out; `time_scale` turns the app's
seconds into Azure's (1 in Azure; the simulator's scale locally).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from shared.cost.billing import BILLING_READINGS, BillingReading, billed_seconds
from shared.cost.lifetimes import DeploymentLifetime, observed_median
from shared.cost.prices import CURRENCY, HOSTING_FEE_SOURCE, TOKEN_PRICE_SOURCE, ModelPrices
from shared.cost.usage import WorkDone

PeriodKind = Literal["day", "week"]
ALL_MODELS = "(all)"


class Billed(BaseModel):
    """One figure under both billing readings."""

    model_config = ConfigDict(frozen=True)

    per_minute: float
    per_started_hour: float

    def __add__(self, other: Billed) -> Billed:
        return Billed(
            per_minute=self.per_minute + other.per_minute,
            per_started_hour=self.per_started_hour + other.per_started_hour,
        )

    def __sub__(self, other: Billed) -> Billed:
        return Billed(
            per_minute=self.per_minute - other.per_minute,
            per_started_hour=self.per_started_hour - other.per_started_hour,
        )

    def get(self, reading: BillingReading) -> float:
        return self.per_minute if reading == "per_minute" else self.per_started_hour


ZERO = Billed(per_minute=0.0, per_started_hour=0.0)


class StrategyCost(BaseModel):
    """What one strategy costs for a period's work."""

    model_config = ConfigDict(frozen=True)

    deploy_cycles: int
    hosted_seconds: float
    hosted_hours: float
    billed_hours: Billed
    hosting_cost: Billed
    # Hosting plus the period's token cost.
    total_cost: Billed

    def __add__(self, other: StrategyCost) -> StrategyCost:
        hosted = self.hosted_seconds + other.hosted_seconds
        return StrategyCost(
            deploy_cycles=self.deploy_cycles + other.deploy_cycles,
            hosted_seconds=hosted,
            hosted_hours=hosted / 3600,
            billed_hours=self.billed_hours + other.billed_hours,
            hosting_cost=self.hosting_cost + other.hosting_cost,
            total_cost=self.total_cost + other.total_cost,
        )


NOTHING = StrategyCost(
    deploy_cycles=0,
    hosted_seconds=0.0,
    hosted_hours=0.0,
    billed_hours=ZERO,
    hosting_cost=ZERO,
    total_cost=ZERO,
)


class Saving(BaseModel):
    """What this app saved against a strategy: money, and percent of that strategy's total."""

    model_config = ConfigDict(frozen=True)

    amount: Billed
    # None where the other strategy costs nothing (no percent of zero).
    percent_per_minute: float | None
    percent_per_started_hour: float | None


class PeriodRow(BaseModel):
    """One period and model (or every model: `model` is "(all)")."""

    model_config = ConfigDict(frozen=True)

    period: str
    start: datetime
    end: datetime
    model: str
    documents: int
    failed_documents: int
    # Of this app's hosted hours, those between a deployment last seen and its deletion
    # confirmed: the lifetime ended somewhere in them, so the bill may be lower by up to this.
    unconfirmed_hours: float
    input_tokens: int
    output_tokens: int
    token_cost: float
    on_demand: StrategyCost
    always_on: StrategyCost
    per_document: StrategyCost
    saving_vs_always_on: Saving
    saving_vs_per_document: Saving


class ModelBasis(BaseModel):
    """A model's prices and the timings the per-document strategy was priced with."""

    model_config = ConfigDict(frozen=True)

    model: str
    deployment_type: str
    hourly_fee: float
    input_per_million_tokens: float
    output_per_million_tokens: float
    provision_seconds: float
    provision_seconds_basis: str
    delete_seconds: float
    delete_seconds_basis: str


class LifetimeRow(BaseModel):
    """One deployment cycle from the hosting log (Azure seconds, after the time scale)."""

    model_config = ConfigDict(frozen=True)

    model: str
    deployment: str
    sku: str
    created: datetime
    serving: datetime | None
    delete_sent: datetime | None
    gone: datetime | None
    ended_by: str | None
    last_seen: datetime | None
    hosted_seconds: float
    created_by: str
    holds: tuple[str, ...]


class SavingsReport(BaseModel):
    """The whole report: what `hosting report --json` prints and `GET /api/report` returns."""

    model_config = ConfigDict(frozen=True)

    since: datetime
    until: datetime
    by: PeriodKind
    currency: str
    time_scale: float
    billing_readings: tuple[str, ...]
    models: tuple[ModelBasis, ...]
    periods: tuple[PeriodRow, ...]
    totals: tuple[PeriodRow, ...]
    lifetimes: tuple[LifetimeRow, ...]
    # Where the hosting log may be missing a line; empty when it is complete as far as known.
    gaps: tuple[str, ...]
    complete: bool
    notes: tuple[str, ...]
    price_sources: dict[str, str]


@dataclass(frozen=True)
class ModelTerms:
    """What the report needs of a hosted model: its current type and prices."""

    name: str
    deployment_type: str
    prices: ModelPrices


@dataclass(frozen=True)
class ReportInputs:
    since: datetime
    until: datetime
    now: datetime
    by: PeriodKind
    models: Sequence[ModelTerms]
    lifetimes: Sequence[DeploymentLifetime]
    work: Sequence[WorkDone]
    gaps: Sequence[str] = ()
    notes: Sequence[str] = ()
    time_scale: float = 1.0
    # The provisioning time to assume where the log shows none (app seconds).
    expected_provision_seconds: float = 300.0


def periods(
    since: datetime, until: datetime, by: PeriodKind
) -> Iterator[tuple[str, datetime, datetime]]:
    """The UTC days or ISO weeks from `since` to `until`, each clipped to that range."""
    start = since.astimezone(UTC)
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    first = day if by == "day" else day - timedelta(days=day.weekday())
    step = timedelta(days=1 if by == "day" else 7)
    edge = first
    while edge < until:
        iso = edge.isocalendar()
        label = edge.date().isoformat() if by == "day" else f"{iso.year}-W{iso.week:02d}"
        yield label, max(edge, start), min(edge + step, until)
        edge += step


def _billed(seconds: Iterable[float], fee: float) -> tuple[Billed, Billed]:
    """Billed hours and hosting cost, under both readings, of lifetimes of `seconds` each."""
    spans = list(seconds)
    hours = {
        reading: sum(billed_seconds((0.0, s), reading) for s in spans) / 3600
        for reading in BILLING_READINGS
    }
    billed_hours = Billed(
        per_minute=hours["per_minute"], per_started_hour=hours["per_started_hour"]
    )
    cost = Billed(
        per_minute=hours["per_minute"] * fee, per_started_hour=hours["per_started_hour"] * fee
    )
    return billed_hours, cost


def _strategy(cycles: int, spans: Sequence[tuple[float, float]], tokens: float) -> StrategyCost:
    """`spans` are (seconds, hourly fee) per lifetime."""
    hours = ZERO
    cost = ZERO
    for seconds, fee in spans:
        one_hours, one_cost = _billed([seconds], fee)
        hours, cost = hours + one_hours, cost + one_cost
    hosted = sum(seconds for seconds, _ in spans)
    return StrategyCost(
        deploy_cycles=cycles,
        hosted_seconds=hosted,
        hosted_hours=hosted / 3600,
        billed_hours=hours,
        hosting_cost=cost,
        total_cost=cost + Billed(per_minute=tokens, per_started_hour=tokens),
    )


def _saving(ours: StrategyCost, theirs: StrategyCost) -> Saving:
    amount = Billed(
        per_minute=theirs.total_cost.per_minute - ours.total_cost.per_minute,
        per_started_hour=theirs.total_cost.per_started_hour - ours.total_cost.per_started_hour,
    )

    def percent(reading: BillingReading) -> float | None:
        base = theirs.total_cost.get(reading)
        return None if base <= 0 else 100.0 * amount.get(reading) / base

    return Saving(
        amount=amount,
        percent_per_minute=percent("per_minute"),
        percent_per_started_hour=percent("per_started_hour"),
    )


@dataclass(frozen=True)
class _Basis:
    provision: float
    provision_basis: str
    delete: float
    delete_basis: str


def _basis(model: str, lifetimes: Sequence[DeploymentLifetime], inputs: ReportInputs) -> _Basis:
    own = [lt for lt in lifetimes if lt.model == model]
    provision = observed_median(lt.provision_seconds for lt in own)
    delete = observed_median(lt.delete_seconds for lt in own)
    seen = sum(1 for lt in own if lt.provision_seconds is not None)
    return _Basis(
        provision=(provision if provision is not None else inputs.expected_provision_seconds)
        * inputs.time_scale,
        provision_basis=(
            f"median of {seen} provisioning(s) in the hosting log"
            if provision is not None
            else "none in the hosting log: EXPECTED_PROVISION_SECONDS"
        ),
        delete=(delete or 0.0) * inputs.time_scale,
        delete_basis=(
            "median time from delete sent to gone in the hosting log"
            if delete is not None
            else "none confirmed in the hosting log: not counted"
        ),
    )


def build_report(inputs: ReportInputs) -> SavingsReport:
    """The savings report for `inputs` (see the module's docstring)."""
    scale = inputs.time_scale
    end = min(inputs.until, inputs.now)
    models = {m.name: m for m in inputs.models}
    # A model no longer declared still had its deployments billed: price it with defaults.
    for lifetime in inputs.lifetimes:
        models.setdefault(lifetime.model, ModelTerms(lifetime.model, lifetime.sku, ModelPrices()))
    bases = {name: _basis(name, inputs.lifetimes, inputs) for name in models}
    rows: list[PeriodRow] = []
    totals: list[PeriodRow] = []
    for name, terms in sorted(models.items()):
        fee = terms.prices.hourly_fee(terms.deployment_type)
        model_rows = [
            _row(
                label=label,
                start=start,
                stop=stop,
                terms=terms,
                fee=fee,
                basis=bases[name],
                inputs=inputs,
                scale=scale,
            )
            for label, start, stop in periods(inputs.since, end, inputs.by)
        ]
        rows.extend(model_rows)
        if model_rows:
            totals.append(_sum_rows("total", model_rows, name))
    if totals:
        totals.append(_sum_rows("total", totals, ALL_MODELS))
    lifetimes = tuple(
        _lifetime_row(lt, inputs.since, end, scale)
        for lt in inputs.lifetimes
        if lt.created < end.timestamp() and lt.end_or(end.timestamp()) > inputs.since.timestamp()
    )
    gaps = tuple(inputs.gaps)
    return SavingsReport(
        since=inputs.since,
        until=end,
        by=inputs.by,
        currency=CURRENCY,
        time_scale=scale,
        billing_readings=BILLING_READINGS,
        models=tuple(
            ModelBasis(
                model=name,
                deployment_type=terms.deployment_type,
                hourly_fee=terms.prices.hourly_fee(terms.deployment_type),
                input_per_million_tokens=terms.prices.input_per_million_tokens,
                output_per_million_tokens=terms.prices.output_per_million_tokens,
                provision_seconds=bases[name].provision,
                provision_seconds_basis=bases[name].provision_basis,
                delete_seconds=bases[name].delete,
                delete_seconds_basis=bases[name].delete_basis,
            )
            for name, terms in sorted(models.items())
        ),
        periods=tuple(rows),
        totals=tuple(totals),
        lifetimes=lifetimes,
        gaps=gaps,
        complete=not gaps,
        notes=tuple(inputs.notes),
        price_sources={"hosting_fee": HOSTING_FEE_SOURCE, "tokens": TOKEN_PRICE_SOURCE},
    )


def _clipped_seconds(lifetime: DeploymentLifetime, since: float, until: float) -> float:
    return max(0.0, min(lifetime.end_or(until), until) - max(lifetime.created, since))


def _row(
    *,
    label: str,
    start: datetime,
    stop: datetime,
    terms: ModelTerms,
    fee: float,
    basis: _Basis,
    inputs: ReportInputs,
    scale: float,
) -> PeriodRow:
    since, until = inputs.since.timestamp(), min(inputs.until, inputs.now).timestamp()
    lo, hi = start.timestamp(), stop.timestamp()
    prices = terms.prices
    # A lifetime belongs to the period its (clipped) start falls in.
    ours = [
        lt
        for lt in inputs.lifetimes
        if lt.model == terms.name and lo <= max(lt.created, since) < hi and lt.end_or(until) > since
    ]
    work = [w for w in inputs.work if w.model == terms.name and lo <= w.at < hi]
    documents = sum(w.documents for w in work)
    input_tokens = sum(w.input_tokens for w in work)
    output_tokens = sum(w.output_tokens for w in work)
    tokens = prices.token_cost(input_tokens, output_tokens)
    on_demand = _strategy(
        len(ours),
        [(_clipped_seconds(lt, since, until) * scale, prices.hourly_fee(lt.sku)) for lt in ours],
        tokens,
    )
    always_on = _strategy(1, [((hi - lo) * scale, fee)], tokens)
    per_document_spans = [
        (basis.provision + basis.delete + w.inference_seconds * scale / w.documents, fee)
        for w in work
        if w.documents > 0
        for _ in range(w.documents)
    ]
    per_document = _strategy(len(per_document_spans), per_document_spans, tokens)
    return PeriodRow(
        period=label,
        start=start,
        end=stop,
        model=terms.name,
        documents=documents,
        failed_documents=sum(w.failed for w in work),
        unconfirmed_hours=sum(lt.unconfirmed_seconds for lt in ours) * scale / 3600,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        token_cost=tokens,
        on_demand=on_demand,
        always_on=always_on,
        per_document=per_document,
        saving_vs_always_on=_saving(on_demand, always_on),
        saving_vs_per_document=_saving(on_demand, per_document),
    )


def _sum_rows(label: str, rows: Sequence[PeriodRow], model: str) -> PeriodRow:
    on_demand = _total(r.on_demand for r in rows)
    always_on = _total(r.always_on for r in rows)
    if model != ALL_MODELS:
        # One deployment kept up for the whole range, however many periods it spans.
        always_on = always_on.model_copy(update={"deploy_cycles": 1})
    per_document = _total(r.per_document for r in rows)
    return PeriodRow(
        period=label,
        start=min(r.start for r in rows),
        end=max(r.end for r in rows),
        model=model,
        documents=sum(r.documents for r in rows),
        failed_documents=sum(r.failed_documents for r in rows),
        unconfirmed_hours=sum(r.unconfirmed_hours for r in rows),
        input_tokens=sum(r.input_tokens for r in rows),
        output_tokens=sum(r.output_tokens for r in rows),
        token_cost=sum(r.token_cost for r in rows),
        on_demand=on_demand,
        always_on=always_on,
        per_document=per_document,
        saving_vs_always_on=_saving(on_demand, always_on),
        saving_vs_per_document=_saving(on_demand, per_document),
    )


def _total(costs: Iterable[StrategyCost]) -> StrategyCost:
    total = NOTHING
    for cost in costs:
        total = total + cost
    return total


def _lifetime_row(
    lifetime: DeploymentLifetime, since: datetime, until: datetime, scale: float
) -> LifetimeRow:
    def moment(value: float | None) -> datetime | None:
        return None if value is None else datetime.fromtimestamp(value, UTC)

    created = moment(lifetime.created)
    assert created is not None
    return LifetimeRow(
        model=lifetime.model,
        deployment=lifetime.deployment,
        sku=lifetime.sku,
        created=created,
        serving=moment(lifetime.serving),
        delete_sent=moment(lifetime.delete_sent),
        gone=moment(lifetime.gone),
        ended_by=lifetime.ended_by,
        last_seen=moment(lifetime.last_seen),
        hosted_seconds=_clipped_seconds(lifetime, since.timestamp(), until.timestamp()) * scale,
        created_by=lifetime.created_by,
        holds=lifetime.holds,
    )
