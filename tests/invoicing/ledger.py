"""The ledger invariant of DESIGN.md ("Invoices, payments, adjustments"), checked against the rows.

For every connection: billed + debits - credits - payments + reversals = open balances, and no
balance is ever negative. Each invoice's own ledger fields agree with its adjustment rows and the
allocations of its payments not reversed, each payment is allocated in full, and a reversed payment's
reversal takes back exactly what it allocated (its allocation rows stay, as its history). Tests that move money end with `assert_ledger_holds(connection)`.
"""

from decimal import Decimal

from django.db.models import Sum

from billing.models import ServiceConnection
from invoicing.models import (
    Adjustment,
    AdjustmentDirection,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentAllocation,
    PaymentReversal,
)

ZERO = Decimal("0.00")


def _total(queryset, field: str = "amount") -> Decimal:
    return queryset.aggregate(total=Sum(field))["total"] or ZERO


def assert_ledger_holds(*connections: ServiceConnection) -> None:
    """Fail with the figures of the first connection whose books do not balance."""
    for connection in connections:
        _assert_connection_ledger(connection)


def _assert_connection_ledger(connection: ServiceConnection) -> None:
    invoices = Invoice.objects.filter(connection=connection)
    live = invoices.exclude(status=InvoiceStatus.CANCELLED)
    adjustments = Adjustment.objects.filter(invoice__in=live)
    allocations = PaymentAllocation.objects.filter(invoice__in=live)
    standing = allocations.filter(payment__reversal__isnull=True)

    billed = _total(live, "current_charges")
    debits = _total(adjustments.filter(direction=AdjustmentDirection.DEBIT))
    credits = _total(adjustments.filter(direction=AdjustmentDirection.CREDIT))
    paid = _total(allocations)
    reversed_ = _total(PaymentReversal.objects.filter(payment__connection=connection))
    balances = _total(live, "balance")
    assert billed + debits - credits - paid + reversed_ == balances, (
        f"{connection}: billed {billed} + debits {debits} - credits {credits} - payments {paid} "
        f"+ reversals {reversed_} != open balances {balances}"
    )

    for invoice in invoices:
        assert invoice.balance >= 0, f"{invoice}: negative balance {invoice.balance}"
    for invoice in live:
        own_debits = _total(adjustments.filter(invoice=invoice, direction=AdjustmentDirection.DEBIT))
        own_credits = _total(adjustments.filter(invoice=invoice, direction=AdjustmentDirection.CREDIT))
        assert invoice.adjustment_total == own_debits - own_credits, (
            f"{invoice}: adjustment_total {invoice.adjustment_total} != its adjustments "
            f"{own_debits - own_credits}"
        )
        assert invoice.amount_paid == _total(standing.filter(invoice=invoice)), (
            f"{invoice}: amount_paid {invoice.amount_paid} != the allocations of its payments not reversed"
        )
        assert invoice.balance == invoice.current_charges + invoice.adjustment_total - invoice.amount_paid, (
            f"{invoice}: balance {invoice.balance} != {invoice.current_charges} + "
            f"{invoice.adjustment_total} - {invoice.amount_paid}"
        )
    for invoice in invoices.filter(status=InvoiceStatus.CANCELLED):
        assert invoice.balance == ZERO, f"{invoice}: cancelled with balance {invoice.balance}"
        assert not invoice.allocations.exists(), f"{invoice}: cancelled but has payments"
        assert not invoice.adjustments.exists(), f"{invoice}: cancelled but has adjustments"

    for payment in Payment.objects.filter(connection=connection):
        allocated = _total(payment.allocations.all())
        assert allocated == payment.amount, (
            f"{payment}: allocations {allocated} != payment amount {payment.amount}"
        )
    for reversal in PaymentReversal.objects.filter(payment__connection=connection).select_related("payment"):
        payment = reversal.payment
        taken_back = {bill["billId"]: Decimal(bill["amount"]) for bill in reversal.reopened}
        assert (reversal.amount, taken_back) == (
            payment.amount,
            dict(payment.allocations.values_list("invoice_id", "amount")),
        ), f"{reversal}: takes back {reversal.amount} {taken_back}, not what {payment} allocated"
