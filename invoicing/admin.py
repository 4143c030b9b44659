"""Django admin for officers and administrators: invoices read-only, payments and adjustments entered
through the same services as the API (the officer is the signed-in user), billing runs started here.

The invoice list carries the officers' business actions: start a billing run, mark overdue bills (what
the daily job does, now), issue an adjustment on a bill, and export the filtered list as CSV. The
payment list carries theirs on payments: reverse one (a bounced cheque, a charge-back).
"""

import csv
from collections.abc import Iterator
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_POST

from billing.models import Customer
from config.queue import require_queue
from config.spreadsheet import CsvEcho, csv_text
from invoicing import (
    collections_admin,  # noqa: F401  (registers the collections' admin)
    lifecycle_admin,  # noqa: F401  (registers the lifecycle's admin)
    price_order_admin,  # noqa: F401  (registers the price orders' admin)
    services,
)
from invoicing.models import (
    OPEN_STATUSES,
    Adjustment,
    AdjustmentDirection,
    BillingRun,
    BillingRunChunk,
    BillingRunProblem,
    CreditEntry,
    CreditNote,
    CreditNoteLine,
    CreditRefund,
    CustomerCredit,
    DocumentCounter,
    Invoice,
    InvoiceLine,
    Payment,
    PaymentAllocation,
    PaymentFile,
    PaymentFileFormat,
    PaymentFileRow,
    PaymentMethod,
    PaymentReversal,
)
from invoicing.tasks import dispatch
from providers.admin import ProviderScopedAdmin, ReadOnlyAdmin, ReadOnlyInline, ServiceAdmin
from providers.models import Provider
from providers.tenancy import scope_to_provider


class InvoiceLineInline(ReadOnlyInline):
    model = InvoiceLine
    view_permission = "invoicing.view_invoice"
    fields = ("position", "kind", "label", "code", "amount")
    readonly_fields = fields
    show_change_link = False


class AdjustmentInline(ReadOnlyInline):
    model = Adjustment
    fields = ("number", "kind", "direction", "amount", "reason", "officer_name", "created_at")
    readonly_fields = fields


class AllocationInline(ReadOnlyInline):
    model = PaymentAllocation
    fk_name = "invoice"
    verbose_name_plural = "payments settled on this invoice"
    view_permission = "invoicing.view_payment"
    fields = ("payment", "amount")
    readonly_fields = fields
    show_change_link = False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("payment")


class CreditNoteInline(ReadOnlyInline):
    model = CreditNote
    view_permission = "invoicing.view_creditnote"
    fields = ("number", "issue_date", "amount", "applied", "to_balance", "reason", "issued_by_name")
    readonly_fields = fields


class MonthFilter(admin.SimpleListFilter):
    """The billed months present, newest first (a date filter would offer "today" and "past 7 days")."""

    title = "month"
    parameter_name = "month"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        months = model_admin.get_queryset(request).dates("period", "month", order="DESC")[:36]
        return [(f"{month:%Y-%m}", f"{month:%B %Y}") for month in months]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value():
            return queryset.filter(period=f"{self.value()}-01")
        return queryset


CSV_HEADER = (
    "number",
    "customer number",
    "customer name",
    "connection",
    "month",
    "issue date",
    "due date",
    "current charges",
    "adjustments",
    "paid",
    "balance",
    "status",
)


def csv_rows(invoices: QuerySet[Invoice]) -> Iterator[str]:
    """The header, then one row per invoice; amounts as the ledger holds them (e.g. 9750.00)."""
    writer = csv.writer(CsvEcho())
    yield writer.writerow(CSV_HEADER)
    for invoice in invoices.iterator(chunk_size=2000):
        yield writer.writerow(
            (
                invoice.number,
                csv_text(invoice.customer.number),
                csv_text(invoice.customer.name),
                csv_text(invoice.connection.number),
                f"{invoice.period:%Y-%m}",
                invoice.issue_date.isoformat(),
                invoice.due_date.isoformat(),
                invoice.current_charges,
                invoice.adjustment_total,
                invoice.amount_paid,
                invoice.balance,
                invoice.status,
            )
        )


