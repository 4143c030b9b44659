"""A real Celery worker on Redis answers an auditor's question end to end against PostgreSQL: the
offline assistant writes the SQL, it is checked, scoped to the auditor's provider and run as the
restricted reader role."""

from datetime import date

import pytest

from accounts.roles import Role
from auditing.models import AIQuery, AuditLog
from invoicing import services
from tests.factories import FlatTariffFactory, ProviderFactory, UserFactory, billable_connection
from tests.realstack.conftest import wait_until

pytestmark = pytest.mark.realstack


def test_a_real_worker_answers_a_question_with_the_auditors_rows_only(celery_worker, as_role):
    ours, theirs = ProviderFactory(), ProviderFactory()
    numbers = {}
    for provider in (ours, theirs):
        FlatTariffFactory(provider=provider)
        clerk = UserFactory(provider=provider, roles=[Role.INVOICE_CREATOR])
        invoice = services.invoice_issue(
            connection=billable_connection(provider), period=date(2024, 1, 1), created_by=clerk
        )
        numbers[provider.pk] = invoice.number
    auditor = UserFactory(provider=ours, roles=[Role.AUDITOR])

    response = as_role(auditor, Role.AUDITOR).post(
        "/api/audit/query", {"question": "Count of invoices by status"}, format="json"
    )

    assert response.status_code == 202
    query_id = response.json()["queryId"]
    wait_until(
        lambda: AIQuery.objects.get(pk=query_id).status != "pending",
        seconds=60,
        message="the worker did not answer the question",
    )
    answer = as_role(auditor, Role.AUDITOR).get(f"/api/audit/query/{query_id}").json()
    assert answer["status"] == "answered", answer["reason"]
    assert [row[:2] for row in answer["rows"]] == [["Pending", 1]]  # one bill: ours, not theirs
    assert "ai_views." in answer["executedSql"]
    assert AuditLog.objects.filter(action="ai_query", object_id=str(query_id), provider=ours).exists()
