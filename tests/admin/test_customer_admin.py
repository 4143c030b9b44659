"""Customers and connections added and changed in Django admin, every save through the services: numbers
from the provider's series, refusals at their field with nothing saved, and what no service changes
there (numbers, a connection's status, type and customer) shown read-only."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.test import Client

from auditing.models import AuditLog
from billing.models import ConnectionStatus, Customer, ServiceConnection
from tests.factories import ConnectionFactory, ConnectionTypeFactory, CustomerFactory

pytestmark = pytest.mark.django_db

CUSTOMERS = "/admin/billing/customer/"
CONNECTIONS = "/admin/billing/serviceconnection/"
CUSTOMER_FORM = {
    "number": "",
    "name": "Sara Khan",
    "national_id": "",
    "email": "sara@example.com",
    "phone": "0301-2345678",
    "address": "",
    "kind": "Residential",
    "organisation": "",
    "preferred_language": "en",
    "notify_bills": "on",
    "notify_reminders": "on",
    "notify_payments": "on",
    # The read-only inline of the customer's connections.
    "connections-TOTAL_FORMS": "0",
    "connections-INITIAL_FORMS": "0",
}


@pytest.fixture(autouse=True)
def today(time_machine):
    time_machine.move_to(datetime(2024, 8, 15, 12, tzinfo=UTC), tick=False)


@pytest.fixture
def residential(flat_provider):
    return ConnectionTypeFactory(provider=flat_provider, code="R1")


@pytest.fixture
def customer(flat_provider):
    return CustomerFactory(provider=flat_provider, user=None, number="LHR-RES-0001", name="Ali Ahmad")


def test_a_customer_added_in_admin_is_numbered_by_the_service(browser: Client, flat_provider, officer):
    response = browser.post(f"{CUSTOMERS}add/", CUSTOMER_FORM)

    customer = Customer.objects.get(name="Sara Khan")
    assert response.status_code == 302
    assert (customer.provider, customer.number) == (flat_provider, f"{flat_provider.code}-C-000001")
    assert AuditLog.objects.get(object_type="billing.customer", object_id=str(customer.pk)).actor == officer


def test_a_refused_change_is_shown_at_its_field_and_nothing_is_saved(browser: Client, customer):
    response = browser.post(
        f"{CUSTOMERS}{customer.pk}/change/", {**CUSTOMER_FORM, "name": "Ali Ahmad", "national_id": "12345"}
    )

    assert response.status_code == 200
    assert "A national id (CNIC) is 13 digits" in str(
        response.context["adminform"].form.errors["national_id"]
    )
    customer.refresh_from_db()
    assert (customer.email, customer.national_id) == ("", "")


def test_a_customers_change_goes_through_the_service_and_its_number_stays(browser: Client, customer):
    response = browser.post(
        f"{CUSTOMERS}{customer.pk}/change/", {**CUSTOMER_FORM, "name": "Ali Ahmad", "number": "CHANGED-1"}
    )

    assert response.status_code == 302
    customer.refresh_from_db()
    assert (customer.number, customer.email, customer.phone) == (
        "LHR-RES-0001",
        "sara@example.com",
        "0301-2345678",
    )
    assert "number" in browser.get(f"{CUSTOMERS}{customer.pk}/change/").context["adminform"].readonly_fields


def test_a_connection_added_in_admin_is_pending_and_a_taken_number_is_refused_at_its_field(
    browser: Client, customer, residential
):
    form = {"customer": customer.pk, "number": "", "connection_type": residential.pk, "meter_number": "M-1",
            "meter_type": "", "division": "Lahore", "subdivision": "", "installation_date": "2024-08-01"}  # fmt: skip

    added = browser.post(f"{CONNECTIONS}add/", form)
    taken = browser.post(
        f"{CONNECTIONS}add/", {**form, "number": f"{customer.provider.code}-SC-000001", "meter_number": ""}
    )

    connection = ServiceConnection.objects.get()
    assert added.status_code == 302
    assert (connection.number, connection.status) == (
        f"{customer.provider.code}-SC-000001",
        ConnectionStatus.PENDING,
    )
    assert taken.status_code == 200
    assert "already exists" in str(taken.context["adminform"].form.errors["number"])


def test_a_declared_income_entered_in_admin_is_recorded_by_the_service(browser: Client, officer, customer):
    connection = ConnectionFactory(customer=customer, meter_number="M-1")
    form = {"meter_number": "M-1", "meter_type": "Smart", "division": "", "subdivision": "", "installation_date": "",
            "declared_monthly_income": "42000", "income_declared_on": "2024-08-10"}  # fmt: skip

    response = browser.post(f"{CONNECTIONS}{connection.pk}/change/", form)

    assert response.status_code == 302
    connection.refresh_from_db()
    assert (connection.meter_type, connection.declared_monthly_income, connection.income_declared_on) == (
        "Smart",
        Decimal("42000.00"),
        date(2024, 8, 10),
    )
    assert connection.income_recorded_by == officer


def test_status_type_and_customer_of_a_connection_are_read_only_in_admin(browser: Client, customer):
    connection = ConnectionFactory(customer=customer)

    readonly = browser.get(f"{CONNECTIONS}{connection.pk}/change/").context["adminform"].readonly_fields

    assert {"status", "connection_type", "customer", "number", "provider"} <= set(readonly)