# Marking bills overdue changes their status and adds each one's late surcharge as an adjustment.
MARK_OVERDUE_PERMS = ("invoicing.change_invoice", "invoicing.add_adjustment")


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    """Issued amounts never change: corrections are adjustments, money in is a payment."""

    list_display = (
        "number", "customer_name", "connection", "period", "current_charges", "balance", "status", "due_date",
    )  # fmt: skip
    list_filter = ("status", MonthFilter, "source", ("provider", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("connection", "customer")
    search_fields = ("number", "connection__number", "customer__number", "customer__name")
    date_hierarchy = "issue_date"
    inlines = [InvoiceLineInline, AdjustmentInline, AllocationInline, CreditNoteInline]
    exclude = ("trace", "customer_snapshot", "provider_snapshot")
    actions = ["issue_adjustment"]

    @admin.display(description="customer", ordering="customer__name")
    def customer_name(self, invoice: Invoice) -> str:
        return f"{invoice.customer.name} ({invoice.customer.number})"

    def _url(self, name: str) -> str:
        return reverse(f"{self.admin_site.name}:{self.opts.app_label}_{name}")

    def get_urls(self) -> list[URLPattern]:
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        export = self.admin_site.admin_view(self.export_csv_view)
        mark_overdue = self.admin_site.admin_view(require_POST(self.mark_overdue_view))
        return [
            path("export-csv/", export, name=f"{name}_export_csv"),
            path("mark-overdue/", mark_overdue, name=f"{name}_mark_overdue"),
            *super().get_urls(),
        ]

    def _with_filters(self, name: str, request: HttpRequest) -> str:
        url, filters = self._url(name), request.GET.urlencode()
        return f"{url}?{filters}" if filters else url

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        # Export and mark overdue carry the list's filters: the file holds what is shown, and marking
        # comes back to the same list.
        may_mark = request.user.has_perms(MARK_OVERDUE_PERMS)
        may_run = request.user.has_perm("invoicing.add_billingrun")
        extra = {
            "export_csv_url": self._with_filters("invoice_export_csv", request),
            "mark_overdue_url": self._with_filters("invoice_mark_overdue", request) if may_mark else "",
            "billing_run_url": self._url("billingrun_add") if may_run else "",
        }
        return super().changelist_view(request, {**extra, **(extra_context or {})})

    def export_csv_view(self, request: HttpRequest) -> HttpResponse:
        """The invoices the list shows with the same filters and search, every page of them."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            invoices = self.get_changelist_instance(request).get_queryset(request)
        except IncorrectLookupParameters:  # as the list itself answers a filter it does not know
            return HttpResponseRedirect(f"{self._url('invoice_changelist')}?{ERROR_FLAG}=1")
        response = StreamingHttpResponse(csv_rows(invoices), content_type="text/csv; charset=utf-8")
        filename = f"invoices-{timezone.localdate():%Y-%m-%d}.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    def mark_overdue_view(self, request: HttpRequest) -> HttpResponse:
        """What the daily job does, now: for the officer's provider, or every provider for the platform."""
        if not request.user.has_perms(MARK_OVERDUE_PERMS):
            raise PermissionDenied
        user_provider = request.user.provider
        providers = [user_provider] if user_provider else Provider.objects.filter(is_active=True)
        marked = sum(services.invoices_mark_overdue(provider=provider) for provider in providers)
        if marked:
            self.message_user(
                request,
                ngettext(
                    "%(marked)s bill unpaid after the due date marked Overdue, each with its late surcharge "
                    "added once.",
                    "%(marked)s bills unpaid after the due date marked Overdue, each with its late surcharge "
                    "added once.",
                    marked,
                )
                % {"marked": marked},
                messages.SUCCESS,
            )
        else:
            self.message_user(request, gettext("No bill was unpaid after its due date: nothing changed."))
        return HttpResponseRedirect(self._with_filters("invoice_changelist", request))

    def has_adjust_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("invoicing.add_adjustment")

    @admin.action(description="Issue an adjustment on the selected invoice", permissions=["adjust"])
    def issue_adjustment(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> HttpResponse | None:
        chosen = list(queryset[:2])
        if len(chosen) != 1:
            self.message_user(request, gettext("Select exactly one invoice to adjust."), messages.WARNING)
            return None
        invoice = chosen[0]
        if not invoice.is_open:
            self.message_user(
                request,
                gettext("%(number)s is %(status)s: a paid or cancelled bill takes no adjustment.")
                % {"number": invoice.number, "status": invoice.get_status_display()},
                messages.WARNING,
            )
            return None
        return HttpResponseRedirect(f"{self._url('adjustment_add')}?invoice={invoice.pk}")


@admin.register(InvoiceLine)
class InvoiceLineAdmin(ReadOnlyAdmin):
    """Every invoice's lines, as the engine produced them (each invoice's page shows its own)."""

    provider_field = "invoice__provider"
    view_permission = "invoicing.view_invoice"
    list_display = (
        "invoice",
        "invoice__connection",
        "invoice__period",
        "position",
        "kind",
        "label",
        "code",
        "amount",
    )
    list_filter = ("kind", "code")
    list_select_related = ("invoice__connection",)
    search_fields = ("invoice__number", "invoice__connection__number", "label", "code")


@admin.register(DocumentCounter)
class DocumentCounterAdmin(ReadOnlyAdmin):
    """The last number given in each series and year; numbers are taken by the services only."""

    view_permission = "invoicing.view_invoice"
    list_display = ("series", "year", "last")
    list_filter = ("series", "year", ("provider", admin.RelatedOnlyFieldListFilter))
    search_fields = ("provider__code", "provider__name")
    ordering = ("provider", "series", "-year")


class InvoiceChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, invoice: Invoice) -> str:
        return f"{invoice.number}: {invoice.connection.number}, balance {invoice.balance}"


class PaymentForm(forms.ModelForm):
    class Meta:
        model = Payment
        fields = ("invoice", "amount", "method", "reference")


class AdjustmentForm(forms.ModelForm):
    class Meta:
        model = Adjustment
        fields = ("invoice", "direction", "amount", "reason")


class MoneyEntryAdmin(ProviderScopedAdmin, ServiceAdmin):
    """Entered once through a service, never changed afterwards; the bill is chosen among the
    open invoices of the officer's provider."""

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "invoice":
            kwargs["queryset"] = scope_to_provider(
                Invoice.objects.filter(status__in=OPEN_STATUSES).select_related("connection"),
                request.user,
            )
            kwargs["form_class"] = InvoiceChoiceField
        if db_field.name == "method":
            kwargs["queryset"] = PaymentMethod.objects.filter(is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        return [field.name for field in self.model._meta.fields] if obj else ()


class SettledInline(ReadOnlyInline):
    model = PaymentAllocation
    fk_name = "payment"
    verbose_name_plural = "bills this payment settled"
    view_permission = "invoicing.view_payment"
    fields = ("invoice", "amount")
    readonly_fields = fields
    show_change_link = False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("invoice")


class ReversalInline(ReadOnlyInline):
    model = PaymentReversal
    verbose_name_plural = "reversal"
    view_permission = "invoicing.view_payment"
    fields = ("number", "kind", "reason", "reversed_by", "reversed_at", "surcharge_total", "payable_after")
    readonly_fields = fields


@admin.register(Payment)
class PaymentAdmin(MoneyEntryAdmin):
    form = PaymentForm
    list_display = ("receipt_number", "invoice", "amount", "method", "received_by", "received_at", "reversed")
    list_filter = ("method", ("provider", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("invoice", "method", "received_by", "reversal")
    search_fields = ("receipt_number", "invoice__number", "reference", "connection__number")
    date_hierarchy = "received_at"
    actions = ["reverse_payment"]

    @admin.display(boolean=True, description="reversed")
    def reversed(self, payment: Payment) -> bool:
        return payment.is_reversed

    def get_inlines(self, request: HttpRequest, obj: Payment | None) -> list[type[admin.TabularInline]]:
        if obj is None:
            return []
        return [SettledInline, ReversalInline] if obj.is_reversed else [SettledInline]

    def has_reverse_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("invoicing.add_paymentreversal")

    @admin.action(description="Reverse the selected payment", permissions=["reverse"])
    def reverse_payment(self, request: HttpRequest, queryset: QuerySet[Payment]) -> HttpResponse | None:
        chosen = list(queryset.select_related("reversal")[:2])
        if len(chosen) != 1:
            self.message_user(request, gettext("Select exactly one payment to reverse."), messages.WARNING)
            return None
        payment = chosen[0]
        if payment.is_reversed:
            self.message_user(
                request,
                gettext("%(receipt_number)s was already reversed (%(number)s).")
                % {"receipt_number": payment.receipt_number, "number": payment.reversal.number},
                messages.WARNING,
            )
            return None
        return HttpResponseRedirect(f"{self._url('paymentreversal_add')}?payment={payment.pk}")

    def _url(self, name: str) -> str:
        return reverse(f"{self.admin_site.name}:{self.opts.app_label}_{name}")

    def create(self, request: HttpRequest, values: dict) -> Payment:
        payment, _ = services.payment_post(
            invoice=values["invoice"],
            amount=values["amount"],
            method=values["method"],
            reference=values.get("reference", ""),
            received_by=request.user,
        )
        return payment


@admin.register(Adjustment)
class AdjustmentAdmin(MoneyEntryAdmin):
    """Officers authorise adjustments here; their name and designation come from their account."""

    form = AdjustmentForm
    list_display = ("number", "invoice", "kind", "direction", "amount", "officer_name", "created_at")
    list_filter = ("kind", "direction", ("provider", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("invoice",)
    search_fields = ("number", "invoice__number", "reason", "officer_name")
    date_hierarchy = "created_at"

    def get_changeform_initial_data(self, request: HttpRequest) -> dict:
        # The invoice comes preselected from the invoice list's "Issue an adjustment" (?invoice=<id>).
        return {"direction": AdjustmentDirection.CREDIT, **super().get_changeform_initial_data(request)}

    def create(self, request: HttpRequest, values: dict) -> Adjustment:
        adjustment, _ = services.adjustment_create(
            invoice=values["invoice"],
            amount=values["amount"],
            direction=values["direction"],
            reason=values["reason"],
            officer=request.user,
        )
        return adjustment


class ReversalForm(forms.ModelForm):
    class Meta:
        model = PaymentReversal
        fields = ("payment", "kind", "reason")
        widgets = {"reason": forms.Textarea(attrs={"rows": 3})}


@admin.register(PaymentReversal)
class PaymentReversalAdmin(MoneyEntryAdmin):
    """Officers reverse payments here (a bounced cheque, a charge-back, a payment posted in error):
    through the same service as the API, the officer being the signed-in user."""

    form = ReversalForm
    list_display = ("number", "payment", "kind", "amount", "surcharge_total", "reversed_by", "reversed_at")
    list_filter = ("kind", ("provider", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("payment", "reversed_by")
    search_fields = ("number", "payment__receipt_number", "payment__invoice__number", "reason")
    date_hierarchy = "reversed_at"

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "payment":  # the provider's payments not reversed yet
            kwargs["queryset"] = scope_to_provider(
                Payment.objects.filter(reversal__isnull=True).select_related("invoice"), request.user
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def create(self, request: HttpRequest, values: dict) -> PaymentReversal:
        reversal, _ = services.payment_reverse(
            payment=values["payment"], kind=values["kind"], reason=values["reason"], reversed_by=request.user
        )
        return reversal


class CreditNoteLineInline(ReadOnlyInline):
    model = CreditNoteLine
    view_permission = "invoicing.view_creditnote"
    fields = ("position", "label", "amount")
    readonly_fields = fields
    show_change_link = False


@admin.register(CreditNote)
class CreditNoteAdmin(ReadOnlyAdmin):
    """Issued by cancelling or re-rating a bill, or by an officer (the API); never changed."""

    list_display = (
        "number",
        "invoice",
        "customer",
        "issue_date",
        "amount",
        "applied",
        "to_balance",
        "issued_by_name",
    )
    list_select_related = ("invoice", "customer")
    list_filter = (("provider", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("number", "invoice__number", "customer__number", "reason")
    date_hierarchy = "issue_date"
    inlines = [CreditNoteLineInline]


@admin.register(CreditNoteLine)
class CreditNoteLineAdmin(ReadOnlyAdmin):
    provider_field = "credit_note__provider"
    view_permission = "invoicing.view_creditnote"
    list_display = ("credit_note", "position", "label", "amount")
    list_select_related = ("credit_note",)
    search_fields = ("credit_note__number", "label")


class CreditEntryInline(ReadOnlyInline):
    model = CreditEntry
    view_permission = "invoicing.view_customercredit"
    fk_name = "customer"
    fields = ("created_at", "kind", "amount", "balance_after", "credit_note", "payment", "invoice", "refund")
    readonly_fields = fields
    show_change_link = False


@admin.register(CustomerCredit)
class CustomerCreditAdmin(ReadOnlyAdmin):
    """Each customer's credit balance; it moves only by credit notes, overpayments, bills and refunds."""

    list_display = ("customer", "balance", "updated_at")
    list_select_related = ("customer",)
    list_filter = (("provider", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("customer__number", "customer__name")


@admin.register(CreditEntry)
class CreditEntryAdmin(ReadOnlyAdmin):
    view_permission = "invoicing.view_customercredit"
    list_display = (
        "customer",
        "created_at",
        "kind",
        "amount",
        "balance_after",
        "credit_note",
        "invoice",
        "refund",
    )
    list_select_related = ("customer", "credit_note", "invoice", "refund")
    list_filter = ("kind", ("provider", admin.RelatedOnlyFieldListFilter))
    search_fields = ("customer__number", "credit_note__number", "invoice__number", "refund__number")


class CreditRefundForm(forms.ModelForm):
    class Meta:
        model = CreditRefund
        fields = ("customer", "amount", "method", "reference", "reason")


class CustomerChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, customer: Customer) -> str:
        return f"{customer.number}: {customer.name}, credit {customer.credit.balance}"


@admin.register(CreditRefund)
class CreditRefundAdmin(ProviderScopedAdmin, ServiceAdmin):
    """Officers refund a customer's credit balance here; their name and designation come from their
    account. A refund is never changed."""

    form = CreditRefundForm
    list_display = ("number", "customer", "amount", "method", "officer_name", "created_at")
    list_select_related = ("customer", "method")
    list_filter = ("method", ("provider", admin.RelatedOnlyFieldListFilter))
    search_fields = ("number", "customer__number", "customer__name", "reference")
    date_hierarchy = "created_at"

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "customer":
            kwargs["queryset"] = scope_to_provider(
                Customer.objects.filter(credit__balance__gt=0).select_related("credit"), request.user
            )
            kwargs["form_class"] = CustomerChoiceField
        if db_field.name == "method":
            kwargs["queryset"] = PaymentMethod.objects.filter(is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        return [field.name for field in self.model._meta.fields] if obj else ()

    def create(self, request: HttpRequest, values: dict) -> CreditRefund:
        refund, _ = services.credit_refund(
            customer=values["customer"],
            amount=values["amount"],
            method=values["method"],
            reason=values["reason"],
            reference=values.get("reference", ""),
            officer=request.user,
        )
        return refund


@admin.register(PaymentAllocation)
class PaymentAllocationAdmin(ReadOnlyAdmin):
    """Which bills each payment settled, oldest first (a payment's page lists its own)."""

    provider_field = "payment__provider"
    view_permission = "invoicing.view_payment"
    list_display = (
        "payment",
        "payment__received_at",
        "invoice",
        "invoice__connection",
        "invoice__period",
        "amount",
    )
    list_filter = (("payment__method", admin.RelatedOnlyFieldListFilter),)
    list_select_related = ("payment", "invoice__connection")
    search_fields = ("payment__receipt_number", "invoice__number", "invoice__connection__number")


@admin.register(PaymentMethod)
class PaymentMethodAdmin(admin.ModelAdmin):
    """One list for every provider, kept by platform administrators; a method is retired, not deleted."""

    list_display = ("name", "code", "is_active", "position")
    list_editable = ("is_active", "position")

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ProblemInline(ReadOnlyInline):
    model = BillingRunProblem
    view_permission = "invoicing.view_billingrun"
    fields = ("connection", "kind", "reason")
    readonly_fields = fields
    show_change_link = False

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("connection")


class BillingRunForm(forms.ModelForm):
    month = forms.DateField(
        help_text="Any day of the month to bill, e.g. 2024-07-01.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    class Meta:
        model = BillingRun
        fields = ("provider",)


@admin.register(BillingRun)
class BillingRunAdmin(ProviderScopedAdmin, ServiceAdmin):
    """Start a month's run here (it resumes an unfinished one); progress fills in as chunks finish."""

    form = BillingRunForm
    list_display = (
        "period",
        "price_order",
        "status",
        "done",
        "total",
        "issued",
        "already_billed",
        "skipped",
        "failed",
        "billed_amount",
        "credited_amount",
        "started_by",
        "started_at",
        "finished_at",
    )
    list_filter = ("status", ("provider", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("started_by", "price_order")
    date_hierarchy = "period"

    def get_inlines(self, request: HttpRequest, obj: BillingRun | None) -> list[type[admin.TabularInline]]:
        return [ProblemInline] if obj else []  # a run's problems, once it has run

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "provider":
            kwargs["queryset"] = Provider.objects.filter(is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        return [field.name for field in BillingRun._meta.fields] if obj else ()

    def get_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        if obj:
            return super().get_fields(request, obj)
        # A provider's officer bills their own provider; only a platform user chooses one.
        return ("provider", "month") if request.user.provider_id is None else ("month",)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None) -> Any:
        return super().add_view(request, form_url, {"title": "Start a billing run", **(extra_context or {})})

    def create(self, request: HttpRequest, values: dict) -> BillingRun:
        # As the API starts one: plan (or find the unfinished run), then send its chunks once committed.
        require_queue("A billing run")
        run, _ = services.billing_run_start(
            provider=values.get("provider") or request.user.provider,
            period=values["month"],
            started_by=request.user,
        )
        dispatch(run)
        return run


@admin.register(BillingRunChunk)
class BillingRunChunkAdmin(ReadOnlyAdmin):
    """The slices of each run, by connection id, and how long each took once billed."""

    provider_field = "run__provider"
    view_permission = "invoicing.view_billingrun"
    list_display = (
        "run",
        "index",
        "first_id",
        "last_id",
        "size",
        "done",
        "finished_at",
        "seconds",
        "billed_by",
    )
    list_filter = ("done", ("run", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("run",)


@admin.register(BillingRunProblem)
class BillingRunProblemAdmin(ReadOnlyAdmin):
    """Connections a run did not bill, and why (each run's page lists its own)."""

    provider_field = "run__provider"
    view_permission = "invoicing.view_billingrun"
    list_display = ("connection", "customer_name", "run", "kind", "reason")
    list_filter = ("kind", ("run", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("run", "connection__customer")
    search_fields = ("connection__number", "connection__customer__number", "reason")

    @admin.display(description="customer", ordering="connection__customer__name")
    def customer_name(self, problem: BillingRunProblem) -> str:
        customer = problem.connection.customer
        return f"{customer.name} ({customer.number})"


# --- bank payment files ----------------------------------------------------------------------------

FORMAT_FIELDS = (
    "name",
    "bill_number_column",
    "connection_number_column",
    "amount_column",
    "date_column",
    "method_column",
    "reference_column",
    "date_format",
    "decimal_comma",
    "delimiter",
    "default_method",
    "is_active",
)


@admin.register(PaymentFileFormat)
class PaymentFileFormatAdmin(ProviderScopedAdmin, ServiceAdmin):
    """Each bank's or collection agent's file layout: the header of each field's column, how dates and
    amounts are written, the method of a row naming none. Retired (inactive), never deleted: the files
    read with it point at it."""

    list_display = ("name", "amount_column", "reference_column", "date_format", "decimal_comma", "is_active")
    list_filter = ("is_active", ("provider", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("provider",)
    search_fields = ("name",)
    editable_fields = FORMAT_FIELDS

    def get_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        # A provider's administrator sets their own provider's; only a platform user chooses one.
        return FORMAT_FIELDS if obj is not None or request.user.provider_id else ("provider", *FORMAT_FIELDS)

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        return ("provider",) if obj is not None and request.user.provider_id is None else ()

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "default_method":
            kwargs["queryset"] = PaymentMethod.objects.filter(is_active=True)
        if db_field.name == "provider":
            kwargs["queryset"] = Provider.objects.filter(is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def create(self, request: HttpRequest, values: dict) -> PaymentFileFormat:
        fields = {name: values[name] for name in FORMAT_FIELDS if name in values}
        return services.payment_file_format_create(
            provider=values.get("provider") or request.user.provider, **fields
        )

    def update(self, request: HttpRequest, obj: PaymentFileFormat, changes: dict) -> None:
        if changes:
            services.payment_file_format_update(file_format=obj, **changes)


@admin.register(PaymentFile)
class PaymentFileAdmin(ReadOnlyAdmin):
    """Uploaded payment files and their totals; each file's rows are under *Payment file rows*."""

    list_display = (
        "name",
        "file_format",
        "status",
        "total",
        "posted",
        "duplicates",
        "refused",
        "posted_amount",
        "uploaded_by",
        "uploaded_at",
    )
    list_filter = ("status", ("file_format", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("file_format", "uploaded_by")
    search_fields = ("name", "sha256")
    date_hierarchy = "uploaded_at"


@admin.register(PaymentFileRow)
class PaymentFileRowAdmin(ReadOnlyAdmin):
    """Each row of the payment files and what became of it."""

    provider_field = "file__provider"
    view_permission = "invoicing.view_paymentfile"
    list_display = (
        "file",
        "line",
        "bill_number",
        "connection_number",
        "amount",
        "reference",
        "outcome",
        "payment",
        "reason",
    )
    list_filter = ("outcome", ("file", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("file", "payment")
    search_fields = ("reference", "bill_number", "connection_number")
