"""payment_plan_create and the dunning levels' services: what they make, and every refusal, with nothing
half-written."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings

from auditing.models import AuditLog
from invoicing.models import DunningAction, DunningLevel, PaymentPlan, PaymentPlanStatus
from invoicing.services import (
    DunningLevelRefused,
    PaymentPlanExists,
    PaymentPlanRefused,
    dunning_level_create,
    dunning_level_update,
    instalment_amounts,
    invoice_issue,
    invoices_mark_overdue,
    payment_plan_create,
)

pytestmark = pytest.mark.django_db
D = Decimal
ZONE = ZoneInfo(settings.TIME_ZONE)


@pytest.fixture
def overdue(connection, creator, time_machine):
    """January's bill (9750.00, due 10 February), surcharged on 20 February: 10725.00 overdue."""
    time_machine.move_to(datetime(2024, 2, 1, 9, tzinfo=ZONE), tick=False)
    invoice = invoice_issue(connection=connection, period=date(2024, 1, 1), created_by=creator)
    time_machine.move_to(datetime(2024, 2, 20, 9, tzinfo=ZONE), tick=False)
    invoices_mark_overdue(provider=connection.provider)
    return invoice


def plan(connection, officer, **fields):
    values = {
        "instalments": 3,
        "first_due_date": date(2024, 3, 1),
        "reason": "Agreed at the counter",
        **fields,
    }
    return payment_plan_create(connection=connection, created_by=officer, **values)


def test_a_plan_spreads_the_overdue_bills_over_monthly_instalments(connection, overdue, super_creator):
    made = plan(connection, super_creator, instalments=4, first_due_date=date(2024, 3, 31))

    assert (made.arrears, made.status, list(made.invoices.all())) == (
        D("10725.00"),
        PaymentPlanStatus.KEPT,
        [overdue],
    )
    assert list(made.instalments.values_list("position", "due_date", "amount")) == [
        (1, date(2024, 3, 31), D("2681.25")),
        (2, date(2024, 4, 30), D("2681.25")),  # April has no 31st
        (3, date(2024, 5, 31), D("2681.25")),
        (4, date(2024, 6, 30), D("2681.25")),
    ]
    assert AuditLog.objects.filter(object_type="invoicing.paymentplan", action="create").count() == 1
    assert AuditLog.objects.filter(object_type="invoicing.paymentinstalment", action="create").count() == 4


def test_instalments_add_up_to_the_arrears_exactly_the_last_taking_the_remainder():
    assert instalment_amounts(D("100.00"), 3) == [D("33.33"), D("33.33"), D("33.34")]
    assert instalment_amounts(D("200.00"), 3) == [D("66.66"), D("66.66"), D("66.68")]
    assert instalment_amounts(D("0.05"), 1) == [D("0.05")]
    assert sum(instalment_amounts(D("10725.01"), 7)) == D("10725.01")


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"instalments": 0}, "instalments", "from 1 to 12 instalments"),
        ({"instalments": -2}, "instalments", "from 1 to 12 instalments"),
        ({"instalments": 13}, "instalments", "from 1 to 12 instalments"),
        ({"instalments": 12, "first_due_date": date(2024, 6, 1)}, "instalments", "a plan ends within a year"),
        ({"first_due_date": date(2024, 2, 19)}, "firstDueDate", "today or later"),
        ({"reason": "  "}, "reason", "reason"),
    ],
)
def test_a_plan_is_refused_beyond_its_limits(connection, overdue, super_creator, fields, field, message):
    with pytest.raises(PaymentPlanRefused, match=message) as refused:
        plan(connection, super_creator, **fields)

    assert refused.value.field == field
    assert not PaymentPlan.objects.exists()


def test_a_plan_is_refused_when_nothing_is_overdue(connection, creator, super_creator, time_machine):
    time_machine.move_to(datetime(2024, 2, 5, 9, tzinfo=ZONE), tick=False)
    invoice_issue(connection=connection, period=date(2024, 1, 1), created_by=creator)  # due 10 February

    with pytest.raises(PaymentPlanRefused, match="owes nothing after a due date"):
        plan(connection, super_creator)

    assert not PaymentPlan.objects.exists()


def test_a_second_plan_is_refused_while_one_is_kept(connection, overdue, super_creator):
    first = plan(connection, super_creator)

    with pytest.raises(PaymentPlanExists) as refused:
        plan(connection, super_creator, instalments=2)

    assert (refused.value.status, refused.value.extra) == (409, {"planId": first.pk})
    assert PaymentPlan.objects.count() == 1


def test_a_level_at_the_same_days_as_another_is_refused(flat_provider, admin_user):
    dunning_level_create(
        provider=flat_provider, days_after_due=5, action=DunningAction.REMINDER, created_by=admin_user
    )

    with pytest.raises(DunningLevelRefused, match="at 5 days already"):
        dunning_level_create(
            provider=flat_provider, days_after_due=5, action=DunningAction.FINAL_NOTICE, created_by=admin_user
        )


@pytest.mark.parametrize("days", [0, 366])
def test_a_level_out_of_range_is_refused(flat_provider, admin_user, days):
    with pytest.raises(DunningLevelRefused, match="between 1 and 365"):
        dunning_level_create(
            provider=flat_provider, days_after_due=days, action=DunningAction.REMINDER, created_by=admin_user
        )


def test_the_disconnection_order_is_the_last_level(flat_provider, admin_user):
    order = dunning_level_create(
        provider=flat_provider, days_after_due=20, action=DunningAction.DISCONNECTION, created_by=admin_user
    )

    with pytest.raises(DunningLevelRefused, match="is the last level"):
        dunning_level_create(
            provider=flat_provider, days_after_due=30, action=DunningAction.REMINDER, created_by=admin_user
        )
    with pytest.raises(DunningLevelRefused, match="is the last level"):
        dunning_level_create(
            provider=flat_provider,
            days_after_due=10,
            action=DunningAction.DISCONNECTION,
            created_by=admin_user,
        )
    # Switched off, it no longer bounds the ladder.
    dunning_level_update(level=order, is_active=False)
    later = dunning_level_create(
        provider=flat_provider, days_after_due=30, action=DunningAction.REMINDER, created_by=admin_user
    )
    assert later.days_after_due == 30


def test_levels_of_two_providers_are_apart(flat_provider, other_provider, admin_user):
    dunning_level_create(
        provider=flat_provider, days_after_due=5, action=DunningAction.REMINDER, created_by=admin_user
    )
    dunning_level_create(
        provider=other_provider, days_after_due=5, action=DunningAction.REMINDER, created_by=admin_user
    )

    assert DunningLevel.objects.filter(days_after_due=5).count() == 2
