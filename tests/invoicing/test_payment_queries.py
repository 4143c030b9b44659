"""How many statements a payment takes: the service and POST /api/payments.

PostgreSQL (tests/realstack.py): the service in 9, the endpoint in 12 (its sign-in check, the bill and the
payment method, then the service). SQLite's audit trail takes one more (its head is updated apart).
Inside a test's transaction the service's own transaction is a savepoint, two statements more, where
outside one it is a BEGIN and a COMMIT (which Django does not count).
"""

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection as database

from accounts.models import Message
from accounts.roles import Role
from invoicing.models import PaymentMethod
from invoicing.services import invoice_issue, payment_post
from tests.factories import UserFactory, billable_connection

pytestmark = pytest.mark.django_db
AUDIT_EXTRA = 0 if database.vendor == "postgresql" else 1
SAVEPOINT = 2
SERVICE = 9 + AUDIT_EXTRA
API = 3 + SERVICE


@pytest.fixture
def bills(flat_provider):
    """Two bills of a customer who wants receipts by e-mail (so the e-mail is counted too)."""
    connection = billable_connection(flat_provider, months=2)
    creator = UserFactory(provider=flat_provider, roles=[Role.INVOICE_CREATOR])
    assert connection.customer.email and connection.customer.notify_payments
    return [
        invoice_issue(connection=connection, period=date(2024, month, 1), created_by=creator)
        for month in (1, 2)
    ]


@pytest.fixture
def cash(db):
    return PaymentMethod.objects.get_or_create(
        code="bank-counter", defaults={"name": "Paid at Bank Counter"}
    )[0]


def test_payment_post_settling_two_bills_takes_nine_statements(
    bills, cash, super_creator, django_assert_num_queries
):
    with django_assert_num_queries(SERVICE + SAVEPOINT):
        payment, _ = payment_post(
            invoice=bills[1],
            amount=Decimal("12000.00"),
            method=cash,
            received_by=super_creator,
            idempotency_key="q-1",
        )

    assert payment.allocations.count() == 2
    assert Message.objects.filter(about_type="invoicing.payment", about_id=payment.pk).count() == 1


@pytest.mark.parametrize("role", [Role.SUPER_CREATOR, Role.INVOICE_CREATOR])
def test_the_payment_endpoint_takes_twelve_statements(
    bills, cash, super_creator, as_role, role, django_assert_num_queries
):
    user = super_creator if role == Role.SUPER_CREATOR else bills[1].created_by
    api = as_role(user, role)

    with django_assert_num_queries(API + SAVEPOINT):
        response = api.post(
            "/api/payments",
            {"billId": bills[1].pk, "amount": "12000.00", "method": "bank-counter"},
            format="json",
            HTTP_IDEMPOTENCY_KEY="q-2",
        )

    assert response.status_code == 201, response.json()
    assert [row["amount"] for row in response.json()["settled"]] == ["9750.00", "2250.00"]
