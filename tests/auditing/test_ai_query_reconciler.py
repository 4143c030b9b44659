"""The reconciler sends again every question still pending the grace period after it was asked or
last sent, whatever lost its message, and leaves alone a question sent moments ago or answered."""

from datetime import datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django_celery_beat.models import PeriodicTask

from accounts.roles import Role
from auditing import tasks
from auditing.models import AIQuery, AIQueryStatus
from auditing.services import ai_query_dispatched, ai_query_submit
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ASKED = datetime(2024, 2, 3, 9, 0, tzinfo=ZoneInfo(settings.TIME_ZONE))
GRACE = timedelta(seconds=settings.RECONCILE_GRACE_SECONDS)
SECOND = timedelta(seconds=1)


@pytest.fixture
def auditor(flat_provider):
    return UserFactory(provider=flat_provider, roles=[Role.AUDITOR])


@pytest.fixture
def sent(monkeypatch) -> list[int]:
    """The question ids sent to the broker, in order (none is answered)."""
    query_ids: list[int] = []
    monkeypatch.setattr(tasks, "answer_ai_query", SimpleNamespace(delay=query_ids.append))
    return query_ids


def asked(auditor, question: str, *, at: datetime) -> AIQuery:
    with time_machine.travel(at, tick=False):
        return ai_query_submit(asked_by=auditor, question=question)


def reconcile_at(moment: datetime, capture) -> None:
    with time_machine.travel(moment, tick=False), capture(execute=True):
        tasks.reconcile_ai_queries.delay()


def test_the_reconciler_sends_again_a_question_pending_for_the_grace_period(
    auditor, sent, django_capture_on_commit_callbacks
):
    lost = asked(auditor, "Revenue by month", at=ASKED)  # its message never reached a worker

    reconcile_at(ASKED + GRACE + SECOND, django_capture_on_commit_callbacks)

    lost.refresh_from_db()
    assert sent == [lost.pk]
    assert lost.dispatched_at == ASKED + GRACE + SECOND


def test_the_reconciler_leaves_questions_asked_or_sent_moments_ago_and_answered_ones(
    auditor, sent, django_capture_on_commit_callbacks
):
    asked(auditor, "Revenue by month", at=ASKED + GRACE)
    queued = asked(auditor, "Payments by method", at=ASKED)
    with time_machine.travel(ASKED + GRACE, tick=False):
        ai_query_dispatched(query_id=queued.pk)
    answered = asked(auditor, "Cancelled invoices", at=ASKED)
    AIQuery.objects.filter(pk=answered.pk).update(status=AIQueryStatus.ANSWERED)

    reconcile_at(ASKED + GRACE + GRACE - SECOND, django_capture_on_commit_callbacks)

    assert sent == []


def test_a_question_sent_again_by_the_reconciler_is_answered(auditor, django_capture_on_commit_callbacks):
    lost = asked(auditor, "SELECT count(*) AS bills FROM invoices", at=ASKED)

    reconcile_at(ASKED + GRACE + SECOND, django_capture_on_commit_callbacks)  # the (eager) worker answers

    lost.refresh_from_db()
    assert lost.status == AIQueryStatus.ANSWERED, lost.reason
    assert lost.rows == [[0]]


def test_beat_runs_the_question_reconciler_every_few_minutes():
    reconciler = PeriodicTask.objects.get(task="auditing.reconcile_ai_queries")

    assert (reconciler.interval.every, reconciler.interval.period) == (
        settings.RECONCILE_EVERY_SECONDS,
        "seconds",
    )
