"""POST /api/audit/query end to end (offline assistant, the checks, the scoping, the executor)."""

from datetime import date
from decimal import Decimal

import pytest

from accounts.roles import Role
from auditing.models import AIQuery, AuditLog
from invoicing import services
from invoicing.models import Invoice
from tests.factories import FlatTariffFactory, UserFactory, billable_connection

pytestmark = pytest.mark.django_db(transaction=True)  # the executor reads committed rows, as a worker does

QUESTIONS = [
    "Show me all unpaid invoices from last month",
    "List customers with overdue payments",
    "How many invoices were created by each employee?",
    "Revenue by month",
    "Adjustments per officer",
    "Payments by method",
    "Count of invoices by status",
    "Top 10 consumers by kWh",
    "Average bill by connection type",
    "Cancelled invoices",
    "What is the median bill each month?",
    "How many bills were issued each day last month?",
    "What are our provider's settings?",
]


@pytest.fixture
def two_providers(flat_provider, creator, other_provider):
    """The auditor's provider with two bills, another provider with one (which must never come back)."""
    ours = [
        services.invoice_issue(
            connection=billable_connection(flat_provider), period=date(2024, 1, 1), created_by=creator
        )
        for _ in range(2)
    ]
    FlatTariffFactory(provider=other_provider)
    clerk = UserFactory(provider=other_provider, roles=[Role.INVOICE_CREATOR])
    theirs = services.invoice_issue(
        connection=billable_connection(other_provider, peak=777), period=date(2024, 1, 1), created_by=clerk
    )
    return ours, theirs


@pytest.fixture
def auditor(flat_provider):
    return UserFactory(provider=flat_provider, roles=[Role.AUDITOR])


def ask(api, question: str, wait: int = 10):
    return api.post("/api/audit/query", {"question": question, "wait": wait}, format="json")


def test_a_question_is_answered_with_the_auditors_provider_rows_only(as_role, auditor, two_providers):
    ours, theirs = two_providers

    response = ask(
        as_role(auditor, Role.AUDITOR), "SELECT number, current_charges FROM invoices ORDER BY number"
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "answered"
    assert [row[0] for row in body["rows"]] == sorted(invoice.number for invoice in ours)
    assert theirs.number not in str(body)
    assert f"= {auditor.provider_id}" in body["executedSql"]


@pytest.mark.parametrize("question", QUESTIONS)
def test_common_auditor_questions_are_answered(as_role, auditor, two_providers, question):
    _, theirs = two_providers

    body = ask(as_role(auditor, Role.AUDITOR), question).json()

    assert body["status"] == "answered", body["reason"]
    assert theirs.number not in str(body["rows"])


def test_a_refused_query_says_why_and_changes_nothing(as_role, auditor, two_providers):
    body = ask(as_role(auditor, Role.AUDITOR), "SELECT * FROM invoices; DELETE FROM invoices").json()

    assert body["status"] == "refused"
    assert body["reason"]
    assert body["rows"] == []
    assert Invoice.objects.count() == 3


def test_every_query_is_in_the_audit_trail(as_role, auditor, two_providers):
    query_id = ask(as_role(auditor, Role.AUDITOR), "Count of invoices by status").json()["queryId"]

    row = AuditLog.objects.get(action="ai_query", object_id=str(query_id))
    assert (row.actor, row.actor_role, row.provider_id) == (auditor, "Auditor", auditor.provider_id)
    assert row.new_values["verdict"] == "answered"
    assert row.new_values["generatedSql"] and row.new_values["executedSql"]
    assert row.new_values["rowsReturned"] >= 1


def test_the_answer_is_fetched_by_id_by_its_asker_only(as_role, auditor, flat_provider, two_providers):
    query_id = ask(as_role(auditor, Role.AUDITOR), "Revenue by month", wait=0).json()["queryId"]
    colleague = UserFactory(provider=flat_provider, roles=[Role.AUDITOR])

    assert as_role(auditor, Role.AUDITOR).get(f"/api/audit/query/{query_id}").json()["status"] == "answered"
    assert as_role(colleague, Role.AUDITOR).get(f"/api/audit/query/{query_id}").status_code == 404


@pytest.mark.parametrize("role", [Role.SUPER_CREATOR, Role.CUSTOMER, Role.ADMIN])
def test_only_auditors_ask(as_role, flat_provider, role):
    user = UserFactory(provider=flat_provider, roles=[role])

    assert ask(as_role(user, role), "Revenue by month").status_code == 403
    assert AIQuery.objects.count() == 0


def test_an_empty_or_huge_question_is_refused(as_role, auditor):
    api = as_role(auditor, Role.AUDITOR)

    assert ask(api, "   ").status_code == 400
    assert ask(api, "x" * 5000).status_code == 400
    assert (
        api.post("/api/audit/query", {"question": "Revenue", "wait": 999}, format="json").status_code == 400
    )


def test_money_in_answers_is_exact(as_role, auditor, two_providers):
    body = ask(as_role(auditor, Role.AUDITOR), "SELECT SUM(current_charges) AS billed FROM invoices").json()

    assert Decimal(body["rows"][0][0]) == Decimal("19500.00")
