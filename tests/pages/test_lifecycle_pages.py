"""A connection's lifecycle page: its history, the steps the role may take in the connection's status,
each taken through its service, a refusal shown next to its field with what was typed."""

from datetime import date, datetime
from decimal import Decimal
from io import BytesIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from pypdf import PdfReader

from accounts.roles import Role
from billing.lifecycle import connection_disconnect
from billing.models import ConnectionStatus
from billing.services import reading_record
from invoicing.models import Invoice
from invoicing.pdf import invoice_pdf
from invoicing.services import connection_reconnect, invoice_issue
from providers.services import provider_update
from tests.factories import (
    ConnectionTypeFactory,
    CustomerFactory,
    ProviderFactory,
    UserFactory,
    billable_connection,
)

pytestmark = pytest.mark.django_db
ZONE = ZoneInfo(settings.TIME_ZONE)
TODAY = datetime(2024, 6, 10, 12, 0, tzinfo=ZONE)


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(TODAY, tick=False):
        yield


def html(response) -> str:
    return response.content.decode()


def url(connection, step: str = "") -> str:
    return f"/connections/{connection.pk}/lifecycle" + (f"/{step}" if step else "")


def forms_on(page: str) -> set[str]:
    names = ("connect", "disconnect", "order", "reconnect", "move", "close", "type-change")
    return {name for name in names if f'data-testid="step-{name}"' in page}


def test_a_clerk_sees_the_history_and_the_routine_steps_of_an_active_connection(
    signed_in, creator, connection
):
    connection_disconnect(
        connection=connection,
        reason="Away for Ramzan.",
        effective_at=datetime(2024, 4, 2, tzinfo=ZONE),
        by=creator,
    )
    page = html(signed_in(creator, Role.INVOICE_CREATOR).get(url(connection)))

    assert "Away for Ramzan." in page
    assert 'data-testid="connection-status">Disconnected<' in page
    assert forms_on(page) == {"reconnect"}


@pytest.mark.parametrize(
    ("role", "steps"),
    [
        (Role.INVOICE_CREATOR, {"disconnect", "move"}),
        (Role.SUPER_CREATOR, {"disconnect", "order", "move", "close", "type-change"}),
        (Role.ADMIN, {"disconnect", "order", "move", "close", "type-change"}),
        (Role.AUDITOR, set()),
    ],
)
def test_each_role_is_offered_its_own_steps(signed_in, flat_provider, connection, role, steps):
    user = UserFactory(provider=flat_provider, roles=[role])

    page = html(signed_in(user, role).get(url(connection)))

    assert forms_on(page) == steps


def test_a_customer_may_not_open_the_page(signed_in, connection):
    response = signed_in(connection.customer.user, Role.CUSTOMER).get(url(connection))

    assert response.status_code == 403


def test_another_providers_connection_is_not_found(signed_in, super_creator):
    theirs = billable_connection(ProviderFactory())

    client = signed_in(super_creator, Role.SUPER_CREATOR)

    assert client.get(url(theirs)).status_code == 404
    assert client.post(url(theirs, "disconnect"), {}).status_code == 404


def test_a_step_the_role_may_not_take_is_forbidden(signed_in, flat_provider, connection):
    auditor = UserFactory(provider=flat_provider, roles=[Role.AUDITOR])

    response = signed_in(auditor, Role.AUDITOR).post(
        url(connection, "disconnect"), {"disconnect-at": "2024-06-01T10:00", "disconnect-reason": "No."}
    )

    assert response.status_code == 403
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.ACTIVE


def test_an_unknown_step_is_not_found(signed_in, super_creator, connection):
    assert (
        signed_in(super_creator, Role.SUPER_CREATOR).post(url(connection, "demolish"), {}).status_code == 404
    )


def test_a_clerk_disconnects_on_request_and_is_told_so(signed_in, creator, connection):
    client = signed_in(creator, Role.INVOICE_CREATOR)

    response = client.post(
        url(connection, "disconnect"),
        {
            "disconnect-at": "2024-06-01T10:00",
            "disconnect-reason": "Going abroad.",
            "disconnect-import_peak": "",
            "disconnect-import_off_peak": "",
        },
        follow=True,
    )

    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.DISCONNECTED
    assert f"Connection {connection.number} is disconnected." in html(response)
    assert "Going abroad." in html(response)


def test_a_refused_step_comes_back_with_the_reason_next_to_its_field(signed_in, creator, connection):
    response = signed_in(creator, Role.INVOICE_CREATOR).post(
        url(connection, "disconnect"),
        {"disconnect-at": "2024-03-01T10:00", "disconnect-reason": "Going abroad."},
    )

    assert response.status_code == 400
    page = html(response)
    assert 'id="id_disconnect-at_error"' in page and "date this step after its last reading" in page
    assert "Going abroad." in page  # as typed
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.ACTIVE


def test_a_move_to_an_unknown_customer_is_refused_at_that_field(signed_in, creator, connection):
    response = signed_in(creator, Role.INVOICE_CREATOR).post(
        url(connection, "move"),
        {"move-at": "2024-04-15T10:00", "move-incoming_customer": "NOBODY-1", "move-reason": "New tenant.",
         "move-import_peak": "350", "move-import_off_peak": "700"},
    )  # fmt: skip

    assert response.status_code == 400
    assert 'id="id_move-incoming_customer_error"' in html(response)
    assert not Invoice.objects.exists()


