"""Collections after the late surcharge: the provider's dunning levels, the daily job that moves each
debt up them, and payment plans that pause it.

The debt of a connection is what its present customer owes on bills unpaid after their due date
(`unpaid_after_due`), less the bills a kept payment plan covers. The job (`dunning_advance`) looks at
each connection of a provider that owes, has an open case or has a kept plan, in batches by id:

1. its kept plan, if any, is reviewed first: completed once its bills owe nothing, broken once an
   instalment's due date has passed without the payments to cover it (instalments are covered in
   order by what the plan's bills no longer owe);
2. nothing overdue at all: the open case closes (paid). Everything overdue covered by the kept plan:
   the case is paused, no step. Otherwise a case is opened if none is, and at most one level is taken.

The next level is the first active one above the level the case reached (a resumed case goes on
from where it stopped, never repeats a level). It is due once the oldest unpaid bill is that many
days past its due date *and* the days between this level and the one before have passed since the
previous step. So a job that missed days takes the levels one a day, never skipping one, and a
customer always gets at least the notice time the levels promise between a final notice and the
disconnection order: a utility may not cut a customer who was never warned. Running it twice a day
takes nothing the second time (the next level is at least a day later).

The disconnection order is numbered and listed for the field staff, who cut the supply on site
(disconnection_orders.py); the job withdraws an open order once its debt is paid or covered by a kept
plan. The reconnection fee comes with the reconnection, as for any order. A connection that is not
connected gets the notice, and no order.
"""

from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import MessageKind, User
from billing.models import ConnectionStatus, ServiceConnection
from billing.months import add_months, days_in_month
from billing.rating import CENT, NO_MONEY, money
from invoicing.collection_selectors import overdue_bills, plan_instalments, plan_paid
from invoicing.models import (
    DunningAction,
    DunningCase,
    DunningLevel,
    DunningStep,
    Invoice,
    PaymentInstalment,
    PaymentPlan,
    PaymentPlanStatus,
)
from invoicing.selectors import unpaid_after_due
from invoicing.services.disconnection_orders import disconnection_order_open, disconnection_orders_withdraw
from invoicing.services.errors import DunningLevelRefused, PaymentPlanExists, PaymentPlanRefused
from invoicing.services.locks import lock_connection
from invoicing.services.notices import dunning_notify
from providers.models import Provider

DEFAULT_BATCH = 500
# A plan longer than a year is a write-off in instalments, not a plan: the officer's policy limit.
PLAN_MAX_INSTALMENTS = 12
PLAN_MAX_DAYS = 366

NOTICE_OF = {
    DunningAction.REMINDER: MessageKind.DUNNING_REMINDER,
    DunningAction.FINAL_NOTICE: MessageKind.FINAL_NOTICE,
    DunningAction.DISCONNECTION: MessageKind.DISCONNECTION_NOTICE,
}


# --- levels --------------------------------------------------------------------------------------


def _check_ladder(provider: Provider, *, days: int, action: str, exclude: int | None) -> None:
    if not 1 <= days <= 365:
        raise DunningLevelRefused(
            _("A level is taken between 1 and 365 days after the due date."), field="daysAfterDue"
        )
    others = DunningLevel.objects.filter(provider=provider, is_active=True).exclude(pk=exclude)
    if DunningLevel.objects.filter(provider=provider, days_after_due=days).exclude(pk=exclude).exists():
        raise DunningLevelRefused(
            _("%(name)s has a level at %(days)s days already: change that one, or choose other days.")
            % {"name": provider.name, "days": days},
            field="daysAfterDue",
        )
    # Once the supply is cut, a reminder says nothing more: the disconnection order is the last level.
    order = others.filter(action=DunningAction.DISCONNECTION).first()
    if order is not None and days > order.days_after_due:
        raise DunningLevelRefused(
            _(
                "The disconnection order at %(days_after_due)s days is the last level: a level comes "
                "before it."
            )
            % {"days_after_due": order.days_after_due},
            field="daysAfterDue",
        )
    if action == DunningAction.DISCONNECTION and others.filter(days_after_due__gt=days).exists():
        raise DunningLevelRefused(
            _("The disconnection order is the last level: give it more days than every other level."),
            field="daysAfterDue",
        )


@transaction.atomic
def dunning_level_create(
    *, provider: Provider, days_after_due: int, action: str, created_by: User
) -> DunningLevel:
    """A new level of the provider's ladder (its administrator's choice)."""
    Provider.objects.select_for_update().filter(pk=provider.pk).values_list(
        "pk"
    ).get()  # one ladder edit at a time
    if action not in DunningAction.values:
        raise DunningLevelRefused(
            _("The action is a reminder, a final notice or a disconnection order."), field="action"
        )
    _check_ladder(provider, days=days_after_due, action=action, exclude=None)
    return DunningLevel.objects.create(
        provider=provider, days_after_due=days_after_due, action=action, created_by=created_by
    )


