"""A customer's credit balance: one locked row per customer (`CustomerCredit`, never negative in the
database) and an entry for every movement of it (`CreditEntry`): in from a credit note's excess or an
overpayment's, out when applied to the customer's next bill at issue or refunded by an officer.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import QuerySet
from django.utils import timezone

from billing.models import Customer
from billing.rating import NO_MONEY
from billing.signals import rows_bulk_created, rows_bulk_updated
from invoicing.models import CreditEntry, CreditEntryKind, CustomerCredit, Invoice, InvoiceStatus, Payment
from invoicing.services.locks import lock_credit, lock_credits


def credit_add(*, customer: Customer, amount: Decimal, kind: str, **source: object) -> CreditEntry:
    """Move `amount` (signed) into or out of a customer's credit balance, with its entry; `source`
    names where it came from or went (credit_note, payment, invoice, refund)."""
    credit = lock_credit(customer)
    credit.balance += amount
    credit.save(update_fields=["balance", "updated_at"])
    return CreditEntry.objects.create(
        provider_id=credit.provider_id,
        customer_id=customer.pk,
        kind=kind,
        amount=amount,
        balance_after=credit.balance,
        created_at=timezone.now(),
        **source,
    )


@dataclass
class Application:
    """Credit balance applied to a new bill: taken in memory before the bill is inserted, recorded
    (`credits_applied_record`) once it has its id."""

    credit: CustomerCredit
    invoice: Invoice
    amount: Decimal
    balance_after: Decimal


def credits_apply(invoices: list[Invoice], credits: dict[int, CustomerCredit]) -> list[Application]:
    """Take each customer's credit balance (`credits`, locked, by customer id) off their new, unsaved
    bills, as far as each bill's balance goes: the bill comes out paid in part or in full by it."""
    applications = []
    for invoice in invoices:
        credit = credits.get(invoice.customer_id)
        if credit is None or credit.balance <= 0 or invoice.balance <= 0:
            continue
        amount = min(credit.balance, invoice.balance)
        credit.balance -= amount
        invoice.credited += amount
        invoice.credit_applied += amount
        invoice.balance -= amount
        # Printed on the bill as it is issued: what is payable is what is left to pay.
        invoice.payable_before_due -= amount
        invoice.payable_after_due -= amount
        if invoice.balance == 0:
            invoice.status, invoice.paid_on = InvoiceStatus.PAID, invoice.issue_date
        applications.append(Application(credit, invoice, amount, credit.balance))
    return applications


def credits_applied_record(applications: list[Application]) -> None:
    """The entries of credit applied to new bills (which have their ids now), and the credit rows'
    new balances: one statement each, however many bills, with their audit records."""
    if not applications:
        return
    now = timezone.now()
    entries = [
        CreditEntry(
            provider_id=row.credit.provider_id,
            customer_id=row.credit.customer_id,
            kind=CreditEntryKind.APPLIED,
            amount=-row.amount,
            balance_after=row.balance_after,
            invoice_id=row.invoice.pk,
            created_at=now,
        )
        for row in applications
    ]
    CreditEntry.objects.bulk_create(entries)
    rows_bulk_created.send(sender=CreditEntry, rows=entries)
    credits, before = {}, {}
    for row in applications:  # each credit's balance before its first application
        credits.setdefault(row.credit.pk, row.credit)
        before.setdefault(row.credit.pk, {"balance": row.balance_after + row.amount})
    credits = list(credits.values())
    for credit in credits:
        credit.updated_at = now
    CustomerCredit.objects.bulk_update(credits, ["balance", "updated_at"])
    rows_bulk_updated.send(sender=CustomerCredit, rows=credits, fields=("balance",), before=before)


def credits_for_new_bills(customer_ids: Iterable[int] | QuerySet) -> dict[int, CustomerCredit]:
    """The credit rows (locked) of the customers among `customer_ids` (ids, or a subquery of them) who
    have a credit balance: one query, for one bill or a run's whole chunk."""
    return {credit.customer_id: credit for credit in lock_credits(customer_ids)}


def credit_from_overpayment(*, payment: Payment, amount: Decimal) -> CreditEntry:
    """The excess of a payment above what was owed, kept as its customer's credit balance."""
    return credit_add(
        customer=payment.invoice.customer,
        amount=amount,
        kind=CreditEntryKind.OVERPAYMENT,
        payment=payment,
    )


def credit_balance_of(customer: Customer) -> Decimal:
    credit = CustomerCredit.objects.filter(customer=customer).only("balance").first()
    return credit.balance if credit else NO_MONEY
