"""Payments: money received against a bill settles the connection's open bills, oldest first; a
payment reversed (bounced, charged back, posted in error) gives back what it settled."""

import copy
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import partial

from django.db import IntegrityError, transaction
from django.db import connection as db_connection
from django.db.models import QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import User
from billing.rating import NO_MONEY
from billing.signals import audit_batch, rows_bulk_created, rows_bulk_updated
from config.bulk import PreparedCopy, insert_objects, update_objects
from invoicing.models import (
    OPEN_STATUSES,
    Adjustment,
    CreditEntryKind,
    DocumentSeries,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentAllocation,
    PaymentMethod,
    PaymentReversal,
    ReversalKind,
)
from invoicing.services.credit_balance import credit_add, credit_from_overpayment
from invoicing.services.errors import (
    DuplicateReference,
    InvoiceCancelled,
    InvoicePaid,
    MethodInactive,
    Overpayment,
    PaymentRefused,
    PaymentReversed,
    ReversalRefused,
)
from invoicing.services.idempotency import created_once, earlier_request, hash_request, replayed
from invoicing.services.locks import lock_credit, lock_for_payment, lock_for_reversal
from invoicing.services.notices import payment_notify, payments_notify, reversal_notify
from invoicing.services.numbering import take_numbers
from invoicing.services.overdue import late_surcharges


def settled_status(invoice: Invoice, today: date) -> None:
    if invoice.balance == 0:
        invoice.status = InvoiceStatus.PAID
        invoice.paid_on = today
    elif invoice.status != InvoiceStatus.OVERDUE:
        invoice.status = InvoiceStatus.PARTIALLY_PAID if invoice.amount_paid > 0 else InvoiceStatus.PENDING


def _earlier_payment(received_by: User, idempotency_key: str, request_hash: str) -> Payment | None:
    payments = _same_key(received_by, idempotency_key)
    return replayed(payments.first(), request_hash)


