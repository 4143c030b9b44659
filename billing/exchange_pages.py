"""The staff pages of meter exchanges: the provider's exchanges, and the form that records one.

The form writes through `meter_exchange_record`, as the API and Django admin do; a refusal is shown
next to the field it concerns, with the form as it was typed.
"""

from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.permissions import role_allows
from accounts.web import page, paginate, refusals_into
from billing.models import MeterReading
from billing.selectors import connection_list_for, meter_exchange_list_for
from billing.services import meter_exchange_record
from config.errors import NotFound

PAGE_SIZE = 25
REGISTER_LABELS = {
    "import_peak": "import, peak",
    "import_off_peak": "import, off-peak",
    "export_peak": "export, peak",
    "export_off_peak": "export, off-peak",
}


def _camel(prefix: str, name: str) -> str:
    return prefix + "".join(word.capitalize() for word in name.split("_"))


def _register_field(meter: str, name: str) -> forms.DecimalField:
    return forms.DecimalField(
        label=f"{meter} meter: {REGISTER_LABELS[name]} (kWh)",
        max_digits=14,
        decimal_places=4,
        min_value=Decimal("0"),
        required=name.startswith("import"),
        widget=forms.NumberInput(attrs={"step": "0.0001", "inputmode": "decimal"}),
    )


class MeterExchangeForm(forms.Form):
    connectionNumber = forms.CharField(
        label=_("Connection ID"), max_length=40, help_text=_("As printed on the bill, e.g. DISCO-RES-1101")
    )
    exchangedAt = forms.DateTimeField(
        label=_("Exchanged at"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=_("When the old meter was read for the last time and the new one for the first."),
    )
    newMeterNumber = forms.CharField(label=_("New meter number"), max_length=40)
    newMeterType = forms.CharField(
        label=_("New meter type"),
        max_length=60,
        required=False,
        help_text=_("Empty: the same type as the old."),
    )
    reason = forms.CharField(
        label=_("Reason"), max_length=300, widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Why the meter was exchanged: faulty, burnt, upgraded to a net meter, ..."),
    )  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for prefix, meter in (("final", "Old"), ("first", "New")):
            for name in MeterReading.REGISTERS:
                self.fields[_camel(prefix, name)] = _register_field(meter, name)

    def registers(self, prefix: str) -> list[forms.BoundField]:
        return [self[_camel(prefix, name)] for name in MeterReading.REGISTERS]

    def final_fields(self) -> list[forms.BoundField]:
        return self.registers("final")

    def first_fields(self) -> list[forms.BoundField]:
        return self.registers("first")


@page("billing.view_meterexchange")
def exchange_list(request: HttpRequest) -> HttpResponse:
    exchanges = meter_exchange_list_for(user=request.user).order_by("-exchanged_at", "-pk")
    number = request.GET.get("connection", "").strip()
    if number:
        exchanges = exchanges.filter(connection__number=number)
    user = request.user
    return render(
        request,
        "billing/meter_exchange_list.html",
        {
            "page_obj": paginate(request, exchanges, PAGE_SIZE),
            "connection": number,
            "can_add": role_allows(user.active_role, "billing.add_meterexchange", user=user),
        },
    )


@page("billing.add_meterexchange")
def exchange_new(request: HttpRequest) -> HttpResponse:
    # From a connection's page, the form comes with its number filled in.
    form = MeterExchangeForm(
        request.POST or None, initial={"connectionNumber": request.GET.get("connection", "")}
    )
    if request.method == "POST" and form.is_valid():
        values = form.cleaned_data
        with refusals_into(form, fields={"connectionId": "connectionNumber"}):
            connection = (
                connection_list_for(user=request.user)
                .filter(number=values["connectionNumber"].strip())
                .first()
            )
            if connection is None:
                raise NotFound(gettext("No connection with that ID in your company."), field="connectionId")
            exchange = meter_exchange_record(
                connection=connection,
                at=values["exchangedAt"],
                old_final={name: values[_camel("final", name)] for name in MeterReading.REGISTERS},
                new_first={name: values[_camel("first", name)] for name in MeterReading.REGISTERS},
                new_meter_number=values["newMeterNumber"],
                new_meter_type=values["newMeterType"],
                reason=values["reason"],
                recorded_by=request.user,
            )
            messages.success(
                request,
                gettext("Meter %(meter)s recorded on connection %(number)s in place of %(old)s.")
                % {
                    "meter": exchange.new_meter_number,
                    "number": connection.number,
                    "old": exchange.old_meter_number or gettext("the old meter"),
                },
            )
            return redirect(f"{reverse('meter-exchanges')}?{urlencode({'connection': connection.number})}")
    return render(
        request, "billing/meter_exchange_form.html", {"form": form}, status=400 if form.errors else 200
    )
