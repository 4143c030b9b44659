"""Issuing an invoice (one, or a billing run's chunk at once) and changing one still open to change.

An invoice is rated by the pure engine (billing/rating.py) on the prices in force on each day of its
period (a bill of typed kWh, which has no period: on its issue date), built as an unsaved row with
its line values, then numbered and inserted with its lines in bulk.
"""

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from django.db import IntegrityError, transaction
from django.db import connection as db_connection
from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import MessageKind, User
from billing.models import ConnectionStatus, ServiceConnection
from billing.months import days_in_month, first_of, month_end, previous_month
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
    rate_usage,
    round_half_up,
    with_fees,
)
from billing.signals import rows_bulk_created
from config.bulk import PreparedCopy, assign_ids, insert_objects, insert_values
from config.errors import DomainError
from invoicing.models import (
    OPEN_STATUSES,
    BillingRun,
    DocumentSeries,
    Invoice,
    InvoiceLine,
    InvoiceSource,
    InvoiceStatus,
    PendingCharge,
)
from invoicing.services.charges import charges_billed, charges_pending_of, charges_release, fee_lines
from invoicing.services.credit_balance import credits_applied_record, credits_apply, credits_for_new_bills
from invoicing.services.credits import credit_note_record, creditable, whole_bill_lines
from invoicing.services.errors import (
    InvoiceCancelled,
    InvoiceExists,
    InvoiceLocked,
    InvoicePaid,
    InvoiceRefused,
    NoReadings,
)
from invoicing.services.locks import lock_connection, lock_invoice
from invoicing.services.notices import invoices_notify
from invoicing.services.numbering import take_numbers
from invoicing.services.periods import (
    BilledPeriod,
    MonthBill,
    NotBillable,
    Schedules,
    connection_month,
    period_values,
    previous_bills,
    with_credit,
)
from providers.models import Provider

MAX_AMOUNT = Decimal("999999999999.99")  # NUMERIC(14,2)
LINE_FIELDS = ("invoice_id", "position", "kind", "label", "code", "amount", "row_id")


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
    "name": "customer__name",
    "organisation": "customer__organisation",
    "kind": "customer__kind",
    "address": "customer__address",
    "phone": "customer__phone",
    "email": "customer__email",
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


def run_connections(query: Any) -> list[RunConnection]:
    """The chunk's connections with their printed snapshot, as `customer_snapshot` makes it."""
    width, names = len(RUN_CONNECTION_VALUES), tuple(SNAPSHOT_PATHS)
    connections = []
    for row in query.values_list(*RUN_CONNECTION_VALUES, *SNAPSHOT_VALUES):
        snapshot = dict(zip(names, row[width:-2], strict=True))
        snapshot["connectionType"] = f"{row[-2]} {row[-1]}"
        connections.append(RunConnection(*row[:width], snapshot))
    return connections


def default_issue_date(period: date, today: date) -> date:
    """A bill is dated the last day of its month once the month is over; a bill of the running month,
    today. The prices in force that day rate a bill of typed kWh; a bill from readings is rated on
    those of each day of its period."""
    return min(month_end(period.year, period.month), today)


def month_schedules(provider: Provider, period: date) -> Schedules:
    """The provider's rows for bills of `period`: from the month before (where periods mostly start)
    to the month's end; a period reaching further reads them again, wider."""
    return Schedules(
        provider=provider, first=previous_month(period), last=month_end(period.year, period.month)
    )


