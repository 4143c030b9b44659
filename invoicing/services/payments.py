"""Payments: money received against a bill settles the connection's open bills, oldest first."""

from datetime import date, datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm

from accounts.models import User
from billing.rating import NO_MONEY
from billing.signals import rows_bulk_created
from invoicing.models import DocumentSeries, Invoice, InvoiceStatus, Payment, PaymentAllocation, PaymentMethod
from invoicing.services.errors import (
    InvoiceCancelled,
    InvoicePaid,
    MethodInactive,
    Overpayment,
    PaymentRefused,
)
from invoicing.services.idempotency import hash_request, replayed
from invoicing.services.locks import lock_for_payment
from invoicing.services.notices import payment_notify
from invoicing.services.numbering import take_numbers


def settled_status(invoice: Invoice, today: date) -> None:
    if invoice.balance == 0:
        invoice.status = InvoiceStatus.PAID
        invoice.paid_on = today
    elif invoice.status != InvoiceStatus.OVERDUE:
        invoice.status = InvoiceStatus.PARTIALLY_PAID if invoice.amount_paid > 0 else InvoiceStatus.PENDING


def _earlier_payment(received_by: User, idempotency_key: str, request_hash: str) -> Payment | None:
    payments = Payment.objects.filter(received_by=received_by, idempotency_key=idempotency_key)
    return replayed(payments.first(), request_hash)


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
    request_hash = hash_request(
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
    invoice, settle = lock_for_payment(invoice)
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
    (receipt_number,) = take_numbers(
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
        settled_status(row, today)
        row.save(update_fields=["amount_paid", "balance", "status", "paid_on", "updated_at"])
        allocations.append(PaymentAllocation(payment=payment, invoice=row, amount=share))
    PaymentAllocation.objects.bulk_create(allocations)
    rows_bulk_created.send(sender=PaymentAllocation, rows=allocations)
    assign_perm("invoicing.view_payment", received_by, payment)  # an Invoice_Creator's own receipts
    payment_notify(payment=payment)
    return payment, True
