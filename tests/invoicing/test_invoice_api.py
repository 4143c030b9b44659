"""The second seed's invoice endpoints: who may do what, provider isolation, the error shape."""

from datetime import date
from decimal import Decimal

import pytest

from accounts.roles import Role
from invoicing import services
from invoicing.models import Invoice
from tests.factories import FlatTariffFactory, UserFactory, billable_connection

pytestmark = pytest.mark.django_db


@pytest.fixture
def foreign_invoice(other_provider):
    FlatTariffFactory(provider=other_provider)
    connection = billable_connection(other_provider)
    clerk = UserFactory(provider=other_provider, roles=[Role.INVOICE_CREATOR])
    return services.invoice_issue(connection=connection, period=date(2024, 1, 1), created_by=clerk)


def issue(connection, creator, month=1):
    return services.invoice_issue(connection=connection, period=date(2024, month, 1), created_by=creator)


def test_creator_issues_an_invoice_for_kwh_at_the_price_in_force(as_role, creator, connection):
    response = as_role(creator, Role.INVOICE_CREATOR).post(
        "/api/invoices",
        {"connectionId": connection.pk, "month": "2024-05", "kwhConsumed": "120"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["invoiceNumber"] == f"{connection.provider.code}-2024-000001"
    assert body["totalAmount"] == "3900.00"  # 120 kWh x 32.50
    assert body["billingMonth"] == "2024-05"
    assert body["issueDate"] == "2024-05-31"
    assert body["dueDate"] == "2024-06-10"
    assert body["paymentStatus"] == "Pending"
    assert body["createdBy"]["userId"] == creator.pk
    assert [line["amount"] for line in body["lines"]] == ["3900.00"]


def test_creator_issues_an_invoice_from_the_months_readings(as_role, creator, connection):
    response = as_role(creator, Role.INVOICE_CREATOR).post(
        "/api/invoices", {"customerId": connection.customer.user_id, "month": "2024-02"}, format="json"
    )

    assert response.status_code == 201, response.json()
    assert response.json()["kwhConsumed"] == "300.0000"
    assert response.json()["totalAmount"] == "9750.00"


def test_a_second_invoice_for_the_same_month_is_a_conflict(as_role, creator, connection):
    issue(connection, creator)

    response = as_role(creator, Role.INVOICE_CREATOR).post(
        "/api/invoices", {"connectionId": connection.pk, "month": "2024-01"}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["code"] == "invoice_exists"
    assert Invoice.objects.count() == 1


def test_a_month_without_readings_is_refused_with_the_reason(as_role, flat_provider, creator, connection):
    flat_provider.estimate_missing_readings = False  # else the month is estimated (test_estimated_bills.py)
    flat_provider.save()

    response = as_role(creator, Role.INVOICE_CREATOR).post(
        "/api/invoices", {"connectionId": connection.pk, "month": "2024-09"}, format="json"
    )

    assert response.status_code == 400
    assert "September 2024" in response.json()["detail"]
    assert Invoice.objects.count() == 0


def test_bad_input_names_the_field(as_role, creator, connection):
    response = as_role(creator, Role.INVOICE_CREATOR).post(
        "/api/invoices", {"connectionId": connection.pk, "month": "July", "kwhConsumed": "-3"}, format="json"
    )

    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"month", "kwhConsumed"}


def test_another_providers_connection_cannot_be_billed(as_role, creator, foreign_invoice):
    response = as_role(creator, Role.INVOICE_CREATOR).post(
        "/api/invoices", {"connectionId": foreign_invoice.connection_id, "kwhConsumed": "10"}, format="json"
    )

    assert response.status_code == 404


@pytest.mark.parametrize("role", [Role.CUSTOMER, Role.AUDITOR])
def test_customers_and_auditors_cannot_issue_invoices(as_role, flat_provider, connection, role):
    user = UserFactory(provider=flat_provider, roles=[role])

    response = as_role(user, role).post("/api/invoices", {"connectionId": connection.pk}, format="json")

    assert response.status_code == 403


def test_a_creator_changes_only_the_invoices_they_created(as_role, creator, flat_provider, connection):
    own = issue(connection, creator, month=1)
    colleague = UserFactory(provider=flat_provider, roles=[Role.INVOICE_CREATOR])
    theirs = issue(connection, colleague, month=2)
    api = as_role(creator, Role.INVOICE_CREATOR)

    changed = api.put(f"/api/invoices/{own.pk}", {"dueDate": "2024-03-01"}, format="json")
    refused = api.put(f"/api/invoices/{theirs.pk}", {"dueDate": "2024-03-01"}, format="json")

    assert changed.status_code == 200
    assert changed.json()["dueDate"] == "2024-03-01"
    assert refused.status_code == 404
    theirs.refresh_from_db()
    assert theirs.due_date == date(2024, 3, 10)


def test_a_super_creator_changes_any_invoice_of_the_provider(as_role, creator, super_creator, connection):
    invoice = issue(connection, creator)

    response = as_role(super_creator, Role.SUPER_CREATOR).put(
        f"/api/invoices/{invoice.pk}", {"paymentStatus": "Cancelled"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["paymentStatus"] == "Cancelled"
    assert response.json()["balance"] == "0.00"


def test_marking_paid_through_put_points_to_the_payment_endpoint(as_role, creator, connection):
    invoice = issue(connection, creator)

    response = as_role(creator, Role.INVOICE_CREATOR).put(
        f"/api/invoices/{invoice.pk}", {"paymentStatus": "Paid"}, format="json"
    )

    assert response.status_code == 400
    assert "/api/payments" in response.json()["fields"]["paymentStatus"][0]


def test_rerating_a_part_paid_invoice_credits_it_and_carries_the_payment_to_the_new_bill(
    as_role, creator, super_creator, connection, cash
):
    invoice = issue(connection, creator)
    services.payment_post(invoice=invoice, amount=Decimal("100"), method=cash, received_by=super_creator)

    response = as_role(creator, Role.INVOICE_CREATOR).put(
        f"/api/invoices/{invoice.pk}", {"kwhConsumed": "10", "reason": "Meter misread"}, format="json"
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["totalAmount"], body["creditApplied"], body["balance"]) == ("325.00", "100.00", "225.00")
    assert body["replaces"] == {"billId": invoice.pk, "invoiceNumber": invoice.number}
    invoice.refresh_from_db()
    note = invoice.credit_notes.get()
    assert (invoice.current_charges, invoice.status, invoice.balance) == (
        Decimal("9750.00"),
        "Cancelled",
        Decimal("0.00"),
    )
    assert (note.amount, note.applied, note.to_balance, note.reason) == (
        Decimal("9750.00"),
        Decimal("9650.00"),
        Decimal("100.00"),
        "Meter misread",
    )


def test_rerating_with_new_kwh_replaces_the_amounts(as_role, creator, connection):
    invoice = issue(connection, creator)

    response = as_role(creator, Role.INVOICE_CREATOR).put(
        f"/api/invoices/{invoice.pk}", {"kwhConsumed": "10"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["totalAmount"] == "325.00"
    assert response.json()["invoiceNumber"] != invoice.number
    assert response.json()["replaces"]["invoiceNumber"] == invoice.number


def test_get_invoice_shows_lines_payments_and_what_is_payable(
    as_role, creator, super_creator, connection, cash
):
    first, second = issue(connection, creator, 1), issue(connection, creator, 2)
    services.payment_post(invoice=first, amount=Decimal("750"), method=cash, received_by=super_creator)

    body = as_role(super_creator, Role.SUPER_CREATOR).get(f"/api/invoices/{second.pk}").json()

    assert body["arrears"] == "9750.00"
    assert body["payableBeforeDue"] == "19500.00"
    assert body["amountPayable"] == "18750.00"
    assert body["lines"][0]["kind"] == "energy"
    assert body["customer"]["customerId"] == connection.customer.number


def test_an_invoice_of_another_provider_is_not_found(as_role, super_creator, foreign_invoice):
    api = as_role(super_creator, Role.SUPER_CREATOR)

    assert api.get(f"/api/invoices/{foreign_invoice.pk}").status_code == 404
    assert (
        api.put(f"/api/invoices/{foreign_invoice.pk}", {"dueDate": "2030-01-01"}, format="json").status_code
        == 404
    )


def test_a_customer_sees_only_their_own_bills(as_role, creator, flat_provider, connection):
    invoice = issue(connection, creator)
    neighbour = billable_connection(flat_provider)
    other = issue(neighbour, creator)
    customer_api = as_role(connection.customer.user, Role.CUSTOMER)

    listed = customer_api.get("/api/invoices/my-invoices").json()

    assert [row["invoiceNumber"] for row in listed["results"]] == [invoice.number]
    assert customer_api.get(f"/api/invoices/{invoice.pk}").status_code == 200
    assert customer_api.get(f"/api/invoices/{other.pk}").status_code == 404


def test_my_created_lists_the_callers_invoices(as_role, creator, flat_provider, connection):
    mine = issue(connection, creator, 1)
    issue(connection, UserFactory(provider=flat_provider, roles=[Role.INVOICE_CREATOR]), 2)

    body = as_role(creator, Role.INVOICE_CREATOR).get("/api/invoices/my-created").json()

    assert [row["invoiceNumber"] for row in body["results"]] == [mine.number]


def test_provider_list_is_for_provider_wide_roles(
    as_role, creator, super_creator, connection, foreign_invoice
):
    issue(connection, creator, 1)
    issue(connection, creator, 2)

    listed = as_role(super_creator, Role.SUPER_CREATOR).get("/api/invoices/provider").json()
    refused = as_role(creator, Role.INVOICE_CREATOR).get("/api/invoices/provider")

    assert listed["count"] == 2
    assert foreign_invoice.number not in [row["invoiceNumber"] for row in listed["results"]]
    assert refused.status_code == 403


def test_provider_list_filters_by_status_month_connection_and_overdue(
    as_role, creator, super_creator, flat_provider, connection
):
    january, february = issue(connection, creator, 1), issue(connection, creator, 2)
    issue(billable_connection(flat_provider), creator, 1)
    services.invoices_mark_overdue(provider=flat_provider, today=date(2024, 2, 15))
    api = as_role(super_creator, Role.SUPER_CREATOR)

    def numbers(query: str) -> list[str]:
        return sorted(
            row["invoiceNumber"] for row in api.get(f"/api/invoices/provider?{query}").json()["results"]
        )

    assert numbers("month=2024-02") == [february.number]
    assert numbers(f"connection={connection.number}&status=Overdue") == [january.number]
    assert numbers(f"connection={connection.number}&overdue=true") == sorted(
        [january.number, february.number]
    )
    assert numbers(f"connection={connection.number}&overdue=false") == []
    assert numbers(f"customer={connection.customer.number}") == sorted([january.number, february.number])
    assert api.get("/api/invoices/provider?month=13-2024").status_code == 400
    assert api.get("/api/invoices/provider?status=Lost").status_code == 400


def test_provider_list_is_paginated(as_role, creator, super_creator, flat_provider):
    for _ in range(3):
        issue(billable_connection(flat_provider), creator)

    body = as_role(super_creator, Role.SUPER_CREATOR).get("/api/invoices/provider?pageSize=2").json()

    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert body["next"]


def test_invoice_pdf_is_a_pdf(as_role, creator, connection):
    invoice = issue(connection, creator)

    response = as_role(creator, Role.INVOICE_CREATOR).get(f"/api/invoices/{invoice.pk}/pdf")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
