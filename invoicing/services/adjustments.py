"""Adjustments: an officer's signed correction of a bill's balance, and the late surcharge's debit."""

from decimal import Decimal
from functools import partial

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from billing.rating import NO_MONEY
from invoicing.models import (
    Adjustment,
    AdjustmentDirection,
    AdjustmentKind,
    DocumentSeries,
    Invoice,
    InvoiceStatus,
)
from invoicing.services.credits import creditable
from invoicing.services.errors import AdjustmentRefused, InvoiceCancelled, InvoicePaid
from invoicing.services.idempotency import created_once, earlier_request, hash_request
from invoicing.services.issue import MAX_AMOUNT
from invoicing.services.locks import lock_invoice
from invoicing.services.numbering import take_numbers
from invoicing.services.payments import settled_status

_earlier_adjustment = partial(earlier_request, Adjustment, "officer")


def adjustment_create(
    *,
    invoice: Invoice,
    amount: Decimal,
    direction: str,
    reason: str,
    officer: User,
    idempotency_key: str = "",
) -> tuple[Adjustment, bool]:
    """An officer's correction of a bill: a credit lowers its balance (never below zero), a debit
    raises it; returns the adjustment and whether it is new. The officer's name and designation are
    taken from their account. With an `idempotency_key`, a retry returns the first adjustment."""
    request_hash = hash_request(
        invoice=invoice.pk, amount=f"{amount:.2f}", direction=direction, reason=reason
    )
    return created_once(
        lambda: _adjustment_create(
            invoice=invoice,
            amount=amount,
            direction=direction,
            reason=reason,
            officer=officer,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
        ),
        lambda: _earlier_adjustment(officer, idempotency_key, request_hash),
        idempotency_key=idempotency_key,
    )


@transaction.atomic
def _adjustment_create(
    *,
    invoice: Invoice,
    amount: Decimal,
    direction: str,
    reason: str,
    officer: User,
    idempotency_key: str,
    request_hash: str,
) -> tuple[Adjustment, bool]:
    invoice = lock_invoice(invoice)
    if idempotency_key:  # under the lock: a retry that waited for the first one finds it here
        earlier = _earlier_adjustment(officer, idempotency_key, request_hash)
        if earlier is not None:
            return earlier, False
    if invoice.status == InvoiceStatus.CANCELLED:
        raise InvoiceCancelled(
            _("Invoice %(number)s is cancelled; it cannot be adjusted.") % {"number": invoice.number}
        )
    if invoice.status == InvoiceStatus.PAID:
        raise InvoicePaid(
            _("Invoice %(number)s is fully paid; it cannot be adjusted.") % {"number": invoice.number}
        )
    if not officer.designation.strip():
        raise AdjustmentRefused(
            _(
                "Your account has no designation, which an adjustment receipt must show; "
                "ask an administrator to set it."
            )
        )
    reason = reason.strip()
    if not reason:
        raise AdjustmentRefused(_("Say why the bill is adjusted."), field="reason")
    if amount <= 0:
        raise AdjustmentRefused(_("An adjustment must be more than zero."), field="amount")
    if direction not in AdjustmentDirection.values:
        raise AdjustmentRefused(_("The direction is credit or debit."), field="direction")
    signed = amount if direction == AdjustmentDirection.DEBIT else -amount
    if invoice.balance + signed < 0:
        raise AdjustmentRefused(
            _("A credit of %(amount)s would take invoice %(number)s below zero; its balance is %(balance)s.")
            % {"amount": amount, "number": invoice.number, "balance": invoice.balance},
            field="amount",
            balance=f"{invoice.balance}",
        )
    # A bill credited by credit notes and reopened since (a payment reversed) owes again, yet what it
    # charged may not fall below what the notes took back of it.
    most = creditable(invoice)
    if direction == AdjustmentDirection.CREDIT and amount > most:
        raise AdjustmentRefused(
            _(
                "A credit of %(amount)s would take invoice %(number)s below what its credit notes took "
                "back of it; credit at most %(most)s."
            )
            % {"amount": amount, "number": invoice.number, "most": max(most, NO_MONEY)},
            field="amount",
            creditable=f"{max(most, NO_MONEY)}",
        )
    if invoice.balance + signed > MAX_AMOUNT:
        raise AdjustmentRefused(_("That debit is larger than an invoice can hold."), field="amount")
    adjustment = _adjust(
        invoice,
        amount=amount,
        direction=direction,
        reason=reason,
        officer=officer,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
    )
    return adjustment, True


def _adjust(
    invoice: Invoice,
    *,
    amount: Decimal,
    direction: str,
    reason: str,
    officer: User | None,
    kind: str = AdjustmentKind.OFFICER,
    idempotency_key: str = "",
    request_hash: str = "",
) -> Adjustment:
    today = timezone.localdate()
    (number,) = take_numbers(
        provider=invoice.provider, series=DocumentSeries.ADJUSTMENT, year=today.year, count=1
    )
    signed = amount if direction == AdjustmentDirection.DEBIT else -amount
    before = invoice.balance
    adjustment = Adjustment.objects.create(
        provider_id=invoice.provider_id,
        invoice=invoice,
        number=number,
        kind=kind,
        direction=direction,
        amount=amount,
        reason=reason,
        officer=officer,
        officer_name=officer.name if officer else "",
        officer_designation=officer.designation if officer else "",
        original_amount=invoice.current_charges,
        balance_before=before,
        balance_after=before + signed,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
    )
    invoice.adjustment_total += signed
    invoice.balance += signed
    settled_status(invoice, today)
    invoice.save(update_fields=["adjustment_total", "balance", "status", "paid_on", "updated_at"])
    return adjustment
