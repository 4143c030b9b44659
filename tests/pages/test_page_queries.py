"""List pages cost a fixed number of queries, however many rows they show (no query per row)."""

from datetime import date

import pytest

from accounts.roles import Role
from invoicing import services
from tests.factories import UserFactory, billable_connection

ROWS = 12
MAX_QUERIES = 16


@pytest.fixture
def many_bills(flat_provider, super_creator, cash):
    bills = []
    for _ in range(ROWS):
        bill = services.invoice_issue(
            connection=billable_connection(flat_provider), period=date(2024, 1, 1), created_by=super_creator
        )
        services.payment_post(invoice=bill, amount=bill.balance, method=cash, received_by=super_creator)
        bills.append(bill)
    return bills


@pytest.mark.parametrize(
    ("role", "path"),
    [
        (Role.SUPER_CREATOR, "/dashboard"),
        (Role.SUPER_CREATOR, "/invoices"),
        (Role.SUPER_CREATOR, "/billing-runs"),
        (Role.SUPER_CREATOR, "/customers"),
        (Role.AUDITOR, "/audit/log"),
        (Role.ADMIN, "/manage/users"),
    ],
)
def test_staff_list_pages_do_not_query_per_row(
    signed_in, flat_provider, many_bills, role, path, django_assert_max_num_queries
):
    client = signed_in(UserFactory(provider=flat_provider, roles=[role], designation="Officer"), role)

    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get(path)

    assert response.status_code == 200


def test_the_portal_lists_a_customers_bills_and_payments_without_a_query_per_row(
    signed_in, flat_provider, super_creator, cash, django_assert_max_num_queries
):
    connection = billable_connection(flat_provider, months=ROWS)
    for month in range(1, ROWS + 1):
        bill = services.invoice_issue(
            connection=connection, period=date(2024, month, 1), created_by=super_creator
        )
        services.payment_post(invoice=bill, amount=bill.balance, method=cash, received_by=super_creator)
    client = signed_in(connection.customer.user, Role.CUSTOMER)

    for path in ("/portal/", "/portal/payments"):
        with django_assert_max_num_queries(MAX_QUERIES):
            assert client.get(path).status_code == 200
