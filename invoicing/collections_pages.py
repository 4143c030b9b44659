"""A connection's collection page (/connections/<id>/collection): what is overdue, the dunning steps
taken with their notices, and its payment plans with each instalment's cover. An officer (a role
holding invoicing.add_paymentplan) makes a plan here, through the same service as the API."""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from accounts.permissions import role_allows
from accounts.web import form_page, page, refusals_into
from billing.selectors import connection_get_for
from invoicing import services
from invoicing.collection_selectors import collection_status

PLAN_PERM = "invoicing.add_paymentplan"


class PaymentPlanForm(forms.Form):
    instalments = forms.IntegerField(
        min_value=1,
        max_value=services.PLAN_MAX_INSTALMENTS,
        help_text=f"Monthly, 1 to {services.PLAN_MAX_INSTALMENTS}; the last takes what the others leave.",
    )
    first_due_date = forms.DateField(
        label=_("First due date"),
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Today or later."),
    )
    reason = forms.CharField(
        max_length=300, widget=forms.Textarea(attrs={"rows": 2}), help_text=_("Kept with the plan.")
    )


@require_http_methods(["GET", "POST"])
@page("invoicing.view_dunningstep")
def connection_collection(request: HttpRequest, connection_id: int) -> HttpResponse:
    connection = connection_get_for(user=request.user, connection_id=connection_id)
    may_plan = role_allows(request.user.active_role, PLAN_PERM, user=request.user)
    form = PaymentPlanForm(request.POST or None) if may_plan else None
    if request.method == "POST":
        if form is None:
            raise PermissionDenied
        if form.is_valid():
            with refusals_into(form, fields={"firstDueDate": "first_due_date"}):
                plan = services.payment_plan_create(
                    connection=connection,
                    instalments=form.cleaned_data["instalments"],
                    first_due_date=form.cleaned_data["first_due_date"],
                    reason=form.cleaned_data["reason"],
                    created_by=request.user,
                )
                messages.success(
                    request,
                    gettext("The plan spreads %(arrears)s over %(instalments)s instalments.")
                    % {"arrears": plan.arrears, "instalments": form.cleaned_data["instalments"]},
                )
                return redirect("connection-collection-page", connection_id=connection.pk)
    values = {"status": collection_status(connection), "connection": connection, "form": form}
    return form_page(request, "invoicing/connection_collection.html", values, form=form or forms.Form())
