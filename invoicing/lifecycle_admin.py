"""Django admin for a connection's life: every step recorded (read-only), "Record a lifecycle step"
calling the step's service, and the pending charges waiting for a bill.

Here rather than in billing/admin.py because half the steps are invoicing's services (they bill or
weigh money). A step is recorded for the officer signed in, refused at its field when the service
refuses it, exactly as the API and the lifecycle page refuse it.
"""

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext

from billing.lifecycle import LifecycleRefused, connection_connect, connection_disconnect
from billing.lifecycle_selectors import connection_type_for, incoming_customer_for
from billing.models import ConnectionEvent, MeterReading, ServiceConnection
from invoicing import services
from invoicing.models import PendingCharge
from providers.admin import ProviderScopedAdmin, ReadOnlyAdmin, ServiceAdmin
from providers.tenancy import scope_to_provider

KWH_FIELD = {"max_digits": 14, "decimal_places": 4, "min_value": Decimal("0"), "required": False}

# Each step: its label and the permission that takes it (accounts/permissions.py).
STEPS = {
    "connect": ("Connect, with the first reading", "billing.connect_connection"),
    "disconnect": ("Disconnect at the customer's request", "billing.disconnect_connection"),
    "order": ("Disconnect for non-payment (a disconnection order)", "billing.order_disconnection"),
    "reconnect": ("Reconnect (the reconnection fee goes on the next bill)", "billing.reconnect_connection"),
    "move": ("Move-out and move-in (the outgoing customer's final bill)", "billing.move_connection"),
    "close": ("Close for good (the final reading and final bill)", "billing.close_connection"),
    "type_change": ("Change of connection type (from the effective day)", "billing.change_connection_type"),
}


class StepForm(forms.ModelForm):
    step = forms.ChoiceField(choices=[(name, label) for name, (label, _) in STEPS.items()])
    at = forms.DateTimeField(
        label="Effective at",
        help_text="When the step takes effect; the reading, if any, is taken then. A change of type applies "
        "from this day.",
    )
    import_peak = forms.DecimalField(label="Import, peak (kWh)", **KWH_FIELD)
    import_off_peak = forms.DecimalField(label="Import, off-peak (kWh)", **KWH_FIELD)
    export_peak = forms.DecimalField(label="Export, peak (kWh)", **KWH_FIELD)
    export_off_peak = forms.DecimalField(label="Export, off-peak (kWh)", **KWH_FIELD)
    incoming_customer = forms.CharField(
        max_length=40, required=False, help_text="For a move: the incoming customer's number, as printed."
    )
    connection_type = forms.CharField(
        max_length=20, required=False, help_text="For a change of type: the new type's code."
    )

    class Meta:
        model = ConnectionEvent
        fields = ("connection", "step", "at", "reason")


def registers_of(values: dict[str, Any]) -> dict[str, Decimal] | None:
    """The step's reading, if its registers were given."""
    if values.get("import_peak") is None and values.get("import_off_peak") is None:
        return None
    return {name: values.get(name) or Decimal("0") for name in MeterReading.REGISTERS}


@admin.register(ConnectionEvent)
class ConnectionEventAdmin(ProviderScopedAdmin, ServiceAdmin):
    """Each step of each connection's life; a step is recorded through its service, never edited."""

    form = StepForm
    list_display = (
        "connection",
        "kind",
        "effective_at",
        "customer",
        "ground",
        "order_number",
        "reason",
        "recorded_by",
    )
    list_filter = ("kind", "ground", ("provider", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("connection", "customer", "recorded_by")
    search_fields = ("connection__number", "customer__number", "customer__name", "order_number", "reason")
    date_hierarchy = "effective_at"
    autocomplete_fields = ("connection",)
    readonly_fields = ("details", "recorded_by", "recorded_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return any(request.user.has_perm(perm) for _, perm in STEPS.values())

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return obj is None and self.has_add_permission(request)

    def get_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        if obj is not None:
            return [field.name for field in ConnectionEvent._meta.fields if field.name != "id"]
        return (
            "connection",
            "step",
            "at",
            "reason",
            *MeterReading.REGISTERS,
            "incoming_customer",
            "connection_type",
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        return self.get_fields(request, obj) if obj else ()

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "connection":
            kwargs["queryset"] = scope_to_provider(ServiceConnection.objects.all(), request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None) -> Any:
        return super().add_view(
            request, form_url, {"title": "Record a lifecycle step", **(extra_context or {})}
        )

    def create(self, request: HttpRequest, values: dict[str, Any]) -> ConnectionEvent:
        step = values["step"]
        if not request.user.has_perm(STEPS[step][1]):
            raise LifecycleRefused(gettext("You may not take this step in your roles."), field="step")
        connection, at, reason, by = values["connection"], values["at"], values["reason"], request.user
        registers = registers_of(values)
        if step == "connect":
            return connection_connect(
                connection=connection, taken_at=at, registers=registers, connected_by=by, reason=reason
            )
        if step == "disconnect":
            return connection_disconnect(
                connection=connection, reason=reason, effective_at=at, registers=registers, by=by
            )
        if step == "order":
            return services.disconnection_order_issue(
                connection=connection, reason=reason, effective_at=at, registers=registers, by=by
            )
        if step == "reconnect":
            return services.connection_reconnect(
                connection=connection, reason=reason, effective_at=at, registers=registers, by=by
            )
        if step == "close":
            return services.connection_close(
                connection=connection, closed_at=at, registers=registers, reason=reason, by=by
            )
        if step == "type_change":
            return services.connection_type_change(
                connection=connection,
                to_type=connection_type_for(connection=connection, code=values["connection_type"]),
                effective_from=timezone.localdate(at),
                reason=reason,
                recorded_by=by,
            )
        if registers is None:
            raise LifecycleRefused(gettext("Give the move-out reading."), field="import_peak")
        incoming = incoming_customer_for(user=by, connection=connection, number=values["incoming_customer"])
        moved_out, _ = services.connection_move(
            connection=connection,
            move_at=at,
            registers=registers,
            incoming_customer=incoming,
            reason=reason,
            by=by,
        )
        return moved_out


@admin.register(PendingCharge)
class PendingChargeAdmin(ReadOnlyAdmin):
    """One-off charges (reconnection fees) and the bill that carried each; empty: not billed yet."""

    view_permission = "invoicing.view_invoice"
    list_display = ("connection", "customer", "label", "amount", "invoice", "created_at")
    list_filter = ("kind", ("provider", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("connection", "customer", "invoice")
    search_fields = ("connection__number", "customer__number", "invoice__number")