@transaction.atomic
def dunning_level_update(
    *,
    level: DunningLevel,
    days_after_due: int | None = None,
    action: str | None = None,
    is_active: bool | None = None,
) -> DunningLevel:
    """Change a level's days or action, or switch it off or on. Steps already taken keep their action."""
    Provider.objects.select_for_update().filter(pk=level.provider_id).values_list("pk").get()
    level = DunningLevel.objects.select_related("provider").get(pk=level.pk)
    level.days_after_due = level.days_after_due if days_after_due is None else days_after_due
    level.action = level.action if action is None else action
    level.is_active = level.is_active if is_active is None else is_active
    if level.action not in DunningAction.values:
        raise DunningLevelRefused(
            _("The action is a reminder, a final notice or a disconnection order."), field="action"
        )
    if level.is_active:
        _check_ladder(level.provider, days=level.days_after_due, action=level.action, exclude=level.pk)
    level.save()
    return level


# --- payment plans -------------------------------------------------------------------------------


def instalment_amounts(total: Decimal, count: int) -> list[Decimal]:
    """`total` in `count` parts: each the total / count rounded down to the cent, the last taking the
    remainder, so the parts add up to the total exactly and the last is never the smaller."""
    share = (total / count).quantize(CENT, rounding=ROUND_DOWN)
    return [share] * (count - 1) + [total - share * (count - 1)]


def instalment_dates(first: date, count: int) -> list[date]:
    """Monthly from `first`, on the same day of the month (the month's last day where it is shorter)."""
    dates = []
    for step in range(count):
        month = add_months(first, step)
        dates.append(month.replace(day=min(first.day, days_in_month(month.year, month.month))))
    return dates


@transaction.atomic
def payment_plan_create(
    *, connection: ServiceConnection, instalments: int, first_due_date: date, reason: str, created_by: User
) -> PaymentPlan:
    """Spread what the connection's customer owes after due dates over `instalments` monthly parts from
    `first_due_date`. Dunning pauses while the plan is kept."""
    connection = lock_connection(connection)
    reason = (reason or "").strip()
    if not reason:
        raise PaymentPlanRefused(_("Give the reason for the plan: it is kept with it."), field="reason")
    if not 1 <= instalments <= PLAN_MAX_INSTALMENTS:
        raise PaymentPlanRefused(
            _("A plan has from 1 to %(plan_max_instalments)s instalments.")
            % {"plan_max_instalments": PLAN_MAX_INSTALMENTS},
            field="instalments",
            max=PLAN_MAX_INSTALMENTS,
        )
    today = timezone.localdate()
    if first_due_date < today:
        raise PaymentPlanRefused(
            _("The first instalment is due today or later, not %(first_due_date)s.")
            % {"first_due_date": first_due_date},
            field="firstDueDate",
        )
    dates = instalment_dates(first_due_date, instalments)
    if dates[-1] > today + timedelta(days=PLAN_MAX_DAYS):
        raise PaymentPlanRefused(
            _(
                "The last instalment would be due on %(dates)s: a plan ends within a year, by %(today)s. "
                "Give fewer instalments or an earlier first date."
            )
            % {"dates": dates[-1], "today": today + timedelta(days=PLAN_MAX_DAYS)},
            field="instalments",
        )
    kept = connection.payment_plans.filter(status=PaymentPlanStatus.KEPT).first()
    if kept is not None:
        raise PaymentPlanExists(
            _(
                "Connection %(number)s has a kept plan already (of %(arrears)s); it ends when paid or when "
                "an instalment is missed."
            )
            % {"number": connection.number, "arrears": kept.arrears},
            planId=kept.pk,
        )
    bills = list(overdue_bills(connection))
    arrears = money(sum((bill.balance for bill in bills), NO_MONEY))
    if arrears <= 0:
        raise PaymentPlanRefused(
            _("%(name)s owes nothing after a due date on connection %(number)s: a plan spreads arrears.")
            % {"name": connection.customer.name, "number": connection.number},
            field="connection",
        )
    plan = PaymentPlan.objects.create(
        provider_id=connection.provider_id,
        connection=connection,
        customer_id=connection.customer_id,
        arrears=arrears,
        reason=reason,
        created_by=created_by,
    )
    plan.invoices.set(bills)
    for position, (due, amount) in enumerate(
        zip(dates, instalment_amounts(arrears, instalments), strict=True), start=1
    ):
        PaymentInstalment.objects.create(
            provider_id=connection.provider_id, plan=plan, position=position, due_date=due, amount=amount
        )
    return plan


def _plan_review(plan: PaymentPlan, today: date) -> None:
    if plan_paid(plan) >= plan.arrears:
        plan.status = PaymentPlanStatus.COMPLETED
    elif any(state.missed for state in plan_instalments(plan, today=today)):
        plan.status = PaymentPlanStatus.BROKEN
    else:
        return
    plan.ended_on = today
    plan.save(update_fields=["status", "ended_on"])


