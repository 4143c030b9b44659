"""Reads of invoices, payments, adjustments and billing runs, scoped to what the caller may see.

Every id from a request is looked up in what these return: another provider's row, or a row the
caller's role does not reach (another creator's invoice, another customer's bill), is not found.
"""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db.models import Case, F, Max, Prefetch, Q, QuerySet, Sum, When
from django.db.models.functions import Coalesce
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.permissions import scope_to_reach
from invoicing.models import (
    OPEN_STATUSES,
    Adjustment,
    BillingRun,
    BillingRunStatus,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Payment,
    PaymentMethod,
)
from providers.models import Provider
from providers.tenancy import scope_to_provider

HISTORY_LENGTH = 10
INVOICE, PAYMENT = Invoice._meta.label_lower, Payment._meta.label_lower
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
    return Provider.objects.filter(is_active=True).exclude(billing_runs__period=period).order_by("pk")


def messages_of_customer(*, customer_number: str) -> Q:
    """E-mails about a customer's bills and payments, and those to their login (invitations, password
    resets): one name for one condition, used by the API's filter and the staff page alike."""
    return (
        Q(
            about_type=INVOICE,
            about_id__in=Invoice.objects.filter(customer__number=customer_number).values("pk"),
        )
        | Q(
            about_type=PAYMENT,
            about_id__in=Payment.objects.filter(invoice__customer__number=customer_number).values("pk"),
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
    """An invoice with its lines, adjustments and payment allocations (4 queries)."""
    invoices = invoice_list_for(user=user).prefetch_related(
        "lines", "adjustments", "allocations__payment__method"
    )
    return get_object_or_404(invoices, pk=invoice_id)


def _bills(user: Any) -> QuerySet[Invoice]:
    return (
        invoice_list_for(user=user)
        .select_related("connection__connection_type")
        .prefetch_related(Prefetch("lines", queryset=InvoiceLine.objects.order_by("position")))
    )


def _with_history(bill: Invoice) -> Invoice:
    # The customer's own earlier bills of the connection: one who moved in never sees the last one's.
    bill.history = list(
        Invoice.objects.filter(connection_id=bill.connection_id, customer_id=bill.customer_id, period__lt=bill.period)
        .order_by("-period")
        .only(
            "number", "period", "issue_date", "due_date", "kwh_consumed", "current_charges", "payable_before_due",
            "amount_paid", "balance", "status", "paid_on",
        )[:HISTORY_LENGTH]
    )  # fmt: skip
    return bill


def bill_for(*, user: Any, customer_number: str, connection_number: str, year: int, month: int) -> Invoice:
    """The first seed's bill retrieval: a month's bill of a customer's connection, with its lines
    (`lines`) and the previous bills (`history`, newest first): three queries however long the history.

    A month whose bill was cancelled and issued again has two: the one in force is the answer."""
    bill = (
        _bills(user)
        .filter(
            customer__number=customer_number,
            connection__number=connection_number,
            period__year=year,
            period__month=month,
        )
        .order_by(Case(When(status=InvoiceStatus.CANCELLED, then=1), default=0), "-pk")
        .first()
    )
    if bill is None:
        raise Http404("No bill of that customer's connection for that month.")
    return _with_history(bill)


def bill_for_message(*, invoice_id: int) -> Invoice:
    """A bill loaded as `bill_get_for` loads it, for the e-mail that carries it: a worker's read, which
    no caller's reach narrows (the message was recorded for the bill's own customer)."""
    bills = Invoice.objects.select_related("connection__connection_type").prefetch_related(
        Prefetch("lines", queryset=InvoiceLine.objects.order_by("position")), "adjustments"
    )
    return _with_history(bills.get(pk=invoice_id))


def bill_get_for(*, user: Any, invoice_id: int) -> Invoice:
    """A bill by its id, loaded as `bill_for` loads it (lines and history)."""
    return _with_history(get_object_or_404(_bills(user), pk=invoice_id))


def payment_list_for(*, user: Any) -> QuerySet[Payment]:
    return scope_to_reach(
        Payment.objects.select_related(
            "invoice__customer__user", "connection", "method", "received_by", "provider"
        ),
        user=user,
        perm="invoicing.view_payment",
        account_field="invoice__customer__user",
    )


def payment_get_for(*, user: Any, payment_id: int) -> Payment:
    return get_object_or_404(
        payment_list_for(user=user).prefetch_related("allocations__invoice"), pk=payment_id
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


def payment_methods() -> QuerySet[PaymentMethod]:
    return PaymentMethod.objects.filter(is_active=True)


def billing_run_list_for(*, user: Any) -> QuerySet[BillingRun]:
    return scope_to_provider(BillingRun.objects.select_related("provider", "started_by"), user)


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
