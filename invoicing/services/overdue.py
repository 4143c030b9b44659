"""The nightly overdue job: bills unpaid after their due date turn Overdue and get their late surcharge."""

from datetime import date

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import MessageKind
from billing.signals import rows_bulk_created, rows_bulk_updated
from config.bulk import insert_objects
from invoicing.models import (
    Adjustment,
    AdjustmentDirection,
    AdjustmentKind,
    DocumentSeries,
    Invoice,
    InvoiceStatus,
)
from invoicing.services.notices import invoices_notify
from invoicing.services.numbering import take_numbers
from providers.models import Provider

LATE_REASON = "Late payment surcharge: {percent}% of current charges {charges}, unpaid after {due}."


def late_surcharges(
    *, provider: Provider, invoices: list[Invoice], today: date
) -> tuple[list[Invoice], list[Adjustment]]:
    """The late surcharges owed by `invoices` (locked, unpaid after their due date): each bill with a
    surcharge that has none yet, and its numbered debit adjustment, not inserted (the caller inserts
    them and moves the balances). The database refuses a second one on a bill too."""
    charged = set(
        Adjustment.objects.filter(invoice__in=invoices, kind=AdjustmentKind.LATE_SURCHARGE).values_list(
            "invoice_id", flat=True
        )
    )
    surcharged = [row for row in invoices if row.late_surcharge > 0 and row.pk not in charged]
    numbers = take_numbers(
        provider=provider, series=DocumentSeries.ADJUSTMENT, year=today.year, count=len(surcharged)
    )
    percent = provider.late_surcharge_percent.normalize()
    adjustments = [
        Adjustment(
            provider_id=provider.pk,
            invoice=row,
            number=number,
            kind=AdjustmentKind.LATE_SURCHARGE,
            direction=AdjustmentDirection.DEBIT,
            amount=row.late_surcharge,
            reason=LATE_REASON.format(
                percent=f"{percent:f}", charges=f"{row.current_charges:,}", due=row.due_date
            ),
            original_amount=row.current_charges,
            balance_before=row.balance,
            balance_after=row.balance + row.late_surcharge,
        )
        for row, number in zip(surcharged, numbers, strict=True)
    ]
    return surcharged, adjustments


@transaction.atomic
def invoices_mark_overdue(*, provider: Provider, today: date | None = None) -> int:
    """Mark the provider's unpaid bills past their due date Overdue and add each one's late
    surcharge once, as an adjustment. Running it again the same day changes nothing."""
    today = today or timezone.localdate()
    late = list(
        Invoice.objects.select_for_update()
        .filter(
            provider=provider,
            status__in=(InvoiceStatus.PENDING, InvoiceStatus.PARTIALLY_PAID),
            due_date__lt=today,
            balance__gt=0,
        )
        .order_by("id")
    )
    if not late:
        return 0
    surcharged, adjustments = late_surcharges(provider=provider, invoices=late, today=today)
    insert_objects(Adjustment, adjustments)
    before = {
        row.pk: {"status": row.status, "balance": row.balance, "adjustment_total": row.adjustment_total}
        for row in late
    }
    Invoice.objects.filter(pk__in=[row.pk for row in late]).update(
        status=InvoiceStatus.OVERDUE, updated_at=timezone.now()
    )
    Invoice.objects.filter(pk__in=[row.pk for row in surcharged]).update(
        balance=F("balance") + F("late_surcharge"),
        adjustment_total=F("adjustment_total") + F("late_surcharge"),
    )
    rows_bulk_created.send(sender=Adjustment, rows=adjustments)
    rows_bulk_updated.send(
        sender=Invoice,
        rows=list(Invoice.objects.filter(pk__in=before)),
        fields=("status", "balance", "adjustment_total"),
        before=before,
    )
    invoices_notify(kind=MessageKind.BILL_OVERDUE, invoices=late)
    return len(late)