def arrears_of(*, connection_ids: Any, period: date) -> dict[int, Decimal]:
    """Open balance of each connection's invoices of earlier months that its present customer owes:
    an earlier customer's bills (before a move-out) stay theirs, never printed on the next one's."""
    rows = (
        Invoice.objects.filter(
            connection_id__in=connection_ids,
            period__lt=period,
            status__in=OPEN_STATUSES,
            customer_id=F("connection__customer_id"),
        )
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


def build_invoice(
    terms: IssueTerms,
    connection: "ServiceConnection | RunConnection",
    usage: Usage,
    bill: RatedBill,
    period: BilledPeriod | None = None,
) -> tuple[Invoice, list[tuple]]:
    """The unsaved invoice and its line values (without the invoice id) for a rated bill; `period`:
    the period it covers (None for typed kWh)."""
    if bill.payable_after_due > MAX_AMOUNT:
        raise RatingError(
            gettext("The bill comes to %(payable_after_due)s, more than an invoice can hold.")
            % {"payable_after_due": bill.payable_after_due}
        )
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
        "billing_days": round_half_up(usage.days, Decimal("0.000001")),
        "peak_units": usage.units.get(PEAK, NO_MONEY),
        "off_peak_units": usage.units.get(OFF_PEAK, NO_MONEY),
        "kwh_consumed": sum(usage.units.values(), NO_MONEY),
        "pricing_id": energy_lines[0].row_id if energy_lines else None,
        "energy_charge": bill.energy,
        "tax_total": bill.taxes,
        "fixed_total": bill.fixed,
        "subsidy_total": bill.subsidies,
        "fee_total": sum((line.amount for line in bill.lines_of("fee")), NO_MONEY),
        "estimated_billed": bill.estimated_billed,
        "credit_brought": bill.credit_brought,
        "credit_carried": bill.credit_carried,
        "current_charges": bill.current_charges,
        "arrears": bill.arrears,
        "payable_before_due": bill.payable_before_due,
        "late_surcharge": bill.late_surcharge,
        "payable_after_due": bill.payable_after_due,
        "amount_paid": NO_MONEY,
        "adjustment_total": NO_MONEY,
        "credited": NO_MONEY,
        "credit_applied": NO_MONEY,
        "balance": bill.current_charges,
        "status": status,
        "paid_on": terms.issue_date if status == InvoiceStatus.PAID else None,
        "trace": as_json(bill.trace),
        "customer_snapshot": (
            connection.snapshot if isinstance(connection, RunConnection) else customer_snapshot(connection)
        ),
        "provider_snapshot": terms.provider_snapshot,
        "created_by_id": terms.created_by.pk if terms.created_by else None,
        **period_values(period),
    }
    # Positional arguments: Django's fast path (keyword arguments cost more than the rating itself).
    invoice = Invoice(*[values.get(name) for name in _invoice_attnames()])
    lines = [
        (position, line.kind, line.label[:120], line.code[:60], line.amount, line.row_id)
        for position, line in enumerate(bill.lines, start=1)
    ]
    return invoice, lines


@contextmanager
def issuing(terms: IssueTerms, built: list[tuple[Invoice, list[tuple]]]) -> Iterator[list[Invoice]]:
    """Number, insert and announce invoices built for one issue (their lines too), around the block,
    which is given the invoices with their ids to write what refers to them.

    The provider's counter row, which every issue of the provider waits for, stays locked from the
    numbers taken to the commit: on PostgreSQL the invoices get their ids, their lines are copied and
    the block runs before it is locked (foreign keys are checked at commit), so the lock covers only
    the invoices' own insert, their audit records and what the caller writes after the block.
    """
    invoices = [invoice for invoice, _ in built]
    if not invoices:
        yield invoices
        return
    if db_connection.vendor != "postgresql":  # no ids before the insert; one writer at a time anyway
        _number_and_insert(terms, invoices)
        _insert_lines(built)
        yield invoices
        return
    assign_ids(Invoice, invoices)
    _insert_lines(built)
    yield invoices
    _number_and_insert(terms, invoices)


def _save_with_credit(terms: IssueTerms, built: tuple[Invoice, list[tuple]]) -> Invoice:
    """Number and insert one new bill, its customer's credit balance applied to it."""
    invoice = built[0]
    applications = credits_apply([invoice], credits_for_new_bills([invoice.customer_id]))
    with issuing(terms, [built]):
        credits_applied_record(applications)
    return invoice


def _number_and_insert(terms: IssueTerms, invoices: list[Invoice]) -> None:
    if db_connection.vendor != "postgresql":
        _number(terms, invoices)
        insert_objects(Invoice, invoices)
        rows_bulk_created.send(sender=Invoice, rows=invoices)
        return
    # The rows and their audit records are encoded before the numbers are taken: the provider's
    # counter stays locked from then to the commit, and every issuer of the provider waits for it.
    copy = PreparedCopy(Invoice, invoices)
    recorders = rows_bulk_created.send(sender=Invoice, rows=invoices, late="number")
    _number(terms, invoices)
    copy.insert("number")
    for _, record in recorders:
        if record is not None:
            record()


