"""Collections end to end: /api/dunning-levels, /api/connections/{id}/collection and
/api/connections/{id}/payment-plans; the staff page /connections/{id}/collection; the dunning levels and
payment plans in Django admin. Who may, another provider's connection (404), the error shape."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.test import Client

from accounts.roles import Role
from accounts.sessions import SESSION_ROLE_KEY
from invoicing.models import DunningAction, DunningLevel, PaymentPlan
from invoicing.services import dunning_level_create, dunning_run, invoice_issue, invoices_mark_overdue
from tests.factories import FlatTariffFactory, UserFactory, billable_connection

pytestmark = pytest.mark.django_db
ZONE = ZoneInfo(settings.TIME_ZONE)
PLAN = {"instalments": 2, "firstDueDate": "2024-03-01", "reason": "Agreed at the counter"}


@pytest.fixture
def staff(flat_provider):
    return {role: UserFactory(provider=flat_provider, roles=[role]) for role in Role}


@pytest.fixture
def owing(connection, creator, admin_user, flat_provider, time_machine):
    """January's bill overdue and reminded: 10725.00 owed, reminder taken on 20 February."""
    time_machine.move_to(datetime(2024, 2, 1, 9, tzinfo=ZONE), tick=False)
    invoice_issue(connection=connection, period=date(2024, 1, 1), created_by=creator)
    dunning_level_create(
        provider=flat_provider, days_after_due=5, action=DunningAction.REMINDER, created_by=admin_user
    )
    dunning_level_create(
        provider=flat_provider, days_after_due=15, action=DunningAction.FINAL_NOTICE, created_by=admin_user
    )
    time_machine.move_to(datetime(2024, 2, 20, 9, tzinfo=ZONE), tick=False)
    invoices_mark_overdue(provider=flat_provider)
    dunning_run(provider=flat_provider)
    return connection


@pytest.fixture
def elsewhere(other_provider):
    """A connection of another provider, with a bill overdue there too (dated 31 January 2024)."""
    FlatTariffFactory(provider=other_provider)
    connection = billable_connection(other_provider, months=1)
    invoice_issue(
        connection=connection,
        period=date(2024, 1, 1),
        created_by=UserFactory(provider=other_provider, roles=[Role.INVOICE_CREATOR]),
    )
    return connection


def test_staff_read_their_providers_levels_in_order(owing, staff, as_role, other_provider, admin_user):
    dunning_level_create(
        provider=other_provider, days_after_due=3, action=DunningAction.REMINDER, created_by=admin_user
    )

    response = as_role(staff[Role.AUDITOR], Role.AUDITOR).get("/api/dunning-levels")

    assert response.status_code == 200
    assert [(row["daysAfterDue"], row["action"], row["active"]) for row in response.json()] == [
        (5, "reminder", True),
        (15, "final_notice", True),
    ]


@pytest.mark.parametrize("role", [Role.INVOICE_CREATOR, Role.CUSTOMER])
def test_roles_without_collections_may_not_read_them(owing, staff, as_role, role):
    client = as_role(staff[role], role)

    assert client.get("/api/dunning-levels").status_code == 403
    assert client.get(f"/api/connections/{owing.pk}/collection").status_code == 403


def test_the_collection_status_shows_the_debt_and_its_steps(owing, staff, as_role):
    response = as_role(staff[Role.AUDITOR], Role.AUDITOR).get(f"/api/connections/{owing.pk}/collection")

    body = response.json()
    assert response.status_code == 200
    assert (body["connectionNumber"], body["overdue"], body["plans"]) == (owing.number, "10725.00", [])
    assert body["openCase"]["openedOn"] == "2024-02-20"
    assert body["openCase"]["levelReached"]["action"] == "reminder"
    (step,) = body["steps"]
    assert (step["action"], step["takenOn"], step["daysOverdue"], step["balance"]) == (
        "reminder",
        "2024-02-20",
        10,
        "10725.00",
    )
    assert step["noticeId"] is not None


@pytest.mark.parametrize("role", [Role.SUPER_CREATOR, Role.ADMIN])
def test_an_officer_makes_a_plan(owing, staff, as_role, role):
    response = as_role(staff[role], role).post(
        f"/api/connections/{owing.pk}/payment-plans", PLAN, format="json"
    )

    (plan,) = response.json()["plans"]
    assert response.status_code == 201
    assert (plan["status"], plan["arrears"], plan["paid"], plan["createdBy"]) == (
        "kept",
        "10725.00",
        "0.00",
        staff[role].name,
    )
    assert [(row["dueDate"], row["amount"], row["missed"]) for row in plan["instalments"]] == [
        ("2024-03-01", "5362.50", False),
        ("2024-04-01", "5362.50", False),
    ]


@pytest.mark.parametrize("role", [Role.INVOICE_CREATOR, Role.AUDITOR, Role.CUSTOMER])
def test_other_roles_may_not_make_a_plan(owing, staff, as_role, role):
    response = as_role(staff[role], role).post(
        f"/api/connections/{owing.pk}/payment-plans", PLAN, format="json"
    )

    assert response.status_code == 403
    assert not PaymentPlan.objects.exists()


def test_another_providers_connection_is_not_found(owing, elsewhere, staff, as_role):
    officer = as_role(staff[Role.SUPER_CREATOR], Role.SUPER_CREATOR)

    read = officer.get(f"/api/connections/{elsewhere.pk}/collection")
    made = officer.post(f"/api/connections/{elsewhere.pk}/payment-plans", PLAN, format="json")

    assert (read.status_code, made.status_code) == (404, 404)
    assert not PaymentPlan.objects.exists()


