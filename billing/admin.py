"""Django admin for customers, connections and meter readings.

Customers and connections are added and changed here through the same services as the API and the
pages (`customer_create`, `customer_update`, `connection_create`, `connection_update`,
`connection_income_declare`); what no service changes here (a number, a connection's status, type and
customer, which change as steps of its life) is shown read-only. A CSV file of customers and connections
is imported from the customer list. Readings are entered through `reading_record`, which checks them
against their neighbours in time, and meter exchanges through `meter_exchange_record`.
"""

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext as _

from billing.importing import COLUMNS, MAX_UPLOAD_BYTES, ImportReport, csv_file_rows, customers_import
from billing.models import (
    ConnectionStatus,
    ConnectionTypeChange,
    Customer,
    MeterExchange,
    MeterReading,
    NumberCounter,
    ServiceConnection,
)
from billing.services import (
    CONNECTION_FIELDS,
    CUSTOMER_FIELDS,
    connection_create,
    connection_income_declare,
    connection_update,
    customer_create,
    customer_update,
    meter_exchange_record,
    reading_record,
)
from config.errors import DomainError
from providers.admin import ProviderScopedAdmin, ReadOnlyAdmin, ReadOnlyInline, ServiceAdmin
from providers.models import ConnectionType, Provider
from providers.tenancy import scope_to_provider

# The API's names for the fields a service may refuse, and the models' names for them.
REFUSAL_FIELDS = {
    "customerId": "number",
    "connectionId": "number",
    "phoneNumber": "phone",
    "monthlyIncome": "declared_monthly_income",
    "declaredOn": "income_declared_on",
}
IMPORT_ROWS = 5_000  # an administrator's file, in one request


class ConnectionInline(ReadOnlyInline):
    model = ServiceConnection
    fields = ("number", "connection_type", "meter_number", "division", "status")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("connection_type")


class CustomerForm(forms.ModelForm):
    class Meta:
        model = Customer
        fields = ("provider", "number", *CUSTOMER_FIELDS)
        help_texts = {"number": "As the provider writes it; leave empty to have the next of its series."}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "number" in self.fields:
            self.fields["number"].required = False


