"""Django admin for customers, connections and meter readings.

Customers and connections come from the sample import and the API and are only shown here. Readings
can be entered here, through `reading_record`, which checks them against their neighbours in time, and
meter exchanges, through `meter_exchange_record`.
"""

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from billing.models import (
    ConnectionStatus,
    ConnectionTypeChange,
    Customer,
    MeterExchange,
    MeterReading,
    ServiceConnection,
)
from billing.services import meter_exchange_record, reading_record
from providers.admin import ProviderScopedAdmin, ReadOnlyAdmin, ReadOnlyInline, ServiceAdmin
from providers.tenancy import scope_to_provider


class ConnectionInline(ReadOnlyInline):
    model = ServiceConnection
    fields = ("number", "connection_type", "meter_number", "division", "status")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("connection_type")


@admin.register(Customer)
class CustomerAdmin(ReadOnlyAdmin):
    list_display = (
        "number",
        "name",
        "email",
        "phone",
        "kind",
        "organisation",
        "created_at",
    )
    list_filter = ("kind", ("provider", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("user",)
    search_fields = ("number", "name", "email", "phone", "organisation")
    inlines = [ConnectionInline]


@admin.register(ServiceConnection)
class ServiceConnectionAdmin(ReadOnlyAdmin):
    list_display = (
        "number",
        "customer_name",
        "type_code",
        "meter_number",
        "division",
        "subdivision",
        "status",
        "installation_date",
    )
    list_filter = (
        "status",
        ("connection_type", admin.RelatedOnlyFieldListFilter),
        "division",
        ("provider", admin.RelatedOnlyFieldListFilter),
    )
    list_select_related = ("customer", "connection_type")
    search_fields = ("number", "meter_number", "customer__number", "customer__name")

    @admin.display(description="customer", ordering="customer__name")
    def customer_name(self, connection: ServiceConnection) -> str:
        return f"{connection.customer.name} ({connection.customer.number})"

    @admin.display(description="connection type", ordering="connection_type__code")
    def type_code(self, connection: ServiceConnection) -> str:
        return connection.connection_type.code


class ReadingForm(forms.ModelForm):
    class Meta:
        model = MeterReading
        fields = ("connection", "taken_at", *MeterReading.REGISTERS, "meter_replaced")


@admin.register(MeterReading)
class MeterReadingAdmin(ProviderScopedAdmin, ServiceAdmin):
    """Readings entered one at a time, checked by `reading_record`; a reading is never edited."""

    form = ReadingForm
    list_display = (
        "connection",
        "taken_at",
        *MeterReading.REGISTERS,
        "meter_replaced",
        "source",
        "recorded_by",
    )
    list_filter = ("source", "meter_replaced", ("provider", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("connection", "recorded_by")
    search_fields = ("connection__number", "connection__meter_number", "connection__customer__number")
    date_hierarchy = "taken_at"
    # A provider has thousands of connections: a search box, not a list of them all.
    autocomplete_fields = ("connection",)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "connection":
            # What the form accepts, whatever the search offered: the caller's active connections.
            active = ServiceConnection.objects.filter(status=ConnectionStatus.ACTIVE)
            kwargs["queryset"] = scope_to_provider(active, request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def create(self, request: HttpRequest, values: dict[str, Any]) -> MeterReading:
        return reading_record(
            connection=values["connection"],
            taken_at=values["taken_at"],
            registers={name: values[name] for name in MeterReading.REGISTERS},
            meter_replaced=values["meter_replaced"],
            recorded_by=request.user,
        )


class MeterExchangeForm(forms.ModelForm):
    class Meta:
        model = MeterExchange
        fields = (
            "connection",
            "exchanged_at",
            *MeterExchange.FINAL_REGISTERS,
            *MeterExchange.FIRST_REGISTERS,
            "new_meter_number",
            "new_meter_type",
            "reason",
        )


@admin.register(MeterExchange)
class MeterExchangeAdmin(ProviderScopedAdmin, ServiceAdmin):
    """Meter exchanges recorded through `meter_exchange_record`, which checks both meters' registers
    against the readings around them; an exchange is never edited."""

    form = MeterExchangeForm
    list_display = (
        "connection",
        "exchanged_at",
        "old_meter_number",
        "new_meter_number",
        *MeterExchange.FINAL_REGISTERS[:2],
        *MeterExchange.FIRST_REGISTERS[:2],
        "reason",
        "recorded_by",
    )
    list_filter = (("provider", admin.RelatedOnlyFieldListFilter),)
    list_select_related = ("connection", "recorded_by")
    search_fields = ("connection__number", "old_meter_number", "new_meter_number")
    date_hierarchy = "exchanged_at"
    autocomplete_fields = ("connection",)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "connection":
            active = ServiceConnection.objects.filter(status=ConnectionStatus.ACTIVE)
            kwargs["queryset"] = scope_to_provider(active, request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def create(self, request: HttpRequest, values: dict[str, Any]) -> MeterExchange:
        return meter_exchange_record(
            connection=values["connection"],
            at=values["exchanged_at"],
            old_final={name: values[f"final_{name}"] for name in MeterReading.REGISTERS},
            new_first={name: values[f"first_{name}"] for name in MeterReading.REGISTERS},
            new_meter_number=values["new_meter_number"],
            new_meter_type=values["new_meter_type"],
            reason=values["reason"],
            recorded_by=request.user,
        )


@admin.register(ConnectionTypeChange)
class ConnectionTypeChangeAdmin(ReadOnlyAdmin):
    """Read-only here: a change of type is recorded by its service, which also switches the connection."""

    list_display = (
        "connection",
        "from_type",
        "to_type",
        "effective_from",
        "reason",
        "recorded_by",
        "recorded_at",
    )
    list_filter = (("provider", admin.RelatedOnlyFieldListFilter),)
    list_select_related = ("connection", "from_type", "to_type", "recorded_by")
    search_fields = ("connection__number", "reason")
    date_hierarchy = "effective_from"
