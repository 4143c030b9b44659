"""Re-billing under a retroactive price order (providers/orders.py): the bills it affects, credited and
issued again as a billing run of its own.

A bill is affected when it was rated on a tariff row the order replaces for days from the order's first
day on: an energy line names a row the order closes (or, as a draft, would close; for a connection type
that had no rows of its own, the all-types rows its bills were rated on) and its period reaches that
day (a bill of typed kWh, which has no period: its issue date does). Bills of types rated on rows of
their own never name the all-types rows an order for all types closes.

Confirming the order changes the schedule and plans the run in one transaction; the run is chunked by
connection id as the monthly run is (run.py: SKIP LOCKED, each chunk done in the transaction of its
bills), so the same workers, progress page and reconciler carry it. For each connection, in a savepoint
of its own: every bill from its earliest affected one on is credited in full, newest first (a later
bill continues from the one before and printed its balance as arrears), then issued again, oldest
first, on today's schedule for its own period (typed kWh: the same kWh on the rows of its issue date).
A connection that cannot be re-billed is rolled back alone and recorded as the run's problem. Done
again, a chunk re-bills nothing twice: its bills issued by this run are no longer affected, and the
bills they replaced are cancelled.
"""

import logging
import time
from datetime import datetime
from datetime import time as clock
from decimal import Decimal

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import MessageKind, User
from billing.models import ServiceConnection
from billing.months import first_of
from billing.rating import NO_MONEY, RatingError
from billing.signals import rows_bulk_created
from config.errors import DomainError
from invoicing.models import (
    BillingRun,
    BillingRunChunk,
    BillingRunProblem,
    BillingRunStatus,
    Invoice,
    InvoiceLine,
    InvoiceSource,
    InvoiceStatus,
    ProblemKind,
)
from invoicing.services.chunks import DEFAULT_CHUNK_SIZE, plan_chunks
from invoicing.services.errors import InvoiceRefused
from invoicing.services.issue import credit_in_full, reissue
from invoicing.services.locks import lock_connection, lock_invoice
from invoicing.services.notices import invoices_notify
from providers.models import PriceOrder
from providers.orders import price_order_apply, price_order_replaced_rows

logger = logging.getLogger(__name__)


def price_order_affected_bills(*, order: PriceOrder) -> QuerySet[Invoice]:
    """The issued, not cancelled bills of the order's provider it re-prices (see the module's note),
    except those its own run issued."""
    first_moment = datetime.combine(order.valid_from, clock.min, tzinfo=timezone.get_current_timezone())
    on_replaced_rows = InvoiceLine.objects.filter(
        invoice_id=OuterRef("pk"), kind="energy", row_id__in=price_order_replaced_rows(order).values("pk")
    )
    bills = Invoice.objects.filter(provider_id=order.provider_id)
    if order.connection_type_id is not None:  # its rows may replace all-types rows, for its type alone
        bills = bills.filter(connection__connection_type_id=order.connection_type_id)
    return (
        bills.exclude(status=InvoiceStatus.CANCELLED)
        # A period (start, end] reaches the day when it ends after the day's first moment.
        .filter(Q(period_end__gt=first_moment) | Q(period_end=None, issue_date__gte=order.valid_from))
        .filter(Exists(on_replaced_rows))
        .exclude(billing_run__price_order=order)
    )


