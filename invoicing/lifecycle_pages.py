"""A connection's lifecycle page (/connections/<id>/lifecycle): its history of steps and a form for each
step the acting role may take and the connection's status allows.

Each form posts to /connections/<id>/lifecycle/<step> and calls the step's service, as the API does;
a refusal comes back on the page next to the field it concerns, with what was typed.
"""

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST

from accounts.permissions import role_allows
from accounts.web import form_page, page, refusals_into
from billing.lifecycle import connection_connect, connection_disconnect
from billing.lifecycle_selectors import connection_events_of, incoming_customer_for
from billing.models import ConnectionStatus, MeterReading, ServiceConnection
from billing.selectors import connection_get_for
from invoicing import services
from providers.models import ConnectionType

KWH_FIELD = {"max_digits": 14, "decimal_places": 4, "min_value": Decimal("0")}
MOMENT_WIDGET = forms.DateTimeInput(format="%Y-%m-%dT%H:%M", attrs={"type": "datetime-local"})
# The services name the API's fields; these are the forms' names for them.
FORM_FIELDS = {
    "takenAt": "at",
    "effectiveAt": "at",
    "closedAt": "at",
    "moveAt": "at",
    "importPeak": "import_peak",
    "incomingCustomer": "incoming_customer",
    "connectionType": "connection_type",
    "effectiveFrom": "effective_from",
}


def moment_field(label: str, help_text: str) -> forms.DateTimeField:
    return forms.DateTimeField(label=label, widget=MOMENT_WIDGET, help_text=f"{help_text} (local time).")


def reason_field(required: bool = True) -> forms.CharField:
    return forms.CharField(
        max_length=300,
        required=required,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Why: kept in the connection's history."),
    )


class StepForm(forms.Form):
    """A step's form, made for one connection (a form whose choices depend on it uses it)."""

    reading_required = False

    def __init__(self, *args: Any, connection: ServiceConnection, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)

    def step_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name not in MeterReading.REGISTERS]

    def reading_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in MeterReading.REGISTERS if name in self.fields]


class ReadingForm(StepForm):
    """A step's meter reading; optional unless `reading_required`."""

    import_peak = forms.DecimalField(label=_("Import, peak (kWh)"), required=False, **KWH_FIELD)
    import_off_peak = forms.DecimalField(label=_("Import, off-peak (kWh)"), required=False, **KWH_FIELD)
    export_peak = forms.DecimalField(label=_("Export, peak (kWh)"), required=False, **KWH_FIELD)
    export_off_peak = forms.DecimalField(label=_("Export, off-peak (kWh)"), required=False, **KWH_FIELD)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        given = [cleaned.get(name) is not None for name in ("import_peak", "import_off_peak")]
        if any(given) and not all(given):
            self.add_error(None, "Give both import registers of the reading, or neither.")
        elif self.reading_required and not all(given):
            self.add_error("import_peak", "Give the meter's reading: this step is taken with it.")
        return cleaned

    def registers(self) -> dict[str, Decimal] | None:
        values = self.cleaned_data
        if values.get("import_peak") is None:
            return None
        return {name: values.get(name) or Decimal("0") for name in MeterReading.REGISTERS}


class ConnectForm(ReadingForm):
    reading_required = True
    at = moment_field("Connected at", "When the meter's first reading is taken")
    reason = reason_field(required=False)
    field_order = ["at"]


class DisconnectForm(ReadingForm):
    at = moment_field("Disconnected at", "When the supply is cut")
    reason = reason_field()
    field_order = ["at", "reason"]


class ReconnectForm(ReadingForm):
    at = moment_field("Reconnected at", "When the supply is restored")
    reason = reason_field()
    field_order = ["at", "reason"]


class CloseForm(ReadingForm):
    at = moment_field("Closed at", "When the final reading is taken; the final bill is dated that day")
    reason = reason_field()
    field_order = ["at", "reason"]


class MoveForm(ReadingForm):
    reading_required = True
    at = moment_field(
        "Moved at", "When the move-out reading is taken; the outgoing customer's final bill is dated that day"
    )
    incoming_customer = forms.CharField(
        label=_("Incoming customer number"), max_length=40, help_text=_("As printed, e.g. LHR-RES-0002.")
    )
    reason = reason_field()
    field_order = ["at", "incoming_customer", "reason"]


