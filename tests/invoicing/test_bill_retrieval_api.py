"""The first seed's bill retrieval: customer id, connection id, month, year -> the bill and the
previous 10 bills, in a constant number of queries however long the history."""

import json
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from rest_framework.renderers import JSONRenderer

from accounts.roles import Role
from invoicing import services
from invoicing.api import BillOutput
from invoicing.selectors import bill_get_for
from tests.factories import UserFactory, billable_connection

pytestmark = pytest.mark.django_db


def bill_url(connection, year: int, month: int) -> str:
    return (
        f"/api/bills?customerId={connection.customer.number}&connectionId={connection.number}"
        f"&year={year}&month={month}"
    )


def bill_months(connection, creator, months: int) -> list:
    return [
        services.invoice_issue(
            connection=connection, period=date(2024 + m // 12, m % 12 + 1, 1), created_by=creator
        )
        for m in range(months)
    ]


def test_bill_retrieval_returns_the_bill_with_lines_arrears_and_history(
    as_role, creator, super_creator, flat_provider, cash
):
    connection = billable_connection(flat_provider, months=3)
    january, february = bill_months(connection, creator, 2)
    services.payment_post(invoice=january, amount=Decimal("9750.00"), method=cash, received_by=super_creator)
    march = services.invoice_issue(connection=connection, period=date(2024, 3, 1), created_by=creator)

    response = as_role(super_creator, Role.SUPER_CREATOR).get(bill_url(connection, 2024, 3))

    assert response.status_code == 200
    body = response.json()
    assert body["invoiceNumber"] == march.number
    assert body["customer"]["name"] == connection.customer.name
    assert body["connection"]["connectionId"] == connection.number
    assert body["usage"]["kwhConsumed"] == "300.0000"
    assert [line["label"] for line in body["lines"]] == ["Energy (all hours, slab 1)"]
    assert body["arrears"] == "9750.00"  # February, unpaid when March was issued
    assert body["payableBeforeDue"] == "19500.00"
    assert body["payableAfterDue"] == "20475.00"  # + 10% of this month's 9750.00
    assert [(row["invoiceNumber"], row["paymentStatus"]) for row in body["previousBills"]] == [
        (february.number, "Pending"),
        (january.number, "Paid"),
    ]


def test_bill_retrieval_lists_at_most_the_previous_ten_bills(as_role, creator, super_creator, flat_provider):
    connection = billable_connection(flat_provider, months=13)
    bill_months(connection, creator, 13)

    body = as_role(super_creator, Role.SUPER_CREATOR).get(bill_url(connection, 2025, 1)).json()

    assert len(body["previousBills"]) == 10
    assert body["previousBills"][0]["billingMonth"] == "2024-12"
    assert body["previousBills"][-1]["billingMonth"] == "2024-03"


def count_queries(api, url: str) -> int:
    with CaptureQueriesContext(db) as queries:
        assert api.get(url).status_code == 200
    return len(queries)


def test_bill_retrieval_takes_the_same_queries_for_a_short_and_a_long_history(
    as_role, creator, super_creator, flat_provider
):
    short = billable_connection(flat_provider, months=2)
    long = billable_connection(flat_provider, months=13)
    bill_months(short, creator, 2)
    bill_months(long, creator, 13)
    api = as_role(super_creator, Role.SUPER_CREATOR)

    assert count_queries(api, bill_url(short, 2024, 2)) == count_queries(api, bill_url(long, 2025, 1)) == 2


def test_a_customer_retrieves_their_own_bill_but_not_a_neighbours(as_role, creator, flat_provider):
    mine, neighbours = billable_connection(flat_provider), billable_connection(flat_provider)
    bill_months(mine, creator, 1)
    bill_months(neighbours, creator, 1)
    api = as_role(mine.customer.user, Role.CUSTOMER)

    assert api.get(bill_url(mine, 2024, 1)).status_code == 200
    assert api.get(bill_url(neighbours, 2024, 1)).status_code == 404


def test_bill_retrieval_of_another_provider_is_not_found(as_role, creator, flat_provider, other_provider):
    connection = billable_connection(flat_provider)
    bill_months(connection, creator, 1)
    outsider = UserFactory(provider=other_provider, roles=[Role.AUDITOR])

    response = as_role(outsider, Role.AUDITOR).get(bill_url(connection, 2024, 1))

    assert response.status_code == 404


def test_bill_retrieval_checks_its_query(as_role, super_creator):
    response = as_role(super_creator, Role.SUPER_CREATOR).get("/api/bills?customerId=X&month=13&year=24")

    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"connectionId", "month", "year"}


