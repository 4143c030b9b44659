"""A connection's month, rated: its period (continuing from the previous bill), its usage, its bill.

The one way every path rates a month from readings: `invoice_issue`, a re-rate, the billing run (a
chunk at once: each read below is one query for the whole chunk, never one per connection; the
reads for estimates and true-ups are made only when a connection of the chunk needs one) and the bill
preview. What a month is billed on:

1. Its readings: the period runs from where the previous bill ended to the month's last reading
   (`billing/periods.py`), each meter's part counted across a meter exchange.
2. After estimated bills (the previous bill was an estimate): the true-up, rated on the whole span
   since the last actual reading as one period, less what the estimates charged for usage
   (`billing.rating.settle`).
3. No reading in the month: an estimate to 00:00 on the 1st of the next month, if the provider
   estimates (the default) and the month is over; a connection with no history is not billed.

A credit carried from the previous bill comes off whatever the month is billed on.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from functools import reduce
from operator import or_
from typing import Any, NamedTuple, Protocol

from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext

from billing.models import MeterReading, ServiceConnection
from billing.months import add_months, next_month
from billing.periods import (
    TypeChange,
    actual_periods,
    estimate_reading,
    period_days,
    period_ends,
    type_parts,
)
from billing.rating import (
    NO_MONEY,
    OFF_PEAK,
    PEAK,
    Estimated,
    MeterChange,
    Part,
    RatedBill,
    Reading,
    Stretch,
    Usage,
    days_between,
    days_label,
    rate_parts,
    rate_prorated,
    settle,
    usage_between,
)
from billing.selectors import (
    meter_changes_between,
    period_span,
    readings_for_period,
    schedule_history,
    type_changes_of,
)
from invoicing.models import Invoice, InvoiceStatus
from providers.models import Provider

# How far back an estimate looks for the connection's actual periods: the last three, and the same
# month a year before.
HISTORY_MONTHS = 14


class Billable(Protocol):
    """What rating needs of a connection: a model instance or the billing run's plain values."""

    pk: int
    number: str
    customer_id: int
    connection_type_id: int
    declared_monthly_income: Decimal | None


class PreviousBill(NamedTuple):
    """The connection's latest non-cancelled bill before the month: where the next period starts."""

    pk: int
    number: str
    period: date
    end: Reading | None  # its closing moment and registers; None for a bill of typed kWh
    estimated: bool
    credit_carried: Decimal  # owed to the customer, to come off the next bill
    customer_id: int  # whose bill it was: a credit comes off only that customer's next bill


PREVIOUS_VALUES = (
    *("connection_id", "pk", "number", "period", "period_end", *Invoice.END_REGISTERS),
    *("estimated", "credit_carried", "customer_id"),
)


def previous_bills(*, connections: QuerySet[ServiceConnection], period: date) -> dict[int, PreviousBill]:
    """Each connection's latest non-cancelled bill of a month before `period` (1 query: the latest is
    found per connection on the (connection, period) index)."""
    latest = (
        Invoice.objects.filter(connection_id=OuterRef("pk"), period__lt=period)
        .exclude(status=InvoiceStatus.CANCELLED)
        .order_by("-period")
        .values("pk")[:1]
    )
    bills = Invoice.objects.filter(
        pk__in=connections.order_by().annotate(latest=Subquery(latest)).values("latest")
    ).values_list(*PREVIOUS_VALUES)
    found = {}
    zone = timezone.get_current_timezone()
    for connection_id, pk, number, billed, end_at, *registers, estimated, credit, customer_id in bills:
        end = None if end_at is None else Reading(end_at.astimezone(zone), *registers)
        found[connection_id] = PreviousBill(pk, number, billed, end, estimated, credit, customer_id)
    return found


class Chain(NamedTuple):
    """The estimated bills since the last actual reading, oldest first, and that reading."""

    since: datetime  # where the first of them started: the last actual reading
    anchor: Reading | None  # that reading (None only if it was lost)
    estimates: tuple[Estimated, ...]


CHAIN_VALUES = (
    *("connection_id", "number", "period", "period_start", "estimated"),
    *("energy_charge", "tax_total", "subsidy_total", "peak_units", "off_peak_units"),
)


