"""The dunning job: each overdue debt climbs the provider's levels (reminder, final notice, disconnection
order) one dated, audited step at a time, with its notice; a payment stops it, a kept payment plan
pauses it, a missed instalment resumes it where it stopped. Clocks are frozen, day by day."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django_celery_beat.models import PeriodicTask

from accounts.models import Message, MessageKind
from accounts.roles import Role
from auditing.models import AuditLog
from billing.models import ConnectionStatus, EventKind
from invoicing import tasks
from invoicing.models import (
    DisconnectionOrder,
    DisconnectionOrderStatus,
    DunningAction,
    DunningCase,
    DunningStep,
    PaymentPlan,
    PaymentPlanStatus,
)
from invoicing.services import (
    disconnection_order_carry_out,
    dunning_level_create,
    dunning_run,
    invoice_issue,
    invoices_mark_overdue,
    payment_plan_create,
    payment_post,
)
from tests.factories import FlatTariffFactory, ProviderFactory, UserFactory, billable_connection
from tests.invoicing.ledger import assert_ledger_holds

pytestmark = pytest.mark.django_db
D = Decimal
ZONE = ZoneInfo(settings.TIME_ZONE)
JANUARY = date(
    2024, 1, 1
)  # January's bill: issued 31 January, due 10 February: 9750.00, 10725.00 once surcharged


@pytest.fixture
def debtor(flat_provider):
    """Billable for January 2024 only (its last reading is of 28 January: a disconnection may follow)."""
    return billable_connection(flat_provider, months=1)


@pytest.fixture
def ladder(flat_provider, admin_user):
    """Reminder 5 days after the due date, final notice at 15, disconnection order at 25."""
    return [
        dunning_level_create(
            provider=flat_provider, days_after_due=days, action=action, created_by=admin_user
        )
        for days, action in (
            (5, DunningAction.REMINDER),
            (15, DunningAction.FINAL_NOTICE),
            (25, DunningAction.DISCONNECTION),
        )
    ]


@pytest.fixture
def day(time_machine, flat_provider):
    """Move the clock to 09:00 on `when` and run that day's jobs: the overdue job, then dunning."""

    def run(when: date, provider=None) -> int:
        time_machine.move_to(datetime(when.year, when.month, when.day, 9, tzinfo=ZONE), tick=False)
        invoices_mark_overdue(provider=provider or flat_provider)
        return dunning_run(provider=provider or flat_provider)

    return run


@pytest.fixture
def january(debtor, creator, time_machine):
    time_machine.move_to(datetime(2024, 2, 1, 9, tzinfo=ZONE), tick=False)
    return invoice_issue(connection=debtor, period=JANUARY, created_by=creator)


def actions(connection) -> list[tuple[str, date]]:
    return list(
        DunningStep.objects.filter(connection=connection)
        .order_by("taken_on")
        .values_list("action", "taken_on")
    )


