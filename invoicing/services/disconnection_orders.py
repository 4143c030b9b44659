"""Disconnection orders for non-payment: issued, carried out on site, or withdrawn.

The dunning job issues an order (`disconnection_order_open`) and the supply stays on: field staff find
it in their list and carry it out at the meter (`disconnection_order_carry_out`), through the
connection's disconnect step with the reading they take. The visit checks the debt again: an order whose
debt was paid or covered by a kept payment plan meanwhile, or whose connection is no longer connected,
is withdrawn instead, and nobody is cut for a debt they no longer owe. The dunning job withdraws such
orders too, the day it finds them (`disconnection_orders_withdraw`).

An officer on site issues and carries out an order in one step (`disconnection_order_issue`); an open
order of the connection is the one carried out, never a second number.

Locks: the connection, then its orders; the document counter last (locks.py).
"""

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from billing.lifecycle import LifecycleRefused, connection_disconnect, require_reason, require_status
from billing.models import ConnectionEvent, ConnectionStatus, DisconnectionGround, ServiceConnection
from billing.rating import NO_MONEY, money
from config.errors import Conflict
from invoicing.models import (
    DisconnectionOrder,
    DisconnectionOrderStatus,
    DocumentSeries,
    DunningStep,
    Invoice,
    PaymentPlan,
    PaymentPlanStatus,
)
from invoicing.selectors import unpaid_after_due
from invoicing.services.locks import lock_connection
from invoicing.services.numbering import take_numbers


class OrderClosed(Conflict):
    code = "disconnection_order_closed"


def uncovered_overdue(connection: ServiceConnection) -> Decimal:
    """What the connection's present customer owes after the due date on bills no kept payment plan
    covers: the ground for cutting their supply."""
    kept = PaymentPlan.objects.filter(connection=connection, status=PaymentPlanStatus.KEPT)
    owed = (
        Invoice.objects.filter(connection=connection, customer_id=connection.customer_id)
        .filter(unpaid_after_due(), balance__gt=0)
        .exclude(payment_plans__in=kept)
        .aggregate(total=Sum("balance"))["total"]
    )
    return money(owed) if owed else NO_MONEY  # SQLite sums decimals without their places


def _refuse_unless_owed(connection: ServiceConnection, overdue: Decimal) -> None:
    if overdue <= 0:
        raise LifecycleRefused(
            _(
                "%(name)s owes nothing overdue on connection %(number)s that a payment plan does not "
                "cover: only a bill unpaid after its due date is ground for a disconnection order. "
                "Disconnect on request instead if the customer asked."
            )
            % {"name": connection.customer.name, "number": connection.number},
            field="ground",
        )


def _number(connection: ServiceConnection) -> str:
    (number,) = take_numbers(
        provider=connection.provider,
        series=DocumentSeries.DISCONNECTION,
        year=timezone.localdate().year,
        count=1,
    )
    return number


def _open_order(connection: ServiceConnection) -> DisconnectionOrder | None:
    return (
        DisconnectionOrder.objects.select_for_update()
        .filter(connection=connection, status=DisconnectionOrderStatus.OPEN)
        .first()
    )


def disconnection_order_open(
    *, connection: ServiceConnection, reason: str, step: DunningStep
) -> DisconnectionOrder:
    """The dunning job's order, for the caller's locked, active connection: numbered, listed for the
    field staff, the supply still on. An order already open for the connection is the one returned."""
    existing = _open_order(connection)
    if existing is not None:
        return existing
    overdue = uncovered_overdue(connection)
    _refuse_unless_owed(connection, overdue)
    return DisconnectionOrder.objects.create(
        provider_id=connection.provider_id,
        connection=connection,
        customer_id=connection.customer_id,
        number=_number(connection),
        issued_on=timezone.localdate(),
        overdue_balance=overdue,
        reason=reason[:300],
        step=step,
    )


def _withdraw(order: DisconnectionOrder, *, reason: str, by: User | None) -> DisconnectionOrder:
    order.status = DisconnectionOrderStatus.WITHDRAWN
    order.withdrawn_reason = reason[:300]
    order.closed_by, order.closed_at = by, timezone.now()
    order.save(update_fields=["status", "withdrawn_reason", "closed_by", "closed_at"])
    return order


