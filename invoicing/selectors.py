"""Reads of invoices, payments, adjustments and billing runs, scoped to what the caller may see.

Every id from a request is looked up in what these return: another provider's row, or a row the
caller's role does not reach (another creator's invoice, another customer's bill), is not found.
"""

from typing import Any

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from accounts.permissions import scope_to_reach
from invoicing.models import Adjustment, BillingRun, Invoice, InvoiceLine, Payment, PaymentMethod
from providers.tenancy import scope_to_provider

HISTORY_LENGTH = 10


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


def bill_for(*, user: Any, customer_number: str, connection_number: str, year: int, month: int) -> Invoice:
    """The first seed's bill retrieval: a month's bill of a customer's connection, with its lines
    (`lines`) and the previous bills (`history`, newest first): three queries however long the history."""
    invoices = invoice_list_for(user=user).select_related("connection__connection_type")
    bill = get_object_or_404(
        invoices.prefetch_related(Prefetch("lines", queryset=InvoiceLine.objects.order_by("position"))),
        customer__number=customer_number,
        connection__number=connection_number,
        period__year=year,
        period__month=month,
    )
    bill.history = list(
        Invoice.objects.filter(connection_id=bill.connection_id, period__lt=bill.period)
        .order_by("-period")
        .only(
            "number", "period", "issue_date", "due_date", "kwh_consumed", "current_charges", "payable_before_due",
            "amount_paid", "balance", "status", "paid_on",
        )[:HISTORY_LENGTH]
    )  # fmt: skip
    return bill


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
