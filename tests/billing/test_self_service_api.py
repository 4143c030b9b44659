"""A customer's own account through the API (/api/me/...): their contact details, language and e-mail
choices (audited), every connection of theirs billed or not, and readings of their meters (self-reads),
refused with the reason when the meter could not show them. Nobody else's account is reachable."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from accounts.roles import Role
from auditing.models import AuditLog
from billing.models import Customer, MeterReading, ReadingSource
from tests.factories import ConnectionFactory, CustomerFactory, ReadingFactory, UserFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2024, 3, 5, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen(time_machine):
    time_machine.move_to(NOW, tick=False)  # readings may not be dated in the future: today is fixed


@pytest.fixture
def customer(provider):
    return CustomerFactory(provider=provider, phone="0300 1234567", address="House 1, Street 2")


@pytest.fixture
def me(as_role, customer):
    return as_role(customer.user, Role.CUSTOMER)


@pytest.fixture
def read_connection(customer):
    """A connection of the customer read at the end of February: peak 100, off-peak 400."""
    connection = ConnectionFactory(customer=customer, provider=customer.provider, number="C-READ")
    ReadingFactory(
        connection=connection,
        taken_at=datetime(2024, 2, 29, 9, tzinfo=UTC),
        import_peak=Decimal("100"),
        import_off_peak=Decimal("400"),
    )
    return connection


def test_a_customer_reads_their_details_and_choices(me, customer):
    body = me.get("/api/me/profile").json()

    assert body == {
        "customerId": customer.number,
        "name": customer.name,
        "loginEmail": customer.user.email,
        "email": customer.email,
        "phone": "0300 1234567",
        "address": "House 1, Street 2",
        "preferredLanguage": "en",
        "notifyBills": True,
        "notifyReminders": True,
        "notifyPayments": True,
    }


def test_a_customer_changes_their_contact_details_language_and_choices_audited(me, customer):
    response = me.patch(
        "/api/me/profile",
        {
            "email": "New.Address@Example.com",
            "phone": "0321 7654321",
            "preferredLanguage": "ur",
            "notifyReminders": False,
        },
        format="json",
    )

    customer.refresh_from_db()
    entry = AuditLog.objects.filter(object_type="billing.customer", action="update").get()
    assert response.status_code == 200
    assert (customer.email, customer.phone, customer.preferred_language) == (
        "new.address@example.com",
        "0321 7654321",
        "ur",
    )
    assert (customer.notify_bills, customer.notify_reminders, customer.notify_payments) == (True, False, True)
    assert customer.user.email != customer.email  # the login keeps its own address
    assert sorted(entry.new_values) == ["email", "notify_reminders", "phone", "preferred_language"]
    assert entry.new_values["email"].startswith("hmac:")  # a personal detail: recorded as a digest
    assert entry.actor_id == customer.user_id


def test_a_customer_may_stop_all_emails_by_clearing_the_address(me, customer):
    response = me.patch("/api/me/profile", {"email": ""}, format="json")

    assert response.status_code == 200
    assert Customer.objects.get(pk=customer.pk).email == ""


def test_an_invalid_change_is_refused_next_to_its_field(me, customer):
    response = me.patch(
        "/api/me/profile", {"email": "not an address", "preferredLanguage": "fr"}, format="json"
    )

    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"email", "preferredLanguage"}
    assert Customer.objects.get(pk=customer.pk).email == customer.email


def test_the_customer_sees_every_connection_of_theirs_billed_or_not_and_no_one_elses(
    me, customer, read_connection, provider
):
    unread = ConnectionFactory(customer=customer, provider=provider, number="C-NEW")
    ConnectionFactory(customer=CustomerFactory(provider=provider), provider=provider, number="C-NEIGHBOUR")

    body = me.get("/api/me/connections").json()

    assert [row["connectionId"] for row in body] == ["C-NEW", "C-READ"]
    assert body[0]["lastReading"] is None
    assert body[1]["lastReading"]["importOffPeak"] == "400.0000"
    assert body[0]["id"] == unread.pk


def test_a_customer_sends_in_a_reading_of_their_meter(me, customer, read_connection):
    response = me.post(
        f"/api/me/connections/{read_connection.pk}/readings",
        {"takenAt": "2024-03-04T10:30:00+05:00", "importPeak": "130.5", "importOffPeak": "460"},
        format="json",
    )

    reading = MeterReading.objects.get(pk=response.json()["id"])
    assert response.status_code == 201
    assert (reading.source, reading.recorded_by, reading.import_peak, reading.export_peak) == (
        ReadingSource.SELF,
        customer.user,
        Decimal("130.5"),
        Decimal("0"),
    )
    assert response.json()["source"] == "self"


def test_a_reading_the_meter_could_not_show_is_refused_with_the_reason(me, read_connection):
    lower = me.post(
        f"/api/me/connections/{read_connection.pk}/readings",
        {"takenAt": "2024-03-04T10:30:00+05:00", "importPeak": "120", "importOffPeak": "390"},
        format="json",
    )
    future = me.post(
        f"/api/me/connections/{read_connection.pk}/readings",
        {"takenAt": "2024-03-09T10:30:00+05:00", "importPeak": "120", "importOffPeak": "420"},
        format="json",
    )

    assert (lower.status_code, lower.json()["code"]) == (400, "reading_refused")
    assert lower.json()["fields"]["import_off_peak"][0].startswith(
        "The import off peak register (390) is lower than the reading of 2024-02-29"
    )
    assert (future.status_code, list(future.json()["fields"])) == (400, ["takenAt"])
    assert MeterReading.objects.filter(connection=read_connection).count() == 1


def test_another_customers_connection_is_not_found(me, provider):
    neighbour = ConnectionFactory(customer=CustomerFactory(provider=provider), provider=provider)

    listed = me.get(f"/api/me/connections/{neighbour.pk}/readings")
    sent = me.post(
        f"/api/me/connections/{neighbour.pk}/readings",
        {"takenAt": "2024-03-04T10:30:00+05:00", "importPeak": "1", "importOffPeak": "1"},
        format="json",
    )

    assert (listed.status_code, sent.status_code) == (404, 404)
    assert not MeterReading.objects.exists()


@pytest.mark.parametrize("role", [Role.ADMIN, Role.SUPER_CREATOR, Role.INVOICE_CREATOR, Role.AUDITOR])
def test_staff_have_no_account_of_their_own_here(as_role, provider, role, read_connection):
    staff = as_role(UserFactory(provider=provider, roles=[role]), role)

    answers = [
        staff.get("/api/me/profile").status_code,
        staff.get("/api/me/connections").status_code,
        staff.post(
            f"/api/me/connections/{read_connection.pk}/readings",
            {"takenAt": "2024-03-04T10:30:00+05:00", "importPeak": "120", "importOffPeak": "420"},
            format="json",
        ).status_code,
    ]

    assert answers == [403, 403, 403]


def test_a_customer_is_not_let_into_the_staffs_connection_list(me, read_connection):
    assert me.get("/api/connections").status_code == 403