class TypeChangeForm(StepForm):
    connection_type = forms.ModelChoiceField(
        label=_("New connection type"), queryset=ConnectionType.objects.none()
    )
    effective_from = forms.DateField(
        label=_("From"),
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_(
            "The first day billed on the new type: after the last day a bill covers, not after today."
        ),
    )
    reason = reason_field()

    def __init__(self, *args: Any, connection: ServiceConnection, **kwargs: Any) -> None:
        super().__init__(*args, connection=connection, **kwargs)
        # The provider's other types: the service refuses the one the connection has.
        self.fields["connection_type"].queryset = ConnectionType.objects.filter(
            provider_id=connection.provider_id
        ).exclude(pk=connection.connection_type_id)


def _connect(request: HttpRequest, connection: ServiceConnection, form: ConnectForm) -> str:
    values = form.cleaned_data
    connection_connect(
        connection=connection,
        taken_at=values["at"],
        registers=form.registers(),
        connected_by=request.user,
        **({"reason": values["reason"]} if values["reason"] else {}),
    )
    return f"Connection {connection.number} is connected: its first reading is recorded."


def _disconnect(request: HttpRequest, connection: ServiceConnection, form: DisconnectForm) -> str:
    values = form.cleaned_data
    connection_disconnect(
        connection=connection,
        reason=values["reason"],
        effective_at=values["at"],
        registers=form.registers(),
        by=request.user,
    )
    return f"Connection {connection.number} is disconnected."


def _order(request: HttpRequest, connection: ServiceConnection, form: DisconnectForm) -> str:
    values = form.cleaned_data
    event = services.disconnection_order_issue(
        connection=connection,
        reason=values["reason"],
        effective_at=values["at"],
        registers=form.registers(),
        by=request.user,
    )
    return (
        f"Disconnection order {event.order_number} is issued for {event.overdue_balance} overdue; "
        f"connection {connection.number} is disconnected."
    )


def _reconnect(request: HttpRequest, connection: ServiceConnection, form: ReconnectForm) -> str:
    values = form.cleaned_data
    event = services.connection_reconnect(
        connection=connection,
        reason=values["reason"],
        effective_at=values["at"],
        registers=form.registers(),
        by=request.user,
    )
    fee = event.details.get("reconnectionFee")
    return f"Connection {connection.number} is reconnected." + (
        f" The reconnection fee of {fee} goes on its next bill." if fee else ""
    )


def _close(request: HttpRequest, connection: ServiceConnection, form: CloseForm) -> str:
    values = form.cleaned_data
    event = services.connection_close(
        connection=connection,
        closed_at=values["at"],
        registers=form.registers(),
        reason=values["reason"],
        by=request.user,
    )
    final = event.details.get("finalInvoice")
    return f"Connection {connection.number} is closed" + (f"; its final bill is {final}." if final else ".")


def _move(request: HttpRequest, connection: ServiceConnection, form: MoveForm) -> str:
    values = form.cleaned_data
    incoming = incoming_customer_for(
        user=request.user, connection=connection, number=values["incoming_customer"]
    )
    moved_out, _ = services.connection_move(
        connection=connection,
        move_at=values["at"],
        registers=form.registers(),
        incoming_customer=incoming,
        reason=values["reason"],
        by=request.user,
    )
    return (
        f"{moved_out.customer.name}'s final bill is {moved_out.details['finalInvoice']}; connection "
        f"{connection.number} is {incoming.name}'s from now on."
    )


def _type_change(request: HttpRequest, connection: ServiceConnection, form: TypeChangeForm) -> str:
    values = form.cleaned_data
    services.connection_type_change(
        connection=connection,
        to_type=values["connection_type"],
        effective_from=values["effective_from"],
        reason=values["reason"],
        recorded_by=request.user,
    )
    return (
        f"Connection {connection.number} is of type {values['connection_type'].code} from "
        f"{values['effective_from']:%d %B %Y}."
    )


@dataclass(frozen=True)
class Step:
    title: str
    button: str
    perm: str
    statuses: tuple[str, ...]  # the statuses it applies to
    form: type[StepForm]
    take: Callable[[HttpRequest, ServiceConnection, Any], str]
    help: str = ""