def withdrawal_ground(connection: ServiceConnection) -> str:
    """Why an open order of the caller's locked connection may no longer be carried out; empty: it may."""
    if connection.status != ConnectionStatus.ACTIVE:
        return f"The connection is {connection.get_status_display().lower()}: there is no supply to cut."
    if uncovered_overdue(connection) <= 0:
        return "Nothing is overdue any more that a kept payment plan does not cover."
    return ""


def disconnection_orders_withdraw(*, connection: ServiceConnection) -> int:
    """Withdraw the caller's locked connection's open order if its ground is gone (the dunning job,
    each day); returns how many were withdrawn."""
    order = _open_order(connection)
    if order is None:
        return 0
    ground = withdrawal_ground(connection)
    if not ground:
        return 0
    _withdraw(order, reason=ground, by=None)
    return 1


def _carry_out(
    order: DisconnectionOrder,
    connection: ServiceConnection,
    *,
    overdue: Decimal,
    effective_at: datetime,
    by: User,
    registers: dict[str, Decimal] | None,
    reason: str,
) -> ConnectionEvent:
    event = connection_disconnect(
        connection=connection,
        reason=reason,
        effective_at=effective_at,
        by=by,
        registers=registers,
        ground=DisconnectionGround.NON_PAYMENT,
        order_number=order.number,
        overdue_balance=overdue,
    )
    order.status, order.event = DisconnectionOrderStatus.CARRIED_OUT, event
    order.closed_by, order.closed_at = by, timezone.now()
    if order.pk is None:  # an officer's order, issued on site: written once, carried out
        order.save()
    else:
        order.save(update_fields=["status", "event", "closed_by", "closed_at"])
    return event


@transaction.atomic
def disconnection_order_carry_out(
    *,
    order: DisconnectionOrder,
    effective_at: datetime,
    by: User,
    registers: dict[str, Decimal] | None = None,
    note: str = "",
) -> DisconnectionOrder:
    """Field staff at the meter: cut the supply on an open order, with the reading they take. When the
    debt was paid or covered by a kept plan meanwhile, or the connection is no longer connected, the
    order is withdrawn instead and the supply stays on. Returns the order as it now stands."""
    connection = lock_connection(order.connection)
    order = DisconnectionOrder.objects.select_for_update().get(pk=order.pk)
    if order.status != DisconnectionOrderStatus.OPEN:
        raise OrderClosed(
            _("Disconnection order %(number)s is %(lower)s already; nothing is left to do on it.")
            % {"number": order.number, "lower": order.get_status_display().lower()},
        )
    if timezone.localtime(effective_at).date() < order.issued_on:
        raise LifecycleRefused(
            _("Order %(number)s was issued on %(issued_on)s: the supply is cut on or after that day.")
            % {"number": order.number, "issued_on": order.issued_on},
            field="effectiveAt",
        )
    ground = withdrawal_ground(connection)
    if ground:
        return _withdraw(order, reason=ground, by=by)
    reason = f"Disconnection order {order.number}: {order.reason}"
    if note.strip():
        reason = f"{reason} On site: {note.strip()}"
    _carry_out(
        order,
        connection,
        overdue=uncovered_overdue(connection),
        effective_at=effective_at,
        by=by,
        registers=registers,
        reason=reason[:300],
    )
    return order


@transaction.atomic
def disconnection_order_issue(
    *,
    connection: ServiceConnection,
    reason: str,
    effective_at: datetime,
    by: User,
    registers: dict[str, Decimal] | None = None,
) -> ConnectionEvent:
    """An officer on site disconnects for non-payment: refused unless the customer owes an overdue
    balance no kept plan covers, which the numbered order keeps as it was. The connection's open order,
    if the dunning job issued one, is the order carried out."""
    connection = lock_connection(connection)
    require_status(
        connection, (ConnectionStatus.ACTIVE,), step="disconnected", target=ConnectionStatus.DISCONNECTED
    )
    reason = require_reason(reason)
    overdue = uncovered_overdue(connection)
    _refuse_unless_owed(connection, overdue)
    order = _open_order(connection) or DisconnectionOrder(
        provider_id=connection.provider_id,
        connection=connection,
        customer_id=connection.customer_id,
        number=_number(connection),
        issued_on=timezone.localdate(),
        overdue_balance=overdue,
        reason=reason[:300],
        issued_by=by,
    )
    return _carry_out(
        order,
        connection,
        overdue=overdue,
        effective_at=effective_at,
        by=by,
        registers=registers,
        reason=reason,
    )