@transaction.atomic
def price_order_confirm(
    *, order: PriceOrder, confirmed_by: User, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> BillingRun:
    """Change the prices as the order says, from its past first day, and plan the run re-billing the
    bills it affects, in one transaction; the caller sends the run's chunks (tasks.dispatch)."""
    order = price_order_apply(order=order, confirmed_by=confirmed_by)
    ids = (
        price_order_affected_bills(order=order)
        .order_by("connection_id")
        .values_list("connection_id", flat=True)
        .distinct()
    )
    run = BillingRun.objects.create(
        provider_id=order.provider_id,
        period=first_of(order.valid_from),
        issue_date=timezone.localdate(),
        chunk_size=chunk_size,
        started_by=confirmed_by,
        price_order=order,
    )
    chunks = list(plan_chunks(run, ids, chunk_size))
    BillingRunChunk.objects.bulk_create(chunks)
    rows_bulk_created.send(sender=BillingRunChunk, rows=chunks)
    run.total = sum(chunk.size for chunk in chunks)
    if not chunks:
        run.status, run.finished_at = BillingRunStatus.COMPLETED, timezone.now()
    run.save(update_fields=["total", "status", "finished_at"])
    return run


def _typed_kwh(bill: Invoice) -> dict | None:
    """The kWh a clerk typed for a bill, to issue it again with (None: a bill of readings)."""
    if bill.source != InvoiceSource.KWH:
        return None
    split = bool(bill.peak_units or bill.off_peak_units)  # typed as peak and off-peak kWh
    return {
        "kwh": bill.kwh_consumed,
        "peak": bill.peak_units if split else None,
        "off_peak": bill.off_peak_units if split else None,
    }


def _rebill_connection(
    *, connection_id: int, order: PriceOrder, run: BillingRun, reason: str
) -> tuple[list[Invoice], Decimal]:
    """Credit and issue again the connection's bills from its earliest affected one on; returns the
    new bills and what the credit notes took back."""
    connection = lock_connection(ServiceConnection(pk=connection_id))
    first = (
        price_order_affected_bills(order=order)
        .filter(connection_id=connection.pk)
        .order_by("period")
        .values_list("period", flat=True)
        .first()
    )
    if first is None:  # re-billed meanwhile (by hand, or this chunk done before)
        return [], NO_MONEY
    chain = list(
        Invoice.objects.filter(connection_id=connection.pk, period__gte=first)
        .exclude(status=InvoiceStatus.CANCELLED)
        .order_by("period")
    )
    earlier_customer = next((bill for bill in chain if bill.customer_id != connection.customer_id), None)
    if earlier_customer is not None:
        raise InvoiceRefused(
            _(
                "Bill %(number)s (%(period)s) is of an earlier customer of the connection; correct it by "
                "hand: a credit note on it and a bill to that customer."
            )
            % {"number": earlier_customer.number, "period": format(earlier_customer.period, "%B %Y")}
        )
    locked, charges, credited = [], {}, NO_MONEY
    for bill in reversed(chain):
        bill = lock_invoice(bill)
        charges[bill.pk] = list(bill.charges.select_for_update().order_by("pk"))
        credited += credit_in_full(bill, issued_by=run.started_by, reason=reason)
        locked.append(bill)
    new = [
        reissue(
            bill,
            connection=connection,
            charges=charges[bill.pk],
            created_by=run.started_by,
            manual=_typed_kwh(bill),
            billing_run=run,
        )
        for bill in reversed(locked)
    ]
    return new, credited


def price_order_chunk_rebill(*, chunk: BillingRunChunk, worker: str, started: float) -> None:
    """Re-bill one locked chunk of a price order's run (called by run.billing_run_chunk_bill)."""
    run = chunk.run
    order = PriceOrder.objects.get(pk=run.price_order_id)
    reason = f"Re-billed under price order {order.reference} (new rates from {order.valid_from:%d %b %Y})"
    numbers = dict(
        price_order_affected_bills(order=order)
        .filter(connection_id__gte=chunk.first_id, connection_id__lte=chunk.last_id)
        .order_by("connection_id")
        .values_list("connection_id", "connection__number")
        .distinct()
    )
    issued, problems, credited = [], [], NO_MONEY
    for connection_id, number in numbers.items():
        try:
            with transaction.atomic():  # a connection that fails is rolled back alone
                new, amount = _rebill_connection(
                    connection_id=connection_id, order=order, run=run, reason=reason
                )
        except (DomainError, RatingError, ArithmeticError) as problem:
            detail = getattr(problem, "detail", problem)
            problems.append(
                BillingRunProblem(
                    run=run,
                    connection_id=connection_id,
                    kind=ProblemKind.FAILED,
                    reason=f"Connection {number} was not re-billed: {detail}"[:500],
                )
            )
            continue
        issued += new
        credited += amount
    BillingRunProblem.objects.bulk_create(problems)
    rows_bulk_created.send(sender=BillingRunProblem, rows=problems)
    chunk.done, chunk.finished_at, chunk.seconds = True, timezone.now(), time.monotonic() - started
    chunk.billed_by = worker[:200]
    chunk.save(update_fields=["done", "finished_at", "seconds", "billed_by"])
    invoices_notify(kind=MessageKind.BILL_ISSUED, invoices=issued, told_before=False)
    # As the monthly run's chunk: the update locks the run's row to the commit, so the last chunk to
    # finish sees every chunk done.
    BillingRun.objects.filter(pk=run.pk).update(
        total=F("total") + len(numbers) - chunk.size,
        done=F("done") + len(numbers),
        issued=F("issued") + len(issued),
        failed=F("failed") + len(problems),
        billed_amount=F("billed_amount") + sum((bill.current_charges for bill in issued), NO_MONEY),
        credited_amount=F("credited_amount") + credited,
    )
    if not run.chunks.filter(done=False).exists():
        BillingRun.objects.filter(pk=run.pk).update(
            status=BillingRunStatus.COMPLETED, finished_at=timezone.now()
        )
    logger.info(
        "price order %s run %s chunk %s: %s bills issued again, %s problems",
        order.pk,
        run.pk,
        chunk.index,
        len(issued),
        len(problems),
    )