def _same_key(received_by: User, idempotency_key: str) -> QuerySet[Payment]:
    return Payment.objects.filter(received_by=received_by, idempotency_key=idempotency_key)


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
    money is received now, or at `received_at` (earlier: a bank counter's payment entered later).

    A new payment comes back with its bill, connection, method, collector and allocations at hand: a
    receipt is shown from them without reading anything back."""
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
        earlier = _earlier_payment(received_by, idempotency_key, request_hash) if idempotency_key else None
        if earlier is not None:
            return earlier, False
        # The bank's reference was posted before (the constraint's answer: no statement more per payment).
        posted = (
            reference and Payment.objects.filter(provider_id=invoice.provider_id, reference=reference).first()
        )
        if posted:
            raise DuplicateReference(
                gettext(
                    "Reference %(reference)s was posted already, as receipt %(receipt_number)s; a bank's "
                    "transaction is taken once."
                )
                % {"reference": reference, "receipt_number": posted.receipt_number},
                field="reference",
                receiptNumber=posted.receipt_number,
                paymentId=posted.pk,
            ) from None
        raise


# The statements of a payment, in order (9 on PostgreSQL): the connection's lock; the invoices' locks
# with the earlier payment of the same key; the settled invoices' update; then, as late as the receipt
# allows, the provider's receipt counter (every payment of the provider waits for it until commit), the
# payment, its allocations and e-mail; and the audit batch: a free lane, then its rows with the lane's
# new head in one insert.
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
    _check_request(amount, received_at)
    # The key is checked under the lock: a retry that waited for the first one finds it here.
    earlier = _same_key(received_by, idempotency_key) if idempotency_key else None
    invoice, settle, earlier_id = lock_for_payment(invoice, earlier=earlier)
    if earlier_id is not None:
        return replayed(Payment.objects.get(pk=earlier_id), request_hash), False
    payable, excess = _payable(invoice, settle, amount, method)
    received_at = received_at or timezone.now()  # taken under the lock: receipts follow their order
    today = timezone.localdate(received_at)
    with audit_batch():
        settled, before = _settle(settle, amount - excess, today)
        if excess:  # the credit row before the counter: counters are locked last (locks.py)
            lock_credit(invoice.customer)
        (receipt_number,) = take_numbers(
            provider=invoice.provider, series=DocumentSeries.RECEIPT, year=today.year, count=1
        )
        payment = Payment.objects.create(
            provider=invoice.provider,
            connection=invoice.connection,
            invoice=invoice,
            receipt_number=receipt_number,
            amount=amount,
            method=method,
            reference=reference,
            payable_before=payable,
            payable_after=payable - amount + excess,
            received_by=received_by,
            received_at=received_at,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
        )
        rows_bulk_updated.send(
            sender=Invoice, rows=[row for row, _ in settled], fields=SETTLED_FIELDS, before=before
        )
        allocations = [
            PaymentAllocation(payment=payment, invoice=row, amount=share) for row, share in settled
        ]
        PaymentAllocation.objects.bulk_create(allocations)
        rows_bulk_created.send(sender=PaymentAllocation, rows=allocations)
        if excess:
            credit_from_overpayment(payment=payment, amount=excess)
        payment_notify(payment=payment)
    # The receipt is shown from these rows as they are, not read back: `payment.allocations.all()`
    # answers from them, as Django's prefetch leaves a relation (a filtered copy still queries).
    prefetched = payment.allocations.all()
    prefetched._result_cache, prefetched._prefetch_done = allocations, True
    payment._prefetched_objects_cache = {"allocations": prefetched}
    Payment.reversal.related.set_cached_value(payment, None)  # a new payment has no reversal to read
    return payment, True


def _check_request(amount: Decimal, received_at: datetime | None) -> None:
    """The refusals a payment needs no lock for."""
    if amount <= 0:
        raise PaymentRefused(gettext("A payment must be more than zero."), field="amount")
    if received_at is not None and received_at > timezone.now():
        raise PaymentRefused(gettext("A payment cannot be dated in the future."), field="receivedAt")


def _payable(
    invoice: Invoice, settle: list[Invoice], amount: Decimal, method: PaymentMethod
) -> tuple[Decimal, Decimal]:
    """The refusals of a payment on a locked bill (`settle`: what it would settle, oldest first);
    returns what is payable and the excess above it the customer keeps as credit."""
    if not method.is_active:
        raise MethodInactive(
            gettext("%(name)s is no longer accepted; choose another payment method.") % {"name": method.name},
            field="method",
        )
    if invoice.status == InvoiceStatus.CANCELLED:
        raise InvoiceCancelled(
            gettext("Invoice %(number)s is cancelled; it takes no payments.") % {"number": invoice.number}
        )
    if not settle:  # a paid bill may still carry earlier bills' arrears: those are paid against it
        raise InvoicePaid(
            gettext("Invoice %(number)s is fully paid; nothing is owed on it.") % {"number": invoice.number}
        )
    payable = sum((row.balance for row in settle), NO_MONEY)
    # Above what is owed: the excess is the customer's credit where the provider allows it.
    excess = max(amount - payable, NO_MONEY) if invoice.provider.allow_overpayment else NO_MONEY
    if amount - excess > payable:
        raise Overpayment(
            (
                gettext(
                    "%(amount)s is more than the %(payable)s payable on invoice %(number)s and the "
                    "earlier bills it carries; take at most %(payable)s."
                )
                if len(settle) > 1
                else gettext(
                    "%(amount)s is more than the %(payable)s payable on invoice %(number)s; take at most "
                    "%(payable)s."
                )
            )
            % {"amount": amount, "payable": payable, "number": invoice.number},
            field="amount",
            payable=f"{payable}",
        )
    return payable, excess


SETTLED_FIELDS = ("amount_paid", "balance", "status", "paid_on")


def _settle(
    settle: list[Invoice], amount: Decimal, today: date
) -> tuple[list[tuple[Invoice, Decimal]], dict[int, dict]]:
    """Settle `amount` on the open invoices, oldest first, in one update; returns each invoice settled
    with its share, and what the changed fields were before (for the audit trail)."""
    settled, before = _shares(settle, amount, today)
    if len(settled) == 1:  # the common case, in the plain UPDATE that bulk_update's CASE costs more than
        row = settled[0][0]
        Invoice.objects.filter(pk=row.pk).update(
            **{name: getattr(row, name) for name in (*SETTLED_FIELDS, "updated_at")}
        )
    else:
        Invoice.objects.bulk_update([row for row, _ in settled], [*SETTLED_FIELDS, "updated_at"])
    return settled, before


def _shares(
    settle: list[Invoice], amount: Decimal, today: date
) -> tuple[list[tuple[Invoice, Decimal]], dict[int, dict]]:
    """`_settle`'s shares, changed on the rows in memory only."""
    settled, before, left, now = [], {}, amount, timezone.now()
    for row in settle:
        if left == 0:
            break
        share = min(left, row.balance)
        if share == 0:
            continue
        left -= share
        before[row.pk] = {name: getattr(row, name) for name in SETTLED_FIELDS}
        row.amount_paid += share
        row.balance -= share
        row.updated_at = now
        settled_status(row, today)
        settled.append((row, share))
    return settled, before


# --- many payments in one transaction (a bank file's rows) -------------------------------------


@dataclass
class PlannedPayment:
    """A payment decided under its locks, its shares settled on the locked rows in memory, not yet
    written (`payments_write`)."""

    invoice: Invoice
    amount: Decimal
    method: PaymentMethod
    reference: str
    received_at: datetime
    payable: Decimal
    excess: Decimal
    settled: list[tuple[Invoice, Decimal]]
    before: dict[int, dict]
    after: list[Invoice]  # the settled rows as this payment left them: its own audit record of them


def payment_planned(
    *,
    invoice: Invoice,
    settle: list[Invoice],
    amount: Decimal,
    method: PaymentMethod,
    reference: str,
    received_at: datetime,
) -> PlannedPayment:
    """A payment on `invoice`, locked with what it settles (`locks.lock_for_payments`, then
    `locks.settled_by`), refused as `payment_post` refuses it, else settled on those rows in memory: a
    payment planned after it on the same rows finds what this one left."""
    _check_request(amount, received_at)
    payable, excess = _payable(invoice, settle, amount, method)
    settled, before = _shares(settle, amount - excess, timezone.localdate(received_at))
    return PlannedPayment(
        invoice=invoice,
        amount=amount,
        method=method,
        reference=reference,
        received_at=received_at,
        payable=payable,
        excess=excess,
        settled=settled,
        before=before,
        after=[copy.copy(row) for row, _ in settled],
    )


def payments_write(*, plans: list[PlannedPayment], received_by: User) -> list[Payment]:
    """Write planned payments (in their order) in the caller's transaction, under the locks they were
    planned under: the settled bills in one update, the receipts numbered in one statement a year (the
    counter taken last, as late as the receipts allow), the payments, their allocations and their
    receipt e-mails in one insert each, and the audit rows of all in one append, each payment's as
    `payment_post` records them (the payment, its bills as it left them, its allocations, its credit)."""
    if not plans:
        return []
    with audit_batch():
        bills = list({row.pk: row for plan in plans for row, _ in plan.settled}.values())
        update_objects(Invoice, bills, [*SETTLED_FIELDS, "updated_at"])
        credited = {plan.invoice.customer for plan in plans if plan.excess}
        for customer in sorted(credited, key=lambda customer: customer.pk):  # credits before counters
            lock_credit(customer)
        payments = [
            Payment(
                provider=plan.invoice.provider,
                connection=plan.invoice.connection,
                invoice=plan.invoice,
                amount=plan.amount,
                method=plan.method,
                reference=plan.reference,
                payable_before=plan.payable,
                payable_after=plan.payable - plan.amount + plan.excess,
                received_by=received_by,
                received_at=plan.received_at,
                request_hash=hash_request(
                    invoice=plan.invoice.pk,
                    amount=f"{plan.amount:.2f}",
                    method=plan.method.pk,
                    reference=plan.reference,
                    received_at=plan.received_at.isoformat(),
                ),
            )
            for plan in plans
        ]
        if db_connection.vendor == "postgresql":
            # Encoded before the counter is taken: every payment of the provider waits for it to commit.
            prepared = PreparedCopy(Payment, payments)
            _number_receipts(payments)
            prepared.insert("receipt_number")
        else:  # no ids before the insert; one writer at a time anyway
            _number_receipts(payments)
            insert_objects(Payment, payments)
        allocations = [
            [PaymentAllocation(payment=payment, invoice=row, amount=share) for row, share in plan.settled]
            for plan, payment in zip(plans, payments, strict=True)
        ]
        insert_objects(PaymentAllocation, [one for each in allocations for one in each])
        for plan, payment, allocated in zip(plans, payments, allocations, strict=True):
            rows_bulk_created.send(sender=Payment, rows=[payment])
            rows_bulk_updated.send(sender=Invoice, rows=plan.after, fields=SETTLED_FIELDS, before=plan.before)
            rows_bulk_created.send(sender=PaymentAllocation, rows=allocated)
            if plan.excess:
                credit_from_overpayment(payment=payment, amount=plan.excess)
        payments_notify(payments=payments)
    return payments


def _number_receipts(payments: list[Payment]) -> None:
    """Receipt numbers for new payments in their order, in one statement for each year they fall in."""
    by_year: dict[int, list[Payment]] = {}
    for payment in payments:
        by_year.setdefault(timezone.localdate(payment.received_at).year, []).append(payment)
    for year in sorted(by_year):
        numbers = take_numbers(
            provider=payments[0].provider, series=DocumentSeries.RECEIPT, year=year, count=len(by_year[year])
        )
        for payment, number in zip(by_year[year], numbers, strict=True):
            payment.receipt_number = number


# --- reversal ------------------------------------------------------------------------------------

REOPENED_FIELDS = ("amount_paid", "adjustment_total", "balance", "status", "paid_on")


def reopened_status(invoice: Invoice, today: date) -> None:
    """The status of a bill a reversal gave a balance back to: Overdue once its due date has passed
    (the overdue job would mark it so), else Partially_Paid while other payments still count on it,
    else Pending. It is paid on no day any more."""
    invoice.paid_on = None
    if invoice.due_date < today:
        invoice.status = InvoiceStatus.OVERDUE
    else:
        invoice.status = InvoiceStatus.PARTIALLY_PAID if invoice.amount_paid > 0 else InvoiceStatus.PENDING


_same_reversal_key = partial(earlier_request, PaymentReversal, "reversed_by")


def payment_reverse(
    *,
    payment: Payment,
    kind: str,
    reason: str,
    reversed_by: User,
    idempotency_key: str | None = None,
) -> tuple[PaymentReversal, bool]:
    """Take a payment back (`kind`: bounced, charged back, posted in error; `reason` says more) and
    issue its reversal receipt; returns the reversal and whether it is new.

    What the payment settled on each bill is given back to that bill's balance; each reopens as
    `reopened_status` says, and one past its due date gets its late surcharge if it has none yet, as
    the overdue job adds it. Other payments keep their allocations: what they settled is not moved.
    A payment is reversed once; with an `idempotency_key`, a retry returns the first reversal."""
    reason = reason.strip()
    request_hash = hash_request(payment=payment.pk, kind=kind, reason=reason)
    return created_once(
        lambda: _payment_reverse(
            payment=payment,
            kind=kind,
            reason=reason,
            reversed_by=reversed_by,
            idempotency_key=idempotency_key or "",
            request_hash=request_hash,
        ),
        lambda: _same_reversal_key(reversed_by, idempotency_key, request_hash),
        idempotency_key=idempotency_key,
    )


@transaction.atomic
def _payment_reverse(
    *,
    payment: Payment,
    kind: str,
    reason: str,
    reversed_by: User,
    idempotency_key: str,
    request_hash: str,
) -> tuple[PaymentReversal, bool]:
    if kind not in ReversalKind.values:
        choices = ", ".join(ReversalKind.values)
        raise ReversalRefused(
            gettext("Say how the payment failed: one of %(choices)s.") % {"choices": choices}, field="kind"
        )
    if not reason:
        raise ReversalRefused(
            gettext("Say why the payment is reversed: it is printed on the receipt."), field="reason"
        )
    payment, settled = lock_for_reversal(payment)
    if idempotency_key:  # under the lock: a retry that waited for the first one finds it here
        earlier = _same_reversal_key(reversed_by, idempotency_key, request_hash)
        if earlier is not None:
            return earlier, False
    done = PaymentReversal.objects.filter(payment=payment).first()
    if done is not None:
        raise PaymentReversed(
            gettext(
                "Payment %(receipt_number)s was already reversed on %(reversed_at)s (%(number)s); a "
                "payment is reversed only once."
            )
            % {
                "receipt_number": payment.receipt_number,
                "reversed_at": timezone.localdate(done.reversed_at),
                "number": done.number,
            },
            reversal=done.number,
        )
    # A bill cancelled since the payment settled it (re-rated or cancelled) cannot owe again: its month
    # may be billed anew, and the credit note that cancelled it counted what was paid on it.
    cancelled = [row.number for row, _ in settled if row.status == InvoiceStatus.CANCELLED]
    if cancelled:
        raise ReversalRefused(
            gettext(
                "Payment %(receipt_number)s settled %(cancelled)s, cancelled since by a credit note that "
                "counted what was paid on it; the bill cannot reopen. Charge the amount back with a debit "
                "adjustment on the customer's open bill instead."
            )
            % {"receipt_number": payment.receipt_number, "cancelled": ", ".join(cancelled)},
            field="payment",
            cancelled=cancelled,
        )
    # What the payment paid above what was owed (a provider allowing overpayments) went to the
    # customer's credit balance: the reversal takes it back from there, if the balance still holds it.
    excess = payment.amount - sum((allocation.amount for _, allocation in settled), NO_MONEY)
    if excess:
        credit = lock_credit(payment.invoice.customer)
        if credit.balance < excess:
            raise ReversalRefused(
                gettext(
                    "Payment %(receipt_number)s left %(excess)s as the customer's credit balance, and only "
                    "%(balance)s of it is left (applied to a later bill or refunded). Charge the rest back "
                    "with a debit adjustment on the bill it paid, then reverse the payment."
                )
                % {"receipt_number": payment.receipt_number, "excess": excess, "balance": credit.balance},
                field="payment",
            )
    now = timezone.now()
    today = timezone.localdate(now)
    with audit_batch():
        if excess:
            credit_add(
                customer=payment.invoice.customer,
                amount=-excess,
                kind=CreditEntryKind.REVERSAL,
                payment=payment,
            )
        before = {row.pk: {name: getattr(row, name) for name in REOPENED_FIELDS} for row, _ in settled}
        for row, allocation in settled:
            row.amount_paid -= allocation.amount
            row.balance += allocation.amount
            row.updated_at = now
            reopened_status(row, today)
        late = [row for row, _ in settled if row.status == InvoiceStatus.OVERDUE]
        surcharged, adjustments = late_surcharges(provider=payment.provider, invoices=late, today=today)
        for row in surcharged:
            row.balance += row.late_surcharge
            row.adjustment_total += row.late_surcharge
        insert_objects(Adjustment, adjustments)
        rows = [row for row, _ in settled]
        Invoice.objects.bulk_update(rows, [*REOPENED_FIELDS, "updated_at"])
        surcharge = {row.pk: row.late_surcharge for row in surcharged}
        payable_after = _owed_on_connection(payment)
        (number,) = take_numbers(
            provider=payment.provider, series=DocumentSeries.REVERSAL, year=today.year, count=1
        )
        reversal = PaymentReversal.objects.create(
            provider=payment.provider,
            payment=payment,
            number=number,
            kind=kind,
            reason=reason,
            amount=payment.amount,
            surcharge_total=sum(surcharge.values(), NO_MONEY),
            payable_before=payable_after - (payment.amount - excess) - sum(surcharge.values(), NO_MONEY),
            payable_after=payable_after,
            reopened=[
                {
                    "billId": row.pk,
                    "invoiceNumber": row.number,
                    "period": f"{row.period:%Y-%m}",
                    "amount": f"{allocation.amount}",
                    "surcharge": f"{surcharge.get(row.pk, NO_MONEY)}",
                    "balance": f"{row.balance}",
                    "status": row.status,
                }
                for row, allocation in settled
            ],
            reversed_by=reversed_by,
            reversed_at=now,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
        )
        rows_bulk_created.send(sender=Adjustment, rows=adjustments)
        rows_bulk_updated.send(sender=Invoice, rows=rows, fields=REOPENED_FIELDS, before=before)
        reversal_notify(reversal=reversal)
    return reversal, True


def _owed_on_connection(payment: Payment) -> Decimal:
    """The open balances of the payment's customer on its connection (the bills it could settle)."""
    return (
        Invoice.objects.filter(
            connection_id=payment.connection_id,
            customer_id=payment.invoice.customer_id,
            status__in=OPEN_STATUSES,
        ).aggregate(total=Sum("balance"))["total"]
        or NO_MONEY
    )
