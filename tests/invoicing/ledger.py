"""The ledger invariant of DESIGN.md ("Invoices, payments, adjustments"), checked against the rows.

For every connection: billed + debits - credits - payments not reversed - credited = open balances,
and no balance is ever negative; `credited` is what credit notes took off its bills and the credit
balance applied to them. Each invoice's own ledger fields agree with its adjustment rows, the
allocations of its payments not reversed, its credit notes and credit entries; each payment is
allocated in full (or its excess kept as credit), and a reversed payment's reversal takes back exactly
what it allocated (its allocation rows stay, as its history). For the connection's customer: the
credit balance is the sum of its entries, each entry's balance after it is never negative and follows
from the one before, and every credit note puts on the balance what its bill did not owe.
Tests that move money end with `assert_ledger_holds(connection)`.
"""

from decimal import Decimal

from django.db.models import Sum

from billing.models import ServiceConnection
from invoicing.models import (
    Adjustment,
    AdjustmentDirection,
    CreditEntry,
    CreditEntryKind,
    CreditNote,
    CreditRefund,
    CustomerCredit,
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
    adjustments = Adjustment.objects.filter(invoice__in=invoices)
    allocations = PaymentAllocation.objects.filter(invoice__in=invoices)
    standing = allocations.filter(payment__reversal__isnull=True)
    notes = CreditNote.objects.filter(invoice__in=invoices)
    applied = CreditEntry.objects.filter(invoice__in=invoices, kind=CreditEntryKind.APPLIED)

    billed = _total(invoices, "current_charges")
    debits = _total(adjustments.filter(direction=AdjustmentDirection.DEBIT))
    credits = _total(adjustments.filter(direction=AdjustmentDirection.CREDIT))
    paid = _total(standing)
    credited = _total(notes, "applied") - _total(applied)
    balances = _total(invoices, "balance")
    assert billed + debits - credits - paid - credited == balances, (
        f"{connection}: billed {billed} + debits {debits} - credits {credits} - payments not reversed "
        f"{paid} - credited {credited} != open balances {balances}"
    )

    for invoice in invoices:
        assert invoice.balance >= 0, f"{invoice}: negative balance {invoice.balance}"
        own_debits = _total(adjustments.filter(invoice=invoice, direction=AdjustmentDirection.DEBIT))
        own_credits = _total(adjustments.filter(invoice=invoice, direction=AdjustmentDirection.CREDIT))
        assert invoice.adjustment_total == own_debits - own_credits, (
            f"{invoice}: adjustment_total {invoice.adjustment_total} != its adjustments "
            f"{own_debits - own_credits}"
        )
        assert invoice.amount_paid == _total(standing.filter(invoice=invoice)), (
            f"{invoice}: amount_paid {invoice.amount_paid} != the allocations of its payments not reversed"
        )
        own_applied = -_total(applied.filter(invoice=invoice))
        assert invoice.credit_applied == own_applied, (
            f"{invoice}: credit_applied {invoice.credit_applied} != its credit entries {own_applied}"
        )
        own_notes = _total(notes.filter(invoice=invoice), "applied")
        assert invoice.credited == own_notes + own_applied, (
            f"{invoice}: credited {invoice.credited} != credit notes {own_notes} + credit applied {own_applied}"
        )
        assert invoice.balance == (
            invoice.current_charges + invoice.adjustment_total - invoice.amount_paid - invoice.credited
        ), (
            f"{invoice}: balance {invoice.balance} != {invoice.current_charges} + "
            f"{invoice.adjustment_total} - {invoice.amount_paid} - {invoice.credited}"
        )
        noted = _total(notes.filter(invoice=invoice))
        assert noted <= invoice.current_charges + invoice.adjustment_total, (
            f"{invoice}: credit notes {noted} exceed what it charged"
        )
    for invoice in invoices.filter(status=InvoiceStatus.CANCELLED):
        assert invoice.balance == ZERO, f"{invoice}: cancelled with balance {invoice.balance}"

    for payment in Payment.objects.filter(connection=connection):
        allocated = _total(payment.allocations.all())
        kept = _total(CreditEntry.objects.filter(payment=payment, kind=CreditEntryKind.OVERPAYMENT))
        assert allocated + kept == payment.amount, (
            f"{payment}: allocations {allocated} + credit kept {kept} != payment amount {payment.amount}"
        )
    for reversal in PaymentReversal.objects.filter(payment__connection=connection).select_related("payment"):
        payment = reversal.payment
        taken_back = {bill["billId"]: Decimal(bill["amount"]) for bill in reversal.reopened}
        assert (reversal.amount, taken_back) == (
            payment.amount,
            dict(payment.allocations.values_list("invoice_id", "amount")),
        ), f"{reversal}: takes back {reversal.amount} {taken_back}, not what {payment} allocated"
    _assert_credit_ledger(connection.customer)


def _assert_credit_ledger(customer) -> None:
    entries = list(
        CreditEntry.objects.filter(customer=customer).order_by("id")
    )  # taken in turn, under its lock
    running = ZERO
    for entry in entries:
        running += entry.amount
        assert entry.balance_after == running >= 0, (
            f"{entry}: balance after {entry.balance_after} != running total {running} (or negative)"
        )
    credit = CustomerCredit.objects.filter(customer=customer).first()
    assert (credit.balance if credit else ZERO) == running, (
        f"{customer}: credit balance {credit and credit.balance} != its entries {running}"
    )
    for note in CreditNote.objects.filter(customer=customer):
        kept = _total(CreditEntry.objects.filter(credit_note=note))
        assert note.applied + note.to_balance == note.amount and kept == note.to_balance, (
            f"{note}: {note.applied} applied + {note.to_balance} to the balance (entries {kept}) != {note.amount}"
        )
    for refund in CreditRefund.objects.filter(customer=customer):
        taken = -_total(CreditEntry.objects.filter(refund=refund))
        assert taken == refund.amount, f"{refund}: refunded {refund.amount}, entries took {taken}"
