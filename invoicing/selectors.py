"""Reads of invoices, payments, adjustments and billing runs, scoped to what the caller may see.

Every id from a request is looked up in what these return: another provider's row, or a row the
caller's role does not reach (another creator's invoice, another customer's bill), is not found.
"""

import hashlib
import json
import re
import weakref
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import connection as db_connection
from django.db.models import F, Max, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.permissions import reach_condition, scope_to_reach
from billing.models import Customer
from invoicing.models import (
    OPEN_STATUSES,
    Adjustment,
    BillingRun,
    BillingRunStatus,
    CreditEntry,
    CreditNote,
    CreditRefund,
    CustomerCredit,
    DunningStep,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Payment,
    PaymentAllocation,
    PaymentFile,
    PaymentFileFormat,
    PaymentFileRow,
    PaymentFileStatus,
    PaymentMethod,
    PaymentReversal,
)
from providers.models import Provider
from providers.tenancy import scope_to_provider

HISTORY_LENGTH = 10
INVOICE, PAYMENT = Invoice._meta.label_lower, Payment._meta.label_lower
REVERSAL = PaymentReversal._meta.label_lower
DUNNING_STEP = DunningStep._meta.label_lower
NO_MONEY = Decimal("0.00")


def amount_payable(invoice: Invoice) -> Decimal:
    """What settles the presented bill now: its balance and the open balances of the same customer's
    earlier bills of the connection (another customer's, before a move, are theirs to pay)."""
    return (
        Invoice.objects.filter(
            connection_id=invoice.connection_id,
            customer_id=invoice.customer_id,
            period__lte=invoice.period,
            status__in=OPEN_STATUSES,
        ).aggregate(total=Sum("balance"))["total"]
        or NO_MONEY
    )


def pending_chunks(run: BillingRun) -> list[int]:
    """The ids of a run's chunks not billed yet, in order."""
    return list(run.chunks.filter(done=False).order_by("index").values_list("pk", flat=True))


def billing_runs_stalled(*, still_since: datetime) -> QuerySet[BillingRun]:
    """Unfinished runs nothing has happened to since `still_since`: not started, sent, nor a chunk
    billed. Their messages were lost (a broker restarted, a worker killed, a send that failed), or
    have waited that long behind others; either way sending the pending chunks again is safe."""
    return (
        BillingRun.objects.filter(status=BillingRunStatus.RUNNING, started_at__lt=still_since)
        .exclude(dispatched_at__gte=still_since)
        .exclude(chunks__finished_at__gte=still_since)
        .order_by("pk")
    )


def providers_without_run(*, period: date) -> QuerySet[Provider]:
    """Active providers with no billing run of the month `period`, finished or not."""
    monthly = BillingRun.objects.filter(period=period, price_order=None)  # a price order's run bills no month
    return (
        Provider.objects.filter(is_active=True).exclude(pk__in=monthly.values("provider_id")).order_by("pk")
    )


def messages_of_customer(*, customer_number: str) -> Q:
    """E-mails about a customer's bills, payments and dunning steps, and those to their login
    (invitations, password resets): one name for one condition, used by the API's filter and the staff
    page alike."""
    return (
        Q(
            about_type=INVOICE,
            about_id__in=Invoice.objects.filter(customer__number=customer_number).values("pk"),
        )
        | Q(
            about_type=PAYMENT,
            about_id__in=Payment.objects.filter(invoice__customer__number=customer_number).values("pk"),
        )
        | Q(
            about_type=REVERSAL,
            about_id__in=PaymentReversal.objects.filter(
                payment__invoice__customer__number=customer_number
            ).values("pk"),
        )
        | Q(
            about_type=DUNNING_STEP,
            about_id__in=DunningStep.objects.filter(customer__number=customer_number).values("pk"),
        )
        | Q(user__customer__number=customer_number)
    )


def unpaid_after_due() -> Q:
    """Bills unpaid after their due date: marked Overdue, or not yet marked by the nightly job."""
    return Q(status=InvoiceStatus.OVERDUE) | Q(
        status__in=(InvoiceStatus.PENDING, InvoiceStatus.PARTIALLY_PAID), due_date__lt=timezone.localdate()
    )


