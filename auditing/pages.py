"""The auditors' pages: the audit trail, one invoice's change history, the pricing history, and
questions answered as checked, provider-scoped, read-only SQL.

They read through the selectors the /api/audit endpoints use, with the same filters, and ask
questions through the same service and worker task as `POST /api/audit/query`. An audit row's
values are shown as a clerk reads them: "Due date: 2024-02-10 → 2024-02-15".
"""

import json
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from django import forms
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext_lazy as _

from accounts.roles import Role
from accounts.web import form_page, page, paginate, refusals_into
from auditing.ai.offline import EXAMPLES
from auditing.models import AIQuery, AIQueryStatus, AuditLog
from auditing.receivers import audited_models
from auditing.selectors import ai_queries_of, audit_log_for, invoice_history_for
from auditing.services import DIGEST_PREFIX, MAX_QUESTION, ai_query_submit
from auditing.tasks import dispatch
from config.queue import require_queue
from invoicing.models import Invoice
from invoicing.selectors import invoice_get_for, invoice_list_for
from providers.models import Bucket, TariffRow
from providers.selectors import connection_types_of, pricing_history_for

PER_PAGE = 50
RECENT_QUESTIONS = 10
# The invoice number search, as the API's: at most this much of a number, at most this many invoices.
NUMBER_LENGTH = 40
MATCHED_INVOICES = 500
# A row with more values than this (a created invoice) shows them folded, so the table stays readable.
UNFOLDED_VALUES = 6

ACTIONS = {
    "create": "Created",
    "update": "Changed",
    "delete": "Deleted",
    "login": "Signed in",
    "login_failed": "Sign-in failed",
    "logout": "Signed out",
    "role_selected": "Chose a role",
    "role_switched": "Switched role",
    "role_removed": "Role removed",
    "ai_query": "Asked a question",
}
INVOICE_TYPE = "invoicing.invoice"
AI_QUERY_TYPE = "auditing.aiquery"


def _record_types() -> dict[str, str]:
    types = {
        model._meta.label_lower: str(model._meta.verbose_name).capitalize() for model in audited_models()
    }
    return {**types, AI_QUERY_TYPE: "AI query"}


def _role_label(role: str) -> str:
    return Role(role).label if role in Role.values else role


# --- how audit values read ----------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    field: str
    old: str | None  # None: this side was not recorded (a created row has no old values)
    new: str | None


_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")


def _field_label(name: str) -> str:
    words = _CAMEL.sub(" ", name).replace("_", " ").lower()
    return words[:1].upper() + words[1:]


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "(empty)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and value.startswith(("sha256:", DIGEST_PREFIX)):
        return "(personal detail, not recorded)"  # the trail keeps only a digest of it
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def changes_of(row: AuditLog) -> list[Change]:
    """What a row recorded: old → new for a change, the values alone for a creation or an event."""
    old, new = row.old_values or {}, row.new_values or {}
    names = list(dict.fromkeys([*old, *new]))
    return [
        Change(
            field=_field_label(name),
            old=_shown(old.get(name)) if name in old else None,
            new=_shown(new.get(name)) if name in new else None,
        )
        for name in names
    ]


@dataclass(frozen=True)
class TrailRow:
    """An audit row as the tables show it."""

    row: AuditLog
    action: str
    actor_role: str
    record_type: str
    invoice_id: int | None  # set when the row is about an invoice: its history is linked
    changes: list[Change]

    @property
    def folded(self) -> bool:
        return len(self.changes) > UNFOLDED_VALUES


def _trail(rows: Any) -> list[TrailRow]:
    types = _record_types()
    return [
        TrailRow(
            row=row,
            action=ACTIONS.get(row.action, row.action),
            actor_role=_role_label(row.actor_role),
            record_type=types.get(row.object_type, row.object_type),
            invoice_id=int(row.object_id) if row.object_type == INVOICE_TYPE and row.object_id else None,
            changes=changes_of(row),
        )
        for row in rows
    ]


class IsoDateField(forms.DateField):
    """A day typed as year-month-day: the browser's own date box shows mm/dd/yyyy or dd/mm/yyyy by the
    machine's locale, and Django would also read 03/04/2024 as 4 March; 2024-03-04 is one day."""

    input_formats = ["%Y-%m-%d"]
    default_error_messages = {"invalid": _("Enter the date as year-month-day, e.g. 2024-07-01.")}
    widget = forms.DateInput(
        format="%Y-%m-%d",
        attrs={
            "placeholder": "yyyy-mm-dd",
            "pattern": r"\d{4}-\d{2}-\d{2}",
            "inputmode": "numeric",
            "size": 10,
        },
    )


def _check_date_order(form: forms.Form, start: str, end: str) -> None:
    first, last = form.cleaned_data.get(start), form.cleaned_data.get(end)
    if first and last and last < first:
        form.add_error(end, _("This date is before the start date; choose a later one."))


# --- the audit log ------------------------------------------------------------------------------


