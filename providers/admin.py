import re
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Model, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from config.errors import DomainError
from providers.models import (
    Authority,
    ConnectionType,
    DatedRow,
    FixedCharge,
    Provider,
    Subsidy,
    TariffRow,
    TaxRule,
)
from providers.selectors import provider_list_for
from providers.services import (
    PROVIDER_EDITABLE_FIELDS,
    provider_create,
    provider_price_set,
    provider_update,
    schedule_row_add,
)
from providers.tenancy import scope_to_provider


class ServiceAdmin(admin.ModelAdmin):
    """Django admin whose writes go through the app's services, like every other way in.

    Subclasses name `editable_fields` and define `create(request, values)` and
    `update(request, obj, changes)`, which receives only the changed editable fields.
    Nothing is deleted from here: records are deactivated instead.
    """

    editable_fields: tuple[str, ...] = ()
    # A service names a refused field as the API does; where the model calls it otherwise, its name here.
    refusal_fields: dict[str, str] = {}

    def save_model(self, request: HttpRequest, obj: Model, form: ModelForm, change: bool) -> None:
        if change:
            changes = {f: form.cleaned_data[f] for f in form.changed_data if f in self.editable_fields}
            self.update(request, obj, changes)
        else:
            saved = self.create(request, form.cleaned_data)
            obj.pk, obj._state = saved.pk, saved._state  # admin goes on with (logs, redirects to) this row

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """A rule the form could not check refuses the save: the page comes back as it was typed, with
        the refusal next to the field it concerns, and nothing changed."""
        try:
            return super().changeform_view(request, *args, **kwargs)
        except DomainError as refusal:  # raised inside the admin's transaction, so it rolled back
            request._service_refusal = refusal
            return super().changeform_view(request, *args, **kwargs)  # the same POST, now refused by the form

    def get_form(self, request: HttpRequest, obj: Model | None = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)
        refusal = getattr(request, "_service_refusal", None)
        return form if refusal is None else _refused(form, refusal, self.refusal_fields)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


def _refused(form_class: type[ModelForm], refusal: DomainError, fields: dict[str, str]) -> type[ModelForm]:
    """The admin's form, refusing what the service refused: next to the field it names (`fields`' name
    for it, the API's camelCase name, or the model's), else above the form."""

    class Refused(form_class):
        def clean(self) -> dict[str, Any]:
            cleaned = super().clean()
            name = refusal.field or ""
            snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
            named = (fields.get(name, ""), name, snake)
            self.add_error(next((f for f in named if f in self.fields), None), refusal.detail)
            return cleaned

    return Refused


class ReadOnlyInline(admin.TabularInline):
    """Rows shown on the page of the record they belong to, never changed from there.

    `view_permission`, when set, is the permission that shows them: the record's own, for rows that are
    its parts (an invoice's lines), as the policy grants records, not their parts.
    """

    extra = 0
    can_delete = False
    show_change_link = True
    view_permission = ""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if self.view_permission:
            return request.user.has_perm(self.view_permission)
        return super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ConnectionTypeInline(ReadOnlyInline):
    model = ConnectionType
    fields = ("code", "description", "sanctioned_load_kw")
    readonly_fields = fields


class TariffRowInlineFormSet(forms.BaseInlineFormSet):
    @classmethod
    def get_default_prefix(cls) -> str:
        return "tariff_rows"  # the provider relation is hidden (related_name "+"): name the prefix


