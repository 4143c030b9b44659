"""The staff pages of billing: the dashboard, the first seed's bill retrieval, payment, payment reversal
and adjustment pages, invoices for creators and super creators, the billing run with its progress, and
the e-mails sent to customers (with the button that invites one to the portal).

Each page reads through `invoicing.selectors` and writes through `invoicing.services`, as the API does;
a service's refusal is shown next to the field it concerns, with the form as it was typed.
"""

import json
import re
import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from accounts.models import MessageStatus
from accounts.permissions import PROVIDER, reach_of, role_allows
from accounts.selectors import message_list_for
from accounts.web import form_page, page, paginate, refusals_into, safe_next
from billing import services as billing_services
from billing.selectors import connection_list_for, customer_get_for, customer_list_for
from config.errors import DomainError, NotFound
from config.queue import require_queue
from invoicing import selectors, services
from invoicing.api import InvoiceFilter, MessageFilter, month_of
from invoicing.models import AdjustmentDirection, BillingRunStatus, Invoice, ReversalKind
from invoicing.pdf import bill_explanation, bill_sections, reopened_bills
from invoicing.tasks import dispatch

PAGE_SIZE = 25
CENT = Decimal("0.01")
MAX_ID = 2**63 - 1  # a database id; a larger number is an input error, not an overflow
MONEY_FIELD = {"max_digits": 14, "decimal_places": 2}
KWH_FIELD = {"max_digits": 14, "decimal_places": 4, "min_value": Decimal("0")}


