"""The staff pages of customers and connections: find a customer, open an account, add a connection,
connect it with its first reading, record a declared income, change details, onboard a file of them.

Each page reads through `billing.selectors` and writes through `billing.services`, as the API does; a
service's refusal is shown next to the field it concerns, with the form as it was typed. A
connection's page lists what may be done with it (`connection_actions`), linking to the meter exchange
form and to the lifecycle page (invoicing.lifecycle_pages) for the steps of its life.
"""

from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods

from accounts.permissions import PROVIDER, reach_of, role_allows
from accounts.web import form_page, page, paginate, refusals_into
from billing import lifecycle, services
from billing.api import MAX_ONBOARDING_ROWS, CustomerFilter
from billing.importing import COLUMNS, MAX_UPLOAD_BYTES, ImportReport, csv_file_rows, customers_import
from billing.models import ConnectionStatus, Customer, CustomerKind, Language, MeterReading, ServiceConnection
from billing.selectors import connection_get_for, customer_get_for, customer_list_for
from config.errors import DomainError
from providers.models import ConnectionType
from providers.selectors import connection_types_of

PAGE_SIZE = 25
RECENT_READINGS = 12
KWH_FIELD = {"max_digits": 14, "decimal_places": 4, "min_value": Decimal("0")}
DATE_INPUT = forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"})

# A service names its fields as the API does; these are the forms' names for them.
FORM_FIELDS = {
    "customerId": "number",
    "connectionId": "number",
    "nationalId": "national_id",
    "phoneNumber": "phone",
    "preferredLanguage": "preferred_language",
    "connectionType": "connection_type",
    "meterNumber": "meter_number",
    "meterType": "meter_type",
    "installationDate": "installation_date",
    "monthlyIncome": "monthly_income",
    "declaredOn": "declared_on",
    "takenAt": "taken_at",
}


def _may(request: HttpRequest, perm: str) -> bool:
    return role_allows(request.user.active_role, perm, user=request.user)


def _bills_url(request: HttpRequest, **query: str) -> str | None:
    """Where the caller finds a customer's or connection's bills: every bill of the provider, or the
    bills they issued themselves; None when their role sees no bills."""
    role = request.user.active_role
    if reach_of(role, "invoicing.view_invoice") is PROVIDER:
        name = "invoices-all"
    elif role_allows(role, "invoicing.add_invoice", user=request.user):
        name = "invoices-mine"
    else:
        return None
    return f"{reverse(name)}?{'&'.join(f'{key}={value}' for key, value in query.items())}"


# --- customers -----------------------------------------------------------------------------------


class CustomerDetailsForm(forms.Form):
    """What `customer_update` changes."""

    name = forms.CharField(max_length=150)
    national_id = forms.CharField(
        label=_("National id (CNIC)"),
        max_length=20,
        required=False,
        help_text=_("For example 35202-1234567-1."),
    )
    email = forms.EmailField(
        label=_("E-mail"), required=False, help_text=_("Where bills and notices are sent; empty: none are.")
    )
    phone = forms.CharField(
        label=_("Phone number"), max_length=30, required=False, help_text=_("For example 0300-1234567.")
    )
    address = forms.CharField(max_length=300, required=False)
    kind = forms.ChoiceField(choices=CustomerKind.choices, initial=CustomerKind.RESIDENTIAL)
    organisation = forms.CharField(
        max_length=200, required=False, help_text=_("For a business or public body.")
    )
    preferred_language = forms.ChoiceField(
        label=_("Language of bills and e-mails"), choices=Language.choices, initial=Language.ENGLISH
    )
    notify_bills = forms.BooleanField(label=_("E-mail each bill"), required=False, initial=True)
    notify_reminders = forms.BooleanField(
        label=_("E-mail before the due date and when overdue"), required=False, initial=True
    )
    notify_payments = forms.BooleanField(
        label=_("E-mail a receipt for each payment"), required=False, initial=True
    )


