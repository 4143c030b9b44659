"""Pending charges: one-off amounts (a reconnection fee) that a connection's next bill carries, once.

A bill takes the pending charges of its connection owed by its own customer, each as a "fee" line,
and is recorded on them in the same transaction; a cancelled bill gives them back to the next one.
Issuing locks them after the connection (locks.py); a billing run's chunk reads and locks those of
its whole id range in one query.
"""

from collections.abc import Iterable
from decimal import Decimal

from accounts.models import User
from billing.models import ConnectionEvent, ServiceConnection
from billing.rating import Line
from billing.signals import rows_bulk_updated
from invoicing.models import ChargeKind, Invoice, PendingCharge


def fee_lines(charges: Iterable[PendingCharge]) -> list[Line]:
    return [Line("fee", charge.label, charge.amount, charge.kind, charge.pk) for charge in charges]


def charges_pending_of(connection: ServiceConnection) -> list[PendingCharge]:
    """The connection's charges not billed yet that its present customer owes, locked."""
    return list(
        PendingCharge.objects.select_for_update()
        .filter(connection=connection, customer_id=connection.customer_id, invoice__isnull=True)
        .order_by("pk")
    )


def charges_pending_in(first_id: int, last_id: int) -> dict[int, list[PendingCharge]]:
    """A run chunk's charges not billed yet, by connection id, locked (one query for the chunk)."""
    pending: dict[int, list[PendingCharge]] = {}
    for charge in (
        PendingCharge.objects.select_for_update()
        .filter(connection_id__gte=first_id, connection_id__lte=last_id, invoice__isnull=True)
        .order_by("pk")
    ):
        pending.setdefault(charge.connection_id, []).append(charge)
    return pending


def charges_billed(carried: Iterable[tuple[Invoice, list[PendingCharge]]]) -> None:
    """Record on each charge the bill that carried it (one statement for a whole chunk)."""
    charges = []
    for invoice, invoice_charges in carried:
        for charge in invoice_charges:
            charge.invoice = invoice
            charges.append(charge)
    if not charges:
        return
    PendingCharge.objects.bulk_update(charges, ["invoice"])
    rows_bulk_updated.send(
        sender=PendingCharge,
        rows=charges,
        fields=("invoice",),
        before={c.pk: {"invoice": None} for c in charges},
    )


def charges_release(invoice: Invoice) -> None:
    """A cancelled bill's charges go back to waiting for the connection's next bill."""
    for charge in PendingCharge.objects.select_for_update().filter(invoice=invoice).order_by("pk"):
        charge.invoice = None
        charge.save(update_fields=["invoice"])


def reconnection_fee_charge(
    *, connection: ServiceConnection, event: ConnectionEvent, created_by: User | None
) -> PendingCharge | None:
    """The provider's reconnection fee, owed by the connection's customer, for its next bill; none
    when the provider charges none."""
    fee: Decimal = connection.provider.reconnection_fee
    if fee <= 0:
        return None
    return PendingCharge.objects.create(
        provider_id=connection.provider_id,
        connection=connection,
        customer_id=connection.customer_id,
        kind=ChargeKind.RECONNECTION_FEE,
        label=ChargeKind.RECONNECTION_FEE.label,
        amount=fee,
        event=event,
        created_by=created_by,
    )
