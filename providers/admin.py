from typing import Any

from django.contrib import admin, messages
from django.db.models import Model
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from config.errors import DomainError
from providers.models import Provider
from providers.selectors import provider_list_for
from providers.services import PROVIDER_EDITABLE_FIELDS, provider_create, provider_update


class ServiceAdmin(admin.ModelAdmin):
    """Django admin whose writes go through the app's services, like every other way in.

    Subclasses name `editable_fields` and define `create(request, values)` and
    `update(request, obj, changes)`, which receives only the changed editable fields.
    Nothing is deleted from here: records are deactivated instead.
    """

    editable_fields: tuple[str, ...] = ()

    def save_model(self, request: HttpRequest, obj: Model, form: ModelForm, change: bool) -> None:
        if change:
            changes = {f: form.cleaned_data[f] for f in form.changed_data if f in self.editable_fields}
            self.update(request, obj, changes)
        else:
            saved = self.create(request, form.cleaned_data)
            obj.pk, obj._state = saved.pk, saved._state  # admin goes on with (logs, redirects to) this row

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """A rule the form could not check refuses the save: say why, keep the page, change nothing."""
        try:
            return super().changeform_view(request, *args, **kwargs)
        except DomainError as refusal:  # raised inside the admin's transaction, so it rolled back
            self.message_user(request, refusal.detail, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Provider)
class ProviderAdmin(ServiceAdmin):
    list_display = ("code", "name", "city", "currency", "due_days", "late_surcharge_percent", "is_active")
    list_filter = ("is_active", "currency", "city")
    search_fields = ("code", "name", "city", "email")
    readonly_fields = ("created_at", "updated_at")
    editable_fields = PROVIDER_EDITABLE_FIELDS

    def get_queryset(self, request: HttpRequest) -> Any:
        return provider_list_for(user=request.user)

    def get_readonly_fields(self, request: HttpRequest, obj: Provider | None = None) -> tuple[str, ...]:
        # The code is printed in every invoice number: fixed once the provider exists.
        return (*self.readonly_fields, "code") if obj else self.readonly_fields

    def create(self, request: HttpRequest, values: dict[str, Any]) -> Provider:
        return provider_create(code=values["code"], **{f: values[f] for f in PROVIDER_EDITABLE_FIELDS})

    def update(self, request: HttpRequest, obj: Provider, changes: dict[str, Any]) -> None:
        if changes:
            provider_update(provider=obj, **changes)
