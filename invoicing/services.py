"""Invoices, payments, adjustments, overdue marking and the monthly billing run: every write is here.

Money moves under one lock per connection. Issuing (which reads the arrears), paying (which settles
the oldest open invoices first) and adjusting all lock the connection's row first, so two of them
on one connection never interleave, and invoice rows are then locked in id order, as the overdue
job locks them, so no two writers wait on each other in a cycle.

Numbers come from `DocumentCounter`, whose row is locked from the moment a number is taken until
the document's transaction commits: a rollback gives the number back, so numbers have no gaps.

The billing run plans its chunks (ranges of connection ids) in one transaction and bills each chunk
in another: locked with SKIP LOCKED so two workers never bill one chunk, marked done in the same
transaction as its invoices, so a chunk delivered twice, or after a crash, issues nothing twice.
"""

import calendar
import functools
import hashlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from django.db import IntegrityError, transaction
from django.db import connection as db_connection
from django.db.models import F, Q, Sum
from django.utils import timezone
from guardian.shortcuts import assign_perm

from accounts.models import User
from billing.models import ConnectionStatus, ServiceConnection
from billing.rating import (
    ALL,
    NO_MONEY,
    OFF_PEAK,
    PEAK,
    RatedBill,
    RatingError,
    Schedule,
    Usage,
    as_json,
    period_readings,
    rate_usage,
    usage_between,
)
from billing.selectors import month_end, no_readings_reason, readings_for_period, schedule_in_force
from billing.signals import rows_bulk_created, rows_bulk_updated
from config.errors import Conflict, DomainError
from invoicing.bulk import assign_ids, insert_objects, insert_values
from invoicing.models import (
    OPEN_STATUSES,
    Adjustment,
    AdjustmentDirection,
    AdjustmentKind,
    BillingRun,
    BillingRunChunk,
    BillingRunProblem,
    BillingRunStatus,
    DocumentCounter,
    DocumentSeries,
    Invoice,
    InvoiceLine,
    InvoiceSource,
    InvoiceStatus,
    Payment,
    PaymentAllocation,
    PaymentMethod,
    ProblemKind,
)
from providers.models import Provider

logger = logging.getLogger(__name__)

MAX_AMOUNT = Decimal("999999999999.99")  # NUMERIC(14,2)
LINE_FIELDS = ("invoice_id", "position", "kind", "label", "code", "amount", "row_id")
DEFAULT_CHUNK_SIZE = 1000


class InvoiceRefused(DomainError):
    code = "invoice_refused"


class InvoiceExists(Conflict):
    code = "invoice_exists"


class InvoiceLocked(Conflict):
    code = "invoice_locked"


class InvoicePaid(Conflict):
    code = "invoice_paid"


class InvoiceCancelled(Conflict):
    code = "invoice_cancelled"


class Overpayment(DomainError):
    code = "overpayment"


class PaymentRefused(DomainError):
    code = "payment_refused"


class IdempotencyMismatch(Conflict):
    code = "idempotency_key_reused"


class AdjustmentRefused(DomainError):
    code = "adjustment_refused"


class MethodInactive(DomainError):
    code = "payment_method_inactive"


# --- numbers -------------------------------------------------------------------------------------

SERIES_FORMAT = {
    DocumentSeries.INVOICE: "{code}-{year}-{n:06d}",
    DocumentSeries.RECEIPT: "{code}-PAY-{year}-{n:06d}",
    DocumentSeries.ADJUSTMENT: "{code}-ADJ-{year}-{n:06d}",
}


def _take_numbers(*, provider: Provider, series: str, year: int, count: int) -> list[str]:
    """The next `count` numbers of a series; the counter row stays locked until the caller commits."""
    if count == 0:
        return []
    counter, _ = DocumentCounter.objects.select_for_update().get_or_create(
        provider=provider, series=series, year=year
    )
    first = counter.last + 1
    DocumentCounter.objects.filter(pk=counter.pk).update(last=F("last") + count)
    pattern = SERIES_FORMAT[series]
    return [pattern.format(code=provider.code, year=year, n=n) for n in range(first, first + count)]


# --- issuing -------------------------------------------------------------------------------------


def provider_snapshot(provider: Provider) -> dict:
    return {
        "code": provider.code,
        "name": provider.name,
        "city": provider.city,
        "email": provider.email,
        "phone": provider.phone,
        "currency": provider.currency,
    }


# The customer's and connection's details printed on a bill: name on the bill -> path from the connection.
SNAPSHOT_PATHS = {
    "customerId": "customer__number",
    "name": "customer__user__name",
    "organisation": "customer__organisation",
    "kind": "customer__kind",
    "address": "customer__user__address",
    "phone": "customer__user__phone",
    "email": "customer__user__email",
    "connectionId": "number",
    "meterNumber": "meter_number",
    "meterType": "meter_type",
    "division": "division",
    "subdivision": "subdivision",
}
TYPE_PATHS = ("connection_type__code", "connection_type__description")


def _snapshot(value_at: Any) -> dict:
    snapshot = {name: value_at(path) for name, path in SNAPSHOT_PATHS.items()}
    snapshot["connectionType"] = f"{value_at(TYPE_PATHS[0])} {value_at(TYPE_PATHS[1])}"
    return snapshot


def customer_snapshot(connection: ServiceConnection) -> dict:
    def value_at(path: str) -> Any:
        value = connection
        for name in path.split("__"):
            value = getattr(value, name)
        return value

    return _snapshot(value_at)


