"""The billing run and the overdue job on Celery: thin, idempotent, each calling one service.

A run is planned once, then each chunk is its own task, so many workers on many hosts share a run.
A chunk delivered twice (acks_late after a worker died) or re-sent by a resumed run finds itself
done, or held by another worker, and does nothing. So the reconciler may send a stalled run's
chunks again whatever lost them, and the monthly job may come round daily: it starts only the
runs that are missing.
"""

import logging
from datetime import date, timedelta

from celery import Task, shared_task
from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from billing.months import previous_month
from config.queue import send_on_commit
from invoicing import selectors, services
from invoicing.models import BillingRun, PaymentFile
from providers.models import Provider

logger = logging.getLogger(__name__)


def dispatch(run: BillingRun) -> int:
    """Send a task for each chunk of `run` not yet done, once the planning transaction commits.

    A broker that cannot be reached then is logged and the run left to the reconciler, which sends
    its chunks again once the run has been still for the grace period."""
    chunk_ids = selectors.pending_chunks(run)
    send_on_commit(
        lambda: [bill_chunk.delay(chunk_id) for chunk_id in chunk_ids],
        sent=lambda: services.billing_run_dispatched(run_id=run.pk),
        what=f"billing run {run.pk}",
    )
    return len(chunk_ids)


# A lost connection, a deadlock, or a clash with a bill issued by hand for the same connection and
# month (the chunk's transaction rolled back whole): try the chunk again later.
@shared_task(
    bind=True,
    name="invoicing.bill_chunk",
    autoretry_for=(OSError, DatabaseError),
    retry_backoff=True,
    max_retries=5,
)
def bill_chunk(self: Task, chunk_id: int) -> None:
    services.billing_run_chunk_bill(chunk_id=chunk_id, worker=self.request.hostname or "")


@shared_task(name="invoicing.bill_month_just_ended")
def bill_month_just_ended() -> None:
    """Monthly on the 1st, and daily as a catch-up (celery beat): a run of the month just ended for
    every active provider that has none, each started by a task of its own, so one provider's
    failure stops no other (and the next day's catch-up tries it again)."""
    period = previous_month(timezone.localdate())
    for provider_id in selectors.providers_without_run(period=period).values_list("pk", flat=True):
        start_month_run.delay(provider_id, period.isoformat())


@shared_task(
    name="invoicing.start_month_run",
    autoretry_for=(OSError, DatabaseError),
    retry_backoff=True,
    max_retries=5,
)
def start_month_run(provider_id: int, period: str) -> None:
    """A provider's scheduled run of a month (YYYY-MM-DD, fixed when the job was sent), unless it has one."""
    provider = Provider.objects.get(pk=provider_id)
    with transaction.atomic():
        run = services.billing_run_start_once(provider=provider, period=date.fromisoformat(period))
        if run is not None:
            logger.info(
                "billing run %s for %s %s: %s chunks sent", run.pk, provider.code, period, dispatch(run)
            )


@shared_task(name="invoicing.reconcile_billing_runs")
def reconcile_billing_runs() -> None:
    """Every few minutes (celery beat): send again the pending chunks of every unfinished run that has
    been still for the grace period, whatever lost their messages."""
    still_since = timezone.now() - timedelta(seconds=settings.RECONCILE_GRACE_SECONDS)
    for run in selectors.billing_runs_stalled(still_since=still_since):
        logger.warning("billing run %s stalled: %s chunks sent again", run.pk, dispatch(run))


@shared_task(name="invoicing.remind_bills_due_soon")
def remind_bills_due_soon() -> None:
    """Daily (celery beat): each open bill due within its provider's reminder days is reminded, once."""
    for provider in Provider.objects.filter(is_active=True):
        reminded = services.invoices_remind_due_soon(provider=provider)
        logger.info("%s: %s bills reminded", provider.code, reminded)


@shared_task(name="invoicing.mark_overdue")
def mark_overdue() -> None:
    """Daily (celery beat): unpaid bills past their due date become Overdue, surcharged once."""
    for provider in Provider.objects.filter(is_active=True):
        marked = services.invoices_mark_overdue(provider=provider)
        logger.info("%s: %s bills marked overdue", provider.code, marked)


@shared_task(name="invoicing.dunning")
def dunning() -> None:
    """Daily (celery beat), after the overdue job: each active provider's debts move up its dunning
    levels and its payment plans are reviewed, each provider by a task of its own, so one provider's
    failure stops no other (and the next day's run takes up where it stopped: the rules are by date)."""
    for provider_id in Provider.objects.filter(is_active=True).values_list("pk", flat=True):
        dunning_provider.delay(provider_id)


@shared_task(
    name="invoicing.dunning_provider",
    autoretry_for=(OSError, DatabaseError),
    retry_backoff=True,
    max_retries=5,
)
def dunning_provider(provider_id: int) -> None:
    provider = Provider.objects.get(pk=provider_id)
    logger.info("%s: %s dunning steps taken", provider.code, services.dunning_run(provider=provider))


def dispatch_payment_file(payment_file: PaymentFile) -> int:
    """Send a task for each chunk of the file's pending rows, once the upload's transaction commits
    (a broker down then: the reconciler sends them later, as a billing run's)."""
    chunks = services.payment_file_chunks(payment_file)
    file_id = payment_file.pk
    send_on_commit(
        lambda: [post_payment_file_chunk.delay(file_id, first, last) for first, last in chunks],
        sent=lambda: services.payment_file_dispatched(file_id=file_id),
        what=f"payment file {file_id}",
    )
    return len(chunks)


# A lost connection or a deadlock: the rows posted so far are kept with their outcomes, the chunk
# sent again posts the rest.
@shared_task(
    name="invoicing.post_payment_file_chunk",
    autoretry_for=(OSError, DatabaseError),
    retry_backoff=True,
    max_retries=5,
)
def post_payment_file_chunk(file_id: int, first_line: int, last_line: int) -> None:
    services.payment_file_chunk_post(file_id=file_id, first_line=first_line, last_line=last_line)


@shared_task(name="invoicing.reconcile_payment_files")
def reconcile_payment_files() -> None:
    """Every few minutes (celery beat): send again the pending chunks of every unfinished payment file
    nothing has happened to for the grace period (a worker killed, a message lost)."""
    still_since = timezone.now() - timedelta(seconds=settings.RECONCILE_GRACE_SECONDS)
    for payment_file in selectors.payment_files_stalled(still_since=still_since):
        logger.warning(
            "payment file %s stalled: %s chunks sent again",
            payment_file.pk,
            dispatch_payment_file(payment_file),
        )
