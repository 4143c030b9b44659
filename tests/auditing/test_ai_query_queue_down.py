"""Asking a question while the task queue (the Celery broker) is down: refused with a 503 that says
what to do, and nothing stored; or, when the broker falls over between the commit and the send,
accepted and left to the reconciler. Never a 500, never a question no one will answer."""

import logging
from types import SimpleNamespace

import pytest
from kombu.exceptions import OperationalError

from accounts.roles import Role
from auditing import tasks
from auditing.models import AIQuery, AIQueryStatus
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

QUERY = "/api/audit/query"


@pytest.fixture
def auditor(flat_provider):
    return UserFactory(provider=flat_provider, roles=[Role.AUDITOR])


def broker_refuses(*args: object) -> None:
    raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


def test_a_question_is_refused_with_503_and_nothing_stored_while_the_broker_is_down(
    as_role, auditor, broker_down
):
    response = as_role(auditor, Role.AUDITOR).post(QUERY, {"question": "Revenue by month"}, format="json")

    assert response.status_code == 503
    assert response["Retry-After"] == "60"
    assert response.json()["code"] == "queue_unavailable"
    assert response.json()["detail"].startswith("Answering a question needs the background workers")
    assert not AIQuery.objects.exists()


def test_a_question_that_cannot_be_sent_after_it_is_saved_is_accepted_and_left_to_the_reconciler(
    as_role, auditor, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    monkeypatch.setattr(tasks, "answer_ai_query", SimpleNamespace(delay=broker_refuses))

    with django_capture_on_commit_callbacks(execute=True), caplog.at_level(logging.WARNING):
        response = as_role(auditor, Role.AUDITOR).post(QUERY, {"question": "Revenue by month"}, format="json")

    query = AIQuery.objects.get()
    assert response.status_code == 202
    assert (response.json()["queryId"], response.json()["status"]) == (query.pk, AIQueryStatus.PENDING)
    assert query.dispatched_at is None  # the reconciler sends it (test_ai_query_reconciler)
    assert f"AI question {query.pk} not sent, the task queue is unreachable" in caplog.text
