from celery import shared_task

from auditing.services import ai_query_answer


@shared_task(name="auditing.answer_ai_query", soft_time_limit=60, time_limit=90)
def answer_ai_query(query_id: int) -> None:
    """Generate, check, scope and run an auditor's question (idempotent: an answered one is left)."""
    ai_query_answer(query_id=query_id)