def estimate_chains(*, connection_ids: list[int], period: date) -> dict[int, Chain]:
    """For connections whose previous bill is an estimate: the estimated bills back to the last actual
    reading, and that reading (2 queries, for those connections only)."""
    if not connection_ids:
        return {}
    rows = (
        Invoice.objects.filter(connection_id__in=connection_ids, period__lt=period)
        .exclude(status=InvoiceStatus.CANCELLED)
        .order_by("connection_id", "-period")
        .values_list(*CHAIN_VALUES)
    )
    newest_first: dict[int, list[tuple]] = {}
    closed: set[int] = set()
    for connection_id, number, billed, start, estimated, energy, taxes, subsidies, peak, off_peak in rows:
        if connection_id in closed:
            continue
        if not estimated:
            closed.add(connection_id)
            continue
        units = {PEAK: peak, OFF_PEAK: off_peak}
        newest_first.setdefault(connection_id, []).append(
            (start, Estimated(number, billed, energy, taxes, subsidies, units))
        )
    since = {connection_id: bills[-1][0] for connection_id, bills in newest_first.items()}
    anchors = _readings_at(since)
    return {
        connection_id: Chain(
            since[connection_id],
            anchors.get(connection_id),
            tuple(estimate for _, estimate in reversed(bills)),
        )
        for connection_id, bills in newest_first.items()
    }


def _readings_at(moments: dict[int, datetime]) -> dict[int, Reading]:
    if not moments:
        return {}
    at_moment = reduce(or_, (Q(connection_id=pk, taken_at=at) for pk, at in moments.items()))
    zone = timezone.get_current_timezone()
    return {
        connection_id: Reading(taken_at.astimezone(zone), *registers, replaced)
        for connection_id, taken_at, *registers, replaced in MeterReading.objects.filter(
            at_moment
        ).values_list("connection_id", "taken_at", *MeterReading.REGISTERS, "meter_replaced")
    }


def history_for(*, connection_ids: list[int], period: date) -> dict[int, list[Reading]]:
    """The readings an estimate of `period` is made from: those of the `HISTORY_MONTHS` before it."""
    if not connection_ids:
        return {}
    zone = timezone.get_current_timezone()
    since = datetime.combine(add_months(period, -HISTORY_MONTHS), time(), zone)
    until = datetime.combine(period, time(), zone)
    rows = (
        MeterReading.objects.filter(connection_id__in=connection_ids, taken_at__gte=since, taken_at__lt=until)
        .order_by("connection_id", "taken_at")
        .values_list("connection_id", "taken_at", *MeterReading.REGISTERS, "meter_replaced")
    )
    history: dict[int, list[Reading]] = {}
    for connection_id, taken_at, *registers, replaced in rows:
        history.setdefault(connection_id, []).append(Reading(taken_at.astimezone(zone), *registers, replaced))
    return history


@dataclass(frozen=True)
class MonthInputs:
    """Everything read to rate a month for some connections, read once for all of them."""

    year: int
    month: int
    readings: dict[int, list[Reading]]
    previous: dict[int, PreviousBill]
    changes: dict[int, list[MeterChange]]  # meter exchanges from the earliest period start on
    chains: dict[int, Chain] = field(default_factory=dict)
    type_changes: dict[int, list[TypeChange]] = field(default_factory=dict)
    history: dict[int, list[Reading]] = field(default_factory=dict)  # for estimates
    estimate: bool = False  # a month without a reading may be estimated (the provider says so)
    month_over: bool = True  # ... once it is over
    estimate_end: datetime | None = None  # 00:00 on the 1st of the next month
    since: datetime | None = None  # no period of these connections starts before this moment