class MonthField(forms.Field):
    """A billing month typed as YYYY-MM, as the API takes it; cleaned to the month's first day."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", "YYYY-MM, for example 2024-07")
        super().__init__(widget=forms.TextInput(attrs={"inputmode": "numeric", "maxlength": 7}), **kwargs)

    def to_python(self, value: Any) -> date | None:
        value = (value or "").strip()
        if not value:
            return None
        try:
            return month_of(value)
        except DomainError as exc:
            raise forms.ValidationError(gettext("Write the month as YYYY-MM, for example 2024-07.")) from exc


def bill_context(bill: Invoice) -> dict[str, Any]:
    """What a bill page shows, from a bill read by `selectors.bill_get_for` (lines and `history` loaded):
    the lines as the bill groups them, the trace in words, adjustments and payments."""
    lines = list(bill.lines.all())
    return {
        "invoice": bill,
        "sections": bill_sections(lines),
        "explanation": bill_explanation(bill, lines),
        "history": bill.history,
        "adjustments": list(bill.adjustments.select_related("officer").order_by("created_at", "pk")),
        "allocations": list(
            bill.allocations.select_related("payment__method", "payment__reversal").order_by(
                "payment__received_at", "pk"
            )
        ),
        "amount_payable": selectors.amount_payable(bill),
        **selectors.bill_credits(bill),
    }


# --- dashboard -----------------------------------------------------------------------------------


def _chart(kind: str, labels: list[str], datasets: list[dict], title: str, **options: Any) -> str:
    """A Chart.js config as JSON; amounts go as exact decimal strings, which Chart.js reads as numbers."""
    config = {
        "type": kind,
        "data": {"labels": labels, "datasets": datasets},
        "options": {
            "responsive": True,
            "maintainAspectRatio": False,
            "plugins": {"title": {"display": True, "text": title}},
            **options,
        },
    }
    return json.dumps(config, default=str)


@page("billing.view_customer")
def dashboard(request: HttpRequest) -> HttpResponse:
    figures = selectors.dashboard_for(user=request.user)
    months = [f"{row['period']:%b %Y}" for row in figures.by_month]
    billed_chart = _chart(
        "bar",
        months,
        [
            {
                "label": "Billed",
                "data": [row["billed"] for row in figures.by_month],
                "backgroundColor": "#0b4f8a",
            },
            {
                "label": "Collected",
                "data": [row["collected"] for row in figures.by_month],
                "backgroundColor": "#2da44e",
            },
        ],
        "Billed and collected by billing month (Rs.)",
    )
    usage_chart = _chart(
        "bar",
        [row["name"] for row in figures.by_connection_type],
        [
            {
                "label": "kWh",
                "data": [row["kwh"] for row in figures.by_connection_type],
                "backgroundColor": "#8250df",
            }
        ],
        "Consumption by connection type (kWh)",
        indexAxis="y",  # horizontal bars: connection type names are long
    )
    user = request.user
    failed_messages = (
        message_list_for(user=user).filter(status=MessageStatus.FAILED).count()
        if role_allows(user.active_role, "accounts.view_message", user=user)
        else None
    )
    return render(
        request,
        "invoicing/dashboard.html",
        {
            "figures": figures,
            "billed_chart": billed_chart,
            "usage_chart": usage_chart,
            "failed_messages": failed_messages,
        },
    )


# --- bill retrieval ------------------------------------------------------------------------------


class BillSearchForm(forms.Form):
    customerId = forms.CharField(
        label=_("Customer ID"), max_length=40, help_text=_("As printed, e.g. LHR-RES-0001")
    )
    connectionId = forms.CharField(
        label=_("Connection ID"), max_length=40, help_text=_("As printed, e.g. DISCO-RES-1101")
    )
    month = forms.TypedChoiceField(
        label=_("Month"), coerce=int, choices=[(m, date(2000, m, 1).strftime("%B")) for m in range(1, 13)]
    )
    year = forms.IntegerField(label=_("Year"), min_value=2000, max_value=2100)


@page("invoicing.view_invoice")
def bill_search(request: HttpRequest) -> HttpResponse:
    """The first seed's bill retrieval: customer, connection, month and year -> the bill's page."""
    form = BillSearchForm(request.GET or None)
    if form.is_bound and form.is_valid():
        values = form.cleaned_data
        try:
            bill_id = selectors.bill_id_for(
                user=request.user,
                customer_number=values["customerId"].strip(),
                connection_number=values["connectionId"].strip(),
                year=values["year"],
                month=values["month"],
            )
        except Http404:
            form.add_error(
                None,
                "No bill of that customer's connection for that month. Check the two IDs as printed "
                "on a bill, and the month.",
            )
        else:
            return redirect("bill-detail", invoice_id=bill_id)
    return render(request, "invoicing/bill_search.html", {"form": form}, status=400 if form.errors else 200)


@page("invoicing.view_invoice")
def bill_detail(request: HttpRequest, invoice_id: int) -> HttpResponse:
    bill = selectors.bill_get_for(user=request.user, invoice_id=invoice_id)
    user = request.user
    can = {
        "pay": role_allows(user.active_role, "invoicing.collect_payment", user=user, obj=bill),
        "adjust": role_allows(user.active_role, "invoicing.add_adjustment", user=user, obj=bill),
        "edit": role_allows(user.active_role, "invoicing.change_invoice", user=user, obj=bill),
        "audit": role_allows(user.active_role, "auditing.view_auditlog", user=user),
    }
    return render(request, "invoicing/bill_detail.html", {**bill_context(bill), "can": can})


# --- payments ------------------------------------------------------------------------------------


class BillIdField(forms.IntegerField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            label=_("Bill ID"),
            min_value=1,
            max_value=MAX_ID,
            help_text=_("The bill's ID (shown on the bill's page). The amounts fill in from the bill."),
            widget=forms.NumberInput(attrs={"data-bill-lookup": "/api/invoices/", "inputmode": "numeric"}),
            **kwargs,
        )


class PaymentForm(forms.Form):
    billId = BillIdField()
    amount = forms.DecimalField(
        label=_("Amount"),
        min_value=Decimal("0.01"),
        help_text=_("The amount payable fills in; enter less for a part payment."),
        widget=forms.NumberInput(attrs={"step": "0.01", "data-bill-field": "amountPayable"}),
        **MONEY_FIELD,
    )
    method = forms.ChoiceField(label=_("Payment method"))
    reference = forms.CharField(
        label=_("Reference"),
        max_length=100,
        required=False,
        help_text=_("Cheque, transfer or card slip number."),
    )
    # A form shown once is one payment: sent twice (a double click, a refresh), it is recorded once.
    idempotencyKey = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["method"].choices = [
            (method.code, method.name) for method in selectors.payment_methods().order_by("name")
        ]


def _bill_of(request: HttpRequest, bill_id: int, perm: str) -> Invoice | None:
    """The bill with that id, if the caller's role may act on it."""
    return selectors.invoice_list_for(user=request.user, perm=perm).filter(pk=bill_id).first()


