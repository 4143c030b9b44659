"""Django admin: "Record a lifecycle step" calls the step's service for the officer signed in; a refused
step comes back with its reason and nothing saved; recorded steps are never edited."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings

from billing.models import ConnectionEvent, ConnectionStatus, EventKind
from invoicing.models import Invoice
from tests.factories import ConnectionTypeFactory, CustomerFactory, billable_connection

pytestmark = pytest.mark.django_db
ADD_STEP = "/admin/billing/connectionevent/add/"
TODAY = datetime(2024, 6, 10, 12, 0, tzinfo=ZoneInfo(settings.TIME_ZONE))


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(TODAY, tick=False):
        yield


def step_form(connection, step: str, at: str, **fields: str) -> dict:
    return {
        "connection": connection.pk,
        "step": step,
        "at": at,
        "reason": "Recorded in admin.",
        "_save": "Save",
        **fields,
    }


def test_an_officer_disconnects_a_connection_through_the_service(browser, officer, flat_provider):
    connection = billable_connection(flat_provider)

    response = browser.post(ADD_STEP, step_form(connection, "disconnect", "2024-06-01 10:00"))

    event = ConnectionEvent.objects.get(connection=connection)
    connection.refresh_from_db()
    assert response.status_code == 302
    assert (connection.status, event.kind, event.ground, event.recorded_by) == (
        ConnectionStatus.DISCONNECTED,
        EventKind.DISCONNECTED,
        "on_request",
        officer,
    )


def test_a_step_that_does_not_apply_is_refused_with_the_reason(browser, flat_provider):
    connection = billable_connection(flat_provider)

    response = browser.post(ADD_STEP, step_form(connection, "reconnect", "2024-06-01 10:00"))

    errors = response.context["adminform"].form.non_field_errors()
    assert errors == [f"Connection {connection.number} cannot be reconnected: it is active already."]
    assert not ConnectionEvent.objects.exists()


def test_an_officer_closes_a_connection_with_its_final_bill(browser, flat_provider):
    connection = billable_connection(flat_provider)  # read to 28 January: 100 and 200

    browser.post(
        ADD_STEP, step_form(connection, "close", "2024-02-10 10:00", import_peak="150", import_off_peak="300")
    )

    connection.refresh_from_db()
    final = Invoice.objects.get(connection=connection)
    assert (connection.status, final.kwh_consumed, final.issue_date.isoformat()) == (
        ConnectionStatus.CLOSED,
        150,
        "2024-02-10",
    )


def test_a_move_names_the_incoming_customer_by_number(browser, flat_provider):
    connection = billable_connection(flat_provider)
    incoming = CustomerFactory(provider=flat_provider)

    wrong = browser.post(
        ADD_STEP,
        step_form(
            connection,
            "move",
            "2024-02-10 10:00",
            import_peak="150",
            import_off_peak="300",
            incoming_customer="NOBODY",
        ),
    )
    right = browser.post(
        ADD_STEP,
        step_form(
            connection,
            "move",
            "2024-02-10 10:00",
            import_peak="150",
            import_off_peak="300",
            incoming_customer=incoming.number,
        ),
    )

    assert list(wrong.context["adminform"].form.errors) == ["incoming_customer"]
    connection.refresh_from_db()
    assert (right.status_code, connection.customer) == (302, incoming)
    assert list(connection.events.values_list("kind", flat=True)) == [EventKind.MOVED_OUT, EventKind.MOVED_IN]


def test_a_recorded_step_is_shown_read_only(browser, flat_provider):
    connection = billable_connection(flat_provider)
    browser.post(ADD_STEP, step_form(connection, "disconnect", "2024-06-01 10:00"))
    event = ConnectionEvent.objects.get()

    page = browser.get(f"/admin/billing/connectionevent/{event.pk}/change/")

    assert page.status_code == 200
    assert not page.context["has_change_permission"]
    assert "Recorded in admin." in page.content.decode()


def test_an_officer_changes_a_connections_type_from_a_day(browser, flat_provider):
    connection = billable_connection(flat_provider)
    shop = ConnectionTypeFactory(provider=flat_provider, code="C1")

    response = browser.post(
        ADD_STEP, step_form(connection, "type_change", "2024-04-01 00:00", connection_type="C1")
    )

    connection.refresh_from_db()
    assert (response.status_code, connection.connection_type) == (302, shop)
    assert connection.type_changes.get().effective_from.isoformat() == "2024-04-01"
