"""Credit notes, the customer's credit balance, and refunds of it.

An issued bill is never rewritten (DESIGN.md "Corrections"): a credit note against it takes back part
or all of what it charged. What the bill still owes is credited on it (its `credited` rises, its
balance falls); the rest, money already paid on it, becomes its customer's credit balance
(credit_balance.py), which an officer may refund.

Locks, in the order of locks.py: the connection, the bill, then the customer's credit row; document
counters last.
"""

from decimal import Decimal
from functools import partial

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from billing.models import Customer
from billing.rating import NO_MONEY
from billing.signals import rows_bulk_created
from invoicing.models import (
    CreditEntryKind,
    CreditNote,
    CreditNoteLine,
    CreditRefund,
    DocumentSeries,
    Invoice,
    InvoiceStatus,
    PaymentMethod,
)
from invoicing.services.credit_balance import credit_add
from invoicing.services.errors import CreditRefused, InvoiceCancelled, MethodInactive
from invoicing.services.idempotency import created_once, earlier_request, hash_request
from invoicing.services.locks import lock_credit, lock_invoice
from invoicing.services.numbering import take_numbers
from invoicing.services.payments import settled_status


def credited_by_notes(invoice: Invoice) -> Decimal:
    """What credit notes took back from a bill so far, on it and to the credit balance alike."""
    return invoice.credit_notes.aggregate(total=Sum("amount"))["total"] or NO_MONEY


def creditable(invoice: Invoice) -> Decimal:
    """What credit notes may still take back from a bill: its charges and net adjustments, less what
    earlier credit notes took (the credit balance applied to it paid it, and is not taken back)."""
    return invoice.current_charges + invoice.adjustment_total - credited_by_notes(invoice)


def credit_note_record(
    invoice: Invoice,
    *,
    amount: Decimal,
    reason: str,
    issued_by: User,
    lines: list[tuple[str, Decimal]],
    cancel: bool = False,
    idempotency_key: str = "",
    request_hash: str = "",
) -> CreditNote:
    """A credit note of `amount` against a bill the caller has locked: what the bill still owes is
    credited on it, the rest goes to its customer's credit balance. `cancel`: the bill is cancelled
    with it (its month is free to be billed again)."""
    today = timezone.localdate()
    applied = min(amount, invoice.balance)
    before = invoice.balance
    invoice.credited += applied
    invoice.balance -= applied
    if cancel:
        invoice.status = InvoiceStatus.CANCELLED
    else:
        settled_status(invoice, today)
    invoice.save(update_fields=["credited", "balance", "status", "paid_on", "updated_at"])
    if amount > applied:  # the credit row before the counter: counters are locked last (locks.py)
        lock_credit(invoice.customer)
    (number,) = take_numbers(
        provider=invoice.provider, series=DocumentSeries.CREDIT_NOTE, year=today.year, count=1
    )
    note = CreditNote.objects.create(
        provider_id=invoice.provider_id,
        invoice=invoice,
        customer_id=invoice.customer_id,
        number=number,
        issue_date=today,
        amount=amount,
        applied=applied,
        to_balance=amount - applied,
        reason=reason,
        issued_by=issued_by,
        issued_by_name=issued_by.name,
        balance_before=before,
        balance_after=invoice.balance,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
    )
    note_lines = [
        CreditNoteLine(credit_note=note, position=position, label=label[:200], amount=line_amount)
        for position, (label, line_amount) in enumerate(lines, start=1)
    ]
    CreditNoteLine.objects.bulk_create(note_lines)
    rows_bulk_created.send(sender=CreditNoteLine, rows=note_lines)
    if note.to_balance:
        credit_add(
            customer=invoice.customer,
            amount=note.to_balance,
            kind=CreditEntryKind.CREDIT_NOTE,
            credit_note=note,
        )
    return note


def whole_bill_lines(invoice: Invoice) -> list[tuple[str, Decimal]]:
    """What a credit note for all that is still creditable on a bill credits, line by line."""
    lines = [(f"Charges of bill {invoice.number} ({invoice.period:%B %Y})", invoice.current_charges)]
    if invoice.adjustment_total:
        lines.append((f"Adjustments on bill {invoice.number}", invoice.adjustment_total))
    earlier = credited_by_notes(invoice)
    if earlier:
        lines.append((f"Credited before on bill {invoice.number}", -earlier))
    return lines


_earlier_note = partial(earlier_request, CreditNote, "issued_by")


def credit_note_issue(
    *, invoice: Invoice, amount: Decimal, reason: str, issued_by: User, idempotency_key: str = ""
) -> tuple[CreditNote, bool]:
    """An officer's credit note of part or all of an issued bill, paid or not; returns the note and
    whether it is new. Beyond what the bill still owes, the credit becomes the customer's credit
    balance. With an `idempotency_key`, a retry returns the first note."""
    request_hash = hash_request(invoice=invoice.pk, amount=f"{amount:.2f}", reason=reason)
    return created_once(
        lambda: _credit_note_issue(
            invoice=invoice,
            amount=amount,
            reason=reason,
            issued_by=issued_by,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
        ),
        lambda: _earlier_note(issued_by, idempotency_key, request_hash),
        idempotency_key=idempotency_key,
    )