def test_an_unpaid_debt_climbs_reminder_final_notice_and_disconnection_order(
    debtor, january, ladder, day, flat_provider, time_machine
):
    taken = [day(date(2024, 2, d)) for d in (11, 14, 15, 16, 24, 25)] + [
        day(date(2024, 3, 5)),
        day(date(2024, 3, 6)),
    ]

    assert taken == [0, 0, 1, 0, 0, 1, 0, 1]
    assert actions(debtor) == [
        (DunningAction.REMINDER, date(2024, 2, 15)),
        (DunningAction.FINAL_NOTICE, date(2024, 2, 25)),
        (DunningAction.DISCONNECTION, date(2024, 3, 6)),
    ]
    reminder, final, order = DunningStep.objects.filter(connection=debtor).order_by("taken_on")
    assert (reminder.days_overdue, reminder.balance, list(reminder.invoices.all())) == (
        5,
        D("10725.00"),
        [january],
    )
    assert [step.notice.kind for step in (reminder, final, order)] == [
        MessageKind.DUNNING_REMINDER,
        MessageKind.FINAL_NOTICE,
        MessageKind.DISCONNECTION_NOTICE,
    ]
    assert reminder.notice.recipient == debtor.customer.email
    # The order waits for the field staff: the supply is still on.
    debtor.refresh_from_db()
    assert debtor.status == ConnectionStatus.ACTIVE
    field_order = DisconnectionOrder.objects.get(connection=debtor)
    assert (field_order.status, field_order.step, field_order.overdue_balance) == (
        DisconnectionOrderStatus.OPEN,
        order,
        D("10725.00"),
    )
    assert order.order_number == field_order.number == f"{flat_provider.code}-DO-2024-000001"
    lineman = UserFactory(provider=flat_provider, roles=[Role.INVOICE_CREATOR])
    time_machine.move_to(datetime(2024, 3, 6, 15, tzinfo=ZONE), tick=False)
    disconnection_order_carry_out(
        order=field_order, effective_at=datetime(2024, 3, 6, 14, tzinfo=ZONE), by=lineman
    )
    debtor.refresh_from_db()
    cut = debtor.events.get(kind=EventKind.DISCONNECTED)
    assert debtor.status == ConnectionStatus.DISCONNECTED
    assert cut.order_number == field_order.number
    assert (cut.overdue_balance, cut.recorded_by) == (D("10725.00"), lineman)
    case = DunningCase.objects.get(connection=debtor)
    assert (case.level, case.last_step_on, case.closed_on) == (ladder[2], date(2024, 3, 6), None)
    audited = AuditLog.objects.filter(object_type="invoicing.dunningstep", action="create")
    assert audited.count() == 3


def test_the_job_run_twice_a_day_takes_each_level_once(debtor, january, ladder, day):
    first, second = day(date(2024, 2, 15)), day(date(2024, 2, 15))
    later = [day(date(2024, 4, d)) for d in (1, 2, 3)]

    assert (first, second) == (1, 0)
    assert later == [1, 0, 0]  # the final notice; the order waits its 10 days after it
    assert DunningStep.objects.filter(connection=debtor).count() == 2
    assert Message.objects.filter(kind=MessageKind.DUNNING_REMINDER).count() == 1


def test_after_missed_days_the_levels_come_one_at_a_time_with_their_notice_time(debtor, january, ladder, day):
    # Nothing ran from the due date until 10 March, 29 days after it: every level is due by its days.
    day(date(2024, 3, 10))
    day(date(2024, 3, 11))
    day(date(2024, 3, 19))
    day(date(2024, 3, 20))
    day(date(2024, 3, 29))
    day(date(2024, 3, 30))

    assert actions(debtor) == [
        (DunningAction.REMINDER, date(2024, 3, 10)),
        (
            DunningAction.FINAL_NOTICE,
            date(2024, 3, 20),
        ),  # 10 days after the reminder, as the levels space them
        (DunningAction.DISCONNECTION, date(2024, 3, 30)),
    ]


def test_a_payment_of_the_whole_debt_stops_it_and_closes_the_case(
    debtor, january, ladder, day, super_creator, cash
):
    day(date(2024, 2, 15))
    payment_post(invoice=january, amount=D("10725.00"), method=cash, received_by=super_creator)

    taken = [day(date(2024, 2, 25)), day(date(2024, 3, 6))]

    assert taken == [0, 0]
    assert actions(debtor) == [(DunningAction.REMINDER, date(2024, 2, 15))]
    assert DunningCase.objects.get(connection=debtor).closed_on == date(2024, 2, 25)
    debtor.refresh_from_db()
    assert debtor.status == ConnectionStatus.ACTIVE
    assert_ledger_holds(debtor)


def test_a_part_payment_does_not_stop_it(debtor, january, ladder, day, super_creator, cash):
    day(date(2024, 2, 15))
    payment_post(invoice=january, amount=D("10000.00"), method=cash, received_by=super_creator)

    day(date(2024, 2, 25))

    final = DunningStep.objects.get(connection=debtor, action=DunningAction.FINAL_NOTICE)
    assert final.balance == D("725.00")