class RunConnection(NamedTuple):
    """What the billing run needs of a connection, read as plain values (no model instances)."""

    pk: int
    provider_id: int
    customer_id: int
    connection_type_id: int
    number: str
    declared_monthly_income: Decimal | None
    snapshot: dict


RUN_CONNECTION_VALUES = (
    "pk",
    "provider_id",
    "customer_id",
    "connection_type_id",
    "number",
    "declared_monthly_income",
)
SNAPSHOT_VALUES = (*SNAPSHOT_PATHS.values(), *TYPE_PATHS)


def _run_connections(query: Any) -> list[RunConnection]:
    """The chunk's connections with their printed snapshot, as `customer_snapshot` makes it."""
    width, names = len(RUN_CONNECTION_VALUES), tuple(SNAPSHOT_PATHS)
    connections = []
    for row in query.values_list(*RUN_CONNECTION_VALUES, *SNAPSHOT_VALUES):
        snapshot = dict(zip(names, row[width:-2], strict=True))
        snapshot["connectionType"] = f"{row[-2]} {row[-1]}"
        connections.append(RunConnection(*row[:width], snapshot))
    return connections


def _first_of(period: date) -> date:
    return period.replace(day=1)


def default_issue_date(period: date, today: date) -> date:
    """A bill is dated the last day of its month once the month is over; a bill of the running month,
    today. The prices in force that day rate it."""
    return min(month_end(period.year, period.month), today)


def _arrears(*, connection_ids: Any, period: date) -> dict[int, Decimal]:
    """Open balance of each connection's invoices of earlier months."""
    rows = (
        Invoice.objects.filter(connection_id__in=connection_ids, period__lt=period, status__in=OPEN_STATUSES)
        .values("connection_id")
        .annotate(open=Sum("balance"))
        .values_list("connection_id", "open")
    )
    return dict(rows)


@dataclass(frozen=True)
class IssueTerms:
    """What every invoice of one issue shares."""

    provider: Provider
    period: date
    issue_date: date
    due_date: date
    source: str
    created_by: User | None
    billing_run: BillingRun | None
    provider_snapshot: dict
    late_percent: Decimal


@functools.cache
def _invoice_attnames() -> tuple[str, ...]:
    return tuple(field.attname for field in Invoice._meta.concrete_fields)


def _build(
    terms: IssueTerms, connection: "ServiceConnection | RunConnection", usage: Usage, bill: RatedBill
) -> tuple[Invoice, list[tuple]]:
    """The unsaved invoice and its line values (without the invoice id) for a rated bill."""
    if bill.payable_after_due > MAX_AMOUNT:
        raise RatingError(f"The bill comes to {bill.payable_after_due}, more than an invoice can hold.")
    energy_lines = bill.lines_of("energy")
    status = InvoiceStatus.PENDING if bill.current_charges > 0 else InvoiceStatus.PAID
    values = {
        "provider_id": connection.provider_id,
        "customer_id": connection.customer_id,
        "connection_id": connection.pk,
        "number": "",
        "period": terms.period,
        "issue_date": terms.issue_date,
        "due_date": terms.due_date,
        "source": terms.source,
        "billing_run_id": terms.billing_run.pk if terms.billing_run else None,
        "billing_days": usage.days.quantize(Decimal("0.000001")),
        "peak_units": usage.units.get(PEAK, NO_MONEY),
        "off_peak_units": usage.units.get(OFF_PEAK, NO_MONEY),
        "kwh_consumed": sum(usage.units.values(), NO_MONEY),
        "pricing_id": energy_lines[0].row_id if energy_lines else None,
        "energy_charge": bill.energy,
        "tax_total": bill.taxes,
        "fixed_total": bill.fixed,
        "subsidy_total": bill.subsidies,
        "current_charges": bill.current_charges,
        "arrears": bill.arrears,
        "payable_before_due": bill.payable_before_due,
        "late_surcharge": bill.late_surcharge,
        "payable_after_due": bill.payable_after_due,
        "amount_paid": NO_MONEY,
        "adjustment_total": NO_MONEY,
        "balance": bill.current_charges,
        "status": status,
        "paid_on": terms.issue_date if status == InvoiceStatus.PAID else None,
        "trace": as_json(bill.trace),
        "customer_snapshot": (
            connection.snapshot if isinstance(connection, RunConnection) else customer_snapshot(connection)
        ),
        "provider_snapshot": terms.provider_snapshot,
        "created_by_id": terms.created_by.pk if terms.created_by else None,
    }
    # Positional arguments: Django's fast path (keyword arguments cost more than the rating itself).
    invoice = Invoice(*[values.get(name) for name in _invoice_attnames()])
    lines = [
        (position, line.kind, line.label[:120], line.code[:60], line.amount, line.row_id)
        for position, line in enumerate(bill.lines, start=1)
    ]
    return invoice, lines


def _save_issued(terms: IssueTerms, built: list[tuple[Invoice, list[tuple]]]) -> list[Invoice]:
    """Number, insert and announce invoices built for one issue (their lines too).

    On PostgreSQL the invoices get their ids and the lines are copied before the counter row is
    locked (the lines' foreign key is checked at commit): the lock, which every issue of the provider
    waits for, covers only the invoices' own insert.
    """
    invoices = [invoice for invoice, _ in built]
    if not invoices:
        return invoices
    postgres = db_connection.vendor == "postgresql"
    if postgres:
        assign_ids(Invoice, invoices)
        _insert_lines(built)
    numbers = _take_numbers(
        provider=terms.provider,
        series=DocumentSeries.INVOICE,
        year=terms.issue_date.year,
        count=len(invoices),
    )
    for invoice, number in zip(invoices, numbers, strict=True):
        invoice.number = number
    insert_objects(Invoice, invoices)
    if not postgres:
        _insert_lines(built)
    rows_bulk_created.send(sender=Invoice, rows=invoices)
    return invoices