@pytest.fixture
def eventful(creator, super_creator, flat_provider, cash):
    """Four months of one connection: January paid, February cancelled and issued again, a part
    payment in March (settling part of February's bill, the oldest open one), April pending."""
    connection = billable_connection(flat_provider, months=4)
    january, february = bill_months(connection, creator, 2)
    services.payment_post(invoice=january, amount=Decimal("9750.00"), method=cash, received_by=super_creator)
    services.invoice_update(invoice=february, updated_by=super_creator, cancel=True)
    services.invoice_issue(connection=connection, period=date(2024, 2, 1), created_by=creator)
    march = services.invoice_issue(connection=connection, period=date(2024, 3, 1), created_by=creator)
    services.payment_post(invoice=march, amount=Decimal("100.00"), method=cash, received_by=super_creator)
    services.invoice_issue(connection=connection, period=date(2024, 4, 1), created_by=creator)
    return connection


def as_serialized(user, role: str, invoice_id: int) -> dict:
    """What `BillOutput` renders for the bill, read through the models: the answer before it was
    built in SQL."""
    user.active_role = role
    return json.loads(JSONRenderer().render(BillOutput(bill_get_for(user=user, invoice_id=invoice_id)).data))


@pytest.mark.parametrize(
    "role", [Role.SUPER_CREATOR, Role.AUDITOR, Role.ADMIN, Role.INVOICE_CREATOR, Role.CUSTOMER]
)
@pytest.mark.parametrize("month", [1, 2, 3, 4])
def test_bill_retrieval_answers_as_the_bill_serializer_renders_the_bill(
    as_role, eventful, creator, flat_provider, role, month
):
    user = {
        Role.INVOICE_CREATOR: creator,
        Role.CUSTOMER: eventful.customer.user,
    }.get(role) or UserFactory(provider=flat_provider, roles=[role])

    answer = as_role(user, role).get(bill_url(eventful, 2024, month)).json()

    assert answer == as_serialized(user, role, answer["billId"])


def test_bill_retrieval_answers_with_the_bill_in_force_of_a_month_issued_again(
    as_role, eventful, super_creator
):
    answer = as_role(super_creator, Role.SUPER_CREATOR).get(bill_url(eventful, 2024, 2)).json()

    assert answer["paymentStatus"] == "Partially_Paid"
    assert [bill["paymentStatus"] for bill in answer["previousBills"]] == ["Paid"]


def test_bill_retrieval_history_keeps_a_cancelled_bill(as_role, eventful, super_creator):
    answer = as_role(super_creator, Role.SUPER_CREATOR).get(bill_url(eventful, 2024, 4)).json()

    assert [(bill["billingMonth"], bill["paymentStatus"]) for bill in answer["previousBills"]] == [
        ("2024-03", "Pending"),
        ("2024-02", "Partially_Paid"),
        ("2024-02", "Cancelled"),
        ("2024-01", "Paid"),
    ]


def test_bill_retrieval_is_two_queries_with_the_token_check(
    as_role, eventful, super_creator, django_assert_num_queries
):
    api = as_role(super_creator, Role.SUPER_CREATOR)

    with django_assert_num_queries(2):
        assert api.get(bill_url(eventful, 2024, 4)).status_code == 200


def test_an_invoice_creator_retrieves_their_own_bills_but_not_a_colleagues(as_role, creator, flat_provider):
    mine, colleagues = billable_connection(flat_provider), billable_connection(flat_provider)
    bill_months(mine, creator, 1)
    bill_months(colleagues, UserFactory(provider=flat_provider, roles=[Role.INVOICE_CREATOR]), 1)
    api = as_role(creator, Role.INVOICE_CREATOR)

    assert api.get(bill_url(mine, 2024, 1)).status_code == 200
    assert api.get(bill_url(colleagues, 2024, 1)).status_code == 404


def test_a_platform_administrator_retrieves_a_bill_of_any_provider(as_role, eventful):
    platform = UserFactory(provider=None, roles=[Role.ADMIN])

    assert as_role(platform, Role.ADMIN).get(bill_url(eventful, 2024, 3)).json()["billingMonth"] == "2024-03"