class TariffInForceInline(ReadOnlyInline):
    """The energy rates in force today; the whole history is under Tariff rows."""

    model = TariffRow
    formset = TariffRowInlineFormSet
    verbose_name_plural = "tariff rows in force today"
    fields = (
        "code",
        "connection_type",
        "bucket",
        "slab",
        "band_low",
        "band_high",
        "rate",
        "min_units",
        "min_amount",
        "valid_from",
        "valid_to",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        today = timezone.localdate()
        return super().get_queryset(request).in_force_on(today).select_related("connection_type")


@admin.register(Provider)
class ProviderAdmin(ServiceAdmin):
    list_display = ("code", "name", "city", "currency", "due_days", "late_surcharge_percent", "is_active")
    list_filter = ("is_active", "currency", "city")
    search_fields = ("code", "name", "city", "email")
    readonly_fields = ("created_at", "updated_at")
    editable_fields = PROVIDER_EDITABLE_FIELDS

    def get_queryset(self, request: HttpRequest) -> Any:
        return provider_list_for(user=request.user)

    def get_inlines(self, request: HttpRequest, obj: Provider | None) -> list[type[admin.TabularInline]]:
        # A provider's schedule, once it exists; it is changed on the schedule's own pages.
        return [ConnectionTypeInline, TariffInForceInline] if obj else []

    def get_readonly_fields(self, request: HttpRequest, obj: Provider | None = None) -> tuple[str, ...]:
        # The code is printed in every invoice number: fixed once the provider exists.
        return (*self.readonly_fields, "code") if obj else self.readonly_fields

    def create(self, request: HttpRequest, values: dict[str, Any]) -> Provider:
        return provider_create(code=values["code"], **{f: values[f] for f in PROVIDER_EDITABLE_FIELDS})

    def update(self, request: HttpRequest, obj: Provider, changes: dict[str, Any]) -> None:
        if changes:
            provider_update(provider=obj, **changes)


# The price schedule. Rows are never edited: a change closes rows and opens new ones, through the
# services, so every bill can still be explained. Connection types and authorities come from the
# import command and are only shown here.

AUDIT_FIELDS = ("created_by", "created_at", "closed_by", "closed_at")


class ProviderScopedAdmin(admin.ModelAdmin):
    """Rows of the caller's provider; a platform user (no provider) sees every provider's."""

    # How a row leads to its provider: through another row for the parts of a record (a line's invoice).
    provider_field = "provider"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return scope_to_provider(
            super().get_queryset(request), request.user, field=f"{self.provider_field}_id"
        )

    def get_list_display(self, request: HttpRequest) -> tuple[str, ...]:
        # Which provider a row belongs to says something only to a platform user.
        shown = tuple(super().get_list_display(request))
        return (self.provider_field, *shown) if request.user.provider_id is None else shown

    def get_list_select_related(self, request: HttpRequest) -> Any:
        # The provider column shown to a platform user is joined too, or each row would fetch it.
        related = super().get_list_select_related(request)
        if request.user.provider_id is None and isinstance(related, list | tuple):
            return (*related, self.provider_field)
        return related


class ReadOnlyMixin:
    """Shown, never added, changed or deleted here.

    `view_permission`, when set, is the permission that shows these rows. For the parts of a record (an
    invoice's lines, a run's chunks) it is the record's own: the policy grants records, not their parts.
    """

    view_permission = ""

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        if self.view_permission:
            return request.user.has_perm(self.view_permission)
        return super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ReadOnlyAdmin(ReadOnlyMixin, ProviderScopedAdmin):
    """Rows of the caller's provider, read-only."""


@admin.register(ConnectionType)
class ConnectionTypeAdmin(ReadOnlyAdmin):
    """Read-only: connection types come from the price schedule import."""

    list_display = ("code", "description", "sanctioned_load_kw")
    list_filter = (("provider", admin.RelatedOnlyFieldListFilter),)
    list_select_related = ("provider",)
    search_fields = ("code", "description")


@admin.register(Authority)
class AuthorityAdmin(ReadOnlyAdmin):
    """Read-only: authorities come from the price schedule import."""

    list_display = ("code", "name")
    list_filter = (("provider", admin.RelatedOnlyFieldListFilter),)
    list_select_related = ("provider",)
    search_fields = ("code", "name")


class InForceFilter(admin.SimpleListFilter):
    title = "in force on"
    parameter_name = "in_force"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("today", "Today"), ("ended", "Ended"), ("scheduled", "Scheduled (future)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        today = timezone.localdate()
        match self.value():
            case "today":
                return queryset.in_force_on(today)
            case "ended":
                return queryset.filter(valid_to__lte=today)
            case "scheduled":
                return queryset.filter(valid_from__gt=today)
        return queryset


CONNECTION_TYPE_FILTER = ("connection_type", admin.RelatedOnlyFieldListFilter)


class ScheduleListMixin:
    date_hierarchy = "valid_from"

    @admin.display(description="connection type", ordering="connection_type__code", empty_value="all types")
    def connection_type_code(self, obj: DatedRow) -> str | None:
        return obj.connection_type.code if obj.connection_type_id else None


PRICE_CHANGE_FIELDS = {"validFrom": "valid_from"}  # a service's field name -> the form's


class PriceChangeForm(forms.Form):
    provider = forms.ModelChoiceField(
        queryset=Provider.objects.filter(is_active=True), help_text="Whose price changes."
    )
    price = forms.DecimalField(label="Price per kWh", max_digits=14, decimal_places=4)
    valid_from = forms.DateField(
        label="Valid from",
        initial=timezone.localdate,
        widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}),
        help_text="Today or later: bills already issued keep the old price.",
    )

    def __init__(self, *args: Any, for_provider: Provider | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.for_provider = for_provider
        if for_provider is not None:  # a provider's administrator changes their own prices only
            del self.fields["provider"]

    @property
    def chosen_provider(self) -> Provider:
        return self.for_provider or self.cleaned_data["provider"]


@admin.register(TariffRow)
class TariffRowAdmin(ScheduleListMixin, ReadOnlyAdmin):
    """The price history, read-only; prices change with "Change prices" (through the service)."""

    list_display = (
        "code",
        "connection_type_code",
        "bucket",
        "slab",
        "band_low",
        "band_high",
        "rate",
        "min_units",
        "min_amount",
        "valid_from",
        "valid_to",
        "created_by",
        "closed_by",
    )
    list_filter = (CONNECTION_TYPE_FILTER, "bucket", InForceFilter)
    list_select_related = ("provider", "connection_type", "created_by", "closed_by")
    search_fields = ("code", "description")
    readonly_fields = AUDIT_FIELDS

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.change_price_view)
        name = f"{self.opts.app_label}_{self.opts.model_name}_change_price"
        return [path("change-price/", view, name=name), *super().get_urls()]

    def _url(self, name: str, **kwargs: Any) -> str:
        return reverse(f"{self.admin_site.name}:{name}", kwargs=kwargs or None)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        may_change = request.user.has_perm("providers.change_tariffrow")
        extra = {"change_price_url": self._url("providers_tariffrow_change_price") if may_change else ""}
        return super().changelist_view(request, {**extra, **(extra_context or {})})

    def change_price_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm("providers.change_tariffrow"):
            raise PermissionDenied
        form = PriceChangeForm(
            request.POST if request.method == "POST" else None, for_provider=request.user.provider
        )
        if form.is_valid():
            try:
                row = provider_price_set(
                    provider=form.chosen_provider,
                    price=form.cleaned_data["price"],
                    valid_from=form.cleaned_data["valid_from"],
                    changed_by=request.user,
                )
            except DomainError as refusal:  # the service's transaction rolled back: nothing saved
                form.add_error(PRICE_CHANGE_FIELDS.get(refusal.field or ""), refusal.detail)
            else:
                self.message_user(
                    request,
                    f"The price of {form.chosen_provider} is {row.rate} per kWh from {row.valid_from}.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(self._url("providers_tariffrow_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Change prices",
            "opts": self.opts,
            "form": form,
            "index_url": self._url("index"),
            "app_url": self._url("app_list", app_label=self.opts.app_label),
            "changelist_url": self._url("providers_tariffrow_changelist"),
        }
        return TemplateResponse(request, "admin/providers/tariffrow/change_price.html", context)


