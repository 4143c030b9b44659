"""Django admin for officers and administrators: invoices read-only, payments and adjustments entered
through the same services as the API (the officer is the signed-in user), billing runs started here."""

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from invoicing import services
from invoicing.models import (
    Adjustment,
    AdjustmentDirection,
    BillingRun,
    BillingRunProblem,
    Invoice,
    InvoiceLine,
    Payment,
    PaymentAllocation,
    PaymentMethod,
)
from invoicing.tasks import dispatch
from providers.admin import ProviderScopedAdmin, ReadOnlyAdmin, ReadOnlyInline, ServiceAdmin
from providers.models import Provider
from providers.tenancy import scope_to_provider


class InvoiceLineInline(ReadOnlyInline):
    model = InvoiceLine
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
    fields = ("payment", "amount")
    readonly_fields = fields
    show_change_link = False


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    """Issued amounts never change: corrections are adjustments, money in is a payment."""

    list_display = (
        "number", "customer_name", "connection", "period", "current_charges", "balance", "status", "due_date",
    )  # fmt: skip
    list_filter = ("status", "period", "source", ("provider", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("connection", "customer__user", "provider")
    search_fields = ("number", "connection__number", "customer__number", "customer__user__name")
    date_hierarchy = "issue_date"
    inlines = [InvoiceLineInline, AdjustmentInline, AllocationInline]
    exclude = ("trace", "customer_snapshot", "provider_snapshot")

    @admin.display(description="customer", ordering="customer__user__name")
    def customer_name(self, invoice: Invoice) -> str:
        return f"{invoice.customer.user.name} ({invoice.customer.number})"


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
                Invoice.objects.filter(status__in=services.OPEN_STATUSES).select_related("connection"),
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


@admin.register(Payment)
class PaymentAdmin(MoneyEntryAdmin):
    form = PaymentForm
    list_display = ("receipt_number", "invoice", "amount", "method", "received_by", "received_at")
    list_filter = ("method", ("provider", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("invoice", "method", "received_by")
    search_fields = ("receipt_number", "invoice__number", "reference", "connection__number")
    date_hierarchy = "received_at"

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
        return {"direction": AdjustmentDirection.CREDIT}

    def create(self, request: HttpRequest, values: dict) -> Adjustment:
        adjustment, _ = services.adjustment_create(
            invoice=values["invoice"],
            amount=values["amount"],
            direction=values["direction"],
            reason=values["reason"],
            officer=request.user,
        )
        return adjustment


@admin.register(PaymentMethod)
class PaymentMethodAdmin(admin.ModelAdmin):
    """One list for every provider, kept by platform administrators; a method is retired, not deleted."""

    list_display = ("name", "code", "is_active", "position")
    list_editable = ("is_active", "position")

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ProblemInline(ReadOnlyInline):
    model = BillingRunProblem
    fields = ("connection", "kind", "reason")
    readonly_fields = fields
    show_change_link = False


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
        "provider",
        "period",
        "status",
        "done",
        "total",
        "issued",
        "skipped",
        "failed",
        "started_at",
    )
    list_filter = ("status", ("provider", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("provider",)
    inlines = [ProblemInline]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "provider":
            kwargs["queryset"] = scope_to_provider(Provider.objects.all(), request.user, field="pk")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        return [field.name for field in BillingRun._meta.fields] if obj else ()

    def get_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        return super().get_fields(request, obj) if obj else ("provider", "month")

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def create(self, request: HttpRequest, values: dict) -> BillingRun:
        run, _ = services.billing_run_start(
            provider=values["provider"], period=values["month"], started_by=request.user
        )
        dispatch(run)
        return run