def test_a_move_needs_the_move_out_reading(signed_in, creator, connection, flat_provider):
    incoming = CustomerFactory(provider=flat_provider)

    response = signed_in(creator, Role.INVOICE_CREATOR).post(
        url(connection, "move"),
        {
            "move-at": "2024-04-15T10:00",
            "move-incoming_customer": incoming.number,
            "move-reason": "New tenant.",
        },
    )

    assert response.status_code == 400
    assert 'id="id_move-import_peak_error"' in html(response)


def test_an_officer_closes_a_connection_and_the_history_links_the_final_bill(
    signed_in, super_creator, connection
):
    client = signed_in(super_creator, Role.SUPER_CREATOR)

    response = client.post(
        url(connection, "close"),
        {
            "close-at": "2024-04-15T10:00",
            "close-reason": "Demolished.",
            "close-import_peak": "350",
            "close-import_off_peak": "700",
        },
        follow=True,
    )

    final = Invoice.objects.get(connection=connection)
    page = html(response)
    assert f"Connection {connection.number} is closed; its final bill is {final.number}." in page
    assert f'href="/bills/{final.pk}"' in page
    assert forms_on(page) == set()  # closed for good


def test_an_officer_orders_a_disconnection_for_an_overdue_bill(signed_in, super_creator, connection):
    invoice_issue(connection=connection, period=date(2024, 1, 1), created_by=super_creator)

    response = signed_in(super_creator, Role.SUPER_CREATOR).post(
        url(connection, "order"),
        {"order-at": "2024-06-01T10:00", "order-reason": "January unpaid."},
        follow=True,
    )

    page = html(response)
    assert (
        f"Disconnection order {connection.provider.code}-DO-2024-000001 is issued for 9750.00 overdue" in page
    )
    assert f"Order {connection.provider.code}-DO-2024-000001, overdue 9,750.00" in page  # in the history


def test_the_history_costs_no_query_per_step(
    signed_in, super_creator, connection, django_assert_max_num_queries
):
    for day in range(1, 13):
        connection_disconnect(
            connection=connection,
            reason="Away.",
            effective_at=datetime(2024, 5, day, 9, tzinfo=ZONE),
            by=super_creator,
        )
        connection_reconnect(
            connection=connection,
            reason="Back.",
            effective_at=datetime(2024, 5, day, 18, tzinfo=ZONE),
            by=super_creator,
        )
    client = signed_in(super_creator, Role.SUPER_CREATOR)

    with django_assert_max_num_queries(16):
        response = client.get(url(connection))

    assert html(response).count("Away.") == 12


def test_the_reconnection_fee_is_printed_on_the_bill_and_shown_by_the_api(
    flat_provider, connection, creator, as_role, signed_in
):
    provider_update(provider=flat_provider, reconnection_fee=Decimal("500.00"))
    connection_disconnect(
        connection=connection, reason="Away.", effective_at=at(date(2024, 4, 5)), by=creator
    )
    connection_reconnect(
        connection=connection, reason="Back.", effective_at=at(date(2024, 4, 10)), by=creator
    )
    read(connection, date(2024, 4, 28), 400, 800)
    april = bill(connection, date(2024, 4, 1), creator)

    detail = as_role(creator, Role.INVOICE_CREATOR).get(f"/api/invoices/{april.pk}").json()
    page = signed_in(creator, Role.INVOICE_CREATOR).get(f"/bills/{april.pk}").content.decode()
    printed = "\n".join(p.extract_text() for p in PdfReader(BytesIO(invoice_pdf(april, []))).pages)

    assert (detail["feeTotal"], detail["totalAmount"]) == ("500.00", "10250.00")
    assert {
        "kind": "fee",
        "label": "Reconnection fee",
        "code": "reconnection_fee",
        "amount": "500.00",
    } in detail["lines"]
    assert "Other charges" in page and "Reconnection fee" in page
    assert "Other charges\nReconnection fee 500.00\nCurrent charges 10,250.00" in printed


def at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=ZONE)


def read(connection, day: date, peak: int, off_peak: int) -> None:
    registers = {"import_peak": Decimal(peak), "import_off_peak": Decimal(off_peak)}
    reading_record(connection=connection, taken_at=at(day, 9), registers=registers)


def bill(connection, period: date, user) -> Invoice:
    return invoice_issue(connection=connection, period=period, created_by=user)


def test_an_officer_changes_the_connection_type_from_a_day(
    signed_in, super_creator, connection, flat_provider
):
    shop = ConnectionTypeFactory(provider=flat_provider, code="C1")
    client = signed_in(super_creator, Role.SUPER_CREATOR)

    refused = client.post(
        url(connection, "type-change"),
        {
            "type-change-connection_type": shop.pk,
            "type-change-effective_from": "2024-06-11",
            "type-change-reason": "A shop.",
        },
    )
    done = client.post(
        url(connection, "type-change"),
        {
            "type-change-connection_type": shop.pk,
            "type-change-effective_from": "2024-04-01",
            "type-change-reason": "A shop.",
        },
        follow=True,
    )

    assert refused.status_code == 400 and 'id="id_type-change-effective_from_error"' in html(refused)
    connection.refresh_from_db()
    assert connection.connection_type == shop
    assert f"Connection {connection.number} is of type C1 from 01 April 2024." in html(done)