def _number(terms: IssueTerms, invoices: list[Invoice]) -> None:
    numbers = take_numbers(
        provider=terms.provider,
        series=DocumentSeries.INVOICE,
        year=terms.issue_date.year,
        count=len(invoices),
    )
    for invoice, number in zip(invoices, numbers, strict=True):
        invoice.number = number


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
            gettext("The due date %(due)s is before the issue date %(issue_date)s; choose a later due date.")
            % {"due": due, "issue_date": issue_date},
            field="dueDate",
        )
    if due > issue_date + timedelta(days=MAX_DUE_DAYS):
        raise InvoiceRefused(
            gettext("A bill is due at most %(max_due_days)s days after its issue date (%(issue_date)s).")
            % {"max_due_days": MAX_DUE_DAYS, "issue_date": issue_date},
            field="dueDate",
        )


def issue_terms(
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
    days = Decimal(days_in_month(period.year, period.month))
    if schedule.time_of_use:
        if peak is None or off_peak is None:
            raise InvoiceRefused(
                gettext(
                    "This connection's tariff prices peak and off-peak hours apart: give peakKwh and offPeakKwh."
                ),
                field="peakKwh",
            )
        return Usage(days=days, units={PEAK: peak, OFF_PEAK: off_peak}, total_import=peak + off_peak)
    if kwh is None:
        if peak is None or off_peak is None:
            raise InvoiceRefused(gettext("Give the kWh consumed (kwhConsumed)."), field="kwhConsumed")
        kwh = peak + off_peak
    return Usage(days=days, units={ALL: kwh}, total_import=kwh)


def _rate_one(
    *,
    connection: ServiceConnection,
    terms: IssueTerms,
    manual: dict | None,
    charges: list[PendingCharge],
    until: datetime | None = None,
) -> tuple[Usage, RatedBill, BilledPeriod | None]:
    """Rate one connection's month: on kWh typed in (`manual`), or on its readings, the period
    continuing from its previous bill (to the last reading up to `until`, when given); with its
    pending `charges` as fee lines."""
    usage, bill, billed = _rate_usage(connection=connection, terms=terms, manual=manual, until=until)
    return usage, with_fees(bill, fee_lines(charges), late_surcharge_percent=terms.late_percent), billed


def _rate_usage(
    *, connection: ServiceConnection, terms: IssueTerms, manual: dict | None, until: datetime | None
) -> tuple[Usage, RatedBill, BilledPeriod | None]:
    schedules = month_schedules(terms.provider, terms.period)
    arrears = arrears_of(connection_ids=[connection.pk], period=terms.period).get(connection.pk, NO_MONEY)
    try:
        if manual is not None:
            # Typed kWh have no readings, so no period of days to split (DESIGN.md "Proration"): they
            # are rated on the rows in force on the issue date.
            (on_issue,) = schedules.between(connection.connection_type_id, terms.issue_date, terms.issue_date)
            if not on_issue.schedule.tariffs:
                raise InvoiceRefused(
                    gettext(
                        "No tariff of %(code)s is in force on %(issue_date)s for connection type "
                        "%(connection_type_code)s; set the prices first, or choose another issue date."
                    )
                    % {
                        "code": terms.provider.code,
                        "issue_date": terms.issue_date,
                        "connection_type_code": connection.connection_type.code,
                    },
                    field="issueDate",
                )
            usage = manual_usage(schedule=on_issue.schedule, period=terms.period, **manual)
            bill = rate_usage(
                usage,
                on_issue.schedule,
                income=connection.declared_monthly_income,
                arrears=arrears,
                late_surcharge_percent=terms.late_percent,
            )
            previous = previous_bills(
                connections=ServiceConnection.objects.filter(pk=connection.pk), period=terms.period
            ).get(connection.pk)
            return (
                usage,
                with_credit(bill, previous, terms.late_percent, customer_id=connection.customer_id),
                None,
            )
        return connection_month(
            connection, terms.period, schedules, arrears=arrears, late_percent=terms.late_percent, until=until
        )
    except NotBillable as problem:
        raise InvoiceRefused(problem.reason, field="month") from problem
    except RatingError as problem:
        raise InvoiceRefused(
            gettext("This bill cannot be rated: %(problem)s") % {"problem": problem}, field="month"
        ) from problem


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
    until: datetime | None = None,
) -> Invoice:
    """One invoice for one connection and month: from the month's readings, or from kWh a clerk
    entered. It is its creator's own (accounts.permissions.OWNERSHIP): an Invoice_Creator changes it.

    `until`: a final bill (a close, a move-out) ends at the last reading up to this moment, not the
    month's last; the next bill continues from there."""
    connection = lock_connection(connection)
    if connection.status != ConnectionStatus.ACTIVE:
        raise InvoiceRefused(
            gettext("Connection %(number)s is %(lower)s; it is not billed.")
            % {"number": connection.number, "lower": connection.status.lower()}
        )
    return issue_locked(
        connection=connection,
        period=period,
        created_by=created_by,
        issue_date=issue_date,
        due_date=due_date,
        manual={"kwh": kwh, "peak": peak_kwh, "off_peak": off_peak_kwh},
        until=until,
    )