def test_a_new_debt_after_the_case_closed_starts_again_at_the_first_level(
    flat_provider, ladder, day, creator, super_creator, cash, time_machine
):
    connection = billable_connection(flat_provider, months=2)
    time_machine.move_to(datetime(2024, 2, 1, 9, tzinfo=ZONE), tick=False)
    january = invoice_issue(connection=connection, period=JANUARY, created_by=creator)
    day(date(2024, 2, 15))
    payment_post(invoice=january, amount=D("10725.00"), method=cash, received_by=super_creator)
    day(date(2024, 2, 16))
    time_machine.move_to(datetime(2024, 3, 1, 9, tzinfo=ZONE), tick=False)
    invoice_issue(connection=connection, period=date(2024, 2, 1), created_by=creator)  # due 10 March

    day(date(2024, 3, 15))

    cases = DunningCase.objects.filter(connection=connection).order_by("opened_on")
    assert [(case.opened_on, case.closed_on) for case in cases] == [
        (date(2024, 2, 15), date(2024, 2, 16)),
        (date(2024, 3, 15), None),
    ]
    assert [step.action for step in cases[1].steps.all()] == [DunningAction.REMINDER]


def test_a_kept_plan_pauses_it_and_a_missed_instalment_resumes_it_at_the_next_level(
    debtor, january, ladder, day, super_creator, cash
):
    day(date(2024, 2, 15))  # the reminder
    plan = payment_plan_create(
        connection=debtor,
        instalments=3,
        first_due_date=date(2024, 3, 1),
        reason="Lost his job; pays monthly",
        created_by=super_creator,
    )
    payment_post(invoice=january, amount=D("3575.00"), method=cash, received_by=super_creator)

    paused = [day(date(2024, 2, 25)), day(date(2024, 3, 6)), day(date(2024, 3, 31))]
    day(date(2024, 4, 2))  # the second instalment, due 1 April, is missed

    plan.refresh_from_db()
    assert paused == [0, 0, 0]
    assert (plan.status, plan.ended_on) == (PaymentPlanStatus.BROKEN, date(2024, 4, 2))
    assert actions(debtor) == [
        (DunningAction.REMINDER, date(2024, 2, 15)),
        (DunningAction.FINAL_NOTICE, date(2024, 4, 2)),  # never the reminder again
    ]


def test_a_plan_paid_off_completes_and_the_case_closes(debtor, january, ladder, day, super_creator, cash):
    day(date(2024, 2, 15))
    plan = payment_plan_create(
        connection=debtor,
        instalments=2,
        first_due_date=date(2024, 3, 1),
        reason="Two parts",
        created_by=super_creator,
    )
    payment_post(invoice=january, amount=D("5362.50"), method=cash, received_by=super_creator)
    day(date(2024, 3, 2))
    payment_post(invoice=january, amount=D("5362.50"), method=cash, received_by=super_creator)

    day(date(2024, 3, 20))

    plan.refresh_from_db()
    assert (plan.status, plan.ended_on) == (PaymentPlanStatus.COMPLETED, date(2024, 3, 20))
    assert DunningCase.objects.get(connection=debtor).closed_on == date(2024, 3, 20)
    assert actions(debtor) == [(DunningAction.REMINDER, date(2024, 2, 15))]


def test_a_bill_overdue_outside_the_plan_is_chased_while_the_plan_is_kept(
    flat_provider, ladder, day, creator, super_creator, time_machine
):
    connection = billable_connection(flat_provider, months=2)
    time_machine.move_to(datetime(2024, 2, 1, 9, tzinfo=ZONE), tick=False)
    invoice_issue(connection=connection, period=JANUARY, created_by=creator)
    day(date(2024, 2, 12))
    payment_plan_create(
        connection=connection,
        instalments=6,
        first_due_date=date(2024, 5, 1),
        reason="Six months",
        created_by=creator,
    )
    time_machine.move_to(datetime(2024, 3, 1, 9, tzinfo=ZONE), tick=False)
    february = invoice_issue(connection=connection, period=date(2024, 2, 1), created_by=creator)

    day(date(2024, 3, 15))

    (step,) = DunningStep.objects.filter(connection=connection)
    assert (step.action, list(step.invoices.all())) == (DunningAction.REMINDER, [february])
    assert PaymentPlan.objects.get(connection=connection).status == PaymentPlanStatus.KEPT


