"""Django admin for collections: a provider's administrator sets its dunning levels here (through the
services, which keep the ladder in order); officers make payment plans; the steps the daily job took
and the debts it chased are read-only."""

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from billing.models import ServiceConnection
from invoicing import services
from invoicing.models import (
    DisconnectionOrder,
    DunningCase,
    DunningLevel,
    DunningStep,
    PaymentInstalment,
    PaymentPlan,
)
from providers.admin import ProviderScopedAdmin, ReadOnlyAdmin, ReadOnlyInline, ServiceAdmin
from providers.models import Provider
from providers.tenancy import scope_to_provider


@admin.register(DunningLevel)
class DunningLevelAdmin(ProviderScopedAdmin, ServiceAdmin):
    list_display = ("days_after_due", "action", "is_active", "created_by", "updated_at")
    list_filter = ("action", "is_active", ("provider", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("created_by",)
    editable_fields = ("days_after_due", "action", "is_active")
    refusal_fields = {"daysAfterDue": "days_after_due"}

    def get_fields(self, request: HttpRequest, obj: Model | None = None) -> tuple[str, ...]:
        chosen = obj is None and request.user.provider_id is None  # a platform user chooses the provider
        return ("provider", *self.editable_fields) if chosen else self.editable_fields

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "provider":
            kwargs["queryset"] = Provider.objects.filter(is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def create(self, request: HttpRequest, values: dict[str, Any]) -> DunningLevel:
        return services.dunning_level_create(
            provider=values.get("provider") or request.user.provider,
            days_after_due=values["days_after_due"],
            action=values["action"],
            created_by=request.user,
        )

    def update(self, request: HttpRequest, obj: DunningLevel, changes: dict[str, Any]) -> None:
        if changes:
            services.dunning_level_update(level=obj, **changes)


class InstalmentInline(ReadOnlyInline):
    model = PaymentInstalment
    view_permission = "invoicing.view_paymentplan"
    fields = ("position", "due_date", "amount")
    readonly_fields = fields
    show_change_link = False


class PaymentPlanForm(forms.ModelForm):
    instalments = forms.IntegerField(min_value=1, help_text="How many monthly instalments.")
    first_due_date = forms.DateField(help_text="The first instalment's due date; the others monthly after.")

    class Meta:
        model = PaymentPlan
        fields = ("connection", "instalments", "first_due_date", "reason")


@admin.register(PaymentPlan)
class PaymentPlanAdmin(ProviderScopedAdmin, ServiceAdmin):
    """A plan is made through `payment_plan_create` (the arrears are the connection's overdue bills);
    the daily job finds it completed or broken. Never edited."""

    form = PaymentPlanForm
    list_display = ("connection", "customer", "arrears", "status", "created_by", "created_at", "ended_on")
    list_filter = ("status", ("provider", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("connection", "customer", "created_by")
    search_fields = ("connection__number", "customer__number", "customer__name")
    autocomplete_fields = ("connection",)
    refusal_fields = {"firstDueDate": "first_due_date"}

    def get_inlines(self, request: HttpRequest, obj: PaymentPlan | None) -> list[type[admin.TabularInline]]:
        return [InstalmentInline] if obj else []

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def get_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        if obj is not None:
            return (
                "connection",
                "customer",
                "arrears",
                "status",
                "reason",
                "created_by",
                "created_at",
                "ended_on",
            )
        return ("connection", "instalments", "first_due_date", "reason")

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        return self.get_fields(request, obj) if obj else ()

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "connection":
            kwargs["queryset"] = scope_to_provider(ServiceConnection.objects.all(), request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def create(self, request: HttpRequest, values: dict[str, Any]) -> PaymentPlan:
        return services.payment_plan_create(
            connection=values["connection"],
            instalments=values["instalments"],
            first_due_date=values["first_due_date"],
            reason=values["reason"],
            created_by=request.user,
        )


@admin.register(DunningStep)
class DunningStepAdmin(ReadOnlyAdmin):
    list_display = (
        "taken_on",
        "connection",
        "customer",
        "action",
        "days_overdue",
        "balance",
        "order_number",
        "notice",
    )
    list_filter = ("action", ("provider", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("connection", "customer", "notice")
    search_fields = ("connection__number", "customer__number", "order_number")
    date_hierarchy = "taken_on"


@admin.register(DunningCase)
class DunningCaseAdmin(ReadOnlyAdmin):
    view_permission = "invoicing.view_dunningstep"
    list_display = ("connection", "customer", "opened_on", "level", "last_step_on", "closed_on")
    list_select_related = ("connection", "customer", "level")
    search_fields = ("connection__number", "customer__number")


@admin.register(PaymentInstalment)
class PaymentInstalmentAdmin(ReadOnlyAdmin):
    view_permission = "invoicing.view_paymentplan"  # the parts of a plan, shown as the plan is
    list_display = ("plan", "position", "due_date", "amount")
    list_select_related = ("plan",)
    search_fields = ("plan__connection__number",)


@admin.register(DisconnectionOrder)
class DisconnectionOrderAdmin(ReadOnlyAdmin):
    """Orders are issued by the dunning job or an officer's step and carried out on the staff pages."""

    list_display = ("number", "issued_on", "connection", "customer", "overdue_balance", "status", "closed_at")
    list_filter = ("status", ("provider", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("connection", "customer")
    search_fields = ("number", "connection__number", "customer__number")
    date_hierarchy = "issued_on"