class AuditLogFilterForm(forms.Form):
    invoice_number = forms.CharField(
        label=_("Invoice number"),
        required=False,
        max_length=NUMBER_LENGTH,
        help_text=_("All or part of a number, e.g. 2024-000123: that invoice's records only."),
    )
    action = forms.ChoiceField(label=_("Action"), required=False)
    object_type = forms.ChoiceField(label=_("Record type"), required=False)
    actor = forms.CharField(
        label=_("Done by"), required=False, max_length=100, help_text=_("Part of a name or email address.")
    )
    since = IsoDateField(label=_("From"), required=False, help_text="yyyy-mm-dd")
    until = IsoDateField(label=_("To"), required=False, help_text=_("yyyy-mm-dd, inclusive."))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [("", "Any action"), *ACTIONS.items()]
        types = sorted(_record_types().items(), key=lambda item: item[1])
        self.fields["object_type"].choices = [("", "Any record"), *types]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        _check_date_order(self, "since", "until")
        return cleaned


def _invoice_rows(rows: QuerySet[AuditLog], *, user: Any, number: str) -> QuerySet[AuditLog]:
    """The rows of the caller's invoices whose number contains `number` (GET /api/audit/logs/search)."""
    ids = invoice_list_for(user=user).filter(number__icontains=number).values_list("pk", flat=True)
    return rows.filter(object_type=INVOICE_TYPE, object_id__in=[str(pk) for pk in ids[:MATCHED_INVOICES]])


def _filtered(rows: QuerySet[AuditLog], filters: dict[str, Any], *, user: Any) -> QuerySet[AuditLog]:
    """The API's filters (GET /api/audit/logs), with the day range read in local days."""
    if filters.get("invoice_number"):
        rows = _invoice_rows(rows, user=user, number=filters["invoice_number"])
    if filters.get("action"):
        rows = rows.filter(action=filters["action"])
    if filters.get("object_type"):
        rows = rows.filter(object_type=filters["object_type"])
    if filters.get("actor"):
        rows = rows.filter(
            Q(actor__name__icontains=filters["actor"]) | Q(actor__email__icontains=filters["actor"])
        )
    if filters.get("since"):
        rows = rows.filter(created_at__date__gte=filters["since"])
    if filters.get("until"):
        rows = rows.filter(created_at__date__lte=filters["until"])
    return rows


class InvoiceSearchForm(forms.Form):
    number = forms.CharField(
        label=_("Number of the invoice"),
        max_length=NUMBER_LENGTH,
        help_text=_("All or part of it; one match opens its history."),
        error_messages={"required": "Give all or part of an invoice number to search for."},
    )


@page("auditing.view_auditlog")
def audit_log(request: HttpRequest) -> HttpResponse:
    """The provider's audit trail, newest first, 50 rows a page, with the API's filters."""
    form = AuditLogFilterForm(request.GET)
    form.is_valid()  # a filter that does not parse is shown with its error; the others still apply
    rows = _filtered(audit_log_for(user=request.user), form.cleaned_data, user=request.user)
    listed = paginate(request, rows, PER_PAGE)
    context = {
        "form": form,
        "search_form": InvoiceSearchForm(auto_id="search_%s"),
        "page_obj": listed,
        "trail": _trail(listed.object_list),
        "filtered": any(form.cleaned_data.values()),
    }
    return render(request, "auditing/audit_log.html", context, status=400 if form.errors else 200)


@page("auditing.view_auditlog")
def invoice_search(request: HttpRequest) -> HttpResponse:
    """Invoices whose number contains the one typed (GET /api/audit/invoices/search): one opens its history."""
    form = InvoiceSearchForm(request.GET, auto_id="search_%s")
    invoices: list[Invoice] = []
    if form.is_valid():
        number = form.cleaned_data["number"]
        invoices = list(invoice_list_for(user=request.user).filter(number__icontains=number)[:PER_PAGE])
        if len(invoices) == 1:
            return redirect("invoice-history", invoice_id=invoices[0].pk)
        if not invoices:
            form.add_error("number", f"No invoice of your provider has a number containing “{number}”.")
    return render(
        request,
        "auditing/invoice_search.html",
        {"search_form": form, "invoices": invoices, "more": len(invoices) == PER_PAGE},
        status=400 if form.errors else 200,
    )


@page("auditing.view_auditlog")
def invoice_history(request: HttpRequest, invoice_id: int) -> HttpResponse:
    invoice = invoice_get_for(user=request.user, invoice_id=invoice_id)
    trail = _trail(invoice_history_for(user=request.user, invoice=invoice))
    return render(request, "auditing/invoice_history.html", {"invoice": invoice, "trail": trail})


# --- questions ----------------------------------------------------------------------------------

EXAMPLE_QUESTIONS = EXAMPLES[:3]
FINISHED = ",".join(status for status in AIQueryStatus.values if status != AIQueryStatus.PENDING)


