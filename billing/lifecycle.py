"""A connection's life: each step one service, with its reason, dated, recorded as a `ConnectionEvent`.

    Pending --connect--> Active --disconnect--> Disconnected --reconnect--> Active
    Active or Disconnected --close--> Closed (for good)      Active --move--> Active, another customer

Steps are recorded in time order: a step is dated no earlier than the connection's last step and
(when it takes a reading) after its last reading, and never in the future. Each one locks the
connection row, as every reading and every money path does, so two steps never interleave.

The steps that bill or weigh money live in invoicing (`invoicing/services/lifecycle.py`): a
disconnection order for non-payment (it checks the overdue balance), a reconnection (its fee goes on
the next bill), closing and moving (each issues a final bill). They are built on the pieces here.
"""

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import User
from billing.models import (
    ConnectionEvent,
    ConnectionStatus,
    Customer,
    DisconnectionGround,
    EventKind,
    MeterReading,
    ServiceConnection,
)
from billing.services import READING_YEARS, reading_write
from config.errors import Conflict, DomainError


class LifecycleRefused(DomainError):
    code = "lifecycle_refused"


class StatusConflict(Conflict):
    """The step does not apply to the connection in its present status."""

    code = "connection_status"


# Why a step cannot be taken from a status (the step's own target status aside: "already").
STATUS_ADVICE = {
    ConnectionStatus.PENDING: gettext_lazy(
        "it is not connected yet: connect it first, with its first reading"
    ),
    ConnectionStatus.ACTIVE: gettext_lazy("it is connected"),
    ConnectionStatus.DISCONNECTED: gettext_lazy("it is disconnected: reconnect it first"),
    ConnectionStatus.CLOSED: gettext_lazy("it is closed for good: open a new connection instead"),
}

# The steps `require_status` names, in the reader's language (its callers pass the English).
STEPS = {
    "connected": gettext_lazy("connected"),
    "disconnected": gettext_lazy("disconnected"),
    "reconnected": gettext_lazy("reconnected"),
    "closed": gettext_lazy("closed"),
    "passed to another customer": gettext_lazy("passed to another customer"),
    "given another type": gettext_lazy("given another type"),
}


def lock(connection: ServiceConnection) -> ServiceConnection:
    return (
        ServiceConnection.objects.select_for_update(of=("self",))
        .select_related("provider", "customer", "connection_type")
        .get(pk=connection.pk)
    )


def require_status(
    connection: ServiceConnection, allowed: tuple[str, ...], *, step: str, target: str | None = None
) -> None:
    """Refuse `step` ("connected", "closed", ...) unless the connection's status is one of `allowed`."""
    status = connection.status
    if status in allowed:
        return
    why = (
        _("it is %(status)s already") % {"status": ConnectionStatus(status).label.lower()}
        if status == target
        else STATUS_ADVICE[status]
    )
    raise StatusConflict(
        _("Connection %(number)s cannot be %(step)s: %(why)s.")
        % {"number": connection.number, "step": STEPS.get(step, step), "why": why},
        connectionStatus=status,
    )


def require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise LifecycleRefused(
            _("Give the reason for this step: it is kept in the connection's history."), field="reason"
        )
    return reason


def check_moment(connection: ServiceConnection, at: datetime, *, field: str, takes_reading: bool) -> None:
    """Is `at` a moment this step can be dated: not in the future, after the steps and readings before?"""
    if timezone.is_naive(at):
        raise LifecycleRefused(_("Give the time with its time zone."), field=field)
    if at.year not in READING_YEARS:  # a typo, and some such dates overflow a time zone
        raise LifecycleRefused(
            _("%(date)s is not a date a step can be taken on.") % {"date": at.date().isoformat()}, field=field
        )
    if at > timezone.now():
        raise LifecycleRefused(
            _("The step is dated in the future (%(when)s).") % {"when": _when(at)}, field=field
        )
    # The steps of its supply (a change of type is dated by the day it applies from, and checked apart).
    last_step = (
        connection.events.exclude(kind=EventKind.TYPE_CHANGED).order_by("-effective_at", "-pk").first()
    )
    if last_step is not None and at < last_step.effective_at:
        raise LifecycleRefused(
            _(
                "The last step of connection %(number)s (%(step)s) is dated %(when)s; a later step cannot be "
                "dated before it."
            )
            % {
                "number": connection.number,
                "step": last_step.get_kind_display().lower(),
                "when": _when(last_step.effective_at),
            },
            field=field,
        )
    last_reading = MeterReading.objects.filter(connection=connection).order_by("-taken_at").first()
    if last_reading is not None and (
        at <= last_reading.taken_at if takes_reading else at < last_reading.taken_at
    ):
        raise LifecycleRefused(
            _("Connection %(number)s has a reading of %(when)s; date this step after its last reading.")
            % {"number": connection.number, "when": _when(last_reading.taken_at)},
            field=field,
        )


