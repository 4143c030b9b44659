"""The lifecycle steps that bill or weigh money (the others are billing/lifecycle.py's):

- a disconnection order for non-payment (disconnection_orders.py);
- a reconnection: the provider's reconnection fee becomes a pending charge that the connection's next
  bill carries, once; after a disconnection for non-payment, only once nothing is overdue any more;
- closing: the final reading, and at once the final bill, for the month of that reading, dated that
  day; the connection is Closed and never billed again;
- a move: the outgoing customer's final bill to the move-out reading, then the connection passes to
  the incoming customer, billed from that reading on. Bills keep their customer: each customer's
  arrears and payments count only their own bills (`arrears_of`, `lock_for_payment`);
- a change of connection type from a day: only from a day no bill has covered yet. The bill whose
  period holds that day is split there, each part rated on its own type's rows (`rate_parts`).

Each locks the connection first, as every money path does (locks.py).
"""

from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from billing.lifecycle import (
    LifecycleRefused,
    check_moment,
    require_reason,
    require_status,
    step_record,
    take_reading,
)
from billing.models import (
    ConnectionEvent,
    ConnectionStatus,
    ConnectionTypeChange,
    Customer,
    DisconnectionGround,
    EventKind,
    MeterReading,
    ServiceConnection,
)
from billing.months import first_of, month_end
from billing.periods import calendar_day
from billing.rating import NO_MONEY, money
from invoicing.models import Invoice, InvoiceStatus
from invoicing.selectors import unpaid_after_due
from invoicing.services.charges import reconnection_fee_charge
from invoicing.services.issue import issue_locked
from invoicing.services.locks import lock_connection
from providers.models import ConnectionType


def overdue_balance(connection: ServiceConnection) -> Decimal:
    """What the connection's present customer owes on its bills unpaid after their due date."""
    owed = (
        Invoice.objects.filter(connection=connection, customer_id=connection.customer_id)
        .filter(unpaid_after_due())
        .aggregate(total=Sum("balance"))["total"]
    )
    return money(owed) if owed else NO_MONEY  # SQLite sums decimals without their places


@transaction.atomic
def connection_reconnect(
    *,
    connection: ServiceConnection,
    reason: str,
    effective_at: datetime,
    by: User,
    registers: dict[str, Decimal] | None = None,
) -> ConnectionEvent:
    """Disconnected -> Active; the provider's reconnection fee waits for the connection's next bill."""
    connection = lock_connection(connection)
    require_status(
        connection, (ConnectionStatus.DISCONNECTED,), step="reconnected", target=ConnectionStatus.ACTIVE
    )
    reason = require_reason(reason)
    check_moment(connection, effective_at, field="effectiveAt", takes_reading=registers is not None)
    cut = connection.events.filter(kind=EventKind.DISCONNECTED).order_by("-effective_at", "-pk").first()
    if cut is not None and cut.ground == DisconnectionGround.NON_PAYMENT:
        overdue = overdue_balance(connection)
        if overdue > 0:
            raise LifecycleRefused(
                _(
                    "Connection %(number)s was disconnected for non-payment (order %(order_number)s) and "
                    "%(overdue)s is still overdue: take the payment first, then reconnect."
                )
                % {"number": connection.number, "order_number": cut.order_number, "overdue": overdue},
                field="status",
                overdue=f"{overdue}",
            )
    reading = None
    if registers is not None:
        reading = take_reading(connection, at=effective_at, registers=registers, by=by)
    fee = connection.provider.reconnection_fee
    event = step_record(
        connection,
        kind=EventKind.RECONNECTED,
        status=ConnectionStatus.ACTIVE,
        at=effective_at,
        reason=reason,
        by=by,
        reading=reading,
        details={"reconnectionFee": f"{fee}"} if fee > 0 else None,
    )
    reconnection_fee_charge(connection=connection, event=event, created_by=by)
    return event


