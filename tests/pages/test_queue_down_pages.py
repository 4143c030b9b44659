"""The pages that start work for the background workers, while their task queue (the Celery broker)
is down: a 503 with Retry-After that says what to do, the form as it was sent, nothing stored."""

import pytest

from accounts.roles import Role
from auditing.models import AIQuery
from invoicing.models import BillingRun
from tests.factories import UserFactory, billable_connection

pytestmark = pytest.mark.django_db


def test_the_billing_run_page_says_to_try_again_and_stores_nothing_while_the_broker_is_down(
    signed_in, super_creator, flat_provider, broker_down
):
    billable_connection(flat_provider)

    response = signed_in(super_creator, Role.SUPER_CREATOR).post("/billing-runs", {"month": "2024-01"})

    assert response.status_code == 503
    assert response["Retry-After"] == "60"
    assert "task queue cannot be reached just now" in response.content.decode()
    assert not BillingRun.objects.exists()


def test_the_question_page_says_to_try_again_and_keeps_the_question_while_the_broker_is_down(
    signed_in, flat_provider, broker_down
):
    auditor = UserFactory(provider=flat_provider, roles=[Role.AUDITOR])

    response = signed_in(auditor, Role.AUDITOR).post("/audit/questions", {"question": "Revenue by month"})

    html = response.content.decode()
    assert response.status_code == 503
    assert response["Retry-After"] == "60"
    assert "task queue cannot be reached just now" in html and "Revenue by month" in html
    assert not AIQuery.objects.exists()