def issue_locked(
    *,
    connection: ServiceConnection,
    period: date,
    created_by: User,
    issue_date: date | None = None,
    due_date: date | None = None,
    manual: dict | None = None,
    until: datetime | None = None,
) -> Invoice:
    """`invoice_issue` for a connection the caller has locked and found billable (a final bill
    closing or moving a connection is issued this way). It carries the connection's pending charges
    that its customer owes. `manual`: kWh a clerk entered (kwh, peak, off_peak), else the readings."""
    period = first_of(period)
    today = timezone.localdate()
    issue_date = issue_date or default_issue_date(period, today)
    if issue_date > today:
        raise InvoiceRefused(gettext("An invoice cannot be dated in the future."), field="issueDate")
    if issue_date < period:
        raise InvoiceRefused(
            gettext(
                "A bill for %(period)s cannot be dated before the month starts; choose a later issue date."
            )
            % {"period": format(period, "%B %Y")},
            field="issueDate",
        )
    billed = Invoice.objects.filter(connection=connection, period__gte=period).exclude(
        status=InvoiceStatus.CANCELLED
    )
    existing = billed.order_by("-period").only("number", "period").first()
    if existing and existing.period == period:
        raise InvoiceExists(
            gettext(
                "Connection %(number)s already has invoice %(existing_number)s for %(period)s; change that "
                "one instead."
            )
            % {
                "number": connection.number,
                "existing_number": existing.number,
                "period": format(period, "%B %Y"),
            },
            invoiceId=existing.pk,
        )
    if existing:
        raise InvoiceRefused(
            gettext(
                "Connection %(number)s is already billed for %(period)s (%(existing_number)s); bills are "
                "issued month after month, so %(period2)s can no longer be."
            )
            % {
                "number": connection.number,
                "period": format(existing.period, "%B %Y"),
                "existing_number": existing.number,
                "period2": format(period, "%B %Y"),
            },
            field="month",
        )
    manual_given = manual is not None and any(value is not None for value in manual.values())
    terms = issue_terms(
        provider=connection.provider,
        period=period,
        issue_date=issue_date,
        due_date=due_date,
        source=InvoiceSource.KWH if manual_given else InvoiceSource.READINGS,
        created_by=created_by,
    )
    charges = charges_pending_of(connection)
    usage, bill, billed = _rate_one(
        connection=connection,
        terms=terms,
        manual=manual if manual_given else None,
        charges=charges,
        until=until,
    )
    try:
        built = build_invoice(terms, connection, usage, bill, billed)
    except RatingError as problem:
        raise InvoiceRefused(str(problem)) from problem
    try:
        with transaction.atomic():
            invoice = _save_with_credit(terms, built)
    except IntegrityError as clash:  # a billing run chunk billed the connection meanwhile
        if "invoice_once_per_connection_month" not in str(clash):
            raise
        raise InvoiceExists(
            gettext("Connection %(number)s was just billed for %(period)s; change that invoice instead.")
            % {"number": connection.number, "period": format(period, "%B %Y")}
        ) from clash
    charges_billed([(invoice, charges)])
    invoices_notify(kind=MessageKind.BILL_ISSUED, invoices=[invoice], told_before=False)
    return invoice


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
    reason: str = "",
) -> Invoice:
    """Change what may still change on an issued bill, which is never rewritten: its due date; a
    cancellation, by a credit note for what it still owes; a re-rate (new kWh, or the readings again),
    by a credit note for all it charged and a new bill, with a new number, that replaces it. What was
    paid on a re-rated bill becomes the customer's credit balance, applied to the new bill at once.
    Returns the bill as it now stands: for a re-rate, the new one."""
    invoice = lock_invoice(invoice)
    if invoice.status == InvoiceStatus.CANCELLED:
        raise InvoiceCancelled(
            gettext("Invoice %(number)s is cancelled; it cannot change.") % {"number": invoice.number}
        )
    manual_given = any(value is not None for value in (kwh, peak_kwh, off_peak_kwh))
    if cancel or rerate or manual_given:
        later = (
            Invoice.objects.filter(connection_id=invoice.connection_id, period__gt=invoice.period)
            .exclude(status=InvoiceStatus.CANCELLED)
            .only("number")
            .first()
        )
        # Cancelling or replacing a bill frees its month, and the later bill continues from it (its
        # period, any estimate it trues up or credit it carried on) and printed its balance as arrears:
        # a utility corrects bills newest first. An older bill is corrected where it stands, by a
        # credit note or an adjustment; the next bill prints the arrears left.
        if later:
            raise InvoiceLocked(
                gettext(
                    "Invoice %(number)s of a later month continues from this bill and prints its balance as "
                    "arrears; cancel or correct that bill first, or issue a credit note on this one."
                )
                % {"number": later.number},
                later=later.number,
            )
        # A payment reversed after the bill was credited leaves it owing more than credit notes may
        # still take back: a cancelling credit note could not cover it, and the debt would vanish.
        most = creditable(invoice)
        if invoice.balance > most:
            raise InvoiceLocked(
                gettext(
                    "Invoice %(number)s owes %(balance)s, more than credit notes may still take back of it "
                    "(%(most)s): a payment on it was reversed after it was credited. Collect that balance "
                    "first."
                )
                % {"number": invoice.number, "balance": invoice.balance, "most": max(most, NO_MONEY)},
                balance=f"{invoice.balance}",
                creditable=f"{max(most, NO_MONEY)}",
            )
    if cancel:
        return _cancel(invoice, updated_by=updated_by, reason=reason.strip() or "Bill cancelled")
    if rerate or manual_given:
        return _replace(
            invoice,
            updated_by=updated_by,
            manual={"kwh": kwh, "peak": peak_kwh, "off_peak": off_peak_kwh} if manual_given else None,
            reason=reason.strip() or "Bill re-rated",
        )
    if due_date is not None and due_date != invoice.due_date:
        if invoice.status == InvoiceStatus.OVERDUE:
            raise InvoiceLocked(
                gettext(
                    "Invoice %(number)s is overdue and its late surcharge was added; an officer can correct it "
                    "with an adjustment."
                )
                % {"number": invoice.number},
                field="dueDate",
            )
        _check_due_date(due_date, invoice.issue_date)
        invoice.due_date = due_date
    invoice.save()
    return invoice