ACTIVE, PENDING, DISCONNECTED = (
    ConnectionStatus.ACTIVE,
    ConnectionStatus.PENDING,
    ConnectionStatus.DISCONNECTED,
)
STEPS: dict[str, Step] = {
    "connect": Step(
        "Connect", "Connect", "billing.connect_connection", (PENDING,), ConnectForm, _connect,
        "The meter's first reading connects it: it is billed from then on.",
    ),
    "disconnect": Step(
        "Disconnect on request", "Disconnect", "billing.disconnect_connection", (ACTIVE,), DisconnectForm, _disconnect,
        "At the customer's request. A reading, if taken, ends the usage billed on the next bill.",
    ),
    "order": Step(
        "Disconnect for non-payment", "Issue the disconnection order", "billing.order_disconnection", (ACTIVE,),
        DisconnectForm, _order,
        "Only while the customer owes a bill unpaid after its due date; the order is numbered and keeps "
        "the overdue balance.",
    ),
    "reconnect": Step(
        "Reconnect", "Reconnect", "billing.reconnect_connection", (DISCONNECTED,), ReconnectForm, _reconnect,
        "The provider's reconnection fee goes on the next bill. After a disconnection for non-payment, "
        "only once nothing is overdue.",
    ),
    "move": Step(
        "Move-out and move-in", "Record the move", "billing.move_connection", (ACTIVE,), MoveForm, _move,
        "The outgoing customer's final bill is issued at once to the move-out reading; the incoming "
        "customer is billed from it. What each owes stays theirs.",
    ),
    "close": Step(
        "Close for good", "Close the connection", "billing.close_connection", (ACTIVE, DISCONNECTED, PENDING),
        CloseForm, _close,
        "The final reading and, at once, the final bill. A closed connection is never billed again. "
        "A connection never connected is closed without a reading.",
    ),
    "type-change": Step(
        "Change of connection type", "Change the type", "billing.change_connection_type",
        (ACTIVE, DISCONNECTED, PENDING), TypeChangeForm, _type_change,
        "From a day no bill has covered yet. The bill whose period holds it rates the days before it on "
        "the old type's prices and the days from it on the new type's.",
    ),
}  # fmt: skip


def _steps_for(request: HttpRequest, connection: ServiceConnection, bound: tuple[str, Any] | None) -> list:
    """The steps the acting role may take on the connection now, each with its form (`bound`: the one
    just submitted, shown with its errors)."""
    shown = []
    for name, step in STEPS.items():
        if connection.status not in step.statuses or not _may(request, step.perm):
            continue
        form = (
            bound[1]
            if bound and bound[0] == name
            else step.form(prefix=name, initial={"at": _this_minute()}, connection=connection)
        )
        shown.append({"name": name, "step": step, "form": form})
    return shown


def _may(request: HttpRequest, perm: str) -> bool:
    return role_allows(request.user.active_role, perm, user=request.user)


def _this_minute() -> Any:
    return timezone.localtime().replace(second=0, microsecond=0)


def _page(
    request: HttpRequest, connection: ServiceConnection, bound: tuple[str, Any] | None = None
) -> HttpResponse:
    values = {
        "connection": connection,
        "events": connection_events_of(connection),
        "steps": _steps_for(request, connection, bound),
    }
    form = bound[1] if bound else forms.Form()
    return form_page(request, "invoicing/connection_lifecycle.html", values, form=form)


@require_GET
@page("billing.view_connectionevent")
def connection_lifecycle(request: HttpRequest, connection_id: int) -> HttpResponse:
    return _page(request, connection_get_for(user=request.user, connection_id=connection_id))


@require_POST
@page("billing.view_connectionevent")
def connection_lifecycle_step(request: HttpRequest, connection_id: int, step_name: str) -> HttpResponse:
    step = STEPS.get(step_name)
    if step is None:
        raise Http404("No such step.")
    if not _may(request, step.perm):
        raise PermissionDenied
    connection = connection_get_for(user=request.user, connection_id=connection_id)
    form = step.form(request.POST, prefix=step_name, connection=connection)
    if form.is_valid():
        with refusals_into(form, fields=FORM_FIELDS):
            messages.success(request, step.take(request, connection, form))
            return redirect("connection-lifecycle", connection_id=connection.pk)
    return _page(request, connection, (step_name, form))
