"""Django admin for retroactive price orders: entered (providers.orders.price_order_enter), shown with
the issued bills they affect, and confirmed with "Confirm and re-bill", which changes the prices and
starts the re-billing run (invoicing.services.rebilling), whose progress the order's page then shows.

Here rather than in providers/admin.py because the bills and the run are invoicing's.
"""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Model, Sum
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from config.errors import DomainError
from config.queue import require_queue
from invoicing import services
from invoicing.tasks import dispatch
from providers.admin import ProviderScopedAdmin, ServiceAdmin
from providers.models import PriceOrder, PriceOrderStatus, Provider
from providers.orders import price_order_enter, specs_from_values
from providers.tenancy import scope_to_provider

ENTERED_FIELDS = ("reference", "description", "valid_from", "connection_type", "rows")
RECORD_FIELDS = ("status", "entered_by", "entered_at", "confirmed_by", "confirmed_at")
SHOWN_BILLS = 200  # the page lists this many affected bills; the totals count them all


class PriceOrderForm(forms.ModelForm):
    class Meta:
        model = PriceOrder
        fields = ("provider", *ENTERED_FIELDS)
        help_texts = {
            "valid_from": "A day before today: bills whose period reaches it are issued again.",
            "connection_type": "Empty: every connection type without rates of its own.",
            "rows": 'The new tariff rows, one object each: at least "rate", and as the schedule has them '
            '"bucket" (all, peak, off_peak), "band_low", "band_high", "min_units", "min_amount", "slab", '
            '"mode", "code", "description". E.g. [{"rate": "30.00"}].',
        }
        widgets = {"rows": forms.Textarea(attrs={"rows": 4, "cols": 80})}


class PriceOrderAdmin(ProviderScopedAdmin, ServiceAdmin):
    form = PriceOrderForm
    change_form_template = "admin/providers/priceorder/change_form.html"
    list_display = ("reference", "valid_from", "connection_type", "status", "entered_by", "confirmed_at")
    list_filter = ("status",)
    list_select_related = ("connection_type", "entered_by")
    search_fields = ("reference", "description")
    date_hierarchy = "valid_from"

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # never edited: confirmed (or another order entered) instead

    def get_fields(self, request: HttpRequest, obj: Model | None = None) -> tuple[str, ...]:
        if obj is not None:
            return ("provider", *ENTERED_FIELDS, *RECORD_FIELDS)
        return ("provider", *ENTERED_FIELDS) if request.user.provider_id is None else ENTERED_FIELDS

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "connection_type":
            kwargs["queryset"] = scope_to_provider(db_field.related_model.objects.all(), request.user)
        elif db_field.name == "provider":
            kwargs["queryset"] = Provider.objects.filter(is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def create(self, request: HttpRequest, values: dict[str, Any]) -> PriceOrder:
        return price_order_enter(
            provider=values.get("provider") or request.user.provider,
            reference=values["reference"],
            description=values.get("description", ""),
            valid_from=values["valid_from"],
            connection_type=values.get("connection_type"),
            rows=specs_from_values(values["rows"]),
            entered_by=request.user,
        )

    def update(self, request: HttpRequest, obj: Model, changes: dict[str, Any]) -> None:
        raise DomainError(_("A price order is not edited; enter another with its own reference."))

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(require_POST(self.confirm_view))
        name = f"{self.opts.app_label}_{self.opts.model_name}_confirm"
        return [path("<int:order_id>/confirm/", view, name=name), *super().get_urls()]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        order = self.get_object(request, object_id)
        extra = {} if order is None else self._order_context(request, order)
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def _order_context(self, request: HttpRequest, order: PriceOrder) -> dict[str, Any]:
        run = getattr(order, "billing_run", None) if order.status == PriceOrderStatus.CONFIRMED else None
        if run is not None:
            return {
                "run": run,
                "run_url": reverse("run-detail", args=[run.pk]),
                "run_admin_url": reverse(
                    f"{self.admin_site.name}:invoicing_billingrun_change", args=[run.pk]
                ),
            }
        bills = services.price_order_affected_bills(order=order)
        return {
            "bills": bills.select_related("connection").order_by("connection__number", "period")[
                :SHOWN_BILLS
            ],
            "bill_totals": bills.aggregate(count=Count("pk"), amount=Sum("current_charges")),
            "may_confirm": request.user.has_perm("providers.change_priceorder"),
            "confirm_url": reverse(
                f"{self.admin_site.name}:providers_priceorder_confirm", kwargs={"order_id": order.pk}
            ),
        }

    def confirm_view(self, request: HttpRequest, order_id: int) -> HttpResponse:
        if not request.user.has_perm("providers.change_priceorder"):
            raise PermissionDenied
        order = get_object_or_404(self.get_queryset(request), pk=order_id)  # another provider's: 404
        change_url = reverse(f"{self.admin_site.name}:providers_priceorder_change", args=[order.pk])
        try:
            require_queue("Re-billing under a price order")
            run = services.price_order_confirm(order=order, confirmed_by=request.user)
        except DomainError as refusal:  # the service's transaction rolled back: nothing changed
            self.message_user(request, refusal.detail, messages.ERROR)
            return HttpResponseRedirect(change_url)
        dispatch(run)
        self.message_user(
            request,
            format_html(
                'Price order {} confirmed: {} connections are being re-billed. <a href="{}">Follow the run</a>.',
                order.reference,
                run.total,
                reverse("run-detail", args=[run.pk]),
            ),
            messages.SUCCESS,
        )
        return HttpResponseRedirect(change_url)


admin.site.register(PriceOrder, PriceOrderAdmin)
