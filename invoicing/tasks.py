"""The billing run and the overdue job on Celery: thin, idempotent, each calling one service.

A run is planned once, then each chunk is its own task, so many workers on many hosts share a run.
A chunk delivered twice (acks_late after a worker died) or re-sent by a resumed run finds itself
done, or held by another worker, and does nothing.
"""

import logging

from celery import shared_task
from django.db import DatabaseError, transaction
from django.utils import timezone

from billing.months import previous_month
from invoicing import selectors, services
from invoicing.models import BillingRun
from providers.models import Provider

logger = logging.getLogger(__name__)


def dispatch(run: BillingRun) -> int:
    """Send a task for each chunk of `run` not yet done, once the planning transaction commits."""
    chunk_ids = selectors.pending_chunks(run)
    transaction.on_commit(lambda: [bill_chunk.delay(chunk_id) for chunk_id in chunk_ids])
    return len(chunk_ids)


# A lost connection, a deadlock, or a clash with a bill issued by hand for the same connection and
# month (the chunk's transaction rolled back whole): try the chunk again later.
@shared_task(
    name="invoicing.bill_chunk", autoretry_for=(OSError, DatabaseError), retry_backoff=True, max_retries=5
)
def bill_chunk(chunk_id: int) -> None:
    services.billing_run_chunk_bill(chunk_id=chunk_id)


@shared_task(name="invoicing.bill_month_just_ended")
def bill_month_just_ended() -> None:
    """Monthly (celery beat): every active provider's connections for the month that just ended."""
    period = previous_month(timezone.localdate())
    for provider in Provider.objects.filter(is_active=True):
        with transaction.atomic():
            run, _ = services.billing_run_start(provider=provider, period=period)
            logger.info(
                "billing run %s for %s %s: %s chunks sent", run.pk, provider.code, period, dispatch(run)
            )


@shared_task(name="invoicing.mark_overdue")
def mark_overdue() -> None:
    """Daily (celery beat): unpaid bills past their due date become Overdue, surcharged once."""
    for provider in Provider.objects.filter(is_active=True):
        marked = services.invoices_mark_overdue(provider=provider)
        logger.info("%s: %s bills marked overdue", provider.code, marked)
