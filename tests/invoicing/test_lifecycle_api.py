"""The lifecycle steps in the API, end to end: /api/connections/{id}/connect, disconnect, reconnect,
close, move and events. Who may take each step, another provider's connection (404), the error shape."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings

from accounts.roles import Role
from billing.models import ConnectionStatus
from invoicing.models import Invoice
from invoicing.services import invoice_issue
from providers.services import provider_update
from tests.factories import (
    ConnectionFactory,
    ConnectionTypeFactory,
    CustomerFactory,
    ProviderFactory,
    UserFactory,
    billable_connection,
)
from tests.invoicing.ledger import assert_ledger_holds

pytestmark = pytest.mark.django_db
ZONE = ZoneInfo(settings.TIME_ZONE)
TODAY = datetime(2024, 6, 10, 12, 0, tzinfo=ZONE)
READING = {"importPeak": "350", "importOffPeak": "700"}
STEPS = ("connect", "disconnect", "reconnect", "close", "move", "type-change")


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(TODAY, tick=False):
        yield


@pytest.fixture
def staff(flat_provider):
    """A user of the flat provider in each role."""
    return {role: UserFactory(provider=flat_provider, roles=[role]) for role in Role}


def step(api, connection, name: str, body: dict):
    return api.post(f"/api/connections/{connection.pk}/{name}", body, format="json")


# Who may take each step (accounts/permissions.py): the clerks the counter's routine steps, the officers
# every step, auditors and customers none.
MAY = {
    Role.ADMIN: {"connect", "disconnect", "reconnect", "close", "move", "order", "type-change"},
    Role.SUPER_CREATOR: {"connect", "disconnect", "reconnect", "close", "move", "order", "type-change"},
    Role.INVOICE_CREATOR: {"connect", "disconnect", "reconnect", "move"},
    Role.AUDITOR: set(),
    Role.CUSTOMER: set(),
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", [*STEPS, "order"])
def test_each_role_may_take_exactly_its_steps(as_role, staff, connection, role, action):
    name, body = ("disconnect", {"ground": "non_payment"}) if action == "order" else (action, {})

    response = step(as_role(staff[role], role), connection, name, body)

    # Allowed: the empty body is refused as invalid (400); not allowed: 403 before the body is read.
    assert response.status_code == (400 if action in MAY[role] else 403), response.json()


@pytest.mark.parametrize(("role", "status"), [(role, 403 if role == Role.CUSTOMER else 200) for role in Role])
def test_every_staff_role_reads_a_connections_history(as_role, staff, connection, role, status):
    response = as_role(staff[role], role).get(f"/api/connections/{connection.pk}/events")

    assert response.status_code == status


@pytest.mark.parametrize("name", [*STEPS, "events"])
def test_another_providers_connection_is_not_found(as_role, staff, name):
    theirs = billable_connection(ProviderFactory())
    api = as_role(staff[Role.ADMIN], Role.ADMIN)

    response = (
        api.get(f"/api/connections/{theirs.pk}/events") if name == "events" else step(api, theirs, name, {})
    )

    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_a_clerk_connects_a_pending_connection_and_its_history_shows_it(as_role, staff, flat_provider):
    pending = ConnectionFactory(
        customer=CustomerFactory(provider=flat_provider), status=ConnectionStatus.PENDING
    )
    api = as_role(staff[Role.INVOICE_CREATOR], Role.INVOICE_CREATOR)

    response = step(api, pending, "connect", {"takenAt": "2024-06-01T10:00:00+05:00", "reading": READING})
    history = api.get(f"/api/connections/{pending.pk}/events").json()

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["status"], body["customerId"], body["connectionNumber"]) == (
        "Active",
        pending.customer.number,
        pending.number,
    )
    (event,) = body["events"]
    assert history == [event]
    assert {
        key: event[key] for key in ("kind", "effectiveAt", "reason", "ground", "orderNumber", "details")
    } == {
        "kind": "connected",
        "effectiveAt": "2024-06-01T10:00:00+05:00",
        "reason": "Connected with its first reading.",
        "ground": "",
        "orderNumber": "",
        "details": {},
    }
    assert event["recordedBy"] == {
        "userId": staff[Role.INVOICE_CREATOR].pk,
        "name": staff[Role.INVOICE_CREATOR].name,
    }
    assert event["readingId"] == pending.readings.get().pk


def test_a_step_that_does_not_apply_is_a_409_with_the_reason(as_role, staff, connection):
    api = as_role(staff[Role.INVOICE_CREATOR], Role.INVOICE_CREATOR)

    response = step(
        api, connection, "reconnect", {"effectiveAt": "2024-06-01T10:00:00+05:00", "reason": "Back."}
    )

    assert response.status_code == 409
    assert response.json() == {
        "detail": f"Connection {connection.number} cannot be reconnected: it is active already.",
        "code": "connection_status",
        "extra": {"connectionStatus": "Active"},
    }


def test_a_refused_step_names_the_field(as_role, staff, connection):
    api = as_role(staff[Role.INVOICE_CREATOR], Role.INVOICE_CREATOR)

    response = step(
        api, connection, "disconnect", {"effectiveAt": "2024-03-01T10:00:00+05:00", "reason": "Away."}
    )

    assert response.status_code == 400
    body = response.json()
    assert (body["code"], list(body["fields"])) == ("lifecycle_refused", ["effectiveAt"])
    assert "date this step after its last reading" in body["detail"]


def test_a_disconnection_order_is_refused_without_an_overdue_balance(as_role, staff, connection):
    api = as_role(staff[Role.SUPER_CREATOR], Role.SUPER_CREATOR)

    response = step(
        api,
        connection,
        "disconnect",
        {"ground": "non_payment", "effectiveAt": "2024-06-01T10:00:00+05:00", "reason": "Unpaid."},
    )

    assert response.status_code == 400
    assert (response.json()["code"], list(response.json()["fields"])) == ("lifecycle_refused", ["ground"])
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.ACTIVE


def test_an_officer_orders_a_disconnection_for_an_overdue_bill(as_role, staff, connection):
    invoice_issue(connection=connection, period=date(2024, 1, 1), created_by=staff[Role.SUPER_CREATOR])
    api = as_role(staff[Role.SUPER_CREATOR], Role.SUPER_CREATOR)

    response = step(
        api,
        connection,
        "disconnect",
        {
            "ground": "non_payment",
            "effectiveAt": "2024-06-01T10:00:00+05:00",
            "reason": "January unpaid.",
            "reading": READING,
        },
    )

    assert response.status_code == 201, response.json()
    (event,) = response.json()["events"]
    assert (response.json()["status"], event["ground"], event["overdueBalance"], event["orderNumber"]) == (
        "Disconnected",
        "non_payment",
        "9750.00",
        f"{connection.provider.code}-DO-2024-000001",
    )


def test_a_clerk_reconnects_and_the_fee_is_named_on_the_step(as_role, staff, connection):
    provider_update(provider=connection.provider, reconnection_fee=Decimal("750.00"))
    api = as_role(staff[Role.INVOICE_CREATOR], Role.INVOICE_CREATOR)
    step(api, connection, "disconnect", {"effectiveAt": "2024-06-01T10:00:00+05:00", "reason": "Away."})

    response = step(
        api, connection, "reconnect", {"effectiveAt": "2024-06-02T10:00:00+05:00", "reason": "Back."}
    )

    assert response.status_code == 201, response.json()
    assert (response.json()["status"], response.json()["events"][0]["details"]) == (
        "Active",
        {"reconnectionFee": "750.00"},
    )


def test_an_officer_closes_a_connection_and_gets_the_final_bill(as_role, staff, connection):
    api = as_role(staff[Role.SUPER_CREATOR], Role.SUPER_CREATOR)

    response = step(
        api,
        connection,
        "close",
        {"closedAt": "2024-04-15T10:00:00+05:00", "reason": "Demolished.", "reading": READING},
    )

    assert response.status_code == 201, response.json()
    final = Invoice.objects.get(connection=connection)
    assert (response.json()["status"], response.json()["events"][0]["details"]) == (
        "Closed",
        {"finalInvoice": final.number, "finalInvoiceId": final.pk},
    )
    assert api.get(f"/api/invoices/{final.pk}").json()["issueDate"] == "2024-04-15"


def test_a_clerk_records_a_move_to_a_customer_of_the_provider(as_role, staff, connection, flat_provider):
    incoming = CustomerFactory(provider=flat_provider)
    outgoing = connection.customer
    api = as_role(staff[Role.INVOICE_CREATOR], Role.INVOICE_CREATOR)

    response = step(
        api,
        connection,
        "move",
        {
            "moveAt": "2024-04-15T10:00:00+05:00",
            "reading": READING,
            "incomingCustomer": incoming.number,
            "reason": "New tenant.",
        },
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["customerId"], [(e["kind"], e["customerId"]) for e in body["events"]]) == (
        incoming.number,
        [("moved_out", outgoing.number), ("moved_in", incoming.number)],
    )
    assert Invoice.objects.get(connection=connection).customer == outgoing
    assert_ledger_holds(connection)


def test_a_move_to_another_providers_customer_is_not_found(as_role, staff, connection):
    stranger = CustomerFactory(provider=ProviderFactory())
    api = as_role(staff[Role.INVOICE_CREATOR], Role.INVOICE_CREATOR)

    response = step(
        api,
        connection,
        "move",
        {
            "moveAt": "2024-04-15T10:00:00+05:00",
            "reading": READING,
            "incomingCustomer": stranger.number,
            "reason": "New tenant.",
        },
    )

    assert response.status_code == 404
    assert list(response.json()["fields"]) == ["incomingCustomer"]
    assert not Invoice.objects.exists()


def test_an_officer_changes_the_type_by_its_code(as_role, staff, connection, flat_provider):
    ConnectionTypeFactory(provider=flat_provider, code="C1")
    api = as_role(staff[Role.SUPER_CREATOR], Role.SUPER_CREATOR)

    response = step(
        api,
        connection,
        "type-change",
        {"connectionType": "C1", "effectiveFrom": "2024-04-01", "reason": "A shop."},
    )

    assert response.status_code == 201, response.json()
    (event,) = response.json()["events"]
    assert (event["kind"], event["details"]["toType"], event["effectiveAt"]) == (
        "type_changed",
        "C1",
        "2024-04-01T00:00:00+05:00",
    )


def test_another_providers_connection_type_is_not_found(as_role, staff, connection):
    ConnectionTypeFactory(provider=ProviderFactory(), code="C9")
    api = as_role(staff[Role.SUPER_CREATOR], Role.SUPER_CREATOR)

    response = step(
        api,
        connection,
        "type-change",
        {"connectionType": "C9", "effectiveFrom": "2024-04-01", "reason": "A shop."},
    )

    assert (response.status_code, list(response.json()["fields"])) == (404, ["connectionType"])