def invoice_list_for(*, user: Any, perm: str = "invoicing.view_invoice") -> QuerySet[Invoice]:
    return scope_to_reach(
        Invoice.objects.select_related("connection", "customer__user", "provider", "created_by"),
        user=user,
        perm=perm,
        account_field="customer__user",
    )


def invoice_get_for(*, user: Any, invoice_id: int, perm: str = "invoicing.view_invoice") -> Invoice:
    return get_object_or_404(invoice_list_for(user=user, perm=perm), pk=invoice_id)


def invoice_detail_for(*, user: Any, invoice_id: int) -> Invoice:
    """An invoice with its lines, adjustments, payment allocations (each payment's reversal too) and
    credit notes, the bill it replaces and the one replacing it (5 queries)."""
    allocations = PaymentAllocation.objects.select_related("payment__method", "payment__reversal")
    invoices = (
        invoice_list_for(user=user)
        .select_related("replaces", "replaced_by")
        .prefetch_related(
            "lines", "adjustments", Prefetch("allocations", queryset=allocations), "credit_notes"
        )
    )
    return get_object_or_404(invoices, pk=invoice_id)


def _bills(user: Any) -> QuerySet[Invoice]:
    # The bill pages and the PDF print the invoice's own columns (the customer and the connection as
    # they were, from its snapshot): none of the rows `invoice_list_for` joins for the lists.
    return scope_to_reach(
        Invoice.objects.all(), user=user, perm="invoicing.view_invoice", account_field="customer__user"
    ).prefetch_related(Prefetch("lines", queryset=InvoiceLine.objects.order_by("position")))


def _with_history(bill: Invoice) -> Invoice:
    # The customer's own earlier bills of the connection: one who moved in never sees the last one's.
    bill.history = list(
        Invoice.objects.filter(connection_id=bill.connection_id, customer_id=bill.customer_id, period__lt=bill.period)
        .order_by("-period", "-pk")
        .only(
            "number", "period", "issue_date", "due_date", "kwh_consumed", "current_charges", "payable_before_due",
            "amount_paid", "balance", "status", "paid_on",
        )[:HISTORY_LENGTH]
    )  # fmt: skip
    return bill


# --- the first seed's bill retrieval, in one statement -------------------------------------------
#
# The API's hottest read: the bill, its connection, its lines and the previous bills come back as one
# row of text, each value already printed as the API prints it, so the request makes this one query
# after its token's and no model instance is built. The bill is found from the customer's and the
# connection's numbers (each indexed alone as well as within its provider: billing 0008) and the month,
# through the (connection, period) index that holds cancelled bills too; its history walks the same
# index backwards from the month. `BillOutput` documents the answer, and the tests compare the two.