def _insert_lines(built: list[tuple[Invoice, list[tuple]]]) -> None:
    insert_values(
        InvoiceLine,
        LINE_FIELDS,
        ((invoice.pk, *line) for invoice, lines in built for line in lines),
    )


MAX_DUE_DAYS = 90  # the longest a bill may be given to be paid


def _check_due_date(due: date, issue_date: date) -> None:
    if due < issue_date:
        raise InvoiceRefused(
            f"The due date {due} is before the issue date {issue_date}; choose a later due date.",
            field="dueDate",
        )
    if due > issue_date + timedelta(days=MAX_DUE_DAYS):
        raise InvoiceRefused(
            f"A bill is due at most {MAX_DUE_DAYS} days after its issue date ({issue_date}).", field="dueDate"
        )


def _terms(
    *,
    provider: Provider,
    period: date,
    issue_date: date,
    due_date: date | None,
    source: str,
    created_by: User | None,
    billing_run: BillingRun | None = None,
) -> IssueTerms:
    due = due_date or issue_date + timedelta(days=provider.due_days)
    _check_due_date(due, issue_date)
    return IssueTerms(
        provider=provider,
        period=period,
        issue_date=issue_date,
        due_date=due,
        source=source,
        created_by=created_by,
        billing_run=billing_run,
        provider_snapshot=provider_snapshot(provider),
        late_percent=provider.late_surcharge_percent,
    )


def manual_usage(
    *, schedule: Schedule, period: date, kwh: Decimal | None, peak: Decimal | None, off_peak: Decimal | None
) -> Usage:
    """Usage a clerk entered for a whole month: total kWh on an all-hours tariff, peak and off-peak
    kWh on a time-of-use one."""
    days = Decimal(calendar.monthrange(period.year, period.month)[1])
    if schedule.time_of_use:
        if peak is None or off_peak is None:
            raise InvoiceRefused(
                "This connection's tariff prices peak and off-peak hours apart: give peakKwh and offPeakKwh.",
                field="peakKwh",
            )
        return Usage(days=days, units={PEAK: peak, OFF_PEAK: off_peak}, total_import=peak + off_peak)
    if kwh is None:
        if peak is None or off_peak is None:
            raise InvoiceRefused("Give the kWh consumed (kwhConsumed).", field="kwhConsumed")
        kwh = peak + off_peak
    return Usage(days=days, units={ALL: kwh}, total_import=kwh)


def _rate_one(
    *, connection: ServiceConnection, terms: IssueTerms, usage: Usage | None, manual: dict | None
) -> tuple[Usage, RatedBill]:
    schedule = schedule_in_force(provider=terms.provider, day=terms.issue_date).for_type(
        connection.connection_type_id
    )
    if not schedule.tariffs:
        raise InvoiceRefused(
            f"No tariff of {terms.provider.code} is in force on {terms.issue_date} for connection type "
            f"{connection.connection_type.code}; set the prices first, or choose another issue date.",
            field="issueDate",
        )
    if manual is not None:
        usage = manual_usage(schedule=schedule, period=terms.period, **manual)
    if usage is None:
        year, month = terms.period.year, terms.period.month
        readings = readings_for_period(connections=[connection.pk], year=year, month=month)
        ends = period_readings(readings.get(connection.pk, ()), year, month)
        if ends is None:
            raise InvoiceRefused(no_readings_reason(connection, year, month), field="month")
        usage = _usage(*ends)
    arrears = _arrears(connection_ids=[connection.pk], period=terms.period).get(connection.pk, NO_MONEY)
    try:
        bill = rate_usage(
            usage,
            schedule,
            income=connection.declared_monthly_income,
            arrears=arrears,
            late_surcharge_percent=terms.late_percent,
        )
    except RatingError as problem:
        raise InvoiceRefused(f"This bill cannot be rated: {problem}") from problem
    return usage, bill


def _usage(start: Any, end: Any) -> Usage:
    try:
        return usage_between(start, end)
    except RatingError as problem:
        raise InvoiceRefused(f"This bill cannot be rated: {problem}", field="month") from problem


def _lock_connection(connection: ServiceConnection) -> ServiceConnection:
    return (
        ServiceConnection.objects.select_for_update(of=("self",))
        .select_related("provider", "customer__user", "connection_type")
        .get(pk=connection.pk)
    )


