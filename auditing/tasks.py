"""An auditor's question on Celery, and the reconciler that sends again the questions whose message
was lost (answering is idempotent: a question answered already is left as it is)."""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from auditing.models import AIQuery
from auditing.partitions import audit_partitions_ahead as make_partitions_ahead
from auditing.selectors import ai_queries_stalled
from auditing.services import ai_query_answer, ai_query_dispatched
from config.queue import send_on_commit

logger = logging.getLogger(__name__)


def dispatch(query: AIQuery) -> None:
    """Hand a question to a worker once its transaction commits; a broker that cannot be reached then
    is logged and the question left to the reconciler."""
    send_on_commit(
        lambda: answer_ai_query.delay(query.pk),
        sent=lambda: ai_query_dispatched(query_id=query.pk),
        what=f"AI question {query.pk}",
    )


@shared_task(name="auditing.answer_ai_query", soft_time_limit=60, time_limit=90)
def answer_ai_query(query_id: int) -> None:
    """Generate, check, scope and run an auditor's question (idempotent: an answered one is left)."""
    ai_query_answer(query_id=query_id)


@shared_task(name="auditing.reconcile_ai_queries")
def reconcile_ai_queries() -> None:
    """Every few minutes (celery beat): send again every question still pending the grace period
    after it was asked or last sent."""
    still_since = timezone.now() - timedelta(seconds=settings.RECONCILE_GRACE_SECONDS)
    for query in ai_queries_stalled(still_since=still_since):
        logger.warning("AI question %s still pending: sent again", query.pk)
        dispatch(query)


@shared_task(name="auditing.audit_partitions_ahead")
def audit_partitions_ahead() -> None:
    """Daily (celery beat): the audit log's partitions of this month and the next three, where missing."""
    made = make_partitions_ahead(today=timezone.now().date())
    if made:
        logger.info("Audit log partitions made: %s", ", ".join(made))