# How each vendor prints a value as DRF does: a decimal to its field's places, a date in ISO, a month as
# YYYY-MM. PostgreSQL's text of a NUMERIC(p, s) has exactly s places; SQLite keeps decimals as REAL.
_SQL_FORMS = {
    "postgresql": {
        "money": "{}::text",
        "kwh": "{}::text",
        "days": "{}::text",
        "date": "to_char({}, 'YYYY-MM-DD')",
        "month": "to_char({}, 'YYYY-MM')",
        "json": "{}::text",
        "array": "json_build_array({})",
        "list": "coalesce(json_agg({row} ORDER BY {order}), '[]')::text",
    },
    "sqlite": {
        "money": "printf('%%.2f', {})",
        "kwh": "printf('%%.4f', {})",
        "days": "printf('%%.6f', {})",
        "date": "{}",
        "month": "substr({}, 1, 7)",
        "json": "{}",
        "array": "json_array({})",
        # No ORDER BY inside an aggregate before SQLite 3.44: rows are aggregated in the order of the
        # subquery they come from (which SQLite never flattens into an aggregate).
        "list": "json_group_array({row})",
    },
}
_LINE_KEYS = ("kind", "label", "code", "amount")
_HISTORY_KEYS = (
    *("billId", "invoiceNumber", "billingMonth", "issueDate", "dueDate"),
    *("totalAmount", "amountPaid", "balance", "paymentStatus", "paymentDate"),
)
_BILL_SQL = """
SELECT i.id, i.number, {month:i.period}, i.estimated, {date:i.issue_date}, {date:i.due_date},
    {json:i.customer_snapshot}, {json:i.provider_snapshot}, {json:i.trace},
    k.number, t.code, t.description, k.meter_number, k.meter_type, k.division, k.subdivision, k.status,
    {days:i.billing_days}, {kwh:i.peak_units}, {kwh:i.off_peak_units}, {kwh:i.kwh_consumed},
    {money:i.current_charges}, {money:i.arrears}, {money:i.payable_before_due}, {money:i.late_surcharge},
    {money:i.payable_after_due}, {money:i.amount_paid}, {money:i.balance}, i.status,
    (SELECT {list:l.kind, l.label, l.code, {money:l.amount}|l.position} FROM (
        SELECT * FROM invoicing_invoiceline l WHERE l.invoice_id = i.id ORDER BY l.position
    ) l),
    (SELECT {list:h.id, h.number, {month:h.period}, {date:h.issue_date}, {date:h.due_date},
            {money:h.current_charges}, {money:h.amount_paid}, {money:h.balance}, h.status, {date:h.paid_on}
            |h.period DESC, h.id DESC} FROM (
        SELECT * FROM invoicing_invoice h
        WHERE h.connection_id = i.connection_id AND h.customer_id = i.customer_id AND h.period < i.period
        ORDER BY h.period DESC, h.id DESC
        LIMIT {history}
    ) h)
FROM invoicing_invoice i
JOIN billing_serviceconnection k ON k.id = i.connection_id
JOIN providers_connectiontype t ON t.id = k.connection_type_id
WHERE i.id = ({finder})
"""
# The bill of a customer's connection for a month, in the caller's reach. A month cancelled and issued
# again has two bills: the one in force is the answer.
_FINDER_SQL = """
SELECT i.id FROM invoicing_invoice i
JOIN billing_customer c ON c.id = i.customer_id
JOIN billing_serviceconnection k ON k.id = i.connection_id
WHERE c.number = %s AND k.number = %s AND i.period = %s AND ({scope})
ORDER BY CASE WHEN i.status = '{cancelled}' THEN 1 ELSE 0 END, i.id DESC
LIMIT 1
"""
_FORM = re.compile(r"\{(\w+):((?:[^{}]|\{\w+:[^{}]*\})*)\}")


def _bill_sql(vendor: str) -> str:
    """The statement in `vendor`'s SQL, its scope left as `{scope}`: `{form:column}` printed as above,
    `{list:columns|order}` the rows' values as a JSON array of arrays in that order."""
    forms = _SQL_FORMS[vendor]

    def expand(match: re.Match) -> str:
        form, inner = match[1], _FORM.sub(expand, match[2])
        if form == "list":
            columns, order = inner.split("|")
            return forms["list"].format(row=forms["array"].format(columns), order=order)
        return forms[form].format(inner)

    return _FORM.sub(expand, _BILL_SQL).replace("{history}", str(HISTORY_LENGTH))


_SQL_OF = {vendor: _bill_sql(vendor) for vendor in _SQL_FORMS}


def _bill_row(
    statement: str, *, user: Any, customer_number: str, connection_number: str, year: int, month: int
):
    """The one row `statement` gives for the bill `_FINDER_SQL` finds; not found (404) outside the
    caller's reach, exactly where `bill_get_for` would not find it."""
    scope = reach_condition(
        user=user, perm="invoicing.view_invoice", model=Invoice, alias="i", account="c.user_id"
    )
    row = None
    if scope is not None:
        condition, params = scope
        finder = _FINDER_SQL.replace("{cancelled}", InvoiceStatus.CANCELLED).replace("{scope}", condition)
        sql = statement.replace("{finder}", finder)
        with db_connection.cursor() as cursor:
            if db_connection.vendor == "postgresql":
                sql = _prepared(cursor, sql)
            cursor.execute(sql, [customer_number, connection_number, date(year, month, 1), *params])
            row = cursor.fetchone()
    if row is None:
        raise Http404("No bill of that customer's connection for that month.")
    return row