def _cancel(invoice: Invoice, *, updated_by: User, reason: str) -> Invoice:
    """Cancel a bill by a credit note for what it still owes; what was paid on it stays its payment."""
    if invoice.balance == 0 and (invoice.amount_paid > 0 or invoice.credit_applied > 0):
        raise InvoicePaid(
            gettext(
                "Invoice %(number)s is paid: nothing is open to cancel. Re-rate it, or issue a credit note "
                "on it to return what was paid as the customer's credit."
            )
            % {"number": invoice.number},
        )
    if invoice.balance > 0:
        credit_note_record(
            invoice,
            amount=invoice.balance,
            reason=reason,
            issued_by=updated_by,
            lines=[
                (
                    f"Open balance of bill {invoice.number} ({invoice.period:%B %Y}), cancelled",
                    invoice.balance,
                )
            ],
            cancel=True,
        )
    else:  # nothing was charged: nothing to credit
        invoice.status = InvoiceStatus.CANCELLED
        invoice.save(update_fields=["status", "updated_at"])
    charges_release(invoice)
    return invoice


def _replace(invoice: Invoice, *, updated_by: User, manual: dict | None, reason: str) -> Invoice:
    """Re-rate a bill: credited in full and replaced by a new bill issued today (`reissue`)."""
    connection = ServiceConnection.objects.select_related("customer", "connection_type").get(
        pk=invoice.connection_id
    )
    charges = list(invoice.charges.select_for_update().order_by("pk"))
    credit_in_full(invoice, issued_by=updated_by, reason=reason)
    new = reissue(invoice, connection=connection, charges=charges, created_by=updated_by, manual=manual)
    invoices_notify(kind=MessageKind.BILL_ISSUED, invoices=[new], told_before=False)
    return new