@transaction.atomic
def invoice_issue(
    *,
    connection: ServiceConnection,
    period: date,
    created_by: User,
    issue_date: date | None = None,
    due_date: date | None = None,
    kwh: Decimal | None = None,
    peak_kwh: Decimal | None = None,
    off_peak_kwh: Decimal | None = None,
) -> Invoice:
    """One invoice for one connection and month: from the month's readings, or from kWh a clerk
    entered. The creator gets the object permissions to change it (an Invoice_Creator's own)."""
    connection = _lock_connection(connection)
    period = _first_of(period)
    today = timezone.localdate()
    issue_date = issue_date or default_issue_date(period, today)
    if issue_date > today:
        raise InvoiceRefused("An invoice cannot be dated in the future.", field="issueDate")
    if issue_date < period:
        raise InvoiceRefused(
            f"A bill for {period:%B %Y} cannot be dated before the month starts; choose a later issue date.",
            field="issueDate",
        )
    if connection.status != ConnectionStatus.ACTIVE:
        raise InvoiceRefused(f"Connection {connection.number} is disconnected; it is not billed.")
    billed = Invoice.objects.filter(connection=connection, period__gte=period).exclude(
        status=InvoiceStatus.CANCELLED
    )
    existing = billed.order_by("-period").only("number", "period").first()
    if existing and existing.period == period:
        raise InvoiceExists(
            f"Connection {connection.number} already has invoice {existing.number} for {period:%B %Y}; "
            "change that one instead.",
            invoiceId=existing.pk,
        )
    if existing:
        raise InvoiceRefused(
            f"Connection {connection.number} is already billed for {existing.period:%B %Y} "
            f"({existing.number}); bills are issued month after month, so {period:%B %Y} can no longer be.",
            field="month",
        )
    manual_given = any(value is not None for value in (kwh, peak_kwh, off_peak_kwh))
    terms = _terms(
        provider=connection.provider,
        period=period,
        issue_date=issue_date,
        due_date=due_date,
        source=InvoiceSource.KWH if manual_given else InvoiceSource.READINGS,
        created_by=created_by,
    )
    manual = {"kwh": kwh, "peak": peak_kwh, "off_peak": off_peak_kwh} if manual_given else None
    usage, bill = _rate_one(connection=connection, terms=terms, usage=None, manual=manual)
    try:
        built = _build(terms, connection, usage, bill)
    except RatingError as problem:
        raise InvoiceRefused(str(problem)) from problem
    try:
        with transaction.atomic():
            (invoice,) = _save_issued(terms, [built])
    except IntegrityError as clash:  # a billing run chunk billed the connection meanwhile
        if "invoice_once_per_connection_month" not in str(clash):
            raise
        raise InvoiceExists(
            f"Connection {connection.number} was just billed for {period:%B %Y}; change that invoice instead."
        ) from clash
    for perm in ("view_invoice", "change_invoice", "collect_payment"):
        assign_perm(f"invoicing.{perm}", created_by, invoice)
    return invoice


def _lock_invoice(invoice: Invoice) -> Invoice:
    """Lock the invoice's connection, then the invoice (the order every money path takes)."""
    _lock_connection(invoice.connection)
    return (
        Invoice.objects.select_for_update(of=("self",))
        .select_related("provider", "connection")
        .get(pk=invoice.pk)
    )


@transaction.atomic
def invoice_update(
    *,
    invoice: Invoice,
    updated_by: User,
    due_date: date | None = None,
    cancel: bool = False,
    kwh: Decimal | None = None,
    peak_kwh: Decimal | None = None,
    off_peak_kwh: Decimal | None = None,
    rerate: bool = False,
) -> Invoice:
    """Change what may still change: the due date, cancelling an unpaid bill, and re-rating a bill
    nothing was paid or adjusted on (new kWh, or the readings again)."""
    invoice = _lock_invoice(invoice)
    if invoice.status == InvoiceStatus.CANCELLED:
        raise InvoiceCancelled(f"Invoice {invoice.number} is cancelled; it cannot change.")
    manual_given = any(value is not None for value in (kwh, peak_kwh, off_peak_kwh))
    touched = invoice.amount_paid > 0 or invoice.adjustments.exists()
    if (cancel or rerate or manual_given) and touched:
        raise InvoiceLocked(
            f"Invoice {invoice.number} has payments or adjustments; correct it with an adjustment instead.",
            amountPaid=f"{invoice.amount_paid}",
        )
    later = (
        Invoice.objects.filter(connection_id=invoice.connection_id, period__gt=invoice.period)
        .exclude(status=InvoiceStatus.CANCELLED)
        .only("number")
        .first()
    )
    if (cancel or rerate or manual_given) and later:
        raise InvoiceLocked(
            f"Invoice {later.number} of a later month prints this bill's balance as arrears; "
            "cancel or correct that bill first, or correct this one with an adjustment."
        )
    if cancel:
        invoice.status = InvoiceStatus.CANCELLED
        invoice.balance = NO_MONEY
        invoice.save(update_fields=["status", "balance", "updated_at"])
        return invoice
    if rerate or manual_given:
        _rerate(
            invoice, manual={"kwh": kwh, "peak": peak_kwh, "off_peak": off_peak_kwh} if manual_given else None
        )
    if due_date is not None and due_date != invoice.due_date:
        if invoice.status == InvoiceStatus.OVERDUE:
            raise InvoiceLocked(
                f"Invoice {invoice.number} is overdue and its late surcharge was added; an officer can "
                "correct it with an adjustment.",
                field="dueDate",
            )
        _check_due_date(due_date, invoice.issue_date)
        invoice.due_date = due_date
    invoice.save()
    return invoice


RATED_FIELDS = (
    "billing_days", "peak_units", "off_peak_units", "kwh_consumed", "pricing_id", "energy_charge", "tax_total",
    "fixed_total", "subsidy_total", "current_charges", "arrears", "payable_before_due", "late_surcharge",
    "payable_after_due", "balance", "status", "paid_on", "trace", "customer_snapshot",
)  # fmt: skip


