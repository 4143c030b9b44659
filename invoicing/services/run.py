"""The monthly billing run: planned in chunks of connection ids, each chunk billed in its own transaction.

A chunk is locked with SKIP LOCKED, so two workers never bill one chunk, and marked done in the same
transaction as its invoices, so a chunk delivered twice, or after a crash, issues nothing twice.
"""

import logging
import time
from datetime import date

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import MessageKind, User
from billing.models import ConnectionStatus, ServiceConnection
from billing.months import first_of, month_end
from billing.periods import calendar_day
from billing.rating import NO_MONEY, RatingError, with_fees
from billing.signals import rows_bulk_created
from config.errors import DomainError
from invoicing.models import (
    BillingRun,
    BillingRunChunk,
    BillingRunProblem,
    BillingRunStatus,
    Invoice,
    InvoiceSource,
    InvoiceStatus,
    ProblemKind,
)
from invoicing.services.charges import charges_billed, charges_pending_in, fee_lines
from invoicing.services.chunks import DEFAULT_CHUNK_SIZE, plan_chunks
from invoicing.services.credit_balance import credits_applied_record, credits_apply, credits_for_new_bills
from invoicing.services.issue import (
    arrears_of,
    build_invoice,
    default_issue_date,
    issue_terms,
    issuing,
    run_connections,
)
from invoicing.services.notices import invoices_notify
from invoicing.services.periods import NotBillable, Schedules, bill_month, month_inputs
from invoicing.services.rebilling import price_order_chunk_rebill
from providers.models import Provider

logger = logging.getLogger(__name__)