# The statements this process has prepared, by database session: planning the bill's statement takes
# twice as long as running it, so on PostgreSQL it is planned once a session (PREPARE) and then only
# executed. Its text names it, so each shape of scope (provider, customer, creator) has its own.
_PREPARED: "weakref.WeakKeyDictionary[Any, set[str]]" = weakref.WeakKeyDictionary()


def _prepared(cursor: Any, sql: str) -> str:
    """`EXECUTE` of `sql`, prepared in this session now if it was not before."""
    name = f"bill_{hashlib.blake2s(sql.encode(), digest_size=8).hexdigest()}"
    done = _PREPARED.setdefault(db_connection.connection, set())
    count = sql.count("%s")
    if name not in done:
        numbered = iter(range(1, count + 1))
        cursor.execute(f"PREPARE {name} AS {re.sub('%s', lambda _: f'${next(numbered)}', sql)}")
        done.add(name)
    return f"EXECUTE {name}({', '.join(['%s'] * count)})"


def bill_id_for(*, user: Any, customer_number: str, connection_number: str, year: int, month: int) -> int:
    """The id of the bill `bill_answer_for` answers with (one query), for the page that shows it."""
    row = _bill_row(
        "{finder}",
        user=user,
        customer_number=customer_number,
        connection_number=connection_number,
        year=year,
        month=month,
    )
    return row[0]


def bill_answer_for(
    *, user: Any, customer_number: str, connection_number: str, year: int, month: int
) -> dict:
    """The first seed's bill retrieval, as `BillOutput` renders it: a month's bill of a customer's
    connection with its lines and the previous bills (newest first), in one query (404 as `_bill_row`)."""
    row = _bill_row(
        _SQL_OF[db_connection.vendor],
        user=user,
        customer_number=customer_number,
        connection_number=connection_number,
        year=year,
        month=month,
    )
    (
        pk, number, period, estimated, issue_date, due_date, customer, provider, trace,
        connection, type_code, type_description, meter_number, meter_type, division, subdivision, state,
        billing_days, peak_units, off_peak_units, kwh_consumed,
        current_charges, arrears, payable_before_due, late_surcharge, payable_after_due, amount_paid, balance,
        status, lines, history,
    ) = row  # fmt: skip
    return {
        "billId": pk,
        "invoiceNumber": number,
        "billingMonth": period,
        "estimated": bool(estimated),
        "issueDate": issue_date,
        "dueDate": due_date,
        "customer": json.loads(customer),
        "provider": json.loads(provider),
        "connection": {
            "connectionId": connection,
            "connectionType": type_code,
            "connectionTypeDescription": type_description,
            "meterNumber": meter_number,
            "meterType": meter_type,
            "division": division,
            "subdivision": subdivision,
            "status": state,
        },
        "usage": {
            "billingDays": billing_days,
            "peakUnits": peak_units,
            "offPeakUnits": off_peak_units,
            "kwhConsumed": kwh_consumed,
        },
        "lines": [dict(zip(_LINE_KEYS, line, strict=True)) for line in json.loads(lines)],
        "trace": json.loads(trace),
        "currentCharges": current_charges,
        "arrears": arrears,
        "payableBeforeDue": payable_before_due,
        "lateSurcharge": late_surcharge,
        "payableAfterDue": payable_after_due,
        "amountPaid": amount_paid,
        "balance": balance,
        "paymentStatus": status,
        "previousBills": [dict(zip(_HISTORY_KEYS, bill, strict=True)) for bill in json.loads(history)],
    }


def bill_for_message(*, invoice_id: int) -> Invoice:
    """A bill loaded as `bill_get_for` loads it, for the e-mail that carries it: a worker's read, which
    no caller's reach narrows (the message was recorded for the bill's own customer)."""
    bills = Invoice.objects.select_related("connection__connection_type").prefetch_related(
        Prefetch("lines", queryset=InvoiceLine.objects.order_by("position")), "adjustments"
    )
    return _with_history(bills.get(pk=invoice_id))