def month_inputs(
    *,
    connections: QuerySet[ServiceConnection],
    ids: range | list[int],
    period: date,
    estimate: bool = False,
    billable: Iterable[int] | None = None,
) -> MonthInputs:
    """`connections` and `ids` name the same connections: a query (for the previous bills) and their
    ids (a billing run's chunk as a `range`, read as an id range on the readings' index). `billable`:
    the ids of those to bill (default `ids`), to know whose month needs an estimate."""
    billable = list(ids if billable is None else billable)
    readings = readings_for_period(connections=ids, year=period.year, month=period.month)
    previous = previous_bills(connections=connections, period=period)
    chains = estimate_chains(
        connection_ids=[pk for pk, bill in previous.items() if bill.estimated], period=period
    )
    since, until = period_span(period.year, period.month)
    # A period may start before the month before: at a previous bill's end, or, for a true-up, at the
    # last actual reading before its estimates.
    since = min(
        [
            since,
            *(bill.end.at for bill in previous.values() if bill.end is not None),
            *(chain.since for chain in chains.values()),
        ]
    )
    month = (period.year, period.month)
    read = {pk for pk, rows in readings.items() if any((row.at.year, row.at.month) == month for row in rows)}
    history = history_for(
        connection_ids=[pk for pk in billable if pk not in read] if estimate else [], period=period
    )
    if history:
        since = min(since, *(rows[0].at for rows in history.values()))
    zone = timezone.get_current_timezone()
    estimate_end = datetime.combine(next_month(period), time(), zone)
    return MonthInputs(
        year=period.year,
        month=period.month,
        readings=readings,
        previous=previous,
        changes=meter_changes_between(connections=ids, since=since, until=until),
        chains=chains,
        type_changes=type_changes_of(connections=ids),
        history=history,
        estimate=estimate,
        month_over=estimate_end <= timezone.now(),
        estimate_end=estimate_end,
        since=since,
    )


class NotBillable(Exception):
    """The month cannot be billed for a reason that is no fault of the engine (no reading, ...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BilledPeriod(NamedTuple):
    start: datetime
    end: Reading  # the closing moment and registers (estimated ones for an estimate)
    estimated: bool = False


class MonthBill(NamedTuple):
    usage: Usage  # what the bill records as its own: days and net units of its period
    bill: RatedBill
    period: BilledPeriod


class Schedules:
    """A provider's price rows, read once for the bills of a month: each connection type's rows in
    force on each day of a period, and a period's stretches on each set of rows (`ScheduleHistory`).
    Read for the days given; read again, wider, only when a period reaches beyond them."""

    def __init__(self, *, provider: Provider, first: date, last: date) -> None:
        self.provider = provider
        self._read(first, last)

    def _read(self, first: date, last: date) -> None:
        self.first, self.last = first, last
        self.history = schedule_history(provider=self.provider, since=first, until=last)

    def between(self, type_id: int, first: date, last: date) -> tuple[Stretch, ...]:
        """The days `first` to `last` (both included) split where the type's rows in force change."""
        if first < self.first or last > self.last:
            self._read(min(first, self.first), max(last, self.last))
        return self.history.stretches(type_id, first, last)

    def over(self, type_id: int, start: datetime, end: datetime) -> tuple[Stretch, ...]:
        """The stretches of the period between two moments (its days: `billing.periods.period_days`)."""
        return self.between(type_id, *period_days(start, end))


def no_period_reason(number: str, year: int, month: int, start: Reading | None) -> str:
    name = f"{date(year, month, 1):%B %Y}"
    if start is None:
        return gettext(
            "Connection %(number)s has no reading in %(name)s or none in the month before; a bill needs both."
        ) % {"number": number, "name": name}
    return gettext(
        "Connection %(number)s has no reading in %(name)s after %(at)s, where its period starts; a "
        "bill needs a reading at each end of its period."
    ) % {"number": number, "name": name, "at": format(start.at, "%d %B %Y %H:%M")}


def no_history_reason(number: str, year: int, month: int) -> str:
    return gettext(
        "Connection %(number)s has no reading in %(month)s and no history to estimate one from (no "
        "actual period between two readings before it); it is billed once a reading comes."
    ) % {"number": number, "month": format(date(year, month, 1), "%B %Y")}


