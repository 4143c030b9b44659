"""A connection's month, rated: its period (continuing from the previous bill), its usage, its bill.

The one way every path rates a month from readings: `invoice_issue`, a re-rate, the billing run (a
chunk at once: each read below is one query for the whole chunk, never one per connection) and the
bill preview. The rules of the period are in `billing/periods.py`, the rulebook in `billing/rating.py`.
"""

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

from django.db.models import OuterRef, QuerySet, Subquery

from billing.models import ServiceConnection
from billing.periods import period_ends
from billing.rating import NO_MONEY, RatedBill, Reading, Schedule, Usage, rate_usage, usage_between
from billing.selectors import readings_for_period
from invoicing.models import Invoice, InvoiceStatus


class Billable(Protocol):
    """What rating needs of a connection: a model instance or the billing run's plain values."""

    pk: int
    number: str
    connection_type_id: int
    declared_monthly_income: Decimal | None


class PreviousBill(NamedTuple):
    """The connection's latest non-cancelled bill before the month: where the next period starts."""

    pk: int
    number: str
    period: date
    end: Reading | None  # its closing moment and registers; None for a bill of typed kWh
    estimated: bool


PREVIOUS_VALUES = (
    "connection_id",
    "pk",
    "number",
    "period",
    "period_end",
    *Invoice.END_REGISTERS,
    "estimated",
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
    for (
        connection_id,
        pk,
        number,
        billed,
        end_at,
        peak,
        off_peak,
        export_peak,
        export_off_peak,
        estimated,
    ) in bills:
        end = None if end_at is None else Reading(end_at, peak, off_peak, export_peak, export_off_peak)
        found[connection_id] = PreviousBill(pk, number, billed, end, estimated)
    return found


@dataclass(frozen=True)
class MonthInputs:
    """Everything read to rate a month for some connections, read once for all of them."""

    year: int
    month: int
    readings: dict[int, list[Reading]]
    previous: dict[int, PreviousBill]


def month_inputs(
    *, connections: QuerySet[ServiceConnection], ids: range | list[int], period: date
) -> MonthInputs:
    """`connections` and `ids` name the same connections: a query (for the previous bills) and their
    ids (a billing run's chunk as a `range`, read as an id range on the readings' index)."""
    return MonthInputs(
        year=period.year,
        month=period.month,
        readings=readings_for_period(connections=ids, year=period.year, month=period.month),
        previous=previous_bills(connections=connections, period=period),
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
    usage: Usage
    bill: RatedBill
    period: BilledPeriod


@dataclass
class Schedules:
    """The rows in force on the issue date, narrowed to each connection type once."""

    schedule: Schedule
    by_type: dict[int, Schedule] = field(default_factory=dict)

    def of(self, type_id: int) -> Schedule:
        narrowed = self.by_type.get(type_id)
        if narrowed is None:
            narrowed = self.by_type[type_id] = self.schedule.for_type(type_id)
        return narrowed


def no_period_reason(number: str, year: int, month: int, start: Reading | None) -> str:
    name = f"{date(year, month, 1):%B %Y}"
    if start is None:
        return f"Connection {number} has no reading in {name} or none in the month before; a bill needs both."
    return (
        f"Connection {number} has no reading in {name} after {start.at:%d %B %Y %H:%M}, where its period "
        "starts; a bill needs a reading at each end of its period."
    )


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
    if start is None or end is None:
        raise NotBillable(no_period_reason(connection.number, inputs.year, inputs.month, start))
    usage = usage_between(start, end)
    bill = rate_usage(
        usage,
        schedules.of(connection.connection_type_id),
        income=connection.declared_monthly_income,
        arrears=arrears,
        late_surcharge_percent=late_percent,
    )
    return MonthBill(usage, bill, BilledPeriod(start.at, end))


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