def _rerate(invoice: Invoice, *, manual: dict | None) -> None:
    connection = ServiceConnection.objects.select_related("customer__user", "connection_type").get(
        pk=invoice.connection_id
    )
    terms = _terms(
        provider=invoice.provider,
        period=invoice.period,
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        source=InvoiceSource.KWH if manual else invoice.source,
        created_by=invoice.created_by,
    )
    usage, bill = _rate_one(connection=connection, terms=terms, usage=None, manual=manual)
    try:
        rated, lines = _build(terms, connection, usage, bill)
    except RatingError as problem:
        raise InvoiceRefused(str(problem)) from problem
    for name in RATED_FIELDS:
        setattr(invoice, name, getattr(rated, name))
    if manual:
        invoice.source = InvoiceSource.KWH
    elif invoice.source == InvoiceSource.KWH:
        invoice.source = InvoiceSource.READINGS
    invoice.lines.all().delete()
    InvoiceLine.objects.bulk_create(
        InvoiceLine(invoice=invoice, **dict(zip(LINE_FIELDS[1:], line, strict=True))) for line in lines
    )


# --- payments ------------------------------------------------------------------------------------


def _lock_for_payment(invoice: Invoice) -> tuple[Invoice, list[Invoice]]:
    """Lock the connection, then in one statement, in id order (as the overdue job does), the presented
    invoice and the connection's open invoices up to it; returns it and those open ones, oldest first."""
    _lock_connection(invoice.connection)
    rows = list(
        Invoice.objects.select_for_update(of=("self",))
        .select_related("provider")
        .filter(
            Q(pk=invoice.pk)
            | Q(connection_id=invoice.connection_id, period__lte=invoice.period, status__in=OPEN_STATUSES)
        )
        .order_by("id")
    )
    presented = next(row for row in rows if row.pk == invoice.pk)
    settle = sorted((row for row in rows if row.is_open), key=lambda row: (row.period, row.pk))
    return presented, settle


def amount_payable(invoice: Invoice) -> Decimal:
    """What settles the presented bill now: its balance and the open balances of earlier bills."""
    return (
        Invoice.objects.filter(
            connection_id=invoice.connection_id, period__lte=invoice.period, status__in=OPEN_STATUSES
        ).aggregate(total=Sum("balance"))["total"]
        or NO_MONEY
    )


def _settled_status(invoice: Invoice, today: date) -> None:
    if invoice.balance == 0:
        invoice.status = InvoiceStatus.PAID
        invoice.paid_on = today
    elif invoice.status != InvoiceStatus.OVERDUE:
        invoice.status = InvoiceStatus.PARTIALLY_PAID if invoice.amount_paid > 0 else InvoiceStatus.PENDING


def _request_hash(**values: Any) -> str:
    text = "|".join(f"{key}={values[key]}" for key in sorted(values))
    return hashlib.sha256(text.encode()).hexdigest()


def _replayed(earlier: Any, request_hash: str) -> Any:
    """The row a retried request made before (a payment, an adjustment), if any; the same key with
    another body is refused."""
    if earlier is not None and earlier.request_hash != request_hash:
        what = type(earlier)._meta.verbose_name
        raise IdempotencyMismatch(
            f"This Idempotency-Key was already used for a different {what}; use a new key for a new one."
        )
    return earlier


def _earlier_payment(received_by: User, idempotency_key: str, request_hash: str) -> Payment | None:
    payments = Payment.objects.filter(received_by=received_by, idempotency_key=idempotency_key)
    return _replayed(payments.first(), request_hash)


def _earlier_adjustment(officer: User, idempotency_key: str, request_hash: str) -> Adjustment | None:
    adjustments = Adjustment.objects.filter(officer=officer, idempotency_key=idempotency_key)
    return _replayed(adjustments.first(), request_hash)


def payment_post(
    *,
    invoice: Invoice,
    amount: Decimal,
    method: PaymentMethod,
    received_by: User,
    reference: str = "",
    idempotency_key: str | None = None,
    received_at: datetime | None = None,
) -> tuple[Payment, bool]:
    """Record money received against a bill; returns the payment and whether it is new.

    The amount settles the connection's open invoices oldest first, up to the presented one; more
    than they owe is refused. With an `idempotency_key`, a retry returns the first payment. The
    money is received now, or at `received_at` (earlier: a bank counter's payment entered later)."""
    request_hash = _request_hash(
        invoice=invoice.pk,
        amount=f"{amount:.2f}",
        method=method.pk,
        reference=reference,
        **({"received_at": received_at.isoformat()} if received_at else {}),
    )
    try:
        return _payment_post(
            invoice=invoice,
            amount=amount,
            method=method,
            received_by=received_by,
            reference=reference,
            idempotency_key=idempotency_key or "",
            request_hash=request_hash,
            received_at=received_at,
        )
    except IntegrityError:
        # The same key, posted at the same moment by a retry that won the race.
        if not idempotency_key:
            raise
        earlier = _earlier_payment(received_by, idempotency_key, request_hash)
        if earlier is None:
            raise
        return earlier, False