def bill_month(
    connection: Billable,
    inputs: MonthInputs,
    schedules: Schedules,
    *,
    arrears: Decimal = NO_MONEY,
    late_percent: Decimal,
    until: datetime | None = None,
) -> MonthBill:
    """Rate one connection's month. Raises `NotBillable` with the reason, or `RatingError`."""
    previous = inputs.previous.get(connection.pk)
    start, end = period_ends(
        inputs.readings.get(connection.pk, ()),
        inputs.year,
        inputs.month,
        previous=previous.end if previous else None,
        until=until,
    )
    chain = inputs.chains.get(connection.pk) if previous is not None and previous.estimated else None
    if end is not None and chain is None and connection.pk not in inputs.type_changes:
        # The common month, kept lean: a billing run rates thousands of these a second.
        usage = usage_between(start, end, _changes_in(connection, inputs, start, end))
        bill = rate_prorated(
            usage,
            schedules.over(connection.connection_type_id, start.at, end.at),
            income=connection.declared_monthly_income,
            arrears=arrears,
            late_surcharge_percent=late_percent,
        )
        if previous is not None and previous.credit_carried:
            bill = with_credit(bill, previous, late_percent, customer_id=connection.customer_id)
        return MonthBill(usage, bill, BilledPeriod(start.at, end))
    rate = _rater(connection, inputs, schedules, arrears, late_percent)
    if end is None:
        if until is not None or _read_in_month(inputs, connection.pk):  # a month read is no estimate's
            raise NotBillable(no_period_reason(connection.number, inputs.year, inputs.month, start))
        usage, bill, billed = _estimated(connection, inputs, start, rate)
    elif chain is None:
        usage = usage_between(start, end, _changes_in(connection, inputs, start, end))
        bill, billed = rate(usage, start, end), BilledPeriod(start.at, end)
    else:
        usage, bill = _true_up(connection, inputs, chain, start, end, rate)
        billed = BilledPeriod(start.at, end)
    estimates = chain.estimates if chain is not None and end is not None else ()
    return MonthBill(
        usage,
        with_credit(bill, previous, late_percent, estimates, customer_id=connection.customer_id),
        billed,
    )


def connection_month(
    connection: ServiceConnection,
    period: date,
    schedules: Schedules,
    *,
    arrears: Decimal,
    late_percent: Decimal,
    until: datetime | None = None,
) -> MonthBill:
    """`bill_month` for one connection, its inputs read for it alone."""
    inputs = month_inputs(
        connections=ServiceConnection.objects.filter(pk=connection.pk),
        ids=[connection.pk],
        period=period,
        estimate=connection.provider.estimate_missing_readings,
    )
    return bill_month(connection, inputs, schedules, arrears=arrears, late_percent=late_percent, until=until)


def with_credit(
    bill: RatedBill,
    previous: PreviousBill | None,
    late_percent: Decimal,
    estimates: tuple[Estimated, ...] = (),
    *,
    customer_id: int,
) -> RatedBill:
    """`bill` less the estimates it trues up and the credit the previous bill carried on (`settle`):
    only the same customer's credit (one who moved out keeps theirs; the next customer never gets it)."""
    own = previous is not None and previous.customer_id == customer_id
    credit = previous.credit_carried if own else NO_MONEY
    if not estimates and not credit:
        return bill
    return settle(
        bill,
        estimates=estimates,
        credit=credit,
        credit_from=previous.number if own else "",
        late_surcharge_percent=late_percent,
    )


Rater = Callable[[Usage, Reading, Reading], RatedBill]


def _rater(
    connection: Billable, inputs: MonthInputs, schedules: Schedules, arrears: Decimal, late_percent: Decimal
) -> Rater:
    """How the connection's usage between two readings is rated: on the rows of its type in force on
    each day of the period (`billing.rating.rate_prorated`), or, when its type changed within the
    period, each part on its own type's rows (`billing.rating.rate_parts`), a part split further
    where those rows change."""
    terms = {
        "income": connection.declared_monthly_income,
        "arrears": arrears,
        "late_surcharge_percent": late_percent,
    }
    changes = inputs.type_changes.get(connection.pk)

    def rate(usage: Usage, start: Reading, end: Reading) -> RatedBill:
        if not changes:
            return rate_prorated(
                usage, schedules.over(connection.connection_type_id, start.at, end.at), **terms
            )
        parts = type_parts(start.at, end.at, changes)
        if len(parts) == 1:
            return rate_prorated(usage, schedules.over(parts[0].type_id, start.at, end.at), **terms)
        return rate_parts(
            usage,
            [
                Part(
                    stretch.days,
                    stretch.schedule,
                    f"{days_label(stretch.first, stretch.last)} ({part.code})",
                    {"from": stretch.first.isoformat(), "to": stretch.last.isoformat(), "type": part.code},
                )
                for part in parts
                for stretch in schedules.between(part.type_id, part.first, part.last)
            ],
            **terms,
        )

    return rate


