"""The billing side of a connection's life: connecting with the first reading and disconnecting on
request, each a dated, audited step with its reason, refused with the reason when it does not apply."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings

from accounts.roles import Role
from auditing.models import AuditLog
from billing.lifecycle import LifecycleRefused, StatusConflict, connection_connect, connection_disconnect
from billing.models import ConnectionEvent, ConnectionStatus, DisconnectionGround, EventKind, MeterReading
from billing.services import ReadingRefused, reading_record
from invoicing.services import InvoiceRefused, invoice_issue
from tests.factories import ConnectionFactory, CustomerFactory, UserFactory, billable_connection

pytestmark = pytest.mark.django_db
D = Decimal
ZONE = ZoneInfo(settings.TIME_ZONE)
TODAY = datetime(2024, 5, 10, 12, 0, tzinfo=ZONE)
REGISTERS = {"import_peak": D("1500.5"), "import_off_peak": D("3200.25")}


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(TODAY, tick=False):
        yield


@pytest.fixture
def clerk(provider):
    return UserFactory(provider=provider, roles=[Role.INVOICE_CREATOR])


@pytest.fixture
def pending(provider):
    return ConnectionFactory(
        customer=CustomerFactory(provider=provider),
        status=ConnectionStatus.PENDING,
        installation_date=date(2024, 4, 2),
    )


@pytest.fixture
def active(provider):
    """Connected long ago: readings on the 28th of each month, December 2023 to March 2024."""
    return billable_connection(provider, months=3)


def at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=ZONE)


# --- connect -------------------------------------------------------------------------------------


def test_connection_connect_makes_a_pending_connection_active_with_its_first_reading(pending, clerk):
    event = connection_connect(
        connection=pending, taken_at=at(date(2024, 4, 3)), registers=REGISTERS, connected_by=clerk
    )

    pending.refresh_from_db()
    reading = MeterReading.objects.get(connection=pending)
    assert pending.status == ConnectionStatus.ACTIVE
    assert (reading.taken_at, reading.import_peak, reading.import_off_peak, reading.recorded_by) == (
        at(date(2024, 4, 3)),
        D("1500.5"),
        D("3200.25"),
        clerk,
    )
    assert (event.kind, event.effective_at, event.reading, event.customer, event.recorded_by) == (
        EventKind.CONNECTED,
        at(date(2024, 4, 3)),
        reading,
        pending.customer,
        clerk,
    )
    assert event.reason == "Connected with its first reading."


def test_connection_connect_is_in_the_audit_trail(pending, clerk):
    event = connection_connect(
        connection=pending, taken_at=at(date(2024, 4, 3)), registers=REGISTERS, connected_by=clerk
    )

    logged = AuditLog.objects.filter(object_type="billing.connectionevent", object_id=str(event.pk)).get()
    status_change = AuditLog.objects.get(
        object_type="billing.serviceconnection", object_id=str(pending.pk), action="update"
    )
    assert (logged.action, logged.new_values["kind"], logged.new_values["reading_id"]) == (
        "create",
        "connected",
        event.reading_id,
    )
    assert (status_change.old_values, status_change.new_values) == (
        {"status": "Pending"},
        {"status": "Active"},
    )


def test_connection_connect_refuses_an_active_connection(active, clerk):
    with pytest.raises(StatusConflict, match="cannot be connected: it is active already"):
        connection_connect(connection=active, taken_at=TODAY, registers=REGISTERS, connected_by=clerk)

    assert not ConnectionEvent.objects.exists()


@pytest.mark.parametrize(
    ("status", "why"),
    [
        (ConnectionStatus.DISCONNECTED, "it is disconnected: reconnect it first"),
        (ConnectionStatus.CLOSED, "it is closed for good"),
    ],
)
def test_connection_connect_refuses_a_connection_past_pending(provider, clerk, status, why):
    connection = ConnectionFactory(customer=CustomerFactory(provider=provider), status=status)

    with pytest.raises(StatusConflict, match=why):
        connection_connect(connection=connection, taken_at=TODAY, registers=REGISTERS, connected_by=clerk)


def test_connection_connect_refuses_a_time_before_the_installation(pending, clerk):
    with pytest.raises(
        LifecycleRefused, match="installed on 2024-04-02; connect it on that day or later"
    ) as refused:
        connection_connect(
            connection=pending, taken_at=at(date(2024, 4, 1)), registers=REGISTERS, connected_by=clerk
        )

    pending.refresh_from_db()
    assert (refused.value.field, pending.status) == ("takenAt", ConnectionStatus.PENDING)
    assert not MeterReading.objects.exists()


def test_connection_connect_refuses_a_time_in_the_future(pending, clerk):
    with pytest.raises(LifecycleRefused, match="dated in the future"):
        connection_connect(
            connection=pending, taken_at=TODAY + timedelta(hours=1), registers=REGISTERS, connected_by=clerk
        )


def test_connection_connect_refuses_a_time_without_its_zone(pending, clerk):
    with pytest.raises(LifecycleRefused, match="with its time zone"):
        connection_connect(
            connection=pending,
            taken_at=datetime(2024, 4, 3, 10),  # noqa: DTZ001
            registers=REGISTERS,
            connected_by=clerk,
        )


def test_connection_connect_refuses_a_negative_register_and_stays_pending(pending, clerk):
    with pytest.raises(ReadingRefused, match="cannot be negative"):
        connection_connect(
            connection=pending,
            taken_at=at(date(2024, 4, 3)),
            registers={"import_peak": D("-1"), "import_off_peak": D("0")},
            connected_by=clerk,
        )

    pending.refresh_from_db()
    assert pending.status == ConnectionStatus.PENDING
    assert not ConnectionEvent.objects.exists()


def test_a_pending_connection_takes_no_readings_and_is_not_billed(pending, clerk):
    with pytest.raises(
        ReadingRefused, match="not connected yet; its first reading is taken when it is connected"
    ):
        reading_record(connection=pending, taken_at=at(date(2024, 4, 3)), registers=REGISTERS)
    with pytest.raises(InvoiceRefused, match="is pending; it is not billed"):
        invoice_issue(connection=pending, period=date(2024, 4, 1), created_by=clerk)


# --- disconnect on request -----------------------------------------------------------------------


def test_connection_disconnect_on_request_records_the_step_and_its_reading(active, clerk):
    event = connection_disconnect(
        connection=active,
        reason="The customer is away for the summer.",
        effective_at=at(date(2024, 4, 5)),
        registers={"import_peak": D("330"), "import_off_peak": D("650")},
        by=clerk,
    )

    active.refresh_from_db()
    assert active.status == ConnectionStatus.DISCONNECTED
    assert (event.kind, event.ground, event.order_number, event.overdue_balance) == (
        EventKind.DISCONNECTED,
        DisconnectionGround.ON_REQUEST,
        "",
        None,
    )
    assert (event.reading.taken_at, event.reading.import_peak, event.reason) == (
        at(date(2024, 4, 5)),
        D("330"),
        "The customer is away for the summer.",
    )


def test_a_disconnected_connection_takes_no_readings_and_is_not_billed(active, clerk):
    connection_disconnect(connection=active, reason="Requested.", effective_at=at(date(2024, 4, 5)), by=clerk)

    with pytest.raises(ReadingRefused, match="is disconnected; it takes no readings"):
        reading_record(connection=active, taken_at=at(date(2024, 4, 28)), registers=REGISTERS)
    with pytest.raises(InvoiceRefused, match="is disconnected; it is not billed"):
        invoice_issue(connection=active, period=date(2024, 3, 1), created_by=clerk)


def test_connection_disconnect_refuses_a_connection_disconnected_already(active, clerk):
    connection_disconnect(connection=active, reason="Requested.", effective_at=at(date(2024, 4, 5)), by=clerk)

    with pytest.raises(StatusConflict, match="cannot be disconnected: it is disconnected already"):
        connection_disconnect(connection=active, reason="Again.", effective_at=at(date(2024, 4, 6)), by=clerk)

    assert ConnectionEvent.objects.count() == 1


def test_connection_disconnect_refuses_a_moment_before_the_last_reading(active, clerk):
    with pytest.raises(LifecycleRefused, match="has a reading of 2024-03-28 09:00; date this step after"):
        connection_disconnect(
            connection=active, reason="Requested.", effective_at=at(date(2024, 3, 27)), by=clerk
        )

    active.refresh_from_db()
    assert active.status == ConnectionStatus.ACTIVE


def test_connection_disconnect_refuses_a_step_without_a_reason(active, clerk):
    with pytest.raises(LifecycleRefused, match="Give the reason") as refused:
        connection_disconnect(connection=active, reason="  ", effective_at=at(date(2024, 4, 5)), by=clerk)

    assert refused.value.field == "reason"


def test_connection_disconnect_for_non_payment_needs_a_disconnection_order(active, clerk):
    with pytest.raises(LifecycleRefused, match="needs a disconnection order"):
        connection_disconnect(
            connection=active,
            reason="Unpaid.",
            effective_at=at(date(2024, 4, 5)),
            by=clerk,
            ground=DisconnectionGround.NON_PAYMENT,
        )

    active.refresh_from_db()
    assert active.status == ConnectionStatus.ACTIVE


def test_connection_steps_are_recorded_in_time_order(pending, clerk):
    connection_connect(
        connection=pending, taken_at=at(date(2024, 4, 20)), registers=REGISTERS, connected_by=clerk
    )

    with pytest.raises(
        LifecycleRefused,
        match=r"\(connected\) is dated 2024-04-20 10:00; a later step cannot be dated before it",
    ):
        connection_disconnect(
            connection=pending, reason="Requested.", effective_at=at(date(2024, 4, 19)), by=clerk
        )


def test_connection_connect_refuses_a_pending_connection_with_readings_already(provider, clerk):
    imported = billable_connection(provider, months=1, status=ConnectionStatus.PENDING)

    with pytest.raises(LifecycleRefused, match="has readings already: the first reading is taken once"):
        connection_connect(connection=imported, taken_at=TODAY, registers=REGISTERS, connected_by=clerk)


def test_connection_connect_refuses_a_date_no_step_is_taken_on(pending, clerk):
    with pytest.raises(LifecycleRefused, match="0001-01-01 is not a date a step can be taken on"):
        connection_connect(
            connection=pending,
            taken_at=datetime(1, 1, 1, 0, 30, tzinfo=ZONE),
            registers=REGISTERS,
            connected_by=clerk,
        )
