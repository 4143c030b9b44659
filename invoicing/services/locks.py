"""Every lock the money paths take, in the one order they all take them.

Money moves under one lock per connection. Issuing (which reads the arrears), paying (which settles
the oldest open invoices first) and adjusting all lock the connection's row first, so two of them on
one connection never interleave; invoice rows are then locked in id order, as the overdue job locks
them, so no two writers wait on each other in a cycle. A bank file's rows, paid a hundred at a time,
lock all their connections in one statement in id order, then their invoices. A payment being reversed is locked after its
connection and before the invoices it settled. A connection's pending charges (charges.py) are
locked after it, by the bill that carries them (a billing run's chunk locks those of its id range
after the connections that owe). A customer's credit balance (credits.py) is locked after their
connection and bills (a chunk locks its customers' in id order); a refund locks it alone. Document
counters (numbering.py) come last; a reversal that adds late surcharges takes the adjustment counter
before its own.
"""

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet, Subquery

from billing.models import Customer, ServiceConnection
from invoicing.models import OPEN_STATUSES, CustomerCredit, Invoice, Payment, PaymentAllocation


def lock_connection(connection: ServiceConnection) -> ServiceConnection:
    return (
        ServiceConnection.objects.select_for_update(of=("self",))
        .select_related("provider", "customer", "connection_type")
        .get(pk=connection.pk)
    )


def lock_invoice(invoice: Invoice) -> Invoice:
    """Lock the invoice's connection, then the invoice (the order every money path takes)."""
    lock_connection(invoice.connection)
    return (
        Invoice.objects.select_for_update(of=("self",))
        .select_related("provider", "connection")
        .get(pk=invoice.pk)
    )


# The bill's relations a payment reads: taken from the caller's bill where it was read with them (a
# selector's `select_related`: a payment changes none of these rows), else joined to the lock's statement.
CARRIED = ("provider", "customer", "connection")


def lock_for_payment(
    invoice: Invoice, *, earlier: QuerySet[Payment] | None = None
) -> tuple[Invoice, list[Invoice], int | None]:
    """Lock the connection, then, in one statement in id order (as the overdue job does), the presented
    invoice and the connection's open invoices up to it of the same customer (a customer who moved in
    never settles the one who moved out). Returns the presented invoice (with its provider, customer and
    connection), the open ones oldest first, and the id of the first of `earlier` (a payment this request
    made before) if any.

    Two statements, not one: a statement that waited for the connection reads as of when it began, so
    the invoices and the earlier payment are read by the next one, which sees every money path that
    held the connection before (a first payment of the same key that committed meanwhile)."""
    ServiceConnection.objects.select_for_update().filter(pk=invoice.connection_id).values_list("pk").get()
    carried = [name for name in CARRIED if Invoice._meta.get_field(name).is_cached(invoice)]
    joined = [name for name in CARRIED if name not in carried]
    # The frozen documents are not read here, and are the largest part of the row.
    rows = Invoice.objects.select_for_update(of=("self",)).defer(*Invoice.DOCUMENTS)
    if joined:  # (select_related() of nothing would join every relation)
        rows = rows.select_related(*joined)
    if earlier is not None:
        rows = rows.annotate(earlier_id=Subquery(earlier.order_by("pk").values("pk")[:1]))
    rows = list(
        rows.filter(
            Q(pk=invoice.pk)
            | Q(
                connection_id=invoice.connection_id,
                customer_id=invoice.customer_id,
                period__lte=invoice.period,
                status__in=OPEN_STATUSES,
            )
        ).order_by("id")
    )
    presented = next(row for row in rows if row.pk == invoice.pk)
    for name in carried:
        setattr(presented, name, getattr(invoice, name))
    return presented, settled_by(presented, rows), getattr(presented, "earlier_id", None)


def settled_by(presented: Invoice, rows: list[Invoice]) -> list[Invoice]:
    """What a payment on `presented` settles, oldest first, among locked `rows` of its connection: the
    open ones of its customer up to its period, itself included."""
    return sorted(
        (
            row
            for row in rows
            if row.is_open
            and (
                row.pk == presented.pk
                or (row.customer_id == presented.customer_id and row.period <= presented.period)
            )
        ),
        key=lambda row: (row.period, row.pk),
    )


def lock_for_payments(invoices: list[Invoice]) -> tuple[dict[int, Invoice], dict[int, list[Invoice]]]:
    """Lock for many payments at once (a bank file's rows), as `lock_for_payment` does for one: the
    invoices' connections in id order, then, in the next statement and in id order, the invoices and
    their connections' open ones, read again. Returns each invoice by id (its provider, customer and
    connection carried from `invoices`, read with them) and each connection's locked invoices (for
    `settled_by`)."""
    given = {invoice.pk: invoice for invoice in invoices}
    connection_ids = sorted({invoice.connection_id for invoice in invoices})
    list(
        ServiceConnection.objects.select_for_update()
        .filter(pk__in=connection_ids)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    rows = list(
        Invoice.objects.select_for_update()
        .defer(*Invoice.DOCUMENTS)
        .filter(Q(pk__in=given) | Q(connection_id__in=connection_ids, status__in=OPEN_STATUSES))
        .order_by("id")
    )
    of_connection: dict[int, list[Invoice]] = {}
    presented = {}
    for row in rows:
        of_connection.setdefault(row.connection_id, []).append(row)
        if row.pk in given:
            for name in CARRIED:
                setattr(row, name, getattr(given[row.pk], name))
            presented[row.pk] = row
    return presented, of_connection


def lock_for_reversal(payment: Payment) -> tuple[Payment, list[tuple[Invoice, PaymentAllocation]]]:
    """Lock the payment's connection, then the payment, then the invoices it settled in id order.
    Returns the payment (with its provider, bill and customer) and each invoice with the allocation
    that settled it, oldest bill first. Each is its own statement after the connection's lock, so it
    reads what every money path that held the connection before committed."""
    ServiceConnection.objects.select_for_update().filter(pk=payment.connection_id).values_list("pk").get()
    payment = (
        Payment.objects.select_for_update(of=("self",))
        .select_related("provider", "invoice__customer", "connection")
        .get(pk=payment.pk)
    )
    allocations = {row.invoice_id: row for row in PaymentAllocation.objects.filter(payment=payment)}
    invoices = (
        Invoice.objects.select_for_update()
        .defer(*Invoice.DOCUMENTS)
        .filter(pk__in=allocations)
        .order_by("id")
    )
    settled = sorted(
        ((row, allocations[row.pk]) for row in invoices), key=lambda pair: (pair[0].period, pair[0].pk)
    )
    return payment, settled


def lock_credit(customer: Customer) -> CustomerCredit:
    """Lock a customer's credit balance row, made (at 0) on its first use."""
    credit = CustomerCredit.objects.select_for_update().filter(customer_id=customer.pk).first()
    if credit is not None:
        return credit
    try:
        with transaction.atomic():
            CustomerCredit.objects.create(provider_id=customer.provider_id, customer_id=customer.pk)
    except IntegrityError:  # two first uses at once: the other made it; both lock that row
        pass
    return CustomerCredit.objects.select_for_update().get(customer_id=customer.pk)


def lock_credits(customer_ids: Any) -> list[CustomerCredit]:
    """Lock, in id order, the credit rows with a balance of the customers `customer_ids` (a list or a
    subquery): one statement for a bill, or a billing run's chunk."""
    return list(
        CustomerCredit.objects.select_for_update()
        .filter(customer_id__in=customer_ids, balance__gt=0)
        .order_by("pk")
    )
