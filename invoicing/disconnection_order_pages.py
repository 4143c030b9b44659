"""The field staff's disconnection orders: the list (open ones first: the day's round) and an order's
page, where the supply is cut on site with the meter's reading, through the same service as the API.
An order whose debt was paid meanwhile is withdrawn there instead, and the page says so."""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from accounts.permissions import role_allows
from accounts.web import form_page, page, paginate, refusals_into
from invoicing import services
from invoicing.collection_selectors import disconnection_order_get_for, disconnection_order_list_for
from invoicing.lifecycle_pages import FORM_FIELDS, ReadingForm, moment_field
from invoicing.models import DisconnectionOrderStatus

PAGE_SIZE = 50
CARRY_OUT = "invoicing.carry_out_disconnectionorder"


class StatusFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Orders"),
        required=False,
        choices=[(DisconnectionOrderStatus.OPEN, "Open"), *DisconnectionOrderStatus.choices[1:], ("", "All")],
    )


class CarryOutForm(ReadingForm):
    at = moment_field("Disconnected at", "When the supply is cut")
    note = forms.CharField(
        max_length=200,
        required=False,
        help_text=_("What was found on site; kept in the connection's history."),
    )
    field_order = ["at", "note"]


@page("invoicing.view_disconnectionorder")
def disconnection_order_list(request: HttpRequest) -> HttpResponse:
    filters = StatusFilterForm(request.GET or {"status": DisconnectionOrderStatus.OPEN})
    status = filters.cleaned_data["status"] if filters.is_valid() else DisconnectionOrderStatus.OPEN
    orders = disconnection_order_list_for(user=request.user, status=status)
    values = {"filters": filters, "page_obj": paginate(request, orders, PAGE_SIZE), "status": status}
    return form_page(request, "invoicing/disconnection_order_list.html", values, form=filters)


@require_http_methods(["GET", "POST"])
@page("invoicing.view_disconnectionorder")
def disconnection_order_detail(request: HttpRequest, order_id: int) -> HttpResponse:
    order = disconnection_order_get_for(user=request.user, order_id=order_id)
    may_carry_out = order.status == DisconnectionOrderStatus.OPEN and role_allows(
        request.user.active_role, CARRY_OUT, user=request.user
    )
    form = None
    if may_carry_out:
        initial = {"at": timezone.localtime().replace(second=0, microsecond=0)}
        form = CarryOutForm(request.POST or None, initial=initial, connection=order.connection)
    if request.method == "POST":
        if form is None:
            raise PermissionDenied
        if form.is_valid():
            with refusals_into(form, fields=FORM_FIELDS):
                order = services.disconnection_order_carry_out(
                    order=order,
                    effective_at=form.cleaned_data["at"],
                    registers=form.registers(),
                    note=form.cleaned_data["note"],
                    by=request.user,
                )
                if order.status == DisconnectionOrderStatus.WITHDRAWN:
                    messages.warning(
                        request,
                        gettext("Order %(number)s is withdrawn, the supply stays on: %(withdrawn_reason)s")
                        % {"number": order.number, "withdrawn_reason": order.withdrawn_reason},
                    )
                else:
                    messages.success(
                        request,
                        gettext("Connection %(number)s is disconnected on order %(order_number)s.")
                        % {"number": order.connection.number, "order_number": order.number},
                    )
                return redirect("disconnection-order-detail", order_id=order.pk)
    values = {"order": order, "form": form}
    return form_page(request, "invoicing/disconnection_order_detail.html", values, form=form or forms.Form())
