"""The customer portal: a customer's connections (billed yet or not) and bills, one bill's details,
their payments, the usage calculator, their own contact details and e-mail choices, and readings of
their meters (self-reads).

Every read goes through the invoicing selectors, which narrow a customer's role (reach SELF) to the
rows of their own account, so another customer's bill is not found (404) exactly as it is for the API.
The bill and receipt PDFs are the API's own endpoints, which accept this page session.
"""

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import Count, Q, QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.permissions import SELF, reach_of
from accounts.web import form_page, page, paginate, refusals_into
from billing.models import Language, MeterReading, ReadingSource, ServiceConnection
from billing.rating import RatedBill
from billing.selectors import (
    own_connection_get_for,
    own_connections_for,
    own_customer_for,
    schedule_in_force,
    usage_estimate,
    with_last_reading,
)
from billing.services import PROFILE_API_NAMES, PROFILE_FIELDS, customer_profile_update, reading_record
from invoicing import selectors
from invoicing.models import OPEN_STATUSES, InvoiceStatus
from invoicing.pages import bill_context
from providers.models import ConnectionType, Provider
from providers.selectors import connection_types_of

PAGE_SIZE = 24
# The calculator's bounds are the API's (billing.api.CalculatorApi), so both accept the same usage.
KWH = {"max_digits": 14, "decimal_places": 4, "min_value": 0}
KWH_ERRORS = {
    "min_value": _("kWh cannot be negative: enter 0 or more."),
    "invalid": _("Enter a number of kWh."),
}
DEFAULT_DAYS = Decimal(30)


def _connections_of(user: Any) -> QuerySet[ServiceConnection]:
    """Every connection of the customer's account, billed yet or not, each with how many bills it has
    and what it owes now (one query). Only the account's own bills count: a connection whose earlier
    occupant moved out keeps their bills to them."""
    own_bills = Q(invoices__customer__user=user) & ~Q(invoices__status=InvoiceStatus.CANCELLED)
    return own_connections_for(user=user).annotate(
        bills=Count("invoices", filter=own_bills),
        outstanding=Sum("invoices__balance", filter=own_bills & Q(invoices__status__in=OPEN_STATUSES)),
    )


@page("invoicing.view_invoice", reach=SELF)
def portal_home(request: HttpRequest) -> HttpResponse:
    invoices = selectors.invoice_list_for(user=request.user)
    return render(
        request,
        "portal/home.html",
        {"connections": _connections_of(request.user), "bills": paginate(request, invoices, PAGE_SIZE)},
    )


@page("invoicing.view_invoice", reach=SELF)
def portal_bill(request: HttpRequest, invoice_id: int) -> HttpResponse:
    bill = selectors.bill_get_for(user=request.user, invoice_id=invoice_id)
    return render(request, "portal/bill.html", bill_context(bill))


@page("invoicing.view_payment", reach=SELF)
def portal_payments(request: HttpRequest) -> HttpResponse:
    payments = selectors.payment_list_for(user=request.user).prefetch_related("allocations__invoice")
    return render(request, "portal/payments.html", {"payments": paginate(request, payments, PAGE_SIZE)})