@transaction.atomic
def _payment_post(
    *,
    invoice: Invoice,
    amount: Decimal,
    method: PaymentMethod,
    received_by: User,
    reference: str,
    idempotency_key: str,
    request_hash: str,
    received_at: datetime | None,
) -> tuple[Payment, bool]:
    if amount <= 0:
        raise PaymentRefused("A payment must be more than zero.", field="amount")
    if received_at is not None and received_at > timezone.now():
        raise PaymentRefused("A payment cannot be dated in the future.", field="receivedAt")
    invoice, settle = _lock_for_payment(invoice)
    if idempotency_key:  # checked under the lock: a retry that waited for the first one finds it here
        earlier = _earlier_payment(received_by, idempotency_key, request_hash)
        if earlier is not None:
            return earlier, False
    if not method.is_active:
        raise MethodInactive(
            f"{method.name} is no longer accepted; choose another payment method.", field="method"
        )
    if invoice.status == InvoiceStatus.CANCELLED:
        raise InvoiceCancelled(f"Invoice {invoice.number} is cancelled; it takes no payments.")
    if not settle:  # a paid bill may still carry earlier bills' arrears: those are paid against it
        raise InvoicePaid(f"Invoice {invoice.number} is fully paid; nothing is owed on it.")
    payable = sum((row.balance for row in settle), NO_MONEY)
    if amount > payable:
        raise Overpayment(
            f"{amount} is more than the {payable} payable on invoice {invoice.number}"
            + (" and the earlier bills it carries" if len(settle) > 1 else "")
            + f"; take at most {payable}.",
            field="amount",
            payable=f"{payable}",
        )
    received_at = received_at or timezone.now()  # taken under the lock: receipts follow their order
    today = timezone.localdate(received_at)
    (receipt_number,) = _take_numbers(
        provider=invoice.provider, series=DocumentSeries.RECEIPT, year=today.year, count=1
    )
    payment = Payment.objects.create(
        provider=invoice.provider,
        connection_id=invoice.connection_id,
        invoice=invoice,
        receipt_number=receipt_number,
        amount=amount,
        method=method,
        reference=reference,
        payable_before=payable,
        payable_after=payable - amount,
        received_by=received_by,
        received_at=received_at,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
    )
    allocations, left = [], amount
    for row in settle:
        if left == 0:
            break
        share = min(left, row.balance)
        if share == 0:
            continue
        left -= share
        row.amount_paid += share
        row.balance -= share
        _settled_status(row, today)
        row.save(update_fields=["amount_paid", "balance", "status", "paid_on", "updated_at"])
        allocations.append(PaymentAllocation(payment=payment, invoice=row, amount=share))
    PaymentAllocation.objects.bulk_create(allocations)
    rows_bulk_created.send(sender=PaymentAllocation, rows=allocations)
    assign_perm("invoicing.view_payment", received_by, payment)  # an Invoice_Creator's own receipts
    return payment, True


# --- adjustments ---------------------------------------------------------------------------------


def adjustment_create(
    *,
    invoice: Invoice,
    amount: Decimal,
    direction: str,
    reason: str,
    officer: User,
    idempotency_key: str = "",
) -> tuple[Adjustment, bool]:
    """An officer's correction of a bill: a credit lowers its balance (never below zero), a debit
    raises it; returns the adjustment and whether it is new. The officer's name and designation are
    taken from their account. With an `idempotency_key`, a retry returns the first adjustment."""
    request_hash = _request_hash(
        invoice=invoice.pk, amount=f"{amount:.2f}", direction=direction, reason=reason
    )
    try:
        return _adjustment_create(
            invoice=invoice,
            amount=amount,
            direction=direction,
            reason=reason,
            officer=officer,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
        )
    except IntegrityError:  # the same key at the same moment: the other request won
        earlier = idempotency_key and _earlier_adjustment(officer, idempotency_key, request_hash)
        if not earlier:
            raise
        return earlier, False


@transaction.atomic
def _adjustment_create(
    *,
    invoice: Invoice,
    amount: Decimal,
    direction: str,
    reason: str,
    officer: User,
    idempotency_key: str,
    request_hash: str,
) -> tuple[Adjustment, bool]:
    invoice = _lock_invoice(invoice)
    if idempotency_key:  # under the lock: a retry that waited for the first one finds it here
        earlier = _earlier_adjustment(officer, idempotency_key, request_hash)
        if earlier is not None:
            return earlier, False
    if invoice.status == InvoiceStatus.CANCELLED:
        raise InvoiceCancelled(f"Invoice {invoice.number} is cancelled; it cannot be adjusted.")
    if invoice.status == InvoiceStatus.PAID:
        raise InvoicePaid(f"Invoice {invoice.number} is fully paid; it cannot be adjusted.")
    if not officer.designation.strip():
        raise AdjustmentRefused(
            "Your account has no designation, which an adjustment receipt must show; "
            "ask an administrator to set it."
        )
    reason = reason.strip()
    if not reason:
        raise AdjustmentRefused("Say why the bill is adjusted.", field="reason")
    if amount <= 0:
        raise AdjustmentRefused("An adjustment must be more than zero.", field="amount")
    if direction not in AdjustmentDirection.values:
        raise AdjustmentRefused("The direction is credit or debit.", field="direction")
    signed = amount if direction == AdjustmentDirection.DEBIT else -amount
    if invoice.balance + signed < 0:
        raise AdjustmentRefused(
            f"A credit of {amount} would take invoice {invoice.number} below zero; "
            f"its balance is {invoice.balance}.",
            field="amount",
            balance=f"{invoice.balance}",
        )
    if invoice.balance + signed > MAX_AMOUNT:
        raise AdjustmentRefused("That debit is larger than an invoice can hold.", field="amount")
    adjustment = _adjust(
        invoice,
        amount=amount,
        direction=direction,
        reason=reason,
        officer=officer,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
    )
    return adjustment, True


