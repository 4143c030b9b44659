"""The staff pages of bank payment files: the upload form with the files uploaded so far, and a file's
page with its progress (live, from the API), its totals and its rows filtered by outcome, reference or
bill. They upload and read through the same functions as the API."""

from typing import Any

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from accounts.permissions import role_allows
from accounts.web import form_page, page, paginate, refusals_into
from invoicing import selectors
from invoicing.models import PaymentFileStatus, RowOutcome
from invoicing.payment_files_api import payment_file_receive
from invoicing.services.payment_files import MAX_FILE_BYTES, MAX_ROWS

PAGE_SIZE = 25
ROWS_PAGE_SIZE = 50


class UploadForm(forms.Form):
    format = forms.ChoiceField(
        label=_("File format"), help_text=_("The bank or collection agent the file comes from.")
    )
    file = forms.FileField(
        label=_("Payment file (CSV)"),
        help_text=f"UTF-8, with the format's header line; at most {MAX_ROWS:,} rows and "
        f"{MAX_FILE_BYTES // 2**20} MB.",
    )

    def __init__(self, *args: Any, formats: list, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["format"].choices = [(str(row.pk), row.name) for row in formats]


class RowFilterForm(forms.Form):
    outcome = forms.ChoiceField(
        label=_("Outcome"), required=False, choices=[("", "All rows"), *RowOutcome.choices]
    )
    search = forms.CharField(
        label=_("Reference, bill or connection"),
        required=False,
        max_length=100,
        help_text=_("Exact, as in the file."),
    )


@require_http_methods(["GET", "POST"])
@page("invoicing.view_paymentfile")
def payment_file_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    can_upload = role_allows(user.active_role, "invoicing.add_paymentfile", user=user)
    if request.method == "POST" and not can_upload:
        raise PermissionDenied
    formats = list(selectors.payment_file_formats_for(user=user)) if can_upload else []
    form = UploadForm(request.POST or None, request.FILES or None, formats=formats)
    if request.method == "POST" and form.is_valid():
        with refusals_into(form):
            payment_file = payment_file_receive(
                request, form.cleaned_data["file"], form.cleaned_data["format"]
            )
            return redirect("payment-file-detail", file_id=payment_file.pk)
    files = paginate(request, selectors.payment_file_list_for(user=user), PAGE_SIZE)
    return form_page(
        request,
        "invoicing/payment_file_list.html",
        {"form": form, "can_upload": can_upload, "formats": formats, "page_obj": files},
        form=form,
    )


@page("invoicing.view_paymentfile")
def payment_file_detail(request: HttpRequest, file_id: int) -> HttpResponse:
    payment_file = selectors.payment_file_get_for(user=request.user, file_id=file_id)
    filters = RowFilterForm(request.GET)
    rows = selectors.payment_file_rows(payment_file)
    if filters.is_valid():
        outcome, search = filters.cleaned_data["outcome"], filters.cleaned_data["search"].strip()
        if outcome:
            rows = rows.filter(outcome=outcome)
        if search:
            rows = (
                rows.filter(reference=search)
                | rows.filter(bill_number=search)
                | rows.filter(connection_number=search)
            )
    else:
        rows = rows.none()
    running = payment_file.status == PaymentFileStatus.PROCESSING
    return render(
        request,
        "invoicing/payment_file_detail.html",
        {
            "file": payment_file,
            "running": running,
            "finished_status": PaymentFileStatus.COMPLETED,
            "filters": filters,
            "page_obj": paginate(request, rows, ROWS_PAGE_SIZE),
            "api_url": reverse("payment-file", args=[payment_file.pk]),
            "results_url": reverse("payment-file-results", args=[payment_file.pk]),
        },
        status=400 if filters.errors else 200,
    )