def bill_credits(bill: Invoice) -> dict[str, Any]:
    """What a bill page and PDF show of a bill's credits: its credit notes, what they took off it, and
    the bill that replaced it (a re-rate), if any."""
    notes = list(bill.credit_notes.order_by("created_at", "pk"))
    return {
        "credit_notes": notes,
        "credit_notes_applied": sum((note.applied for note in notes), NO_MONEY),
        "replaced_by": Invoice.objects.filter(replaces=bill).only("number").first(),
    }


def bill_get_for(*, user: Any, invoice_id: int) -> Invoice:
    """A bill by its id with its lines and history (`history`, newest first): three queries."""
    return _with_history(get_object_or_404(_bills(user), pk=invoice_id))


def payment_list_for(*, user: Any, perm: str = "invoicing.view_payment") -> QuerySet[Payment]:
    """Payments with their reversal, if any (`payment.reversal`)."""
    return scope_to_reach(
        Payment.objects.select_related(
            "invoice__customer__user",
            "connection",
            "method",
            "received_by",
            "provider",
            "reversal__reversed_by",
        ),
        user=user,
        perm=perm,
        account_field="invoice__customer__user",
    )


def payment_get_for(*, user: Any, payment_id: int, perm: str = "invoicing.view_payment") -> Payment:
    return get_object_or_404(
        payment_list_for(user=user, perm=perm).prefetch_related("allocations__invoice"), pk=payment_id
    )


def reversal_get_for(*, user: Any, payment_id: int) -> PaymentReversal:
    """The reversal of a payment the caller may see; not found (404) when it was never reversed."""
    return get_object_or_404(
        PaymentReversal.objects.select_related("payment__invoice", "payment__method", "reversed_by"),
        payment__in=payment_list_for(user=user).values("pk"),
        payment_id=payment_id,
    )


def adjustment_list_for(*, user: Any) -> QuerySet[Adjustment]:
    return scope_to_reach(
        Adjustment.objects.select_related(
            "invoice__customer__user", "invoice__connection", "officer", "provider"
        ),
        user=user,
        perm="invoicing.view_adjustment",
        account_field="invoice__customer__user",
    )


def adjustment_get_for(*, user: Any, adjustment_id: int) -> Adjustment:
    return get_object_or_404(adjustment_list_for(user=user), pk=adjustment_id)


def credit_note_list_for(*, user: Any) -> QuerySet[CreditNote]:
    return scope_to_reach(
        CreditNote.objects.select_related("invoice", "customer", "provider"),
        user=user,
        perm="invoicing.view_creditnote",
        account_field="customer__user",
    )


def credit_note_get_for(*, user: Any, credit_note_id: int) -> CreditNote:
    return get_object_or_404(credit_note_list_for(user=user).prefetch_related("lines"), pk=credit_note_id)


def credit_refund_list_for(*, user: Any) -> QuerySet[CreditRefund]:
    return scope_to_reach(
        CreditRefund.objects.select_related("customer", "method", "provider"),
        user=user,
        perm="invoicing.view_creditrefund",
        account_field="customer__user",
    )


def credit_refund_get_for(*, user: Any, refund_id: int) -> CreditRefund:
    return get_object_or_404(credit_refund_list_for(user=user), pk=refund_id)


def customer_credit_for(*, user: Any, customer_id: int) -> tuple[Any, Decimal, QuerySet[CreditEntry]]:
    """A customer's credit balance and its entries, newest first; a customer the caller does not reach
    (another provider's, another customer's own) is not found."""
    customers = scope_to_reach(
        Customer.objects.all(), user=user, perm="invoicing.view_customercredit", account_field="user"
    )
    customer = get_object_or_404(customers, pk=customer_id)
    credit = CustomerCredit.objects.filter(customer=customer).only("balance").first()
    entries = CreditEntry.objects.filter(customer=customer).select_related(
        "credit_note", "invoice", "refund", "payment"
    )
    return customer, credit.balance if credit else NO_MONEY, entries.order_by("-created_at", "-id")


def payment_methods() -> QuerySet[PaymentMethod]:
    return PaymentMethod.objects.filter(is_active=True)