# --- the daily job -------------------------------------------------------------------------------


def _owing(provider: Provider) -> QuerySet[ServiceConnection]:
    """The provider's connections the job looks at: those owing after a due date, with an open case, or
    with a kept plan."""
    overdue = Invoice.objects.filter(connection=OuterRef("pk"), customer=OuterRef("customer")).filter(
        unpaid_after_due(), balance__gt=0
    )
    return ServiceConnection.objects.filter(provider=provider).filter(
        Exists(overdue)
        | Exists(DunningCase.objects.filter(connection=OuterRef("pk"), closed_on__isnull=True))
        | Exists(PaymentPlan.objects.filter(connection=OuterRef("pk"), status=PaymentPlanStatus.KEPT))
    )


@transaction.atomic
def dunning_advance(
    *, provider: Provider, after_id: int = 0, batch: int = DEFAULT_BATCH
) -> tuple[int, int | None]:
    """One batch of the daily job: up to `batch` of the provider's owing connections with ids above
    `after_id`, each locked (in id order, as every money path locks them) and moved on by the rules
    above. Returns the steps taken and the last id looked at (None: no more)."""
    ids = list(_owing(provider).filter(pk__gt=after_id).order_by("pk").values_list("pk", flat=True)[:batch])
    if not ids:
        return 0, None
    today = timezone.localdate()
    levels = list(DunningLevel.objects.filter(provider=provider, is_active=True).order_by("days_after_due"))
    taken = 0
    for connection_id in ids:
        connection = lock_connection(ServiceConnection(pk=connection_id))
        taken += _advance(connection, levels, today)
    return taken, ids[-1]


def dunning_run(*, provider: Provider, batch: int = DEFAULT_BATCH) -> int:
    """The whole daily job for one provider, batch by batch, each its own transaction; returns the steps taken."""
    taken, after = 0, 0
    while after is not None:
        steps, after = dunning_advance(provider=provider, after_id=after, batch=batch)
        taken += steps
    return taken


def _advance(connection: ServiceConnection, levels: list[DunningLevel], today: date) -> int:
    plan = connection.payment_plans.filter(status=PaymentPlanStatus.KEPT).first()
    if plan is not None:
        _plan_review(plan, today)
    disconnection_orders_withdraw(connection=connection)
    case = (
        DunningCase.objects.filter(connection=connection, closed_on__isnull=True)
        .select_related("level")
        .first()
    )
    overdue = overdue_bills(connection)
    if case is not None and case.customer_id != connection.customer_id:
        case.closed_on = today  # the customer moved out: their debt is theirs, this connection's case is over
        case.save(update_fields=["closed_on"])
        case = None
    if not overdue.exists():
        if case is not None:
            case.closed_on = today
            case.save(update_fields=["closed_on"])
        return 0
    if plan is not None and plan.status == PaymentPlanStatus.KEPT:
        overdue = overdue.exclude(pk__in=plan.invoices.values("pk"))
    bills = list(overdue)
    if not bills:
        return 0  # all covered by the kept plan: paused
    if case is None:
        case = DunningCase.objects.create(
            provider_id=connection.provider_id,
            connection=connection,
            customer_id=connection.customer_id,
            opened_on=today,
        )
    reached = case.level.days_after_due if case.level else 0
    level = next((row for row in levels if row.days_after_due > reached), None)
    if level is None:
        return 0
    days_overdue = (today - bills[0].due_date).days
    if days_overdue < level.days_after_due:
        return 0
    if case.last_step_on is not None and (today - case.last_step_on).days < level.days_after_due - reached:
        return 0
    _step(connection, case, level, bills, days_overdue, today)
    return 1


def _step(
    connection: ServiceConnection,
    case: DunningCase,
    level: DunningLevel,
    bills: list[Invoice],
    days_overdue: int,
    today: date,
) -> DunningStep:
    balance = money(sum((bill.balance for bill in bills), NO_MONEY))
    step = DunningStep.objects.create(
        provider_id=connection.provider_id,
        case=case,
        connection=connection,
        customer_id=case.customer_id,
        level=level,
        action=level.action,
        taken_on=today,
        days_overdue=days_overdue,
        balance=balance,
    )
    step.invoices.set(bills)
    if level.action == DunningAction.DISCONNECTION:
        if connection.status == ConnectionStatus.ACTIVE:
            order = disconnection_order_open(
                connection=connection,
                reason=f"Dunning level at {level.days_after_due} days: {balance} overdue for {days_overdue} days.",
                step=step,
            )
            step.order_number = order.number
        else:
            step.note = f"No order issued: the connection is {connection.get_status_display().lower()}."
    notices = dunning_notify(kind=NOTICE_OF[level.action], step=step)
    step.notice_id = notices[0] if notices else None
    if step.order_number or step.note or step.notice_id:
        step.save(update_fields=["order_number", "note", "notice"])
    case.level, case.last_step_on = level, today
    case.save(update_fields=["level", "last_step_on"])
    return step