class QuestionForm(forms.Form):
    # Not required here: the service refuses an empty question in its own words, next to the field.
    question = forms.CharField(
        label=_("Your question"),
        required=False,
        max_length=MAX_QUESTION,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="In plain words about this provider's bills, payments and customers, e.g. "
        + "; ".join(f"“{example}”" for example in EXAMPLE_QUESTIONS)
        + ". Or write a SELECT query. Only your provider's rows are read, and nothing is ever changed.",
    )


@page("auditing.add_aiquery")
def ai_query(request: HttpRequest) -> HttpResponse:
    """Ask a question: recorded, handed to a worker after commit (as the API does), then its page."""
    form = QuestionForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        with refusals_into(form):
            require_queue("Answering a question")
            query = ai_query_submit(asked_by=request.user, question=form.cleaned_data["question"])
            dispatch(query)
            return redirect("ai-query-detail", query_id=query.pk)
    recent = ai_queries_of(user=request.user).order_by("-id")[:RECENT_QUESTIONS]
    return form_page(request, "auditing/ai_query.html", {"form": form, "recent": recent}, form=form)


_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def _cells(row: list) -> list[dict[str, Any]]:
    """A result row's cells; numbers (decimals arrive as exact strings) are aligned right."""
    return [
        {
            "value": _shown(value) if value is None or isinstance(value, dict | list | bool) else value,
            "numeric": (isinstance(value, int | float) and not isinstance(value, bool))
            or (isinstance(value, str) and _NUMBER.fullmatch(value) is not None),
        }
        for value in row
    ]


@page("auditing.add_aiquery")
def ai_query_detail(request: HttpRequest, query_id: int) -> HttpResponse:
    """A question's answer, the asker's own only (as GET /api/audit/query/{id}); reloads when answered."""
    query: AIQuery = get_object_or_404(ai_queries_of(user=request.user), pk=query_id)
    context = {
        "query": query,
        "pending": query.status == AIQueryStatus.PENDING,
        "finished": FINISHED,
        "rows": [_cells(row) for row in query.rows],
    }
    return render(request, "auditing/ai_query_detail.html", context)


# --- pricing history ----------------------------------------------------------------------------


class PricingFilterForm(forms.Form):
    connection_type = forms.ChoiceField(label=_("Connection type"), required=False)
    bucket = forms.ChoiceField(
        label=_("Hours"), required=False, choices=[("", _("Any hours")), *Bucket.choices]
    )
    since = IsoDateField(
        label=_("In force from"), required=False, help_text=_("yyyy-mm-dd: changes starting on or after.")
    )
    until = IsoDateField(
        label=_("Up to"), required=False, help_text=_("yyyy-mm-dd: changes starting on or before.")
    )

    def __init__(self, *args: Any, connection_types: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["connection_type"].choices = [("", "Any type"), *connection_types]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        _check_date_order(self, "since", "until")
        return cleaned


@dataclass(frozen=True)
class PriceChange:
    row: TariffRow
    previous_rate: Any  # the rate of the row this one replaced, None for a first price


def _price_changes(rows: list[TariffRow], *, user: Any) -> list[PriceChange]:
    """Each row with the rate it replaced: the row of the same type, hours and slab that closed the
    day it opened (one query for the page). A row superseded by a same-day correction was never in
    force for a day: the correction shows the rate before both as the one it replaced."""

    def key(row: TariffRow, day: date | None) -> tuple:
        return (row.provider_id, row.connection_type_id, row.bucket, row.slab, day)

    starts = {row.valid_from for row in rows}
    replaced = {
        key(row, row.valid_to): row.rate
        for row in pricing_history_for(user=user)
        .filter(valid_to__in=starts)
        .exclude(valid_to=F("valid_from"))
    }
    return [PriceChange(row=row, previous_rate=replaced.get(key(row, row.valid_from))) for row in rows]


@page("auditing.view_auditlog")
def pricing_history(request: HttpRequest) -> HttpResponse:
    """Every tariff row the provider ever had, newest change first (GET /api/audit/pricing-history)."""
    provider = request.user.provider
    types = (
        list(connection_types_of(provider=provider).values_list("code", "description")) if provider else []
    )
    form = PricingFilterForm(
        request.GET, connection_types=[(code, f"{code} · {text}") for code, text in types]
    )
    form.is_valid()  # a filter that does not parse is shown with its error; the others still apply
    filters = form.cleaned_data
    rows = pricing_history_for(user=request.user)
    if filters.get("connection_type"):
        rows = rows.filter(connection_type__code=filters["connection_type"])
    if filters.get("bucket"):
        rows = rows.filter(bucket=filters["bucket"])
    if filters.get("since"):
        rows = rows.filter(valid_from__gte=filters["since"])
    if filters.get("until"):
        rows = rows.filter(valid_from__lte=filters["until"])
    listed = paginate(request, rows, PER_PAGE)
    context = {
        "form": form,
        "page_obj": listed,
        "changes": _price_changes(list(listed.object_list), user=request.user),
        "filtered": any(filters.values()),
    }
    return render(request, "auditing/pricing_history.html", context, status=400 if form.errors else 200)
