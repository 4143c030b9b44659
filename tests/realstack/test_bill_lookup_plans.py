"""The bill retrieval's lookups on PostgreSQL, with enough rows that a scan would show: each is an
index scan, never a sequential scan of the invoices, their lines, the customers or the connections,
whoever asks (a provider's staff, a platform administrator, an invoice creator, the customer)."""

from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from guardian.shortcuts import assign_perm

from accounts.roles import Role
from billing.models import Customer
from invoicing.models import Invoice
from invoicing.selectors import HISTORY_LENGTH, amount_payable, bill_answer_for
from invoicing.services.issue import arrears_of
from tests.bill_rows import load_bills
from tests.factories import ConnectionTypeFactory, ProviderFactory, UserFactory

pytestmark = [pytest.mark.realstack, pytest.mark.django_db]

BIG_TABLES = {"invoicing_invoice", "invoicing_invoiceline", "billing_customer", "billing_serviceconnection"}
CUSTOMERS, MONTHS = 5_000, 12
CUSTOMER, CONNECTION = "PLN-CUS-0001234", "PLN-CON-0001234"


@pytest.fixture
def provider():
    provider = ProviderFactory(code="PLN")
    load_bills(
        provider_id=provider.pk,
        connection_type_id=ConnectionTypeFactory(provider=provider).pk,
        prefix="PLN",
        customers=CUSTOMERS,
        months=MONTHS,
        first_period=date(2024, 1, 1),
    )
    return provider


def plan_nodes(sql: str, params: list | None = None) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        nodes, found = [cursor.fetchone()[0][0]["Plan"]], []
    while nodes:
        node = nodes.pop()
        found.append(node)
        nodes.extend(node.get("Plans", []))
    return found


def sequential_scans(nodes: list[dict]) -> set[str]:
    return {node["Relation Name"] for node in nodes if node["Node Type"] == "Seq Scan"} & BIG_TABLES


def indexes_used(nodes: list[dict]) -> set[str]:
    return {node["Index Name"] for node in nodes if "Index Name" in node}


def retrieval_plan(user, role: str) -> list[dict]:
    """The plan of the one statement `GET /api/bills` runs for `user` acting in `role`."""
    user.active_role = role
    with CaptureQueriesContext(connection) as queries:
        answer = bill_answer_for(
            user=user, customer_number=CUSTOMER, connection_number=CONNECTION, year=2024, month=12
        )
    assert answer["invoiceNumber"] == "PLN-11-1234"
    assert len(answer["previousBills"]) == HISTORY_LENGTH
    return plan_nodes(queries[-1]["sql"])


def test_bill_retrieval_by_a_providers_staff_uses_indexes_only(provider):
    nodes = retrieval_plan(UserFactory(provider=provider, roles=[Role.AUDITOR]), Role.AUDITOR)

    assert sequential_scans(nodes) == set()
    assert "invoice_connection_history" in indexes_used(nodes)


def test_the_previous_bills_are_read_walking_the_index_back_from_the_month(provider):
    """Only the ten previous bills' rows are read, however many months the connection has: the
    (connection, customer, period, id) index is walked backwards from the bill, not read whole and sorted."""
    nodes = retrieval_plan(UserFactory(provider=provider, roles=[Role.AUDITOR]), Role.AUDITOR)

    walks = [
        node
        for node in nodes
        if node.get("Index Name") == "invoice_connection_history" and node.get("Scan Direction") == "Backward"
    ]
    assert [node["Node Type"] for node in walks] == ["Index Scan"]


def test_bill_retrieval_by_a_platform_administrator_uses_indexes_only(provider):
    nodes = retrieval_plan(UserFactory(provider=None, roles=[Role.ADMIN]), Role.ADMIN)

    assert sequential_scans(nodes) == set()


def test_bill_retrieval_by_the_customer_uses_indexes_only(provider):
    customer = Customer.objects.get(number=CUSTOMER)
    customer.user = UserFactory(provider=provider, roles=[Role.CUSTOMER])
    customer.save(update_fields=["user"])

    assert sequential_scans(retrieval_plan(customer.user, Role.CUSTOMER)) == set()


def test_bill_retrieval_by_an_invoice_creator_uses_indexes_only(provider):
    creator = UserFactory(provider=provider, roles=[Role.INVOICE_CREATOR])
    for invoice in Invoice.objects.filter(connection__number=CONNECTION):
        assign_perm("invoicing.view_invoice", creator, invoice)

    assert sequential_scans(retrieval_plan(creator, Role.INVOICE_CREATOR)) == set()


def test_a_customer_by_number_alone_is_an_index_scan(provider):
    sql, params = Customer.objects.filter(number=CUSTOMER).query.sql_with_params()

    nodes = plan_nodes(sql, list(params))

    assert sequential_scans(nodes) == set()
    assert "customer_number" in indexes_used(nodes)


def test_a_connections_bills_of_a_month_cancelled_ones_included_are_an_index_scan(provider):
    invoices = Invoice.objects.filter(connection__number=CONNECTION, period=date(2024, 6, 1))
    sql, params = invoices.values("pk", "status").query.sql_with_params()

    nodes = plan_nodes(sql, list(params))

    assert sequential_scans(nodes) == set()
    assert indexes_used(nodes) & {"invoice_connection_period", "invoice_connection_history"}


def test_the_previous_bills_of_a_connection_are_an_index_scan(provider):
    bill = Invoice.objects.get(number="PLN-11-1234")
    earlier = Invoice.objects.filter(
        connection_id=bill.connection_id, customer_id=bill.customer_id, period__lt=bill.period
    ).order_by("-period", "-pk")[:HISTORY_LENGTH]
    sql, params = earlier.query.sql_with_params()

    nodes = plan_nodes(sql, list(params))

    assert sequential_scans(nodes) == set()
    assert "invoice_connection_history" in indexes_used(nodes)


def test_what_a_connection_still_owes_is_read_from_its_open_bills_alone(provider):
    """Arrears on the next bill and the amount a payment settles read only the open bills, on their own
    index, however many months were paid before."""
    bill = Invoice.objects.get(number="PLN-11-1234")
    for read in (
        lambda: arrears_of(connection_ids=[bill.connection_id], period=date(2025, 1, 1)),
        lambda: amount_payable(bill),
    ):
        with CaptureQueriesContext(connection) as queries:
            read()
        nodes = plan_nodes(queries[-1]["sql"])

        assert sequential_scans(nodes) == set()
        assert "invoice_open_by_connection" in indexes_used(nodes)
