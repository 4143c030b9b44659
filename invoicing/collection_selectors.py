"""Reads of collections: a connection's debt, its dunning steps and payment plans, the provider's levels.

A plan's instalments are covered in order by what the plan's bills no longer owe of its arrears:
payments settle the oldest bills first (payments.py), so every payment on the connection counts
toward the plan until its bills are paid, and a payment undone would count no more.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet, Sum
from django.shortcuts import get_object_or_404
from django.utils import timezone

from billing.models import ServiceConnection
from billing.rating import NO_MONEY, money
from invoicing.models import (
    DisconnectionOrder,
    DunningCase,
    DunningLevel,
    DunningStep,
    Invoice,
    PaymentInstalment,
    PaymentPlan,
)
from invoicing.selectors import unpaid_after_due
from providers.tenancy import scope_to_provider


def dunning_level_list_for(*, user: Any) -> QuerySet[DunningLevel]:
    return scope_to_provider(DunningLevel.objects.all(), user).order_by("days_after_due")


def disconnection_order_list_for(*, user: Any, status: str = "") -> QuerySet[DisconnectionOrder]:
    """The provider's disconnection orders, oldest first (the field staff's round); `status`: only those."""
    orders = scope_to_provider(DisconnectionOrder.objects.all(), user).select_related(
        "connection", "customer", "event"
    )
    if status:
        orders = orders.filter(status=status)
    return orders.order_by("issued_on", "pk")


def disconnection_order_get_for(*, user: Any, order_id: int) -> DisconnectionOrder:
    return get_object_or_404(disconnection_order_list_for(user=user), pk=order_id)


def overdue_bills(connection: ServiceConnection) -> QuerySet[Invoice]:
    """The present customer's bills of the connection unpaid after their due date, oldest first."""
    return (
        Invoice.objects.filter(connection=connection, customer_id=connection.customer_id)
        .filter(unpaid_after_due(), balance__gt=0)
        .order_by("due_date", "period", "pk")
    )


@dataclass(frozen=True)
class InstalmentState:
    instalment: PaymentInstalment
    covered: Decimal  # of this instalment, by payments counted in order
    missed: bool  # due date passed, not covered


def plan_paid(plan: PaymentPlan) -> Decimal:
    """What the plan's bills no longer owe of its arrears: the payments (and credits) counted toward it."""
    owed = plan.invoices.aggregate(total=Sum("balance"))["total"] or NO_MONEY
    return max(plan.arrears - money(owed), NO_MONEY)


def plan_instalments(plan: PaymentPlan, *, today: date) -> list[InstalmentState]:
    """Each instalment with what is counted toward it, filling them in order."""
    left, states = plan_paid(plan), []
    for instalment in plan.instalments.order_by("position"):
        covered = min(left, instalment.amount)
        left -= covered
        missed = instalment.due_date < today and covered < instalment.amount
        states.append(InstalmentState(instalment, covered, missed))
    return states


@dataclass(frozen=True)
class PlanState:
    plan: PaymentPlan
    paid: Decimal
    instalments: list[InstalmentState]


@dataclass(frozen=True)
class CollectionStatus:
    connection: ServiceConnection
    overdue: Decimal  # owed now on bills unpaid after their due date
    case: DunningCase | None  # the open debt, if any
    steps: list[DunningStep]  # every step taken for the connection, newest first
    plans: list[PlanState]  # newest first


def collection_status(connection: ServiceConnection, *, today: date | None = None) -> CollectionStatus:
    """What the staff page and the API show of a connection (found through a scoped selector)."""
    today = today or timezone.localdate()
    owed = overdue_bills(connection).aggregate(total=Sum("balance"))["total"]
    plans = connection.payment_plans.select_related("created_by").order_by("-created_at", "-pk")
    return CollectionStatus(
        connection=connection,
        overdue=money(owed) if owed else NO_MONEY,  # SQLite sums decimals without their places
        case=connection.dunning_cases.filter(closed_on__isnull=True).select_related("level").first(),
        steps=list(
            DunningStep.objects.filter(connection=connection)
            .select_related("level", "notice")
            .prefetch_related("invoices")
            .order_by("-taken_on", "-pk")
        ),
        plans=[PlanState(plan, plan_paid(plan), plan_instalments(plan, today=today)) for plan in plans],
    )