class CalculatorForm(forms.Form):
    """The usage calculator's question: the API's (billing.api.CalculatorApi), with a total kWh for
    a tariff that prices every hour alike."""

    connection_type = forms.ModelChoiceField(
        queryset=ConnectionType.objects.none(),
        to_field_name="code",
        empty_label=None,
        label=_("Connection type"),
        error_messages={"invalid_choice": _("Choose one of the connection types listed.")},
    )
    kwh = forms.DecimalField(
        **KWH,
        required=False,
        label=_("Units used (kWh)"),
        help_text=_("All the month's units; or give peak and off-peak kWh instead."),
        error_messages=KWH_ERRORS,
    )
    peak_kwh = forms.DecimalField(**KWH, required=False, label=_("Peak kWh"), error_messages=KWH_ERRORS)
    off_peak_kwh = forms.DecimalField(
        **KWH, required=False, label=_("Off-peak kWh"), error_messages=KWH_ERRORS
    )
    days = forms.DecimalField(
        max_digits=6,
        decimal_places=2,
        min_value=1,
        max_value=62,
        required=False,
        label=_("Billing days"),
        help_text=_("Empty: 30 days."),
        error_messages={
            "min_value": _("A month of billing is at least 1 day."),
            "max_value": _("Estimate at most 62 days at a time."),
            "invalid": _("Enter a number of days."),
        },
    )

    def __init__(self, *args: Any, provider: Provider | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if provider is not None:
            self.fields["connection_type"].queryset = connection_types_of(provider=provider)

    def clean(self) -> dict[str, Any]:
        values = super().clean()
        if self.errors:
            return values
        kwh, peak, off_peak = values["kwh"], values["peak_kwh"], values["off_peak_kwh"]
        if kwh is not None and (peak is not None or off_peak is not None):
            self.add_error("kwh", _("Give either the total kWh or peak and off-peak kWh, not both."))
        elif kwh is None and (peak is None or off_peak is None):
            missing = "off_peak_kwh" if peak is not None else "peak_kwh" if off_peak is not None else "kwh"
            self.add_error(missing, _("Enter the kWh to estimate (or both peak and off-peak kWh)."))
        return values


def _estimate(form: CalculatorForm, provider: Provider) -> RatedBill | None:
    """The estimate for a valid form, or None with the refusal on the form."""
    values = form.cleaned_data
    connection_type = values["connection_type"]
    peak, off_peak = values["peak_kwh"], values["off_peak_kwh"]
    if values["kwh"] is not None:
        # A price alike at every hour rates the sum of the buckets, so the total may stand in one of
        # them; a time-of-use price needs each bucket, as an invoice issued from kWh does.
        schedule = schedule_in_force(provider=provider, day=timezone.localdate())
        if schedule.for_type(connection_type.pk).time_of_use:
            form.add_error(
                "kwh",
                _(
                    "This connection type is priced apart at peak and off-peak hours: give peak and off-peak kWh."
                ),
            )
            return None
        peak, off_peak = Decimal(0), values["kwh"]
    with refusals_into(form):
        return usage_estimate(
            provider=provider,
            connection_type=connection_type,
            peak_kwh=peak,
            off_peak_kwh=off_peak,
            days=values["days"] or DEFAULT_DAYS,
        )
    return None


def _own_connection_type(request: HttpRequest) -> str | None:
    """A customer's connection type (their latest bill's), so the calculator starts on their own."""
    if reach_of(request.user.active_role, "invoicing.view_invoice") is not SELF:
        return None
    bills = selectors.invoice_list_for(user=request.user)
    return bills.values_list("connection__connection_type__code", flat=True).first()


@page("billing.use_calculator")
def usage_calculator(request: HttpRequest) -> HttpResponse:
    """A GET form, so an estimate is a link that can be kept or shared."""
    provider = request.user.provider
    asked = "connection_type" in request.GET
    form = CalculatorForm(
        request.GET if asked else None,
        provider=provider,
        initial={"connection_type": _own_connection_type(request)},
    )
    estimate = None
    if asked and provider is not None and form.is_valid():
        estimate = _estimate(form, provider)
    return render(
        request,
        "portal/calculator.html",
        {"form": form, "estimate": estimate, "has_provider": provider is not None, "asked": asked},
        status=400 if asked and form.errors else 200,
    )


# --- the customer's own details, and their readings --------------------------------------------------


class ProfileForm(forms.Form):
    email = forms.EmailField(
        required=False,
        max_length=254,
        label=_("E-mail for bills and notices"),
        help_text=_("Empty: no e-mails. You still sign in with your login's address."),
    )
    phone = forms.CharField(required=False, max_length=30, label=_("Phone"))
    address = forms.CharField(required=False, max_length=300, label=_("Address"))
    preferred_language = forms.ChoiceField(
        choices=Language.choices, label=_("Language of your pages and e-mails")
    )
    notify_bills = forms.BooleanField(required=False, label=_("E-mail me each bill when it is issued"))
    notify_reminders = forms.BooleanField(
        required=False, label=_("Remind me before a bill is due, and tell me when it is overdue")
    )
    notify_payments = forms.BooleanField(required=False, label=_("E-mail me a receipt for each payment"))


@page("billing.change_own_customer", reach=SELF)
def portal_profile(request: HttpRequest) -> HttpResponse:
    customer = own_customer_for(user=request.user)
    form = ProfileForm(
        request.POST or None, initial={name: getattr(customer, name) for name in PROFILE_FIELDS}
    )
    if request.method == "POST" and form.is_valid():
        with refusals_into(form, fields={api: name for name, api in PROFILE_API_NAMES.items()}):
            customer_profile_update(customer=customer, **form.cleaned_data)
            messages.success(request, _("Your details are saved."))
            return redirect("portal-profile")
    return form_page(request, "portal/profile.html", {"form": form, "customer": customer}, form=form)


REGISTER_FIELD = {"max_digits": 14, "decimal_places": 4, "min_value": 0}
REGISTER_ERRORS = {
    "min_value": _("A meter register is never below 0."),
    "invalid": _("Enter the number the meter shows, in kWh."),
    "max_decimal_places": _("Enter at most 4 decimals."),
    "max_digits": _("Enter at most 10 digits before the decimal point."),
}


class SelfReadingForm(forms.Form):
    """What the customer reads off their meter. A meter exchange is the provider's to record."""

    taken_at = forms.DateTimeField(
        label=_("Read on"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        help_text=_("The date and time you read the meter."),
        error_messages={"invalid": _("Enter the date and time you read the meter.")},
    )
    import_peak = forms.DecimalField(
        **REGISTER_FIELD, label=_("Peak register (kWh)"), error_messages=REGISTER_ERRORS
    )
    import_off_peak = forms.DecimalField(
        **REGISTER_FIELD,
        label=_("Off-peak register (kWh)"),
        help_text=_("A meter with one register: enter its reading here and 0 as peak."),
        error_messages=REGISTER_ERRORS,
    )
    export_peak = forms.DecimalField(
        **REGISTER_FIELD,
        required=False,
        label=_("Export, peak (kWh)"),
        help_text=_("Solar panels: what the meter sent to the grid. Empty: 0."),
        error_messages=REGISTER_ERRORS,
    )
    export_off_peak = forms.DecimalField(
        **REGISTER_FIELD,
        required=False,
        label=_("Export, off-peak (kWh)"),
        help_text=_("Empty: 0."),
        error_messages=REGISTER_ERRORS,
    )


@page("billing.add_own_meterreading", reach=SELF)
def portal_reading(request: HttpRequest, connection_id: int) -> HttpResponse:
    """A self-read: checked as every reading is against the meter's earlier and later readings, and
    refused with the reason next to the register (or time) that fails."""
    connection = own_connection_get_for(user=request.user, connection_id=connection_id)
    now = timezone.localtime().replace(second=0, microsecond=0)
    form = SelfReadingForm(request.POST or None, initial={"taken_at": now})
    if request.method == "POST" and form.is_valid():
        values = form.cleaned_data
        with refusals_into(form, fields={"takenAt": "taken_at"}):
            reading_record(
                connection=connection,
                taken_at=values["taken_at"],
                registers={name: values[name] or Decimal(0) for name in MeterReading.REGISTERS},
                source=ReadingSource.SELF,
                recorded_by=request.user,
            )
            messages.success(
                request,
                _("Your reading of %(number)s is recorded. Thank you.") % {"number": connection.number},
            )
            return redirect("portal-home")
    (connection,) = with_last_reading(own_connections_for(user=request.user).filter(pk=connection.pk))
    return form_page(request, "portal/reading.html", {"form": form, "connection": connection}, form=form)
