"""The staff pages of customers and connections: through the same services as the API, refusals shown
at their field with what was typed, scoped to the provider (another provider's is the 404 page), and
each page offered only to the roles that may use it."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.roles import Role
from billing.models import ConnectionStatus, Customer, MeterReading, ServiceConnection
from tests.factories import ConnectionFactory, ConnectionTypeFactory, CustomerFactory, UserFactory

TODAY = datetime(2024, 8, 15, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def today(time_machine):
    time_machine.move_to(TODAY, tick=False)


@pytest.fixture
def residential(provider):
    return ConnectionTypeFactory(provider=provider, code="R1", description="Residential 5 kW")


@pytest.fixture
def clerk(signed_in, provider):
    return signed_in(UserFactory(provider=provider, roles=[Role.INVOICE_CREATOR]), Role.INVOICE_CREATOR)


@pytest.fixture
def officer(signed_in, provider):
    return signed_in(UserFactory(provider=provider, roles=[Role.SUPER_CREATOR]), Role.SUPER_CREATOR)


@pytest.fixture
def customer(provider):
    return CustomerFactory(provider=provider, user=None, number="LHR-RES-0001", name="Ali Ahmad")


@pytest.fixture
def pending(customer, residential):
    return ConnectionFactory(
        customer=customer,
        connection_type=residential,
        number="DISCO-RES-1101",
        status=ConnectionStatus.PENDING,
        installation_date=date(2024, 8, 1),
    )


def test_a_clerk_opens_an_account_and_finds_it_in_the_list(clerk, provider):
    response = clerk.post(
        "/customers/new",
        {"name": "Sara Khan", "phone": "0301-2345678", "kind": "Residential", "preferred_language": "en",
         "notify_bills": "on"},
    )  # fmt: skip

    customer = Customer.objects.get(name="Sara Khan")
    assert response.status_code == 302 and response.url == f"/customers/{customer.pk}"
    assert customer.number == f"{provider.code}-C-000001"
    assert (customer.notify_bills, customer.notify_reminders) == (True, False)  # an unticked box is a "no"
    found = clerk.get("/customers", {"search": "sara"}).content.decode()
    assert f'data-testid="customer-row-{customer.pk}"' in found


def test_a_refused_account_comes_back_as_typed_with_the_reason_at_the_field(clerk, customer):
    response = clerk.post(
        "/customers/new",
        {"number": "LHR-RES-0001", "name": "Someone Else", "national_id": "35202-1234567-1", "kind": "Residential",
         "preferred_language": "en"},
    )  # fmt: skip

    html = response.content.decode()
    assert response.status_code == 400
    assert 'id="id_number_error"' in html and "Customer LHR-RES-0001 already exists" in html
    assert 'value="Someone Else"' in html and 'value="35202-1234567-1"' in html
    assert Customer.objects.count() == 1


def test_a_customers_page_shows_details_and_connections_with_their_status(clerk, customer, pending):
    html = clerk.get(f"/customers/{customer.pk}").content.decode()

    assert "Ali Ahmad" in html and "LHR-RES-0001" in html
    assert f'href="/connections/{pending.pk}"' in html and "status-Pending" in html
    assert f'href="/customers/{customer.pk}/connections/new"' in html  # a clerk adds connections
    assert f'href="/customers/{customer.pk}/edit"' not in html  # but does not change details
    assert "/invoices/mine?customer=LHR-RES-0001" in html  # the bills they issued


def test_a_clerk_adds_a_connection_then_connects_it_with_its_first_reading(clerk, customer, residential):
    added = clerk.post(
        f"/customers/{customer.pk}/connections/new",
        {"connection_type": residential.pk, "meter_number": "M-1001", "installation_date": "2024-08-01"},
    )
    connection = ServiceConnection.objects.get(customer=customer)
    page = clerk.get(f"/connections/{connection.pk}").content.decode()

    connected = clerk.post(
        f"/connections/{connection.pk}/connect",
        {"taken_at": "2024-08-14T10:30", "import_peak": "12.5", "import_off_peak": "40", "export_peak": "0",
         "export_off_peak": ""},
    )  # fmt: skip

    assert added.status_code == 302 and added.url == f"/connections/{connection.pk}"
    assert connection.status == ConnectionStatus.PENDING
    assert f'href="/connections/{connection.pk}/connect"' in page
    assert connected.status_code == 302
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.ACTIVE
    reading = MeterReading.objects.get(connection=connection)
    assert (reading.import_peak, reading.export_off_peak) == (Decimal("12.5"), Decimal("0"))
    assert (
        f'href="/connections/{connection.pk}/connect"'
        not in clerk.get(f"/connections/{connection.pk}").content.decode()
    )


def test_a_refused_first_reading_is_shown_at_its_field_and_the_connection_stays_pending(clerk, pending):
    response = clerk.post(
        f"/connections/{pending.pk}/connect",
        {"taken_at": "2024-07-30T10:00", "import_peak": "1", "import_off_peak": "2"},
    )

    html = response.content.decode()
    assert response.status_code == 400
    assert (
        'id="id_taken_at_error"' in html
        and "is installed on 2024-08-01; connect it on that day or later" in html
    )
    pending.refresh_from_db()
    assert pending.status == ConnectionStatus.PENDING


def test_an_income_is_declared_on_its_page_and_shown_on_the_connection(clerk, pending):
    response = clerk.post(
        f"/connections/{pending.pk}/income", {"monthly_income": "42000", "declared_on": "2024-08-10"}
    )
    future = clerk.post(
        f"/connections/{pending.pk}/income", {"monthly_income": "1", "declared_on": "2024-09-01"}
    )

    assert response.status_code == 302
    shown = clerk.get(f"/connections/{pending.pk}").content.decode()
    assert "42,000.00, declared on 10 Aug 2024" in shown
    assert future.status_code == 400 and 'id="id_declared_on_error"' in future.content.decode()


def test_an_officer_changes_a_customer_and_a_connection(officer, customer, pending):
    customer_saved = officer.post(
        f"/customers/{customer.pk}/edit",
        {"name": "Ali Ahmad", "phone": "0300-7654321", "kind": "Commercial", "organisation": "Ahmad Traders",
         "preferred_language": "ur", "notify_bills": "on", "notify_reminders": "on", "notify_payments": "on"},
    )  # fmt: skip
    connection_saved = officer.post(
        f"/connections/{pending.pk}/edit",
        {"meter_number": "M-9", "division": "Kasur", "installation_date": "2024-08-01"},
    )
    refused = officer.post(
        f"/customers/{customer.pk}/edit",
        {"name": "Ali Ahmad", "phone": "call me", "kind": "Commercial", "preferred_language": "ur"},
    )

    assert (customer_saved.status_code, connection_saved.status_code) == (302, 302)
    customer.refresh_from_db()
    pending.refresh_from_db()
    assert (customer.phone, customer.kind, customer.preferred_language) == (
        "0300-7654321",
        "Commercial",
        "ur",
    )
    assert (pending.meter_number, pending.division) == ("M-9", "Kasur")
    assert refused.status_code == 400 and 'id="id_phone_error"' in refused.content.decode()


def test_a_clerk_may_not_change_details_and_an_auditor_only_reads(
    clerk, signed_in, provider, customer, pending
):
    auditor = signed_in(UserFactory(provider=provider, roles=[Role.AUDITOR]), Role.AUDITOR)

    assert clerk.get(f"/customers/{customer.pk}/edit").status_code == 403
    assert clerk.get(f"/connections/{pending.pk}/edit").status_code == 403
    assert auditor.get(f"/customers/{customer.pk}").status_code == 200
    assert [auditor.get(path).status_code for path in ("/customers/new", f"/connections/{pending.pk}/connect",
            f"/connections/{pending.pk}/income", "/customers/import")] == [403] * 4  # fmt: skip
    navigation = auditor.get("/customers").content.decode()
    assert 'href="/customers"' in navigation and 'href="/customers/new"' not in navigation


def test_another_providers_customer_and_connection_are_the_404_page(officer, other_provider):
    theirs = ConnectionFactory(customer=CustomerFactory(provider=other_provider, user=None))

    paths = [
        f"/customers/{theirs.customer_id}",
        f"/customers/{theirs.customer_id}/edit",
        f"/customers/{theirs.customer_id}/connections/new",
        f"/connections/{theirs.pk}",
        f"/connections/{theirs.pk}/edit",
        f"/connections/{theirs.pk}/income",
        f"/connections/{theirs.pk}/connect",
    ]

    assert [officer.get(path).status_code for path in paths] == [404] * len(paths)
    assert officer.post(f"/connections/{theirs.pk}/edit", {"division": "Mine"}).status_code == 404


def test_a_csv_file_is_imported_on_its_page_with_each_rows_result(clerk, residential):
    csv = "customer_id,name,connection_type\nLHR-RES-0001,Ali Ahmad,R1\nLHR-RES-0002,,R1\n"
    response = clerk.post("/customers/import", {"file": SimpleUploadedFile("c.csv", csv.encode())})

    html = response.content.decode()
    assert response.status_code == 200
    assert "1 customer and 1 connection added" in html
    assert "A new customer needs a name." in html