def billing_run_list_for(*, user: Any) -> QuerySet[BillingRun]:
    return scope_to_provider(BillingRun.objects.select_related("provider", "started_by", "price_order"), user)


def billing_run_get_for(*, user: Any, run_id: int) -> BillingRun:
    return get_object_or_404(billing_run_list_for(user=user), pk=run_id)


# --- the staff dashboard -------------------------------------------------------------------------

CHART_MONTHS = 12


@dataclass(frozen=True)
class Dashboard:
    month: date | None  # the latest billing month the caller's invoices cover
    billed: Decimal  # current charges of that month's bills (cancelled ones left out)
    collected: Decimal  # what has been paid on those bills
    collection_rate: Decimal | None  # collected / billed, in percent, one decimal
    overdue: int  # bills unpaid after their due date, any month
    last_run: BillingRun | None
    by_month: list[dict[str, Any]]  # period, billed, collected: the last CHART_MONTHS billing months
    by_connection_type: list[dict[str, Any]]  # code, name, kwh: consumption of `month` by connection type


def dashboard_for(*, user: Any) -> Dashboard:
    """The figures of a staff member's start page, over the invoices their role reaches (six queries)."""
    invoices = invoice_list_for(user=user).exclude(status=InvoiceStatus.CANCELLED).order_by()
    month = invoices.aggregate(latest=Max("period"))["latest"]
    this_month = invoices.filter(period=month).aggregate(
        billed=Coalesce(Sum("current_charges"), NO_MONEY), collected=Coalesce(Sum("amount_paid"), NO_MONEY)
    )
    billed, collected = this_month["billed"], this_month["collected"]
    by_month = list(
        invoices.values("period")
        .annotate(billed=Sum("current_charges"), collected=Sum("amount_paid"))
        .order_by("-period")[:CHART_MONTHS]
    )[::-1]
    by_type = list(
        invoices.filter(period=month)
        .values(
            code=F("connection__connection_type__code"), name=F("connection__connection_type__description")
        )
        .annotate(kwh=Sum("kwh_consumed"))
        .order_by("-kwh")
    )
    return Dashboard(
        month=month,
        billed=billed,
        collected=collected,
        collection_rate=(collected * 100 / billed).quantize(Decimal("0.1")) if billed else None,
        overdue=invoices.filter(unpaid_after_due()).count(),
        last_run=billing_run_list_for(user=user).order_by("-started_at").first(),
        by_month=by_month,
        by_connection_type=by_type,
    )


def payment_file_list_for(*, user: Any) -> QuerySet[PaymentFile]:
    """Bank payment files the caller may read: the provider's (a clerk: those they uploaded)."""
    return scope_to_reach(
        PaymentFile.objects.select_related("file_format", "uploaded_by"),
        user=user,
        perm="invoicing.view_paymentfile",
        account_field="uploaded_by",  # (no role reads files as a customer)
    )


def payment_file_get_for(*, user: Any, file_id: int) -> PaymentFile:
    return get_object_or_404(payment_file_list_for(user=user), pk=file_id)


def payment_file_rows(payment_file: PaymentFile) -> QuerySet[PaymentFileRow]:
    """A file's rows in the file's order, with the receipt each posted (or a duplicate's original)."""
    return (
        PaymentFileRow.objects.filter(file=payment_file).select_related("payment", "method").order_by("line")
    )


def payment_file_formats_for(*, user: Any) -> QuerySet[PaymentFileFormat]:
    """The active file layouts of the caller's provider, to upload a file with."""
    return PaymentFileFormat.objects.filter(provider_id=user.provider_id, is_active=True).order_by("name")


def payment_files_stalled(*, still_since: datetime) -> QuerySet[PaymentFile]:
    """Unfinished files nothing has happened to since `still_since`: their chunks' messages were lost."""
    return (
        PaymentFile.objects.filter(status=PaymentFileStatus.PROCESSING, uploaded_at__lt=still_since)
        .exclude(dispatched_at__gte=still_since)
        .exclude(progressed_at__gte=still_since)
        .order_by("pk")
    )