@admin.register(Customer)
class CustomerAdmin(ProviderScopedAdmin, ServiceAdmin):
    form = CustomerForm
    list_display = ("number", "name", "email", "phone", "kind", "organisation", "created_at")
    list_filter = ("kind", "preferred_language", ("provider", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("user",)
    search_fields = ("number", "name", "email", "phone", "organisation", "national_id")
    inlines = [ConnectionInline]
    editable_fields = CUSTOMER_FIELDS
    refusal_fields = REFUSAL_FIELDS
    change_list_template = "admin/billing/customer/change_list.html"

    def get_fields(self, request: HttpRequest, obj: Customer | None = None) -> tuple[str, ...]:
        if obj is not None:
            return ("provider", "number", "user", *CUSTOMER_FIELDS, "created_at", "updated_at")
        # A provider's administrator adds customers of their own provider: nothing to choose.
        return (
            ("provider", "number", *CUSTOMER_FIELDS)
            if request.user.provider_id is None
            else ("number", *CUSTOMER_FIELDS)
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Customer | None = None) -> tuple[str, ...]:
        return ("provider", "number", "user", "created_at", "updated_at") if obj is not None else ()

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "provider":
            kwargs["queryset"] = Provider.objects.filter(is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def create(self, request: HttpRequest, values: dict[str, Any]) -> Customer:
        provider = values.get("provider") or request.user.provider
        if provider is None:
            raise DomainError(_("Choose the provider whose customer this is."), field="provider")
        return customer_create(
            provider=provider,
            number=values["number"],
            **{name: values[name] for name in CUSTOMER_FIELDS},
            created_by=request.user,
        )

    def update(self, request: HttpRequest, obj: Customer, changes: dict[str, Any]) -> None:
        customer_update(customer=obj, **changes)

    # --- a CSV file of customers and connections, as the staff page and the API take it ---------

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.import_view)
        return [path("import/", view, name="billing_customer_import"), *super().get_urls()]

    def _may_import(self, request: HttpRequest) -> bool:
        return request.user.has_perm("billing.add_customer") and request.user.has_perm(
            "billing.add_serviceconnection"
        )

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        url = reverse(f"{self.admin_site.name}:billing_customer_import") if self._may_import(request) else ""
        return super().changelist_view(request, {"import_url": url, **(extra_context or {})})

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self._may_import(request):
            raise PermissionDenied
        form = ImportForm(request.POST or None, request.FILES or None, caller=request.user)
        report: ImportReport | None = None
        if request.method == "POST" and form.is_valid():
            try:
                rows = csv_file_rows(form.cleaned_data["file"], max_rows=IMPORT_ROWS)
            except DomainError as refusal:
                form.add_error("file", refusal.detail)
            else:
                report = customers_import(
                    provider=form.chosen_provider(), rows=rows, imported_by=request.user
                )
        context = {
            **self.admin_site.each_context(request),
            "title": "Import customers and connections",
            "opts": self.opts,
            "form": form,
            "report": report,
            "columns": COLUMNS,
            "changelist_url": reverse(f"{self.admin_site.name}:billing_customer_changelist"),
        }
        return TemplateResponse(request, "admin/billing/customer/import.html", context)


class ImportForm(forms.Form):
    provider = forms.ModelChoiceField(queryset=Provider.objects.filter(is_active=True))
    file = forms.FileField(
        label="CSV file",
        help_text=f"UTF-8 with a header line; at most {IMPORT_ROWS:,} rows and {MAX_UPLOAD_BYTES // 2**20} MB.",
    )

    def __init__(self, *args: Any, caller: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.caller = caller
        if caller.provider_id is not None:  # a provider's administrator loads their own provider's
            del self.fields["provider"]

    def chosen_provider(self) -> Provider:
        return self.caller.provider or self.cleaned_data["provider"]


class ConnectionForm(forms.ModelForm):
    class Meta:
        model = ServiceConnection
        fields = ("customer", "number", "connection_type", *CONNECTION_FIELDS)
        help_texts = {"number": "As the provider writes it; leave empty to have the next of its series."}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["number"].required = False


class ConnectionChangeForm(forms.ModelForm):
    class Meta:
        model = ServiceConnection
        fields = (*CONNECTION_FIELDS, "declared_monthly_income", "income_declared_on")
        help_texts = {
            "declared_monthly_income": "A new declaration replaces the one on record, with its date and "
            "you as the one who recorded it.",
        }


@admin.register(ServiceConnection)
class ServiceConnectionAdmin(ProviderScopedAdmin, ServiceAdmin):
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
    # A provider has thousands of customers: a search box, not a list of them all.
    autocomplete_fields = ("customer",)
    editable_fields = (*CONNECTION_FIELDS, "declared_monthly_income", "income_declared_on")
    refusal_fields = REFUSAL_FIELDS
    CHANGED_BY_ITS_LIFE = ("provider", "customer", "number", "connection_type", "status")

    def get_form(self, request: HttpRequest, obj: ServiceConnection | None = None, **kwargs: Any) -> Any:
        kwargs["form"] = ConnectionChangeForm if obj is not None else ConnectionForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: ServiceConnection | None = None) -> tuple[str, ...]:
        if obj is None:
            return ConnectionForm.Meta.fields
        return (
            *self.CHANGED_BY_ITS_LIFE,
            *ConnectionChangeForm.Meta.fields,
            "income_recorded_by",
            "created_at",
        )

    def get_readonly_fields(
        self, request: HttpRequest, obj: ServiceConnection | None = None
    ) -> tuple[str, ...]:
        return (*self.CHANGED_BY_ITS_LIFE, "income_recorded_by", "created_at") if obj is not None else ()

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "customer":
            kwargs["queryset"] = scope_to_provider(Customer.objects.all(), request.user)
        elif db_field.name == "connection_type":
            kwargs["queryset"] = scope_to_provider(ConnectionType.objects.all(), request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="customer", ordering="customer__name")
    def customer_name(self, connection: ServiceConnection) -> str:
        return f"{connection.customer.name} ({connection.customer.number})"

    @admin.display(description="connection type", ordering="connection_type__code")
    def type_code(self, connection: ServiceConnection) -> str:
        return connection.connection_type.code

    def create(self, request: HttpRequest, values: dict[str, Any]) -> ServiceConnection:
        return connection_create(
            customer=values["customer"],
            connection_type=values["connection_type"],
            number=values["number"],
            **{name: values[name] for name in CONNECTION_FIELDS},
        )

    def update(self, request: HttpRequest, obj: ServiceConnection, changes: dict[str, Any]) -> None:
        income = {
            name: changes.pop(name)
            for name in ("declared_monthly_income", "income_declared_on")
            if name in changes
        }
        if changes:
            connection_update(connection=obj, **changes)
        if income:
            if obj.declared_monthly_income is None or obj.income_declared_on is None:
                raise DomainError(
                    _("A declaration needs the income and the day it was declared."), field="monthlyIncome"
                )
            if not request.user.has_perm("billing.declare_income"):
                raise PermissionDenied
            connection_income_declare(
                connection=obj,
                monthly_income=obj.declared_monthly_income,
                declared_on=obj.income_declared_on,
                recorded_by=request.user,
            )


@admin.register(NumberCounter)
class NumberCounterAdmin(ReadOnlyAdmin):
    """The last number given in each provider's series; numbers are taken by the services only."""

    view_permission = "billing.view_customer"
    list_display = ("series", "last")
    list_filter = ("series", ("provider", admin.RelatedOnlyFieldListFilter))
    search_fields = ("provider__code", "provider__name")
    ordering = ("provider", "series")


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