@transaction.atomic
def _credit_note_issue(
    *,
    invoice: Invoice,
    amount: Decimal,
    reason: str,
    issued_by: User,
    idempotency_key: str,
    request_hash: str,
) -> tuple[CreditNote, bool]:
    invoice = lock_invoice(invoice)
    if idempotency_key:  # under the lock: a retry that waited for the first one finds it here
        earlier = _earlier_note(issued_by, idempotency_key, request_hash)
        if earlier is not None:
            return earlier, False
    if invoice.status == InvoiceStatus.CANCELLED:
        raise InvoiceCancelled(
            _(
                "Invoice %(number)s is cancelled: what it still owed was credited when it was; nothing "
                "more can be credited on it."
            )
            % {"number": invoice.number}
        )
    reason = reason.strip()
    if not reason:
        raise CreditRefused(_("Say why the bill is credited."), field="reason")
    if amount <= 0:
        raise CreditRefused(_("A credit note must be more than zero."), field="amount")
    most = creditable(invoice)
    if most <= 0:
        raise CreditRefused(
            _("Invoice %(number)s is already credited in full; nothing more can be credited on it.")
            % {"number": invoice.number},
            field="amount",
        )
    if amount > most:
        raise CreditRefused(
            _(
                "A credit of %(amount)s is more than invoice %(number)s charged and was not credited "
                "before; credit at most %(most)s."
            )
            % {"amount": amount, "number": invoice.number, "most": most},
            field="amount",
            creditable=f"{most}",
        )
    note = credit_note_record(
        invoice,
        amount=amount,
        reason=reason,
        issued_by=issued_by,
        lines=[(reason, amount)],
        idempotency_key=idempotency_key,
        request_hash=request_hash,
    )
    return note, True


# --- overpayments and refunds -----------------------------------------------------------------------


_earlier_refund = partial(earlier_request, CreditRefund, "officer")


def credit_refund(
    *,
    customer: Customer,
    amount: Decimal,
    method: PaymentMethod,
    reason: str,
    officer: User,
    reference: str = "",
    idempotency_key: str = "",
) -> tuple[CreditRefund, bool]:
    """An officer pays back part or all of a customer's credit balance, with a refund receipt; returns
    the refund and whether it is new. With an `idempotency_key`, a retry returns the first refund."""
    request_hash = hash_request(
        customer=customer.pk, amount=f"{amount:.2f}", method=method.pk, reason=reason, reference=reference
    )
    return created_once(
        lambda: _credit_refund(
            customer=customer,
            amount=amount,
            method=method,
            reason=reason,
            officer=officer,
            reference=reference,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
        ),
        lambda: _earlier_refund(officer, idempotency_key, request_hash),
        idempotency_key=idempotency_key,
    )


@transaction.atomic
def _credit_refund(
    *,
    customer: Customer,
    amount: Decimal,
    method: PaymentMethod,
    reason: str,
    officer: User,
    reference: str,
    idempotency_key: str,
    request_hash: str,
) -> tuple[CreditRefund, bool]:
    credit = lock_credit(customer)
    if idempotency_key:  # under the lock: a retry that waited for the first one finds it here
        earlier = _earlier_refund(officer, idempotency_key, request_hash)
        if earlier is not None:
            return earlier, False
    if not officer.designation.strip():
        raise CreditRefused(
            _(
                "Your account has no designation, which a refund receipt must show; "
                "ask an administrator to set it."
            )
        )
    if not method.is_active:
        raise MethodInactive(
            _("%(name)s is no longer used; choose another method.") % {"name": method.name}, field="method"
        )
    reason = reason.strip()
    if not reason:
        raise CreditRefused(_("Say why the credit is refunded."), field="reason")
    if amount <= 0:
        raise CreditRefused(_("A refund must be more than zero."), field="amount")
    if amount > credit.balance:
        raise CreditRefused(
            _(
                "%(amount)s is more than customer %(number)s's credit balance of %(balance)s; refund at "
                "most %(balance)s."
            )
            % {"amount": amount, "number": customer.number, "balance": credit.balance},
            field="amount",
            creditBalance=f"{credit.balance}",
        )
    today = timezone.localdate()
    (number,) = take_numbers(
        provider=customer.provider, series=DocumentSeries.REFUND, year=today.year, count=1
    )
    refund = CreditRefund.objects.create(
        provider_id=customer.provider_id,
        customer=customer,
        number=number,
        amount=amount,
        method=method,
        reference=reference,
        reason=reason,
        officer=officer,
        officer_name=officer.name,
        officer_designation=officer.designation,
        balance_before=credit.balance,
        balance_after=credit.balance - amount,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
    )
    credit_add(customer=customer, amount=-amount, kind=CreditEntryKind.REFUND, refund=refund)
    return refund, True
