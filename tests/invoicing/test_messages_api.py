"""Staff see the e-mails sent to a provider's customers: filtered by customer, kind and status (a hard
failure with its reason), never another provider's, and never as a customer."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from accounts.models import Message, MessageKind, MessageStatus
from accounts.roles import Role
from billing.services import customer_invite
from invoicing.services import invoice_issue, payment_post
from tests.factories import CustomerFactory, FlatTariffFactory, UserFactory, billable_connection

pytestmark = pytest.mark.django_db
JANUARY = date(2024, 1, 1)


@pytest.fixture(autouse=True)
def _frozen(time_machine):
    time_machine.move_to(datetime(2024, 2, 5, 9, tzinfo=UTC), tick=False)


@pytest.fixture
def told(connection, creator, super_creator, cash):
    """The connection's customer told of January's bill, of a payment, and invited; a neighbour's bill."""
    invoice = invoice_issue(connection=connection, period=JANUARY, created_by=creator)
    payment, _ = payment_post(
        invoice=invoice, amount=Decimal("100.00"), method=cash, received_by=super_creator
    )
    customer_invite(customer=connection.customer, invited_by=creator)
    neighbour = billable_connection(connection.provider)
    invoice_issue(connection=neighbour, period=JANUARY, created_by=creator)
    return {"invoice": invoice, "payment": payment, "customer": connection.customer}


def listed(client, **query) -> list[tuple[str, int]]:
    response = client.get("/api/messages", query)
    assert response.status_code == 200
    return [(row["kind"], row["aboutId"]) for row in response.json()["results"]]


def test_staff_list_a_customers_messages(as_role, super_creator, told):
    staff = as_role(super_creator, Role.SUPER_CREATOR)

    mine = listed(staff, customer=told["customer"].number)

    assert sorted(mine) == sorted(
        [
            ("bill_issued", told["invoice"].pk),
            ("payment_received", told["payment"].pk),
            ("invitation", told["customer"].user_id),
        ]
    )
    assert len(listed(staff)) == 4


def test_staff_filter_by_kind_and_find_the_failed_ones_with_their_reason(as_role, super_creator, told):
    staff = as_role(super_creator, Role.SUPER_CREATOR)
    Message.objects.filter(kind=MessageKind.PAYMENT_RECEIVED).update(
        status=MessageStatus.FAILED,
        attempts=1,
        last_error="recipient refused: 550 5.1.1 Mailbox does not exist",
    )

    failed = staff.get("/api/messages", {"status": "failed"}).json()["results"]

    assert listed(staff, kind="invitation") == [("invitation", told["customer"].user_id)]
    assert [(row["kind"], row["status"], row["lastError"]) for row in failed] == [
        ("payment_received", "failed", "recipient refused: 550 5.1.1 Mailbox does not exist")
    ]
    assert staff.get("/api/messages", {"status": "lost"}).status_code == 400


@pytest.mark.parametrize(
    ("role", "status"),
    [
        (Role.ADMIN, 200),
        (Role.SUPER_CREATOR, 200),
        (Role.INVOICE_CREATOR, 200),
        (Role.AUDITOR, 200),
        (Role.CUSTOMER, 403),
    ],
)
def test_which_roles_see_the_messages(as_role, flat_provider, told, role, status):
    caller = as_role(UserFactory(provider=flat_provider, roles=[role]), role)

    assert caller.get("/api/messages").status_code == status


def test_another_providers_messages_are_neither_listed_nor_found(
    as_role, super_creator, told, other_provider
):
    FlatTariffFactory(provider=other_provider)
    foreign_customer = CustomerFactory(provider=other_provider, user=None, email="far@example.com")
    foreign = customer_invite(customer=foreign_customer, invited_by=None)
    staff = as_role(super_creator, Role.SUPER_CREATOR)

    assert foreign.pk not in [row["id"] for row in staff.get("/api/messages").json()["results"]]
    assert listed(staff, customer=foreign_customer.number) == []
    assert staff.get(f"/api/messages/{foreign.pk}").status_code == 404
    assert (
        staff.get(
            f"/api/messages/{Message.objects.filter(provider=super_creator.provider).first().pk}"
        ).status_code
        == 200
    )