def test_a_refused_plan_says_why_in_the_error_shape(owing, staff, as_role):
    officer = as_role(staff[Role.SUPER_CREATOR], Role.SUPER_CREATOR)

    response = officer.post(
        f"/api/connections/{owing.pk}/payment-plans", {**PLAN, "instalments": 0}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "payment_plan_refused"
    assert "from 1 to 12 instalments" in response.json()["detail"]
    assert not PaymentPlan.objects.exists()


def test_a_second_plan_is_a_conflict(owing, staff, as_role):
    officer = as_role(staff[Role.SUPER_CREATOR], Role.SUPER_CREATOR)
    officer.post(f"/api/connections/{owing.pk}/payment-plans", PLAN, format="json")

    response = officer.post(f"/api/connections/{owing.pk}/payment-plans", PLAN, format="json")

    assert (response.status_code, response.json()["code"]) == (409, "payment_plan_exists")


# --- the staff page ----------------------------------------------------------------------------------


def page_client(user, role: str) -> Client:
    client = Client()
    client.force_login(user)
    session = client.session
    session[SESSION_ROLE_KEY] = role
    session.save()
    return client


def test_the_staff_page_shows_the_debt_the_steps_and_makes_a_plan(owing, staff):
    officer = page_client(staff[Role.SUPER_CREATOR], Role.SUPER_CREATOR)

    shown = officer.get(f"/connections/{owing.pk}/collection")
    made = officer.post(
        f"/connections/{owing.pk}/collection",
        {"instalments": "2", "first_due_date": "2024-03-01", "reason": "At the counter"},
        follow=True,
    )

    text = shown.content.decode()
    assert shown.status_code == 200
    assert "10,725.00" in text and "Reminder" in text and 'data-testid="plan-form"' in text
    assert made.status_code == 200
    assert "The plan spreads 10725.00 over 2 instalments." in made.content.decode()
    assert PaymentPlan.objects.get().created_by == staff[Role.SUPER_CREATOR]


def test_the_staff_page_refuses_a_plan_next_to_its_field(owing, staff):
    officer = page_client(staff[Role.SUPER_CREATOR], Role.SUPER_CREATOR)

    response = officer.post(
        f"/connections/{owing.pk}/collection",
        {"instalments": "2", "first_due_date": "2024-01-01", "reason": "At the counter"},
    )

    assert response.status_code == 400
    assert "today or later" in response.content.decode()
    assert not PaymentPlan.objects.exists()


def test_an_auditor_reads_the_page_without_the_plan_form_and_may_not_post(owing, staff):
    auditor = page_client(staff[Role.AUDITOR], Role.AUDITOR)

    shown = auditor.get(f"/connections/{owing.pk}/collection")
    posted = auditor.post(
        f"/connections/{owing.pk}/collection",
        {"instalments": "2", "first_due_date": "2024-03-01", "reason": "x"},
    )

    assert shown.status_code == 200
    assert 'data-testid="plan-form"' not in shown.content.decode()
    assert posted.status_code == 403


def test_the_staff_page_of_another_providers_connection_is_not_found(owing, elsewhere, staff):
    officer = page_client(staff[Role.SUPER_CREATOR], Role.SUPER_CREATOR)

    assert officer.get(f"/connections/{elsewhere.pk}/collection").status_code == 404


# --- Django admin ------------------------------------------------------------------------------------


def test_the_providers_administrator_adds_a_level_through_the_service(owing, admin_user):
    client = Client()
    client.force_login(admin_user)

    added = client.post(
        "/admin/invoicing/dunninglevel/add/",
        {"days_after_due": "25", "action": "disconnection", "is_active": "on", "_save": "Save"},
    )
    refused = client.post(
        "/admin/invoicing/dunninglevel/add/",
        {"days_after_due": "30", "action": "reminder", "is_active": "on", "_save": "Save"},
    )

    level = DunningLevel.objects.get(days_after_due=25)
    assert added.status_code == 302
    assert (level.provider, level.action, level.created_by) == (owing.provider, "disconnection", admin_user)
    assert refused.status_code == 200
    assert "is the last level" in refused.content.decode()
    assert not DunningLevel.objects.filter(days_after_due=30).exists()


def test_an_officer_makes_a_plan_in_admin(owing, staff):
    client = Client()
    client.force_login(staff[Role.ADMIN])

    response = client.post(
        "/admin/invoicing/paymentplan/add/",
        {
            "connection": owing.pk,
            "instalments": "3",
            "first_due_date": "2024-03-01",
            "reason": "In admin",
            "_save": "Save",
        },
    )

    plan = PaymentPlan.objects.get()
    assert response.status_code == 302
    assert (plan.connection, plan.arrears, plan.instalments.count()) == (
        owing,
        owing.invoices.get().balance,
        3,
    )


def test_a_dunning_notice_is_listed_with_the_customers_messages(owing, elsewhere, staff, as_role):
    response = as_role(staff[Role.SUPER_CREATOR], Role.SUPER_CREATOR).get(
        "/api/messages", {"customer": owing.customer.number, "kind": "dunning_reminder"}
    )

    (row,) = response.json()["results"]
    assert (row["kind"], row["aboutType"], row["recipient"]) == (
        "dunning_reminder",
        "invoicing.dunningstep",
        owing.customer.email,
    )