def _form_bill(request: HttpRequest, bill_id: int, perm: str) -> Invoice:
    """The bill a form names; when the caller's role may not act on it, the form says so."""
    bill = _bill_of(request, bill_id, perm)
    if bill is None:
        raise NotFound(
            gettext("No bill with ID %(bill_id)s that you may act on. Check the ID on the bill's page.")
            % {"bill_id": bill_id},
            field="billId",
        )
    return bill


def _open_bill(request: HttpRequest, perm: str) -> Invoice | None:
    """The bill named by `?bill=`, if the caller's role may act on it."""
    bill_id = request.GET.get("bill", "")
    return _bill_of(request, int(bill_id), perm) if bill_id.isdigit() and int(bill_id) <= MAX_ID else None


@page("invoicing.collect_payment")
def payment_new(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = PaymentForm(request.POST)
        if form.is_valid():
            values = form.cleaned_data
            with refusals_into(form):
                invoice = _form_bill(request, values["billId"], "invoicing.collect_payment")
                payment, _new = services.payment_post(
                    invoice=invoice,
                    amount=values["amount"],
                    method=selectors.payment_methods().get(code=values["method"]),
                    received_by=request.user,
                    reference=values["reference"],
                    idempotency_key=values["idempotencyKey"],
                )
                return redirect("payment-done", payment_id=payment.pk)
    else:
        bill = _open_bill(request, "invoicing.collect_payment")
        initial = {"idempotencyKey": uuid.uuid4().hex}
        if bill is not None:
            initial |= {"billId": bill.pk, "amount": selectors.amount_payable(bill).quantize(CENT)}
        form = PaymentForm(initial=initial)
    return render(request, "invoicing/payment_form.html", {"form": form}, status=400 if form.errors else 200)


@page("invoicing.view_payment")
def payment_done(request: HttpRequest, payment_id: int) -> HttpResponse:
    """A payment's receipt; once reversed, its reversal and the bills it reopened too."""
    payment = selectors.payment_get_for(user=request.user, payment_id=payment_id)
    allocations = sorted(payment.allocations.all(), key=lambda row: (row.invoice.period, row.pk))
    user = request.user
    return render(
        request,
        "invoicing/payment_receipt.html",
        {
            "payment": payment,
            "allocations": allocations,
            "invoice": payment.invoice,
            "reopened": reopened_bills(payment.reversal) if payment.is_reversed else [],
            "can_reverse": role_allows(user.active_role, "invoicing.add_paymentreversal", user=user),
        },
    )


class ReversalForm(forms.Form):
    kind = forms.ChoiceField(label=_("What happened"), choices=ReversalKind.choices, widget=forms.RadioSelect)
    reason = forms.CharField(
        label=_("Reason"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="The bank's return memo, the dispute number or what was posted wrongly: it is printed on "
        "the reversal receipt.",
    )
    # A form shown once is one reversal: sent twice, it reverses once (and the second sees it done).
    idempotencyKey = forms.CharField(widget=forms.HiddenInput, max_length=64)


@page("invoicing.add_paymentreversal")
def payment_reverse(request: HttpRequest, payment_id: int) -> HttpResponse:
    """An officer confirms a payment's reversal: what it settled is owed again."""
    payment = selectors.payment_get_for(
        user=request.user, payment_id=payment_id, perm="invoicing.add_paymentreversal"
    )
    if request.method == "POST":
        form = ReversalForm(request.POST)
        if form.is_valid():
            values = form.cleaned_data
            with refusals_into(form):
                reversal, _new = services.payment_reverse(
                    payment=payment,
                    kind=values["kind"],
                    reason=values["reason"],
                    reversed_by=request.user,
                    idempotency_key=values["idempotencyKey"],
                )
                messages.success(
                    request,
                    gettext(
                        "Payment %(receipt_number)s reversed (%(number)s): Rs. %(payable_after)s is owed on the "
                        "connection again."
                    )
                    % {
                        "receipt_number": payment.receipt_number,
                        "number": reversal.number,
                        "payable_after": format(reversal.payable_after, ",.2f"),
                    },
                )
                return redirect("payment-done", payment_id=payment.pk)
    else:
        form = ReversalForm(initial={"idempotencyKey": uuid.uuid4().hex})
    allocations = sorted(payment.allocations.all(), key=lambda row: (row.invoice.period, row.pk))
    return form_page(
        request,
        "invoicing/payment_reverse.html",
        {"form": form, "payment": payment, "allocations": allocations, "invoice": payment.invoice},
        form=form,
    )


# --- adjustments ---------------------------------------------------------------------------------


class AdjustmentForm(forms.Form):
    billId = BillIdField()
    direction = forms.ChoiceField(
        label=_("Credit or debit"),
        choices=[
            (AdjustmentDirection.CREDIT, "Credit: lower the bill"),
            (AdjustmentDirection.DEBIT, "Debit: raise the bill"),
        ],
        widget=forms.RadioSelect,
    )
    amount = forms.DecimalField(
        label=_("Adjustment amount"), min_value=Decimal("0.01"), widget=forms.NumberInput(attrs={"step": "0.01"}),
        **MONEY_FIELD,
    )  # fmt: skip
    reason = forms.CharField(
        label=_("Reason"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("What was wrong, and on whose request: it is printed on the receipt."),
    )
    idempotencyKey = forms.CharField(widget=forms.HiddenInput, max_length=64)


@page("invoicing.add_adjustment")
def adjustment_new(request: HttpRequest) -> HttpResponse:
    """An officer adjusts a bill; their own name and designation are shown, never typed."""
    if request.method == "POST":
        form = AdjustmentForm(request.POST)
        if form.is_valid():
            values = form.cleaned_data
            with refusals_into(form):
                invoice = _form_bill(request, values["billId"], "invoicing.add_adjustment")
                adjustment, _new = services.adjustment_create(
                    invoice=invoice,
                    amount=values["amount"],
                    direction=values["direction"],
                    reason=values["reason"],
                    officer=request.user,
                    idempotency_key=values["idempotencyKey"],
                )
                return redirect("adjustment-done", adjustment_id=adjustment.pk)
    else:
        bill = _open_bill(request, "invoicing.add_adjustment")
        initial = {"idempotencyKey": uuid.uuid4().hex, "direction": AdjustmentDirection.CREDIT}
        if bill is not None:
            initial["billId"] = bill.pk
        form = AdjustmentForm(initial=initial)
    return render(
        request, "invoicing/adjustment_form.html", {"form": form}, status=400 if form.errors else 200
    )


@page("invoicing.view_adjustment")
def adjustment_done(request: HttpRequest, adjustment_id: int) -> HttpResponse:
    adjustment = selectors.adjustment_get_for(user=request.user, adjustment_id=adjustment_id)
    return render(
        request,
        "invoicing/adjustment_receipt.html",
        {"adjustment": adjustment, "invoice": adjustment.invoice},
    )


# --- invoices ------------------------------------------------------------------------------------


class InvoiceForm(forms.Form):
    connectionNumber = forms.CharField(
        label=_("Connection ID"), max_length=40, help_text=_("As printed on the bill, e.g. DISCO-RES-1101")
    )
    month = MonthField(label=_("Billing month"))
    kwhConsumed = forms.DecimalField(
        label=_("Units (kWh)"), required=False, help_text=_("Leave empty to bill the month's meter readings."),
        **KWH_FIELD,
    )  # fmt: skip
    peakKwh = forms.DecimalField(label=_("Peak units (kWh)"), required=False, **KWH_FIELD)
    offPeakKwh = forms.DecimalField(label=_("Off-peak units (kWh)"), required=False, **KWH_FIELD)
    issueDate = forms.DateField(
        label=_("Issue date"), required=False, widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Default: the month's last day, or today."),
    )  # fmt: skip
    dueDate = forms.DateField(
        label=_("Due date"), required=False, widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Default: the issue date plus the provider's due days."),
    )  # fmt: skip


# The service names its fields as the API does; this form calls the connection by its printed number.
INVOICE_FIELDS = {"connectionId": "connectionNumber", "period": "month", "kwh": "kwhConsumed"}


@page("invoicing.add_invoice")
def invoice_new(request: HttpRequest) -> HttpResponse:
    form = InvoiceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        values = form.cleaned_data
        with refusals_into(form, fields=INVOICE_FIELDS):
            connection = (
                connection_list_for(user=request.user)
                .filter(number=values["connectionNumber"].strip())
                .first()
            )
            if connection is None:
                raise NotFound(gettext("No connection with that ID in your company."), field="connectionId")
            invoice = services.invoice_issue(
                connection=connection,
                period=values["month"],
                created_by=request.user,
                issue_date=values["issueDate"],
                due_date=values["dueDate"],
                kwh=values["kwhConsumed"],
                peak_kwh=values["peakKwh"],
                off_peak_kwh=values["offPeakKwh"],
            )
            messages.success(request, _("Invoice %(number)s issued.") % {"number": invoice.number})
            return redirect("bill-detail", invoice_id=invoice.pk)
    return render(request, "invoicing/invoice_form.html", {"form": form}, status=400 if form.errors else 200)


class InvoiceEditForm(forms.Form):
    dueDate = forms.DateField(
        label=_("Due date"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    kwhConsumed = forms.DecimalField(
        label=_("Units (kWh)"), required=False, help_text=_("New units re-rate the bill at the prices it was issued on."),
        **KWH_FIELD,
    )  # fmt: skip
    peakKwh = forms.DecimalField(label=_("Peak units (kWh)"), required=False, **KWH_FIELD)
    offPeakKwh = forms.DecimalField(label=_("Off-peak units (kWh)"), required=False, **KWH_FIELD)
    rerate = forms.BooleanField(label=_("Rate the month's meter readings again"), required=False)
    cancel = forms.BooleanField(
        label=_("Cancel this bill"),
        required=False,
        help_text=_("Only a bill nothing was paid or adjusted on."),
    )


@page("invoicing.change_invoice")
def invoice_edit(request: HttpRequest, invoice_id: int) -> HttpResponse:
    """Change what may still change on an invoice: an Invoice_Creator their own, a Super_Creator any."""
    invoice = selectors.invoice_get_for(
        user=request.user, invoice_id=invoice_id, perm="invoicing.change_invoice"
    )
    form = InvoiceEditForm(request.POST or None, initial={"dueDate": invoice.due_date})
    if request.method == "POST" and form.is_valid():
        values = form.cleaned_data
        with refusals_into(form, fields={"kwh": "kwhConsumed", "paymentStatus": "cancel"}):
            services.invoice_update(
                invoice=invoice,
                updated_by=request.user,
                due_date=values["dueDate"] if values["dueDate"] != invoice.due_date else None,
                cancel=values["cancel"],
                kwh=values["kwhConsumed"],
                peak_kwh=values["peakKwh"],
                off_peak_kwh=values["offPeakKwh"],
                rerate=values["rerate"],
            )
            messages.success(request, _("Invoice %(number)s updated.") % {"number": invoice.number})
            return redirect("bill-detail", invoice_id=invoice.pk)
    return render(
        request,
        "invoicing/invoice_edit.html",
        {"form": form, "invoice": invoice},
        status=400 if form.errors else 200,
    )


def _invoice_list(request: HttpRequest, invoices: Any, *, title: str, mine: bool) -> HttpResponse:
    filters = InvoiceFilter(request.GET, queryset=invoices.order_by("-period", "-number"))
    filters.form.fields["overdue"].widget.choices = [
        ("unknown", "Any"), ("true", "Overdue only"), ("false", "Not overdue")
    ]  # fmt: skip
    rows = filters.qs if filters.is_valid() else invoices.none()
    user = request.user
    return render(
        request,
        "invoicing/invoice_list.html",
        {
            "title": title,
            "mine": mine,
            # Change links: on every row for a provider-wide role, on their own rows for a creator.
            "can_edit": mine or reach_of(user.active_role, "invoicing.change_invoice") is PROVIDER,
            "filters": filters,
            "page_obj": paginate(request, rows, PAGE_SIZE),
        },
    )


@page("invoicing.add_invoice")
def invoices_mine(request: HttpRequest) -> HttpResponse:
    invoices = selectors.invoice_list_for(user=request.user).filter(created_by=request.user)
    return _invoice_list(request, invoices, title=_("My invoices"), mine=True)


@page("invoicing.view_invoice", reach=PROVIDER)
def invoices_all(request: HttpRequest) -> HttpResponse:
    return _invoice_list(
        request, selectors.invoice_list_for(user=request.user), title=_("All invoices"), mine=False
    )


# --- billing runs --------------------------------------------------------------------------------


class RunForm(forms.Form):
    month = MonthField(label=_("Billing month"), help_text=_("The month to bill, once it has ended: YYYY-MM"))


@page("invoicing.view_billingrun")
def run_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    can_start = role_allows(user.active_role, "invoicing.add_billingrun", user=user)
    form = RunForm(request.POST or None)
    if request.method == "POST" and can_start and form.is_valid():
        with refusals_into(form, fields={"period": "month"}):
            if user.provider is None:
                raise DomainError(gettext("Sign in as a user of a provider to bill its connections."))
            require_queue("A billing run")
            run, _new = services.billing_run_start(
                provider=user.provider, period=form.cleaned_data["month"], started_by=user
            )
            dispatch(run)
            return redirect("run-detail", run_id=run.pk)
    runs = paginate(request, selectors.billing_run_list_for(user=user), PAGE_SIZE)
    return form_page(
        request,
        "invoicing/run_list.html",
        {"form": form, "can_start": can_start, "page_obj": runs},
        form=form,
    )


@page("invoicing.view_billingrun")
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = selectors.billing_run_get_for(user=request.user, run_id=run_id)
    problems = run.problems.select_related("connection__customer").order_by("kind", "connection__number")
    return render(
        request,
        "invoicing/run_detail.html",
        {
            "run": run,
            "running": run.status == BillingRunStatus.RUNNING,
            "finished_status": BillingRunStatus.COMPLETED,
            "problem_groups": _problem_groups(problems),
            "api_url": reverse("billing-run", args=[run.pk]),
        },
    )


def _problem_groups(problems: Any) -> list[dict[str, Any]]:
    """A run's skipped and failed connections, one row per kind and reason (with its connections), most
    connections first: a month with no readings yet is one reason for every connection, not 75 rows.
    A reason names its connection; the group's reason says "the connection" instead."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for problem in problems:
        number = problem.connection.number
        reason = re.sub(rf"\b([Cc])onnection {re.escape(number)}\b", _the_connection, problem.reason)
        group = groups.setdefault(
            (problem.kind, reason), {"kind": problem.get_kind_display(), "reason": reason, "connections": []}
        )
        group["connections"].append(problem.connection)
    return sorted(groups.values(), key=lambda group: -len(group["connections"]))


def _the_connection(match: re.Match) -> str:
    return "The connection" if match.group(1) == "C" else "the connection"


# --- e-mail messages, and inviting a customer --------------------------------------------------------


@page("accounts.view_message")
def message_list(request: HttpRequest) -> HttpResponse:
    """The provider's e-mails, filtered by customer, kind and status: a hard failure shows with its
    reason. Filtered by a customer of the provider, the page offers to invite them to the portal."""
    user = request.user
    filters = MessageFilter(request.GET, queryset=message_list_for(user=user))
    rows = filters.qs if filters.is_valid() else message_list_for(user=user).none()
    number = filters.form.cleaned_data.get("customer", "").strip() if filters.is_valid() else ""
    customer = customer_list_for(user=user).filter(number=number).first() if number else None
    return render(
        request,
        "invoicing/message_list.html",
        {
            "filters": filters,
            "page_obj": paginate(request, rows, PAGE_SIZE),
            "customer": customer,
            "can_invite": role_allows(user.active_role, "accounts.invite_customer", user=user),
        },
    )


@require_POST
@page("accounts.invite_customer")
def customer_invite(request: HttpRequest, customer_id: int) -> HttpResponse:
    """The staff pages' "Invite to the portal" button: the customer's login is made if they have none,
    and the invitation e-mailed once this commits. Back to the page it was pressed on."""
    customer = customer_get_for(user=request.user, customer_id=customer_id)
    try:
        message = billing_services.customer_invite(customer=customer, invited_by=request.user)
    except DomainError as refusal:
        messages.error(request, refusal.detail)
    else:
        messages.success(
            request,
            _("An invitation to the portal is on its way to %(recipient)s.")
            % {"recipient": message.recipient},
        )
    return redirect(safe_next(request, fallback="message-list"))