def _final_bill(
    connection: ServiceConnection, *, at: datetime, registers: dict[str, Decimal], by: User, field: str
) -> tuple[MeterReading, Invoice]:
    """The final reading at `at` and, at once, the bill for its month to that reading, dated that day:
    it continues from the connection's previous bill, so it covers any month left unbilled too."""
    check_moment(connection, at, field=field, takes_reading=True)
    day = timezone.localdate(at)
    period = first_of(day)
    billed = (
        Invoice.objects.filter(connection=connection, period__gte=period)
        .exclude(status=InvoiceStatus.CANCELLED)
        .order_by("-period")
        .first()
    )
    if billed is not None:
        raise LifecycleRefused(
            _(
                "Connection %(number)s is billed for %(period)s already (%(billed_number)s); the final "
                "bill is the bill of the final reading's month, %(period2)s. Cancel %(billed_number)s "
                "first, so that the final bill covers the whole month."
            )
            % {
                "number": connection.number,
                "period": format(billed.period, "%B %Y"),
                "billed_number": billed.number,
                "period2": format(period, "%B %Y"),
            },
            field=field,
            invoiceId=billed.pk,
        )
    reading = take_reading(connection, at=at, registers=registers, by=by)
    invoice = issue_locked(connection=connection, period=period, created_by=by, issue_date=day, until=at)
    return reading, invoice


@transaction.atomic
def connection_close(
    *,
    connection: ServiceConnection,
    closed_at: datetime,
    registers: dict[str, Decimal] | None,
    reason: str,
    by: User,
) -> ConnectionEvent:
    """Closed for good, with the final reading and at once the final bill (which carries any pending
    charge). A connection never connected is closed with neither."""
    connection = lock_connection(connection)
    allowed = (ConnectionStatus.ACTIVE, ConnectionStatus.DISCONNECTED, ConnectionStatus.PENDING)
    require_status(connection, allowed, step="closed", target=ConnectionStatus.CLOSED)
    reason = require_reason(reason)
    if connection.status == ConnectionStatus.PENDING:
        if registers is not None:
            raise LifecycleRefused(
                _("Connection %(number)s was never connected: close it without a final reading.")
                % {"number": connection.number},
                field="importPeak",
            )
        check_moment(connection, closed_at, field="closedAt", takes_reading=False)
        return step_record(
            connection,
            kind=EventKind.CLOSED,
            status=ConnectionStatus.CLOSED,
            at=closed_at,
            reason=reason,
            by=by,
        )
    if registers is None:
        raise LifecycleRefused(
            _("Give the final reading: connection %(number)s is closed with it, and billed to it.")
            % {"number": connection.number},
            field="importPeak",
        )
    reading, invoice = _final_bill(connection, at=closed_at, registers=registers, by=by, field="closedAt")
    return step_record(
        connection,
        kind=EventKind.CLOSED,
        status=ConnectionStatus.CLOSED,
        at=closed_at,
        reason=reason,
        by=by,
        reading=reading,
        details={"finalInvoice": invoice.number, "finalInvoiceId": invoice.pk},
    )


@transaction.atomic
def connection_move(
    *,
    connection: ServiceConnection,
    move_at: datetime,
    registers: dict[str, Decimal],
    incoming_customer: Customer,
    reason: str,
    by: User,
) -> tuple[ConnectionEvent, ConnectionEvent]:
    """The outgoing customer's final bill to the move-out reading; then the connection is the incoming
    customer's, billed from that reading on. Returns the move-out and move-in steps.

    What the outgoing customer owes stays theirs (their bills keep their customer), and so does their
    declared income: the incoming customer declares their own."""
    connection = lock_connection(connection)
    require_status(connection, (ConnectionStatus.ACTIVE,), step="passed to another customer")
    reason = require_reason(reason)
    if incoming_customer.provider_id != connection.provider_id:
        raise LifecycleRefused(
            _("The incoming customer must be a customer of %(name)s.") % {"name": connection.provider.name},
            field="incomingCustomer",
        )
    outgoing = connection.customer
    if incoming_customer.pk == outgoing.pk:
        raise LifecycleRefused(
            _(
                "%(name)s (%(number)s) is the customer of connection %(connection_number)s already: a move "
                "passes it to another customer."
            )
            % {"name": outgoing.name, "number": outgoing.number, "connection_number": connection.number},
            field="incomingCustomer",
        )
    reading, invoice = _final_bill(connection, at=move_at, registers=registers, by=by, field="moveAt")
    moved_out = step_record(
        connection,
        kind=EventKind.MOVED_OUT,
        at=move_at,
        reason=reason,
        by=by,
        customer=outgoing,
        reading=reading,
        details={
            "finalInvoice": invoice.number,
            "finalInvoiceId": invoice.pk,
            "incomingCustomer": incoming_customer.number,
        },
    )
    connection.customer = incoming_customer
    connection.declared_monthly_income = None
    connection.income_declared_on = None
    connection.income_recorded_by = None
    connection.save(
        update_fields=["customer", "declared_monthly_income", "income_declared_on", "income_recorded_by"]
    )
    moved_in = step_record(
        connection,
        kind=EventKind.MOVED_IN,
        at=move_at,
        reason=reason,
        by=by,
        customer=incoming_customer,
        reading=reading,
        details={"outgoingCustomer": outgoing.number},
    )
    return moved_out, moved_in


