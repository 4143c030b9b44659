"""The customer portal: a customer's connections and bills, one bill's details, their payments, and
the usage calculator.

Every read goes through the invoicing selectors, which narrow a customer's role (reach SELF) to the
rows of their own account, so another customer's bill is not found (404) exactly as it is for the API.
The bill and receipt PDFs are the API's own endpoints, which accept this page session.
"""

from decimal import Decimal
from typing import Any

from django import forms
from django.db.models import Count, Q, QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from accounts.permissions import SELF, reach_of
from accounts.web import page, paginate, refusals_into
from billing.rating import RatedBill
from billing.selectors import schedule_in_force, usage_estimate
from invoicing import selectors
from invoicing.models import OPEN_STATUSES, Invoice
from invoicing.pages import bill_context
from providers.models import ConnectionType, Provider
from providers.selectors import connection_types_of

PAGE_SIZE = 24
# The calculator's bounds are the API's (billing.api.CalculatorApi), so both accept the same usage.
KWH = {"max_digits": 14, "decimal_places": 4, "min_value": 0}
KWH_ERRORS = {"min_value": "kWh cannot be negative: enter 0 or more.", "invalid": "Enter a number of kWh."}
DEFAULT_DAYS = Decimal(30)


def _connections_of(invoices: QuerySet[Invoice]) -> QuerySet:
    """The connections the customer's bills are for, with what each owes now (one query).

    Read through the customer's bills because the connection selector reaches a whole provider: it
    has no customer's (SELF) reach. A connection never billed yet has nothing to show here.
    """
    return (
        invoices.order_by("connection__number")
        .values(
            "connection__number",
            "connection__connection_type__code",
            "connection__connection_type__description",
            "connection__meter_number",
            "connection__division",
            "connection__subdivision",
            "connection__status",
        )
        .annotate(bills=Count("pk"), outstanding=Sum("balance", filter=Q(status__in=OPEN_STATUSES)))
    )


@page("invoicing.view_invoice", reach=SELF)
def portal_home(request: HttpRequest) -> HttpResponse:
    invoices = selectors.invoice_list_for(user=request.user)
    return render(
        request,
        "portal/home.html",
        {"connections": _connections_of(invoices), "bills": paginate(request, invoices, PAGE_SIZE)},
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
        label="Connection type",
        error_messages={"invalid_choice": "Choose one of the connection types listed."},
    )
    kwh = forms.DecimalField(
        **KWH,
        required=False,
        label="Units used (kWh)",
        help_text="All the month's units; or give peak and off-peak kWh instead.",
        error_messages=KWH_ERRORS,
    )
    peak_kwh = forms.DecimalField(**KWH, required=False, label="Peak kWh", error_messages=KWH_ERRORS)
    off_peak_kwh = forms.DecimalField(**KWH, required=False, label="Off-peak kWh", error_messages=KWH_ERRORS)
    days = forms.DecimalField(
        max_digits=6,
        decimal_places=2,
        min_value=1,
        max_value=62,
        required=False,
        label="Billing days",
        help_text="Empty: 30 days.",
        error_messages={
            "min_value": "A month of billing is at least 1 day.",
            "max_value": "Estimate at most 62 days at a time.",
            "invalid": "Enter a number of days.",
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
            self.add_error("kwh", "Give either the total kWh or peak and off-peak kWh, not both.")
        elif kwh is None and (peak is None or off_peak is None):
            missing = "off_peak_kwh" if peak is not None else "peak_kwh" if off_peak is not None else "kwh"
            self.add_error(missing, "Enter the kWh to estimate (or both peak and off-peak kWh).")
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
                "This connection type is priced apart at peak and off-peak hours: give peak and off-peak kWh.",
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