def _adjust(
    invoice: Invoice,
    *,
    amount: Decimal,
    direction: str,
    reason: str,
    officer: User | None,
    kind: str = AdjustmentKind.OFFICER,
    idempotency_key: str = "",
    request_hash: str = "",
) -> Adjustment:
    today = timezone.localdate()
    (number,) = _take_numbers(
        provider=invoice.provider, series=DocumentSeries.ADJUSTMENT, year=today.year, count=1
    )
    signed = amount if direction == AdjustmentDirection.DEBIT else -amount
    before = invoice.balance
    adjustment = Adjustment.objects.create(
        provider_id=invoice.provider_id,
        invoice=invoice,
        number=number,
        kind=kind,
        direction=direction,
        amount=amount,
        reason=reason,
        officer=officer,
        officer_name=officer.name if officer else "",
        officer_designation=officer.designation if officer else "",
        original_amount=invoice.current_charges,
        balance_before=before,
        balance_after=before + signed,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
    )
    invoice.adjustment_total += signed
    invoice.balance += signed
    _settled_status(invoice, today)
    invoice.save(update_fields=["adjustment_total", "balance", "status", "paid_on", "updated_at"])
    return adjustment


# --- overdue -------------------------------------------------------------------------------------

LATE_REASON = "Late payment surcharge: {percent}% of current charges {charges}, unpaid after {due}."


@transaction.atomic
def invoices_mark_overdue(*, provider: Provider, today: date | None = None) -> int:
    """Mark the provider's unpaid bills past their due date Overdue and add each one's late
    surcharge once, as an adjustment. Running it again the same day changes nothing."""
    today = today or timezone.localdate()
    late = list(
        Invoice.objects.select_for_update()
        .filter(
            provider=provider,
            status__in=(InvoiceStatus.PENDING, InvoiceStatus.PARTIALLY_PAID),
            due_date__lt=today,
            balance__gt=0,
        )
        .order_by("id")
    )
    if not late:
        return 0
    charged = set(
        Adjustment.objects.filter(invoice__in=late, kind=AdjustmentKind.LATE_SURCHARGE).values_list(
            "invoice_id", flat=True
        )
    )
    surcharged = [row for row in late if row.late_surcharge > 0 and row.pk not in charged]
    numbers = _take_numbers(
        provider=provider, series=DocumentSeries.ADJUSTMENT, year=today.year, count=len(surcharged)
    )
    percent = provider.late_surcharge_percent.normalize()
    adjustments = [
        Adjustment(
            provider_id=provider.pk,
            invoice=row,
            number=number,
            kind=AdjustmentKind.LATE_SURCHARGE,
            direction=AdjustmentDirection.DEBIT,
            amount=row.late_surcharge,
            reason=LATE_REASON.format(
                percent=f"{percent:f}", charges=f"{row.current_charges:,}", due=row.due_date
            ),
            original_amount=row.current_charges,
            balance_before=row.balance,
            balance_after=row.balance + row.late_surcharge,
        )
        for row, number in zip(surcharged, numbers, strict=True)
    ]
    insert_objects(Adjustment, adjustments)
    before = {
        row.pk: {"status": row.status, "balance": row.balance, "adjustment_total": row.adjustment_total}
        for row in late
    }
    Invoice.objects.filter(pk__in=[row.pk for row in late]).update(
        status=InvoiceStatus.OVERDUE, updated_at=timezone.now()
    )
    Invoice.objects.filter(pk__in=[row.pk for row in surcharged]).update(
        balance=F("balance") + F("late_surcharge"),
        adjustment_total=F("adjustment_total") + F("late_surcharge"),
    )
    rows_bulk_created.send(sender=Adjustment, rows=adjustments)
    rows_bulk_updated.send(
        sender=Invoice,
        rows=list(Invoice.objects.filter(pk__in=before)),
        fields=("status", "balance", "adjustment_total"),
        before=before,
    )
    return len(late)


# --- the monthly billing run ---------------------------------------------------------------------


def previous_month(today: date) -> date:
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


