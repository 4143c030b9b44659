"""Disconnection orders for non-payment: the dunning job issues one and the supply stays on; field staff
carry it out on site (service, API, staff page), and an order whose debt was paid or put on a kept plan
before the visit is withdrawn instead. An officer on site carries out the connection's open order, never
a second one. Who may, another provider's order (404). Clocks are frozen."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.test import Client

from accounts.roles import Role
from accounts.sessions import SESSION_ROLE_KEY
from billing.lifecycle import LifecycleRefused
from billing.models import ConnectionStatus, EventKind
from invoicing.models import DisconnectionOrder, DisconnectionOrderStatus, DunningAction
from invoicing.services import (
    OrderClosed,
    disconnection_order_carry_out,
    disconnection_order_issue,
    dunning_level_create,
    dunning_run,
    invoice_issue,
    invoices_mark_overdue,
    payment_plan_create,
    payment_post,
)
from tests.factories import FlatTariffFactory, UserFactory, billable_connection

pytestmark = pytest.mark.django_db
D = Decimal
ZONE = ZoneInfo(settings.TIME_ZONE)
OWED = D("10725.00")  # January's 9750.00 and its 10% late surcharge


def at(month: int, day: int, hour: int = 9) -> datetime:
    return datetime(2024, month, day, hour, tzinfo=ZONE)


@pytest.fixture
def staff(flat_provider):
    return {role: UserFactory(provider=flat_provider, roles=[role]) for role in Role}


@pytest.fixture
def debtor(flat_provider):
    """Billable for January 2024 only: its last reading is of 28 January."""
    return billable_connection(flat_provider, months=1)


@pytest.fixture
def ordered(debtor, flat_provider, creator, admin_user, time_machine):
    """January's bill unpaid: reminded on 15 February, warned on 25 February, the order issued on 6 March
    (the clock stands at 15:00 that day)."""
    time_machine.move_to(at(2, 1), tick=False)
    invoice_issue(connection=debtor, period=date(2024, 1, 1), created_by=creator)
    for days, action in (
        (5, DunningAction.REMINDER),
        (15, DunningAction.FINAL_NOTICE),
        (25, "disconnection"),
    ):
        dunning_level_create(
            provider=flat_provider, days_after_due=days, action=action, created_by=admin_user
        )
    for day in (date(2024, 2, 15), date(2024, 2, 25), date(2024, 3, 6)):
        time_machine.move_to(datetime(day.year, day.month, day.day, 9, tzinfo=ZONE), tick=False)
        invoices_mark_overdue(provider=flat_provider)
        dunning_run(provider=flat_provider)
    time_machine.move_to(at(3, 6, 15), tick=False)
    return DisconnectionOrder.objects.get(connection=debtor)


def cut_events(connection):
    return connection.events.filter(kind=EventKind.DISCONNECTED)


def test_the_job_issues_an_order_and_leaves_the_supply_on(ordered, debtor, flat_provider):
    debtor.refresh_from_db()

    assert debtor.status == ConnectionStatus.ACTIVE
    assert (ordered.number, ordered.status, ordered.overdue_balance, ordered.issued_by) == (
        f"{flat_provider.code}-DO-2024-000001",
        DisconnectionOrderStatus.OPEN,
        OWED,
        None,
    )
    assert ordered.step.order_number == ordered.number
    assert not cut_events(debtor).exists()


def test_field_staff_cut_the_supply_with_the_meters_reading(ordered, debtor, staff):
    lineman = staff[Role.INVOICE_CREATOR]
    reading = {"import_peak": D("1200"), "import_off_peak": D("2400"), "export_peak": 0, "export_off_peak": 0}

    order = disconnection_order_carry_out(
        order=ordered, effective_at=at(3, 6, 14), registers=reading, note="Meter sealed", by=lineman
    )

    debtor.refresh_from_db()
    (cut,) = cut_events(debtor)
    assert debtor.status == ConnectionStatus.DISCONNECTED
    assert (order.status, order.event, order.closed_by) == (
        DisconnectionOrderStatus.CARRIED_OUT,
        cut,
        lineman,
    )
    assert (cut.order_number, cut.overdue_balance, cut.recorded_by) == (ordered.number, OWED, lineman)
    assert cut.reading.import_peak == D("1200")
    assert "Meter sealed" in cut.reason


def test_a_debt_paid_before_the_visit_withdraws_the_order_and_the_supply_stays_on(
    ordered, debtor, staff, cash
):
    payment_post(
        invoice=debtor.invoices.get(),
        amount=OWED,
        method=cash,
        received_by=staff[Role.ADMIN],
    )

    order = disconnection_order_carry_out(
        order=ordered, effective_at=at(3, 6, 14), by=staff[Role.INVOICE_CREATOR]
    )

    debtor.refresh_from_db()
    assert debtor.status == ConnectionStatus.ACTIVE
    assert order.status == DisconnectionOrderStatus.WITHDRAWN
    assert order.withdrawn_reason.startswith("Nothing is overdue any more")
    assert not cut_events(debtor).exists()


def test_the_daily_job_withdraws_an_order_a_kept_plan_covers(
    ordered, debtor, staff, flat_provider, time_machine
):
    payment_plan_create(
        connection=debtor,
        instalments=2,
        first_due_date=date(2024, 3, 20),
        reason="Agreed",
        created_by=staff[Role.ADMIN],
    )
    time_machine.move_to(at(3, 7), tick=False)
    dunning_run(provider=flat_provider)

    ordered.refresh_from_db()
    assert ordered.status == DisconnectionOrderStatus.WITHDRAWN
    with pytest.raises(OrderClosed, match="withdrawn already"):
        disconnection_order_carry_out(order=ordered, effective_at=at(3, 7, 8), by=staff[Role.INVOICE_CREATOR])
    debtor.refresh_from_db()
    assert debtor.status == ConnectionStatus.ACTIVE


def test_an_order_is_carried_out_once(ordered, staff):
    disconnection_order_carry_out(order=ordered, effective_at=at(3, 6, 14), by=staff[Role.INVOICE_CREATOR])

    with pytest.raises(OrderClosed, match="carried out already"):
        disconnection_order_carry_out(
            order=ordered, effective_at=at(3, 6, 15), by=staff[Role.INVOICE_CREATOR]
        )
    assert DisconnectionOrder.objects.get().status == DisconnectionOrderStatus.CARRIED_OUT


def test_the_supply_is_not_cut_before_the_order_was_issued(ordered, debtor, staff):
    with pytest.raises(LifecycleRefused, match="issued on 2024-03-06"):
        disconnection_order_carry_out(
            order=ordered, effective_at=at(3, 5, 14), by=staff[Role.INVOICE_CREATOR]
        )

    ordered.refresh_from_db()
    assert ordered.status == DisconnectionOrderStatus.OPEN


def test_an_officer_on_site_carries_out_the_open_order_not_a_second_one(ordered, debtor, staff):
    event = disconnection_order_issue(
        connection=debtor, reason="Met the lineman on site", effective_at=at(3, 6, 14), by=staff[Role.ADMIN]
    )

    ordered.refresh_from_db()
    assert event.order_number == ordered.number
    assert (ordered.status, ordered.event) == (DisconnectionOrderStatus.CARRIED_OUT, event)
    assert DisconnectionOrder.objects.count() == 1


def test_an_officers_order_without_an_open_one_is_numbered_and_carried_out(
    debtor, creator, flat_provider, staff, time_machine
):
    time_machine.move_to(at(2, 1), tick=False)
    invoice_issue(connection=debtor, period=date(2024, 1, 1), created_by=creator)
    time_machine.move_to(at(2, 20), tick=False)
    invoices_mark_overdue(provider=flat_provider)

    event = disconnection_order_issue(
        connection=debtor, reason="Unpaid since February", effective_at=at(2, 20, 8), by=staff[Role.ADMIN]
    )

    order = DisconnectionOrder.objects.get()
    assert (order.number, order.status, order.event, order.issued_by, order.step) == (
        event.order_number,
        DisconnectionOrderStatus.CARRIED_OUT,
        event,
        staff[Role.ADMIN],
        None,
    )


# --- the API ---------------------------------------------------------------------------------------


@pytest.fixture
def elsewhere_order(other_provider, time_machine):
    """An open order of another provider."""
    FlatTariffFactory(provider=other_provider)
    connection = billable_connection(other_provider, months=1)
    officer = UserFactory(provider=other_provider, roles=[Role.ADMIN])
    time_machine.move_to(at(2, 1), tick=False)
    invoice_issue(connection=connection, period=date(2024, 1, 1), created_by=officer)
    for days, action in ((5, DunningAction.REMINDER), (15, "disconnection")):
        dunning_level_create(provider=other_provider, days_after_due=days, action=action, created_by=officer)
    for day in (15, 25):
        time_machine.move_to(at(2, day), tick=False)
        invoices_mark_overdue(provider=other_provider)
        dunning_run(provider=other_provider)
    time_machine.move_to(at(3, 6, 15), tick=False)
    return DisconnectionOrder.objects.get(provider=other_provider)


def test_the_field_round_lists_the_providers_open_orders(ordered, elsewhere_order, staff, as_role):
    response = as_role(staff[Role.INVOICE_CREATOR], Role.INVOICE_CREATOR).get(
        "/api/disconnection-orders", {"status": "open"}
    )

    assert response.status_code == 200
    (row,) = response.json()["results"]
    assert (row["number"], row["status"], row["overdueBalance"], row["connectionNumber"]) == (
        ordered.number,
        "open",
        "10725.00",
        ordered.connection.number,
    )


def test_an_unknown_status_is_refused_with_the_choices(ordered, staff, as_role):
    response = as_role(staff[Role.AUDITOR], Role.AUDITOR).get("/api/disconnection-orders", {"status": "done"})

    assert response.status_code == 400
    assert "status" in str(response.json())


def test_carrying_out_through_the_api(ordered, debtor, staff, as_role):
    client = as_role(staff[Role.INVOICE_CREATOR], Role.INVOICE_CREATOR)
    body = {"effectiveAt": "2024-03-06T14:00:00+05:00", "note": "Sealed"}

    response = client.post(f"/api/disconnection-orders/{ordered.pk}/carry-out", body, format="json")
    again = client.post(f"/api/disconnection-orders/{ordered.pk}/carry-out", body, format="json")

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["disconnectedAt"] is not None) == ("carried_out", True)
    assert (again.status_code, again.json()["code"]) == (409, "disconnection_order_closed")
    debtor.refresh_from_db()
    assert debtor.status == ConnectionStatus.DISCONNECTED


def test_another_providers_order_is_not_found(ordered, elsewhere_order, staff, as_role):
    client = as_role(staff[Role.ADMIN], Role.ADMIN)

    response = client.post(
        f"/api/disconnection-orders/{elsewhere_order.pk}/carry-out",
        {"effectiveAt": "2024-03-06T14:00:00+05:00"},
        format="json",
    )

    assert response.status_code == 404
    elsewhere_order.refresh_from_db()
    assert elsewhere_order.status == DisconnectionOrderStatus.OPEN


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.CUSTOMER])
def test_who_may_not_cut_a_supply(ordered, staff, as_role, role):
    client = as_role(staff[role], role)

    response = client.post(
        f"/api/disconnection-orders/{ordered.pk}/carry-out",
        {"effectiveAt": "2024-03-06T14:00:00+05:00"},
        format="json",
    )

    assert response.status_code == 403
    assert client.get("/api/disconnection-orders").status_code == (200 if role == Role.AUDITOR else 403)
    ordered.refresh_from_db()
    assert ordered.status == DisconnectionOrderStatus.OPEN


# --- the staff pages -------------------------------------------------------------------------------


def page_client(user, role: str) -> Client:
    client = Client()
    client.force_login(user)
    session = client.session
    session[SESSION_ROLE_KEY] = role
    session.save()
    return client


def test_the_field_staff_page_lists_the_order_and_cuts_the_supply(ordered, debtor, staff):
    client = page_client(staff[Role.INVOICE_CREATOR], Role.INVOICE_CREATOR)

    listed = client.get("/disconnection-orders")
    done = client.post(
        f"/disconnection-orders/{ordered.pk}", {"at": "2024-03-06T14:00", "note": "Sealed"}, follow=True
    )

    assert ordered.number in listed.content.decode()
    assert done.status_code == 200
    assert f"Connection {debtor.number} is disconnected on order {ordered.number}." in done.content.decode()
    debtor.refresh_from_db()
    assert debtor.status == ConnectionStatus.DISCONNECTED


def test_a_refused_cut_keeps_what_was_typed_next_to_the_field(ordered, staff):
    client = page_client(staff[Role.INVOICE_CREATOR], Role.INVOICE_CREATOR)

    response = client.post(f"/disconnection-orders/{ordered.pk}", {"at": "2024-03-05T14:00", "note": "Early"})

    assert response.status_code == 400
    page = response.content.decode()
    assert "the supply is cut on or after that day" in page
    assert 'value="Early"' in page


def test_the_auditor_reads_the_order_and_may_not_cut(ordered, staff):
    client = page_client(staff[Role.AUDITOR], Role.AUDITOR)

    shown = client.get(f"/disconnection-orders/{ordered.pk}")
    posted = client.post(f"/disconnection-orders/{ordered.pk}", {"at": "2024-03-06T14:00"})

    assert shown.status_code == 200
    assert 'data-testid="carry-out"' not in shown.content.decode()
    assert posted.status_code == 403
