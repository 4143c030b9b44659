"""Connections through their services: created Pending and numbered, details changed (never status,
type or customer), a declared income recorded with its date and recorder, and connected with the first
reading; each refusal with its reason, nothing half-written, every write audited."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from accounts.roles import Role
from auditing.models import AuditLog
from billing.models import ConnectionStatus, ServiceConnection
from billing.services import (
    ConnectionClosed,
    MeterInUse,
    NumberTaken,
    connection_create,
    connection_income_declare,
    connection_update,
)
from config.errors import DomainError
from tests.factories import (
    ConnectionFactory,
    ConnectionTypeFactory,
    CustomerFactory,
    ReadingFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
D = Decimal
TODAY = datetime(2024, 8, 15, 12, 0, tzinfo=UTC)
REGISTERS = {
    "import_peak": D("12.5"),
    "import_off_peak": D("40"),
    "export_peak": D("0"),
    "export_off_peak": D("0"),
}


@pytest.fixture(autouse=True)
def today(time_machine):
    time_machine.move_to(TODAY, tick=False)


@pytest.fixture
def customer(provider):
    return CustomerFactory(provider=provider, user=None)


@pytest.fixture
def residential(provider):
    return ConnectionTypeFactory(provider=provider, code="R1")


@pytest.fixture
def clerk(provider):
    return UserFactory(provider=provider, roles=[Role.INVOICE_CREATOR])


def test_a_new_connection_is_pending_and_numbered_from_the_providers_series(provider, customer, residential):
    first = connection_create(
        customer=customer,
        connection_type=residential,
        meter_number=" M-1001 ",
        meter_type="Single phase",
        division="Lahore",
        subdivision="DHA",
        installation_date=date(2024, 8, 1),
    )
    second = connection_create(customer=customer, connection_type=residential)

    first.refresh_from_db()
    assert (first.number, second.number) == (f"{provider.code}-SC-000001", f"{provider.code}-SC-000002")
    assert (first.status, first.provider, first.meter_number, first.division) == (
        ConnectionStatus.PENDING,
        provider,
        "M-1001",
        "Lahore",
    )


def test_a_given_number_is_kept_and_a_taken_one_is_a_conflict(customer, residential):
    connection_create(customer=customer, connection_type=residential, number="DISCO-RES-1101")

    with pytest.raises(NumberTaken, match="Connection DISCO-RES-1101 already exists") as refused:
        connection_create(customer=customer, connection_type=residential, number="DISCO-RES-1101")

    assert (refused.value.status, refused.value.field) == (409, "connectionId")
    assert ServiceConnection.objects.count() == 1


def test_another_providers_connection_type_is_refused(customer, other_provider):
    theirs = ConnectionTypeFactory(provider=other_provider)

    with pytest.raises(DomainError, match="That connection type belongs to another provider") as refused:
        connection_create(customer=customer, connection_type=theirs)

    assert refused.value.field == "connectionType"
    assert not ServiceConnection.objects.exists()


def test_a_meter_serves_one_connection_at_a_time(provider, customer, residential):
    ConnectionFactory(customer=customer, number="OLD-1", meter_number="M-7", status=ConnectionStatus.CLOSED)
    live = connection_create(customer=customer, connection_type=residential, meter_number="M-7")

    with pytest.raises(MeterInUse, match=f"Meter M-7 is on connection {live.number} already") as refused:
        connection_create(customer=customer, connection_type=residential, meter_number="M-7")

    assert (refused.value.status, refused.value.field) == (409, "meterNumber")


@pytest.mark.parametrize("status", [ConnectionStatus.DISCONNECTED, ConnectionStatus.CLOSED])
def test_a_connection_is_not_created_disconnected_or_closed(customer, residential, status):
    with pytest.raises(DomainError, match=f"A new connection is Pending .* not {status}"):
        connection_create(customer=customer, connection_type=residential, status=status)


def test_the_details_of_a_connection_change_through_the_service(customer):
    connection = ConnectionFactory(customer=customer, meter_number="M-1", division="Lahore")

    connection_update(connection=connection, meter_number="M-2", meter_type="Three phase", division="Kasur")

    connection.refresh_from_db()
    assert (connection.meter_number, connection.meter_type, connection.division) == (
        "M-2",
        "Three phase",
        "Kasur",
    )


@pytest.mark.parametrize("field", ["status", "connection_type", "customer", "number"])
def test_status_type_customer_and_number_are_not_changed_here(customer, field):
    with pytest.raises(ValueError, match="cannot change"):
        connection_update(connection=ConnectionFactory(customer=customer), **{field: None})


def test_a_meter_with_readings_is_not_renumbered_but_exchanged(customer):
    connection = ConnectionFactory(customer=customer, meter_number="M-1")
    ReadingFactory(connection=connection, taken_at=datetime(2024, 7, 1, tzinfo=UTC))

    with pytest.raises(DomainError, match="a new meter is fitted by a meter exchange") as refused:
        connection_update(connection=connection, meter_number="M-2", meter_type="Smart")

    assert refused.value.field == "meterNumber"
    connection.refresh_from_db()
    assert (connection.meter_number, connection.meter_type) == ("M-1", "")


def test_a_connection_is_not_installed_after_its_first_reading(customer):
    connection = ConnectionFactory(customer=customer)
    ReadingFactory(connection=connection, taken_at=datetime(2024, 7, 1, 9, tzinfo=UTC))

    with pytest.raises(DomainError, match="was taken on 2024-07-01: it was installed by then"):
        connection_update(connection=connection, installation_date=date(2024, 7, 2))


def test_a_closed_connection_keeps_its_record(customer, clerk):
    connection = ConnectionFactory(customer=customer, status=ConnectionStatus.CLOSED)

    with pytest.raises(ConnectionClosed, match="is closed; its record stays as it was"):
        connection_update(connection=connection, division="Kasur")
    with pytest.raises(ConnectionClosed):
        connection_income_declare(
            connection=connection, monthly_income=D("1000"), declared_on=date(2024, 8, 1), recorded_by=clerk
        )


def test_a_declared_income_is_recorded_with_its_date_and_recorder(customer, clerk):
    connection = ConnectionFactory(customer=customer)

    connection_income_declare(
        connection=connection, monthly_income=D("45000.50"), declared_on=date(2024, 8, 10), recorded_by=clerk
    )

    connection.refresh_from_db()
    assert (
        connection.declared_monthly_income,
        connection.income_declared_on,
        connection.income_recorded_by,
    ) == (
        D("45000.50"),
        date(2024, 8, 10),
        clerk,
    )
    entry = AuditLog.objects.get(
        object_type="billing.serviceconnection", object_id=str(connection.pk), action="update"
    )
    assert set(entry.new_values) == {"declared_monthly_income", "income_declared_on", "income_recorded_by_id"}


@pytest.mark.parametrize(
    ("income", "declared_on", "field", "reason"),
    [
        (D("-1"), date(2024, 8, 1), "monthlyIncome", "A monthly income is an amount from 0 up"),
        (D("NaN"), date(2024, 8, 1), "monthlyIncome", "A monthly income is an amount from 0 up"),
        (D("100.005"), date(2024, 8, 1), "monthlyIncome", "to the cent at most"),
        (D("100"), date(2024, 8, 16), "declaredOn", r"dated in the future \(2024-08-16\)"),
        (D("100"), date(2024, 5, 31), "declaredOn", "A later declaration, of 2024-06-01, is on record"),
    ],
)
def test_a_declaration_that_cannot_be_right_is_refused(customer, clerk, income, declared_on, field, reason):
    connection = ConnectionFactory(
        customer=customer, declared_monthly_income=D("30000"), income_declared_on=date(2024, 6, 1)
    )

    with pytest.raises(DomainError, match=reason) as refused:
        connection_income_declare(
            connection=connection, monthly_income=income, declared_on=declared_on, recorded_by=clerk
        )

    assert refused.value.field == field
    connection.refresh_from_db()
    assert (connection.declared_monthly_income, connection.income_declared_on) == (
        D("30000"),
        date(2024, 6, 1),
    )