class CustomerCreateForm(CustomerDetailsForm):
    number = forms.CharField(
        label=_("Customer number"),
        max_length=40,
        required=False,
        help_text=_("As printed on the provider's papers; leave empty to have the next number given."),
    )
    invite = forms.BooleanField(
        label=_("E-mail an invitation to the portal"),
        required=False,
        initial=True,
        help_text=_(
            "With an e-mail address: a login is made from it, and a link to set its password is sent."
        ),
    )

    field_order = ["number", "name"]

    def __init__(self, *args: Any, may_invite: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not may_invite:
            del self.fields["invite"]


@require_GET
@page("billing.view_customer")
def customer_list(request: HttpRequest) -> HttpResponse:
    filters = CustomerFilter(request.GET, queryset=customer_list_for(user=request.user).order_by("number"))
    filters.form.fields["hasLogin"].widget.choices = [("unknown", "Any"), ("true", "Yes"), ("false", "No")]
    rows = filters.qs if filters.is_valid() else Customer.objects.none()
    return render(
        request,
        "billing/customer_list.html",
        {
            "filters": filters,
            "page_obj": paginate(request, rows, PAGE_SIZE),
            "may_add": _may(request, "billing.add_customer"),
            "may_import": _may(request, "billing.add_customer")
            and _may(request, "billing.add_serviceconnection"),
        },
    )


@require_http_methods(["GET", "POST"])
@page("billing.add_customer")
def customer_new(request: HttpRequest) -> HttpResponse:
    form = CustomerCreateForm(request.POST or None, may_invite=_may(request, "accounts.invite_customer"))
    if request.method == "POST" and form.is_valid():
        with refusals_into(form, fields=FORM_FIELDS):
            provider = request.user.provider
            if provider is None:
                raise DomainError(gettext("Sign in as a user of a provider to open its customers' accounts."))
            customer = services.customer_create(
                provider=provider, **form.cleaned_data, created_by=request.user
            )
            messages.success(
                request,
                _("Customer %(number)s, %(name)s, is added.")
                % {"number": customer.number, "name": customer.name},
            )
            return redirect("customer-detail", customer_id=customer.pk)
    return form_page(request, "billing/customer_form.html", {"form": form}, form=form)


@require_GET
@page("billing.view_customer")
def customer_detail(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = customer_get_for(user=request.user, customer_id=customer_id)
    return render(
        request,
        "billing/customer_detail.html",
        {
            "customer": customer,
            "connections": customer.connections.all(),
            "may_change": _may(request, "billing.change_customer"),
            "may_add_connection": _may(request, "billing.add_serviceconnection"),
            "bills_url": _bills_url(request, customer=customer.number),
            "may_invite": _may(request, "accounts.invite_customer"),
            "may_see_messages": _may(request, "accounts.view_message"),
        },
    )


@require_http_methods(["GET", "POST"])
@page("billing.change_customer")
def customer_edit(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = customer_get_for(user=request.user, customer_id=customer_id)
    initial = {name: getattr(customer, name) for name in CustomerDetailsForm.base_fields}
    form = CustomerDetailsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        with refusals_into(form, fields=FORM_FIELDS):
            changes = {name: form.cleaned_data[name] for name in form.changed_data}
            services.customer_update(customer=customer, **changes)
            messages.success(request, _("The details of %(number)s are saved.") % {"number": customer.number})
            return redirect("customer-detail", customer_id=customer.pk)
    return form_page(request, "billing/customer_form.html", {"form": form, "customer": customer}, form=form)


class ImportForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        help_text=f"UTF-8, with a header line; at most {MAX_ONBOARDING_ROWS:,} rows and "
        f"{MAX_UPLOAD_BYTES // 2**20} MB.",
    )


@require_http_methods(["GET", "POST"])
@page("billing.add_serviceconnection")
def customer_import(request: HttpRequest) -> HttpResponse:
    """A file of customers and connections, each row through the services; the rows' results shown."""
    if not _may(request, "billing.add_customer"):
        raise PermissionDenied
    form = ImportForm(request.POST or None, request.FILES or None)
    report: ImportReport | None = None
    if request.method == "POST" and form.is_valid():
        with refusals_into(form):
            rows = csv_file_rows(form.cleaned_data["file"], max_rows=MAX_ONBOARDING_ROWS)
            provider = request.user.provider
            if provider is None:
                raise DomainError(gettext("Sign in as a user of a provider to load its customers."))
            report = customers_import(provider=provider, rows=rows, imported_by=request.user)
    return form_page(
        request,
        "billing/customer_import.html",
        {"form": form, "report": report, "columns": COLUMNS},
        form=form,
    )


# --- connections ---------------------------------------------------------------------------------


class ConnectionDetailsForm(forms.Form):
    """What `connection_update` changes."""

    meter_number = forms.CharField(
        label=_("Meter number"),
        max_length=40,
        required=False,
        help_text=_(
            "Changed here only before the meter's first reading; later, a meter exchange replaces it."
        ),
    )
    meter_type = forms.CharField(label=_("Meter type"), max_length=60, required=False)
    division = forms.CharField(max_length=100, required=False)
    subdivision = forms.CharField(max_length=100, required=False)
    installation_date = forms.DateField(label=_("Installation date"), required=False, widget=DATE_INPUT)


class ConnectionTypeChoice(forms.ModelChoiceField):
    def label_from_instance(self, connection_type: ConnectionType) -> str:
        return f"{connection_type.code}: {connection_type.description}"


class ConnectionCreateForm(ConnectionDetailsForm):
    number = forms.CharField(
        label=_("Connection number"),
        max_length=40,
        required=False,
        help_text=_("As printed on the provider's papers; leave empty to have the next number given."),
    )
    connection_type = ConnectionTypeChoice(label=_("Connection type"), queryset=ConnectionType.objects.none())

    field_order = ["number", "connection_type"]

    def __init__(self, *args: Any, customer: Customer, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["meter_number"].help_text = _(
            "The meter fitted; one meter serves one connection at a time."
        )
        self.fields["connection_type"].queryset = connection_types_of(provider=customer.provider).order_by(
            "code"
        )


@require_http_methods(["GET", "POST"])
@page("billing.add_serviceconnection")
def connection_new(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = customer_get_for(user=request.user, customer_id=customer_id)
    form = ConnectionCreateForm(request.POST or None, customer=customer)
    if request.method == "POST" and form.is_valid():
        with refusals_into(form, fields=FORM_FIELDS):
            connection = services.connection_create(customer=customer, **form.cleaned_data)
            messages.success(
                request,
                gettext("Connection %(number)s is added, pending until its first reading is recorded.")
                % {"number": connection.number},
            )
            return redirect("connection-detail", connection_id=connection.pk)
    return form_page(request, "billing/connection_form.html", {"form": form, "customer": customer}, form=form)


def connection_actions(request: HttpRequest, connection: ServiceConnection) -> list[dict[str, str]]:
    """What the caller may do with the connection now, as (label, address) buttons on its page."""
    actions = []
    if connection.status == ConnectionStatus.PENDING and _may(request, "billing.connect_connection"):
        actions.append(
            {"label": "Record the first reading", "url": reverse("connection-connect", args=[connection.pk])}
        )
    if connection.status != ConnectionStatus.CLOSED:
        if _may(request, "billing.declare_income"):
            actions.append(
                {"label": "Declare an income", "url": reverse("connection-income", args=[connection.pk])}
            )
        if _may(request, "billing.change_serviceconnection"):
            actions.append(
                {"label": "Change the details", "url": reverse("connection-edit", args=[connection.pk])}
            )
    if connection.status == ConnectionStatus.ACTIVE and _may(request, "billing.add_meterexchange"):
        exchange = f"{reverse('meter-exchange-new')}?{urlencode({'connection': connection.number})}"
        actions.append({"label": "Exchange the meter", "url": exchange})
    if _may(request, "billing.view_connectionevent"):
        # Disconnect, reconnect, move, close, change of type: the lifecycle page offers what the role may.
        actions.append(
            {"label": "History and next steps", "url": reverse("connection-lifecycle", args=[connection.pk])}
        )
    if _may(request, "invoicing.view_dunningstep"):
        # Overdue debt, dunning steps and payment plans (invoicing's page, named by its URL only).
        actions.append(
            {"label": "Collection", "url": reverse("connection-collection-page", args=[connection.pk])}
        )
    return actions


@require_GET
@page("billing.view_serviceconnection")
def connection_detail(request: HttpRequest, connection_id: int) -> HttpResponse:
    connection = connection_get_for(user=request.user, connection_id=connection_id)
    readings = MeterReading.objects.filter(connection=connection).order_by("-taken_at")[:RECENT_READINGS]
    return render(
        request,
        "billing/connection_detail.html",
        {
            "connection": connection,
            "readings": readings,
            "actions": connection_actions(request, connection),
            "bills_url": _bills_url(request, connection=connection.number),
        },
    )


@require_http_methods(["GET", "POST"])
@page("billing.change_serviceconnection")
def connection_edit(request: HttpRequest, connection_id: int) -> HttpResponse:
    connection = connection_get_for(user=request.user, connection_id=connection_id)
    initial = {name: getattr(connection, name) for name in ConnectionDetailsForm.base_fields}
    form = ConnectionDetailsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        with refusals_into(form, fields=FORM_FIELDS):
            changes = {name: form.cleaned_data[name] for name in form.changed_data}
            services.connection_update(connection=connection, **changes)
            messages.success(
                request, _("The details of connection %(number)s are saved.") % {"number": connection.number}
            )
            return redirect("connection-detail", connection_id=connection.pk)
    return form_page(
        request, "billing/connection_form.html", {"form": form, "connection": connection}, form=form
    )


class IncomeForm(forms.Form):
    monthly_income = forms.DecimalField(
        label=_("Declared monthly income"),
        max_digits=14,
        decimal_places=2,
        min_value=Decimal("0"),
        help_text=_("In the provider's currency, as the customer declared it."),
    )
    declared_on = forms.DateField(
        label=_("Declared on"),
        initial=timezone.localdate,
        widget=DATE_INPUT,
        help_text=_("Today or earlier."),
    )


@require_http_methods(["GET", "POST"])
@page("billing.declare_income")
def connection_income(request: HttpRequest, connection_id: int) -> HttpResponse:
    connection = connection_get_for(user=request.user, connection_id=connection_id)
    form = IncomeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with refusals_into(form, fields=FORM_FIELDS):
            services.connection_income_declare(
                connection=connection,
                monthly_income=form.cleaned_data["monthly_income"],
                declared_on=form.cleaned_data["declared_on"],
                recorded_by=request.user,
            )
            messages.success(
                request,
                _("The declared income of connection %(number)s is recorded.")
                % {"number": connection.number},
            )
            return redirect("connection-detail", connection_id=connection.pk)
    return form_page(
        request, "billing/connection_income.html", {"form": form, "connection": connection}, form=form
    )


class FirstReadingForm(forms.Form):
    taken_at = forms.DateTimeField(
        label=_("Taken at"),
        widget=forms.DateTimeInput(format="%Y-%m-%dT%H:%M", attrs={"type": "datetime-local"}),
        help_text=_("The date and time on the meter reading slip (local time)."),
    )
    import_peak = forms.DecimalField(label=_("Import, peak (kWh)"), **KWH_FIELD)
    import_off_peak = forms.DecimalField(label=_("Import, off-peak (kWh)"), **KWH_FIELD)
    export_peak = forms.DecimalField(
        label=_("Export, peak (kWh)"), required=False, initial=Decimal("0"), **KWH_FIELD
    )
    export_off_peak = forms.DecimalField(
        label=_("Export, off-peak (kWh)"), required=False, initial=Decimal("0"), **KWH_FIELD
    )


@require_http_methods(["GET", "POST"])
@page("billing.connect_connection")
def connection_connect(request: HttpRequest, connection_id: int) -> HttpResponse:
    """Connect a pending connection with its first reading: from then on it is billed."""
    connection = connection_get_for(user=request.user, connection_id=connection_id)
    form = FirstReadingForm(request.POST or None, initial={"taken_at": _this_minute()})
    if request.method == "POST" and form.is_valid():
        with refusals_into(form, fields=FORM_FIELDS):
            values = form.cleaned_data
            lifecycle.connection_connect(
                connection=connection,
                taken_at=values["taken_at"],
                registers={name: values[name] or Decimal("0") for name in MeterReading.REGISTERS},
                connected_by=request.user,
            )
            messages.success(
                request,
                gettext("Connection %(number)s is connected: its first reading is recorded.")
                % {"number": connection.number},
            )
            return redirect("connection-detail", connection_id=connection.pk)
    return form_page(
        request, "billing/connection_connect.html", {"form": form, "connection": connection}, form=form
    )


def _this_minute() -> datetime:
    return timezone.localtime().replace(second=0, microsecond=0)