def billed_through(connection: ServiceConnection) -> tuple[date, Invoice] | None:
    """The last calendar day the connection's bills cover, and the bill that covers it; None if unbilled.

    A bill covers the calendar days up to its closing reading's day (an estimate's, to the month's
    last day); a bill of typed kWh, its whole month."""
    latest = None
    for invoice in (
        Invoice.objects.filter(connection=connection)
        .exclude(status=InvoiceStatus.CANCELLED)
        .only("number", "period", "period_end")
    ):
        last = (
            calendar_day(timezone.localtime(invoice.period_end))
            if invoice.period_end
            else month_end(invoice.period.year, invoice.period.month)
        )
        if latest is None or last > latest[0]:
            latest = (last, invoice)
    return latest


@transaction.atomic
def connection_type_change(
    *,
    connection: ServiceConnection,
    to_type: ConnectionType,
    effective_from: date,
    reason: str,
    recorded_by: User,
) -> ConnectionEvent:
    """The connection's type changes from a day on: the change is recorded (`ConnectionTypeChange`,
    which the rating reads) and the connection switched to the new type.

    Refused for the type it has, another provider's type, a closed connection, a day to come, a day
    no later than its last change, and a day a bill has covered already (cancel that bill first)."""
    connection = lock_connection(connection)
    allowed = (ConnectionStatus.PENDING, ConnectionStatus.ACTIVE, ConnectionStatus.DISCONNECTED)
    require_status(connection, allowed, step="given another type")
    reason = require_reason(reason)
    from_type = connection.connection_type
    if to_type.provider_id != connection.provider_id:
        raise LifecycleRefused(
            _("Connection type %(code)s is not one of %(name)s's.")
            % {"code": to_type.code, "name": connection.provider.name},
            field="connectionType",
        )
    if to_type.pk == from_type.pk:
        raise LifecycleRefused(
            _("Connection %(number)s is of type %(code)s already.")
            % {"number": connection.number, "code": from_type.code},
            field="connectionType",
        )
    if effective_from > timezone.localdate():
        raise LifecycleRefused(
            _("A change of type is recorded once it applies: %(effective_from)s is still to come.")
            % {"effective_from": effective_from},
            field="effectiveFrom",
        )
    last_change = connection.type_changes.order_by("-effective_from").first()
    if last_change is not None and effective_from <= last_change.effective_from:
        raise LifecycleRefused(
            _(
                "Connection %(number)s changed type from %(effective_from)s; a later change applies from a "
                "later day."
            )
            % {"number": connection.number, "effective_from": last_change.effective_from},
            field="effectiveFrom",
        )
    billed = billed_through(connection)
    if billed is not None and effective_from <= billed[0]:
        day, invoice = billed
        raise LifecycleRefused(
            _(
                "Connection %(number)s is billed up to %(day)s (%(invoice_number)s): a change of type "
                "applies from %(day2)s or later. To change a day already billed, cancel that bill first."
            )
            % {
                "number": connection.number,
                "day": day,
                "invoice_number": invoice.number,
                "day2": day + timedelta(days=1),
            },
            field="effectiveFrom",
            invoiceId=invoice.pk,
        )
    change = ConnectionTypeChange.objects.create(
        provider_id=connection.provider_id,
        connection=connection,
        from_type=from_type,
        to_type=to_type,
        effective_from=effective_from,
        reason=reason,
        recorded_by=recorded_by,
    )
    connection.connection_type = to_type
    connection.save(update_fields=["connection_type"])
    return step_record(
        connection,
        kind=EventKind.TYPE_CHANGED,
        at=datetime.combine(effective_from, time(), timezone.get_current_timezone()),
        reason=reason,
        by=recorded_by,
        details={"fromType": from_type.code, "toType": to_type.code, "typeChangeId": change.pk},
    )