def _when(at: datetime) -> str:
    return f"{timezone.localtime(at):%Y-%m-%d %H:%M}"


def take_reading(
    connection: ServiceConnection, *, at: datetime, registers: dict[str, Decimal], by: User | None
) -> MeterReading:
    """The reading a step takes (first, final, or at a disconnection), checked as any reading is."""
    return reading_write(connection=connection, taken_at=at, registers=registers, recorded_by=by)


def step_record(
    connection: ServiceConnection,
    *,
    kind: str,
    at: datetime,
    reason: str,
    by: User | None,
    status: str | None = None,
    customer: Customer | None = None,
    reading: MeterReading | None = None,
    details: dict[str, Any] | None = None,
    **fields: Any,
) -> ConnectionEvent:
    """Move the connection (locked by the caller) to `status`, if given, and record the step."""
    if status is not None and connection.status != status:
        connection.status = status
        connection.save(update_fields=["status"])
    return ConnectionEvent.objects.create(
        provider_id=connection.provider_id,
        connection=connection,
        customer=customer or connection.customer,
        kind=kind,
        effective_at=at,
        reason=reason,
        reading=reading,
        details=details or {},
        recorded_by=by,
        **fields,
    )


@transaction.atomic
def connection_connect(
    *,
    connection: ServiceConnection,
    taken_at: datetime,
    registers: dict[str, Decimal],
    connected_by: User | None,
    reason: str = "Connected with its first reading.",
) -> ConnectionEvent:
    """Pending -> Active, with the meter's first reading taken at the moment of connection."""
    connection = lock(connection)
    require_status(connection, (ConnectionStatus.PENDING,), step="connected", target=ConnectionStatus.ACTIVE)
    reason = require_reason(reason)
    if MeterReading.objects.filter(connection=connection).exists():
        raise LifecycleRefused(
            _("Connection %(number)s has readings already: the first reading is taken once.")
            % {"number": connection.number},
            field="takenAt",
        )
    check_moment(connection, taken_at, field="takenAt", takes_reading=True)
    installed = connection.installation_date
    if installed is not None and timezone.localdate(taken_at) < installed:
        raise LifecycleRefused(
            _("Connection %(number)s is installed on %(date)s; connect it on that day or later.")
            % {"number": connection.number, "date": installed},
            field="takenAt",
        )
    reading = take_reading(connection, at=taken_at, registers=registers, by=connected_by)
    return step_record(
        connection,
        kind=EventKind.CONNECTED,
        status=ConnectionStatus.ACTIVE,
        at=taken_at,
        reason=reason,
        by=connected_by,
        reading=reading,
    )


@transaction.atomic
def connection_disconnect(
    *,
    connection: ServiceConnection,
    reason: str,
    effective_at: datetime,
    by: User | None,
    registers: dict[str, Decimal] | None = None,
    ground: str = DisconnectionGround.ON_REQUEST,
    order_number: str = "",
    overdue_balance: Decimal | None = None,
) -> ConnectionEvent:
    """Active -> Disconnected: at the customer's request, or for non-payment on a disconnection order.

    A disconnection for non-payment comes only through `invoicing.services.disconnection_order_issue`,
    which checks what is overdue (billing cannot see bills) and numbers the order. A reading may be
    taken as the supply is cut; the usage up to it is billed on the connection's next bill."""
    connection = lock(connection)
    require_status(
        connection, (ConnectionStatus.ACTIVE,), step="disconnected", target=ConnectionStatus.DISCONNECTED
    )
    reason = require_reason(reason)
    if ground not in DisconnectionGround.values:
        raise LifecycleRefused(_("A disconnection is on request or for non-payment."), field="ground")
    if ground == DisconnectionGround.NON_PAYMENT and not (order_number and overdue_balance):
        raise LifecycleRefused(
            _(
                "A disconnection for non-payment needs a disconnection order: issue one, it checks the "
                "overdue balance."
            ),
            field="ground",
        )
    check_moment(connection, effective_at, field="effectiveAt", takes_reading=registers is not None)
    reading = None
    if registers is not None:
        reading = take_reading(connection, at=effective_at, registers=registers, by=by)
    return step_record(
        connection,
        kind=EventKind.DISCONNECTED,
        status=ConnectionStatus.DISCONNECTED,
        at=effective_at,
        reason=reason,
        by=by,
        reading=reading,
        ground=ground,
        order_number=order_number,
        overdue_balance=overdue_balance,
    )