def test_a_customer_without_an_address_gets_no_notice_but_the_step_is_taken(debtor, january, ladder, day):
    debtor.customer.email = ""
    debtor.customer.save()

    day(date(2024, 2, 15))

    step = DunningStep.objects.get(connection=debtor)
    assert (step.action, step.notice) == (DunningAction.REMINDER, None)


def test_a_customer_who_wants_no_reminders_still_gets_the_final_notice(debtor, january, ladder, day):
    debtor.customer.notify_reminders = False
    debtor.customer.save()

    day(date(2024, 2, 15))
    day(date(2024, 2, 25))

    reminder, final = DunningStep.objects.filter(connection=debtor).order_by("taken_on")
    assert reminder.notice is None
    assert final.notice.kind == MessageKind.FINAL_NOTICE


def test_a_disconnected_connection_gets_the_notice_and_no_second_order(
    debtor, january, ladder, day, super_creator, time_machine
):
    from billing.lifecycle import connection_disconnect

    day(date(2024, 3, 1))
    time_machine.move_to(datetime(2024, 3, 2, 9, tzinfo=ZONE), tick=False)
    connection_disconnect(
        connection=debtor,
        reason="Customer asked",
        effective_at=datetime(2024, 3, 2, 9, tzinfo=ZONE),
        by=super_creator,
    )
    day(date(2024, 3, 11))
    day(date(2024, 3, 21))

    order = DunningStep.objects.get(connection=debtor, action=DunningAction.DISCONNECTION)
    assert (order.order_number, order.note) == ("", "No order issued: the connection is disconnected.")
    assert order.notice.kind == MessageKind.DISCONNECTION_NOTICE


def test_one_providers_job_never_touches_another_providers_debts(debtor, january, ladder, day, time_machine):
    other = ProviderFactory()
    FlatTariffFactory(provider=other)
    elsewhere = billable_connection(other, months=1)
    time_machine.move_to(datetime(2024, 2, 1, 9, tzinfo=ZONE), tick=False)
    invoice_issue(
        connection=elsewhere,
        period=JANUARY,
        created_by=UserFactory(provider=other, roles=["Invoice_Creator"]),
    )

    day(date(2024, 2, 15))
    taken_elsewhere = day(date(2024, 2, 15), provider=other)  # it has no levels of its own

    assert taken_elsewhere == 0
    assert actions(debtor) == [(DunningAction.REMINDER, date(2024, 2, 15))]
    assert not DunningStep.objects.filter(connection=elsewhere).exists()


def test_the_job_works_in_bounded_batches(flat_provider, ladder, day, creator, time_machine):
    connections = [billable_connection(flat_provider, months=1) for _ in range(3)]
    time_machine.move_to(datetime(2024, 2, 1, 9, tzinfo=ZONE), tick=False)
    for connection in connections:
        invoice_issue(connection=connection, period=JANUARY, created_by=creator)
    time_machine.move_to(datetime(2024, 2, 15, 9, tzinfo=ZONE), tick=False)
    invoices_mark_overdue(provider=flat_provider)

    taken = dunning_run(provider=flat_provider, batch=2)

    assert taken == 3
    assert DunningStep.objects.filter(action=DunningAction.REMINDER).count() == 3


def test_the_daily_task_runs_every_active_provider_and_is_scheduled(debtor, january, ladder, time_machine):
    time_machine.move_to(datetime(2024, 2, 15, 9, tzinfo=ZONE), tick=False)

    tasks.dunning()

    assert actions(debtor) == [(DunningAction.REMINDER, date(2024, 2, 15))]
    assert PeriodicTask.objects.get(name="Dunning levels and payment plans").task == "invoicing.dunning"