def _read_in_month(inputs: MonthInputs, pk: int) -> bool:
    month = (inputs.year, inputs.month)
    return any((reading.at.year, reading.at.month) == month for reading in inputs.readings.get(pk, ()))


def _changes_in(connection: Billable, inputs: MonthInputs, start: Reading, end: Reading) -> list[MeterChange]:
    """The meter exchanges within the period; refused when a reading in it is flagged as a new meter's
    without an exchange: with the old meter's final registers unknown, its last units cannot be counted."""
    exchanges = inputs.changes.get(connection.pk)
    changes = [change for change in exchanges if start.at < change.at <= end.at] if exchanges else []
    exchanged = {change.at for change in changes}
    for reading in inputs.readings.get(connection.pk, ()):
        if reading.replaced and start.at < reading.at <= end.at and reading.at not in exchanged:
            raise NotBillable(
                gettext(
                    "The meter of connection %(number)s was replaced at %(at)s without the old meter's final "
                    "reading: record the meter exchange (the old meter's final registers and the new meter's "
                    "first) to bill this period."
                )
                % {"number": connection.number, "at": format(reading.at, "%d %B %Y %H:%M")}
            )
    return changes


def _true_up(
    connection: Billable,
    inputs: MonthInputs,
    chain: Chain,
    start: Reading,
    end: Reading,
    rate: Rater,
) -> tuple[Usage, RatedBill]:
    """The whole span since the last actual reading, rated as one period (`settle` takes the estimates
    back). The bill records as its own usage its own period's days and the span's units less the
    estimates' (less than nothing when the estimates were too high)."""
    if chain.anchor is None:
        raise NotBillable(
            gettext(
                "Connection %(number)s's estimates cannot be trued up: its reading of %(localtime)s, where "
                "they started, is missing."
            )
            % {
                "number": connection.number,
                "localtime": format(timezone.localtime(chain.since), "%d %B %Y %H:%M"),
            }
        )
    span = usage_between(chain.anchor, end, _changes_in(connection, inputs, chain.anchor, end))
    bill = rate(span, chain.anchor, end)
    bill.trace["span"] = {"from": chain.anchor.at.isoformat(), "to": end.at.isoformat()}
    own = {
        bucket: span.units.get(bucket, NO_MONEY) - sum((e.units[bucket] for e in chain.estimates), NO_MONEY)
        for bucket in (PEAK, OFF_PEAK)
    }
    return Usage(days=days_between(start.at, end.at), units=own, total_import=span.total_import), bill


def _estimated(
    connection: Billable,
    inputs: MonthInputs,
    start: Reading | None,
    rate: Rater,
) -> tuple[Usage, RatedBill, BilledPeriod]:
    number, year, month = connection.number, inputs.year, inputs.month
    if not inputs.estimate:
        raise NotBillable(no_period_reason(number, year, month, start))
    if not inputs.month_over:
        raise NotBillable(
            gettext("%(no_period_reason)s A month is estimated only once it is over.")
            % {"no_period_reason": no_period_reason(number, year, month, start)}
        )
    history = inputs.history.get(connection.pk, [])
    start = start or (history[-1] if history else None)  # no earlier bill: from the last actual reading
    periods = actual_periods(history, inputs.changes.get(connection.pk, ()))
    estimate = estimate_reading(start, inputs.estimate_end, periods, year, month) if start else None
    if estimate is None:
        raise NotBillable(no_history_reason(number, year, month))
    usage = usage_between(start, estimate.end)
    bill = rate(usage, start, estimate.end)
    bill.trace["estimate"] = estimate.trace(start)
    return usage, bill, BilledPeriod(start.at, estimate.end, estimated=True)


def period_values(period: BilledPeriod | None) -> dict[str, Any]:
    """The invoice's fields that record its period (all empty for a bill of typed kWh)."""
    if period is None:
        return {name: None for name in ("period_start", "period_end", *Invoice.END_REGISTERS)} | {
            "estimated": False
        }
    end = period.end
    return {
        "period_start": period.start,
        "period_end": end.at,
        "estimated": period.estimated,
        "end_import_peak": end.import_peak,
        "end_import_off_peak": end.import_off_peak,
        "end_export_peak": end.export_peak,
        "end_export_off_peak": end.export_off_peak,
    }