def credit_in_full(invoice: Invoice, *, issued_by: User, reason: str) -> Decimal:
    """Cancel a locked bill by a credit note for all it still may credit (what was paid on it becomes
    the customer's credit balance); returns the amount credited."""
    amount = creditable(invoice)
    if amount > 0:
        credit_note_record(
            invoice,
            amount=amount,
            reason=reason,
            issued_by=issued_by,
            lines=whole_bill_lines(invoice),
            cancel=True,
        )
    else:  # credited in full before: only its month is freed
        invoice.status = InvoiceStatus.CANCELLED
        invoice.save(update_fields=["status", "updated_at"])
    return max(amount, NO_MONEY)


def reissue(
    invoice: Invoice,
    *,
    connection: ServiceConnection,
    charges: list[PendingCharge],
    created_by: User | None,
    manual: dict | None,
    billing_run: BillingRun | None = None,
) -> Invoice:
    """The new bill replacing a cancelled one: rated again, on the prices in force on each day of its
    period (typed kWh: on its issue date), for the same period (never moving the end of a bill already
    issued, a final bill's); issued today with a new number, naming the bill it replaces, carrying its
    pending `charges`, with the customer's credit balance applied."""
    source = InvoiceSource.KWH if manual else InvoiceSource.READINGS
    rating = issue_terms(
        provider=invoice.provider,
        period=invoice.period,
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        source=source,
        created_by=created_by,
    )
    usage, bill, billed = _rate_one(
        connection=connection, terms=rating, manual=manual, charges=charges, until=invoice.period_end
    )
    terms = issue_terms(
        provider=invoice.provider,
        period=invoice.period,
        issue_date=max(timezone.localdate(), invoice.issue_date),
        due_date=None,
        source=source,
        created_by=created_by,
        billing_run=billing_run,
    )
    try:
        built = build_invoice(terms, connection, usage, bill, billed)
    except RatingError as problem:
        raise InvoiceRefused(str(problem)) from problem
    built[0].replaces_id = invoice.pk
    new = _save_with_credit(terms, built)
    charges_billed([(new, charges)])
    return new


def bill_preview(*, connection: ServiceConnection, year: int, month: int) -> MonthBill:
    """The bill the connection would get for a month, rated now and saved nowhere (the "rate check"):
    its period continuing from the previous bill, the arrears it would print."""
    period = date(year, month, 1)
    arrears = arrears_of(connection_ids=[connection.pk], period=period).get(connection.pk, NO_MONEY)
    try:
        return connection_month(
            connection,
            period,
            month_schedules(connection.provider, period),
            arrears=arrears,
            late_percent=connection.provider.late_surcharge_percent,
        )
    except NotBillable as problem:
        raise NoReadings(problem.reason, field="month") from problem
    except RatingError as problem:
        raise DomainError(
            gettext("This bill cannot be rated: %(problem)s") % {"problem": problem}
        ) from problem