class ScheduleRowForm(forms.ModelForm):
    """A new row; the provider is the caller's unless a platform user chooses it."""

    # Set by ScheduleRowAdmin.get_form: the caller's provider (None for a platform user).
    default_provider: Provider | None = None
    OWNED = ("connection_type", "authority", "payer")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "provider" not in self.fields and self.instance.provider_id is None and self.default_provider:
            self.instance.provider = self.default_provider  # so the model's checks see it

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        provider = cleaned.get("provider") if "provider" in self.fields else self.default_provider
        for name in self.OWNED:
            chosen = cleaned.get(name)
            if provider is not None and chosen is not None and chosen.provider_id != provider.pk:
                self.add_error(name, _("Choose one of %(provider)s's own.") % {"provider": provider.code})
        return cleaned


class ScheduleRowAdmin(ScheduleListMixin, ProviderScopedAdmin, ServiceAdmin):
    """Tax rules, fixed charges and subsidies: added through `schedule_row_add`, never edited."""

    form = ScheduleRowForm
    add_fields: tuple[str, ...] = ()
    list_select_related = ("provider", "connection_type", "created_by", "closed_by")
    list_filter = (CONNECTION_TYPE_FILTER, InForceFilter)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def get_fields(self, request: HttpRequest, obj: Model | None = None) -> tuple[str, ...]:
        if obj is not None:
            return ("provider", *self.add_fields, *AUDIT_FIELDS)
        return ("provider", *self.add_fields) if request.user.provider_id is None else self.add_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> tuple[str, ...]:
        return AUDIT_FIELDS if obj is not None else ()

    def get_form(self, request: HttpRequest, obj: Model | None = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)
        form.default_provider = request.user.provider
        return form

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name in ScheduleRowForm.OWNED:
            kwargs["queryset"] = scope_to_provider(db_field.related_model.objects.all(), request.user)
        elif db_field.name == "provider":
            kwargs["queryset"] = Provider.objects.filter(is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def create(self, request: HttpRequest, values: dict[str, Any]) -> DatedRow:
        provider = values.get("provider") or request.user.provider
        row = self.model(provider=provider, **{field: values[field] for field in self.add_fields})
        try:
            return schedule_row_add(row=row, created_by=request.user)
        except ValidationError as invalid:  # the model's own checks, should the form have missed one
            raise DomainError(" ".join(invalid.messages)) from invalid

    def update(self, request: HttpRequest, obj: Model, changes: dict[str, Any]) -> None:
        raise DomainError(_("Rows of the price schedule are not edited: end this one and add a new one."))


@admin.register(TaxRule)
class TaxRuleAdmin(ScheduleRowAdmin):
    add_fields = ("connection_type", "name", "authority", "rate", "valid_from", "valid_to")
    list_display = (
        "name",
        "connection_type_code",
        "authority",
        "rate",
        "valid_from",
        "valid_to",
        "created_by",
        "closed_by",
    )
    list_select_related = (*ScheduleRowAdmin.list_select_related, "authority")
    list_filter = (*ScheduleRowAdmin.list_filter, "name")
    search_fields = ("name",)


@admin.register(FixedCharge)
class FixedChargeAdmin(ScheduleRowAdmin):
    add_fields = ("connection_type", "name", "authority", "amount", "valid_from", "valid_to")
    list_display = (
        "name",
        "connection_type_code",
        "authority",
        "amount",
        "valid_from",
        "valid_to",
        "created_by",
        "closed_by",
    )
    list_select_related = (*ScheduleRowAdmin.list_select_related, "authority")
    list_filter = (*ScheduleRowAdmin.list_filter, "name")
    search_fields = ("name",)


@admin.register(Subsidy)
class SubsidyAdmin(ScheduleRowAdmin):
    add_fields = (
        "connection_type",
        "code",
        "description",
        "payer",
        "basis",
        "band_low",
        "band_high",
        "income_ceiling",
        "rate_per_unit",
        "percent",
        "valid_from",
        "valid_to",
    )
    list_display = (
        "code",
        "connection_type_code",
        "payer",
        "basis",
        "band_low",
        "band_high",
        "income_ceiling",
        "rate_per_unit",
        "percent",
        "valid_from",
        "valid_to",
        "created_by",
        "closed_by",
    )
    list_select_related = (*ScheduleRowAdmin.list_select_related, "payer")
    list_filter = (*ScheduleRowAdmin.list_filter, "basis", "code")
    search_fields = ("code", "description")