@transaction.atomic
def billing_run_start(
    *,
    provider: Provider,
    period: date,
    started_by: User | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> tuple[BillingRun, bool]:
    """Plan a provider's billing of its active connections for a month; returns the run and whether
    it is new. An unfinished run of that month is returned as it is, to be resumed."""
    period = first_of(period)
    today = timezone.localdate()
    if period >= first_of(today):
        raise DomainError(
            gettext("%(period)s has not ended; a month is billed once it is over.")
            % {"period": format(period, "%B %Y")},
            field="period",
        )
    Provider.objects.select_for_update().get(pk=provider.pk)  # one planner per provider at a time
    unfinished = BillingRun.objects.filter(
        provider=provider, period=period, status=BillingRunStatus.RUNNING, price_order=None
    ).first()
    if unfinished:
        return unfinished, False
    run = BillingRun.objects.create(
        provider=provider,
        period=period,
        issue_date=default_issue_date(period, today),
        chunk_size=chunk_size,
        started_by=started_by,
    )
    ids = (
        ServiceConnection.objects.filter(provider=provider, status=ConnectionStatus.ACTIVE)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    chunks = list(plan_chunks(run, ids.iterator(chunk_size=10_000), chunk_size))
    BillingRunChunk.objects.bulk_create(chunks)
    rows_bulk_created.send(sender=BillingRunChunk, rows=chunks)
    run.total = sum(chunk.size for chunk in chunks)
    if not chunks:
        run.status, run.finished_at = BillingRunStatus.COMPLETED, timezone.now()
    run.save(update_fields=["total", "status", "finished_at"])
    return run, True


@transaction.atomic
def billing_run_start_once(*, provider: Provider, period: date) -> BillingRun | None:
    """The scheduled run of a provider's month: started once, however often the schedule comes round
    (the daily catch-up, a task delivered twice); None when the month has a run already, finished
    or not (an unfinished one is the reconciler's to send on)."""
    Provider.objects.select_for_update().get(pk=provider.pk)  # as billing_run_start: one planner
    if BillingRun.objects.filter(provider=provider, period=first_of(period), price_order=None).exists():
        return None
    run, _ = billing_run_start(provider=provider, period=period)
    return run


def billing_run_dispatched(*, run_id: int) -> None:
    """Note that a run's pending chunks were just handed to the broker.

    Bookkeeping for the reconciler, not a change to the run's figures: written without the audit
    trail's model signals, as the chunks' progress counters are."""
    BillingRun.objects.filter(pk=run_id).update(dispatched_at=timezone.now())


@transaction.atomic
def billing_run_chunk_bill(*, chunk_id: int, worker: str = "") -> bool:
    """Bill one chunk's connections; False when it was done already or another worker holds it.
    `worker`: the node billing it (its Celery hostname), kept on the chunk."""
    started = time.monotonic()
    chunk = (
        BillingRunChunk.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("run__provider")
        .filter(pk=chunk_id, done=False)
        .first()
    )
    if chunk is None:
        return False
    if chunk.run.price_order_id is not None:
        price_order_chunk_rebill(chunk=chunk, worker=worker, started=started)
        return True
    run = chunk.run
    provider, period = run.provider, run.period
    in_chunk = ServiceConnection.objects.filter(
        provider=provider, status=ConnectionStatus.ACTIVE, pk__gte=chunk.first_id, pk__lte=chunk.last_id
    )
    connections = run_connections(in_chunk.order_by("pk"))
    ids = in_chunk.values("pk")  # a subquery: no list of a thousand parameters, three times
    billed, later = set(), {}
    for connection_id, billed_period in (
        # By the chunk's id range (an index range scan; other providers' ids in it bill nothing here).
        Invoice.objects.filter(
            connection_id__gte=chunk.first_id, connection_id__lte=chunk.last_id, period__gte=period
        )
        .exclude(status=InvoiceStatus.CANCELLED)
        .values_list("connection_id", "period")
    ):
        if billed_period == period:
            billed.add(connection_id)
        else:
            later[connection_id] = max(billed_period, later.get(connection_id, billed_period))
    id_range = range(chunk.first_id, chunk.last_id + 1)  # other providers' ids in it bill nothing here
    inputs = month_inputs(
        connections=in_chunk,
        ids=id_range,
        period=period,
        estimate=provider.estimate_missing_readings,
        billable=[connection.pk for connection in connections if connection.pk not in billed | later.keys()],
    )
    arrears = arrears_of(connection_ids=ids, period=period)
    if arrears:
        # Only a connection that owes can see what it owes change (a payment, an adjustment) before
        # this chunk commits: lock those, as every money path locks its connection, and read again.
        owing = sorted(arrears)
        list(
            ServiceConnection.objects.select_for_update()
            .filter(pk__in=owing)
            .order_by("pk")
            .values_list("pk")
        )
        arrears = arrears_of(connection_ids=owing, period=period)
    charges = charges_pending_in(chunk.first_id, chunk.last_id)
    # The rows of every day from where the chunk's earliest period starts to the month's end.
    schedules = Schedules(
        provider=provider, first=calendar_day(inputs.since), last=month_end(period.year, period.month)
    )
    terms = issue_terms(
        provider=provider,
        period=period,
        issue_date=run.issue_date,
        due_date=None,
        source=InvoiceSource.RUN,
        created_by=run.started_by,
        billing_run=run,
    )
    built, carried, problems = [], [], []
    for connection in connections:
        if connection.pk in billed:
            continue
        if connection.pk in later:
            problems.append(
                (
                    connection.pk,
                    ProblemKind.SKIPPED,
                    f"Connection {connection.number} is already billed for {later[connection.pk]:%B %Y}.",
                )
            )
            continue
        try:
            usage, bill, billed_period = bill_month(
                connection,
                inputs,
                schedules,
                arrears=arrears.get(connection.pk, NO_MONEY),
                late_percent=terms.late_percent,
            )
            # Only the present customer's charges: an earlier customer's went on their final bill.
            fees = [c for c in charges.get(connection.pk, ()) if c.customer_id == connection.customer_id]
            bill = with_fees(bill, fee_lines(fees), late_surcharge_percent=terms.late_percent)
            built.append(build_invoice(terms, connection, usage, bill, billed_period))
            carried.append(fees)
        except NotBillable as problem:
            problems.append((connection.pk, ProblemKind.SKIPPED, problem.reason))
        except (RatingError, ArithmeticError) as problem:
            problems.append(
                (connection.pk, ProblemKind.FAILED, f"Connection {connection.number}: {problem}"[:500])
            )
    # The chunk's customers' credit balances, locked and applied to their new bills in one query.
    applications = credits_apply(
        [invoice for invoice, _ in built], credits_for_new_bills(in_chunk.values("customer_id"))
    )
    with issuing(terms, built) as invoices:  # what refers to the bills first; their numbers last
        charges_billed(zip(invoices, carried, strict=True))
        credits_applied_record(applications)
        problem_rows = BillingRunProblem.objects.bulk_create(
            BillingRunProblem(run=run, connection_id=pk, kind=kind, reason=reason)
            for pk, kind, reason in problems
        )
        rows_bulk_created.send(sender=BillingRunProblem, rows=problem_rows)
        chunk.done, chunk.finished_at, chunk.seconds = True, timezone.now(), time.monotonic() - started
        chunk.billed_by = worker[:200]
        chunk.save(update_fields=["done", "finished_at", "seconds", "billed_by"])
    # Recorded with the bills, sent by other workers once the chunk commits: the run goes on billing.
    invoices_notify(kind=MessageKind.BILL_ISSUED, invoices=invoices, told_before=False)
    skipped = sum(1 for problem in problems if problem[1] == ProblemKind.SKIPPED)
    # The update locks the run's row until the commit: chunks finish one at a time, so one of them
    # sees every chunk done.
    BillingRun.objects.filter(pk=run.pk).update(
        total=F("total") + len(connections) - chunk.size,
        done=F("done") + len(connections),
        issued=F("issued") + len(invoices),
        already_billed=F("already_billed") + len(billed),
        skipped=F("skipped") + skipped,
        failed=F("failed") + len(problems) - skipped,
        billed_amount=F("billed_amount") + sum((invoice.current_charges for invoice in invoices), NO_MONEY),
    )
    if not run.chunks.filter(done=False).exists():
        BillingRun.objects.filter(pk=run.pk).update(
            status=BillingRunStatus.COMPLETED, finished_at=timezone.now()
        )
    logger.info(
        "billing run %s chunk %s: %s issued, %s problems", run.pk, chunk.index, len(invoices), len(problems)
    )
    return True