def next_month(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


@transaction.atomic
def billing_run_start(
    *,
    provider: Provider,
    period: date,
    started_by: User | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> tuple[BillingRun, bool]:
    """Plan a provider's billing of its active connections for a month; returns the run and whether
    it is new. An unfinished run of that month is returned as it is, to be resumed."""
    period = _first_of(period)
    today = timezone.localdate()
    if period >= today.replace(day=1):
        raise DomainError(f"{period:%B %Y} has not ended; a month is billed once it is over.", field="period")
    Provider.objects.select_for_update().get(pk=provider.pk)  # one planner per provider at a time
    unfinished = BillingRun.objects.filter(
        provider=provider, period=period, status=BillingRunStatus.RUNNING
    ).first()
    if unfinished:
        return unfinished, False
    run = BillingRun.objects.create(
        provider=provider,
        period=period,
        issue_date=default_issue_date(period, today),
        chunk_size=chunk_size,
        started_by=started_by,
    )
    ids = (
        ServiceConnection.objects.filter(provider=provider, status=ConnectionStatus.ACTIVE)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    chunks = list(_plan(run, ids.iterator(chunk_size=10_000), chunk_size))
    BillingRunChunk.objects.bulk_create(chunks)
    rows_bulk_created.send(sender=BillingRunChunk, rows=chunks)
    run.total = sum(chunk.size for chunk in chunks)
    if not chunks:
        run.status, run.finished_at = BillingRunStatus.COMPLETED, timezone.now()
    run.save(update_fields=["total", "status", "finished_at"])
    return run, True


def _plan(run: BillingRun, ids: Iterable[int], chunk_size: int) -> Iterable[BillingRunChunk]:
    """Chunks of `chunk_size` consecutive ids; only their bounds are kept, whatever the number of ids."""
    index = first = last = size = 0
    for pk in ids:
        if size == 0:
            first = pk
        last, size = pk, size + 1
        if size == chunk_size:
            yield BillingRunChunk(run=run, index=index, first_id=first, last_id=last, size=size)
            index, size = index + 1, 0
    if size:
        yield BillingRunChunk(run=run, index=index, first_id=first, last_id=last, size=size)


def pending_chunks(run: BillingRun) -> list[int]:
    return list(run.chunks.filter(done=False).order_by("index").values_list("pk", flat=True))


@transaction.atomic
def billing_run_chunk_bill(*, chunk_id: int) -> bool:
    """Bill one chunk's connections; False when it was done already or another worker holds it."""
    started = time.monotonic()
    chunk = (
        BillingRunChunk.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("run__provider")
        .filter(pk=chunk_id, done=False)
        .first()
    )
    if chunk is None:
        return False
    run = chunk.run
    provider, period = run.provider, run.period
    in_chunk = ServiceConnection.objects.filter(
        provider=provider, status=ConnectionStatus.ACTIVE, pk__gte=chunk.first_id, pk__lte=chunk.last_id
    )
    connections = _run_connections(in_chunk.order_by("pk"))
    ids = in_chunk.values("pk")  # a subquery: no list of a thousand parameters, three times
    billed, later = set(), {}
    for connection_id, billed_period in (
        # By the chunk's id range (an index range scan; other providers' ids in it bill nothing here).
        Invoice.objects.filter(
            connection_id__gte=chunk.first_id, connection_id__lte=chunk.last_id, period__gte=period
        )
        .exclude(status=InvoiceStatus.CANCELLED)
        .values_list("connection_id", "period")
    ):
        if billed_period == period:
            billed.add(connection_id)
        else:
            later[connection_id] = max(billed_period, later.get(connection_id, billed_period))
    id_range = range(chunk.first_id, chunk.last_id + 1)  # other providers' ids in it bill nothing here
    readings = readings_for_period(connections=id_range, year=period.year, month=period.month)
    arrears = _arrears(connection_ids=ids, period=period)
    if arrears:
        # Only a connection that owes can see what it owes change (a payment, an adjustment) before
        # this chunk commits: lock those, as every money path locks its connection, and read again.
        owing = sorted(arrears)
        list(
            ServiceConnection.objects.select_for_update()
            .filter(pk__in=owing)
            .order_by("pk")
            .values_list("pk")
        )
        arrears = _arrears(connection_ids=owing, period=period)
    schedule = schedule_in_force(provider=provider, day=run.issue_date)
    by_type: dict[int, Schedule] = {}
    terms = _terms(
        provider=provider,
        period=period,
        issue_date=run.issue_date,
        due_date=None,
        source=InvoiceSource.RUN,
        created_by=run.started_by,
        billing_run=run,
    )
    built, problems = [], []
    for connection in connections:
        if connection.pk in billed:
            continue
        if connection.pk in later:
            problems.append(
                (
                    connection.pk,
                    ProblemKind.SKIPPED,
                    f"Connection {connection.number} is already billed for {later[connection.pk]:%B %Y}.",
                )
            )
            continue
        ends = period_readings(readings.get(connection.pk, ()), period.year, period.month)
        if ends is None:
            problems.append(
                (
                    connection.pk,
                    ProblemKind.SKIPPED,
                    no_readings_reason(connection, period.year, period.month),
                )
            )
            continue
        type_id = connection.connection_type_id
        if type_id not in by_type:
            by_type[type_id] = schedule.for_type(type_id)
        try:
            usage = usage_between(*ends)
            bill = rate_usage(
                usage,
                by_type[type_id],
                income=connection.declared_monthly_income,
                arrears=arrears.get(connection.pk, NO_MONEY),
                late_surcharge_percent=terms.late_percent,
            )
            built.append(_build(terms, connection, usage, bill))
        except (RatingError, ArithmeticError) as problem:
            problems.append(
                (connection.pk, ProblemKind.FAILED, f"Connection {connection.number}: {problem}"[:500])
            )
    invoices = _save_issued(terms, built)
    problem_rows = BillingRunProblem.objects.bulk_create(
        BillingRunProblem(run=run, connection_id=pk, kind=kind, reason=reason)
        for pk, kind, reason in problems
    )
    rows_bulk_created.send(sender=BillingRunProblem, rows=problem_rows)
    chunk.done, chunk.finished_at, chunk.seconds = True, timezone.now(), time.monotonic() - started
    chunk.save(update_fields=["done", "finished_at", "seconds"])
    skipped = sum(1 for problem in problems if problem[1] == ProblemKind.SKIPPED)
    BillingRun.objects.select_for_update().get(
        pk=run.pk
    )  # chunks finish one at a time, so one of them sees it all done
    BillingRun.objects.filter(pk=run.pk).update(
        total=F("total") + len(connections) - chunk.size,
        done=F("done") + len(connections),
        issued=F("issued") + len(invoices),
        already_billed=F("already_billed") + len(billed),
        skipped=F("skipped") + skipped,
        failed=F("failed") + len(problems) - skipped,
        billed_amount=F("billed_amount") + sum((invoice.current_charges for invoice in invoices), NO_MONEY),
    )
    if not run.chunks.filter(done=False).exists():
        BillingRun.objects.filter(pk=run.pk).update(
            status=BillingRunStatus.COMPLETED, finished_at=timezone.now()
        )
    logger.info(
        "billing run %s chunk %s: %s issued, %s problems", run.pk, chunk.index, len(invoices), len(problems)
    )
    return True
