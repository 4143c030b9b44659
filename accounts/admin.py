from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from accounts import services
from accounts.models import Message, NotificationSettings, RoleSelectionTicket, User, UserRole
from accounts.roles import Role
from accounts.selectors import user_list_for
from config.errors import DomainError
from providers.admin import ProviderScopedAdmin, ReadOnlyAdmin, ReadOnlyInline, ServiceAdmin


class RolesFormMixin(forms.Form):
    roles = forms.MultipleChoiceField(choices=Role.choices, widget=forms.CheckboxSelectMultiple)
    # Set by UserAdmin.get_form: the provider a new user gets when the field is not offered.
    default_provider = None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if "provider" in cleaned:
            provider = cleaned["provider"]
        else:
            provider = self.instance.provider if self.instance.pk else self.default_provider
        try:
            services.roles_validate(cleaned.get("roles") or [], provider)
        except DomainError as exc:
            raise ValidationError({"roles": exc.detail}) from exc
        return cleaned


class UserChangeAdminForm(RolesFormMixin, UserChangeForm):
    class Meta:
        model = User
        fields = ("email", "name", "phone", "address", "designation", "language", "provider", "is_active")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["roles"].initial = self.instance.role_names


class UserAddAdminForm(RolesFormMixin, AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "name", "phone", "address", "designation", "provider")


class UserRoleInline(ReadOnlyInline):
    """The roles held, with when and by whom each was given; edited with the checkboxes above."""

    model = UserRole
    fk_name = "user"
    fields = ("role", "assigned_at", "assigned_by")
    readonly_fields = fields
    show_change_link = False


@admin.register(User)
class UserAdmin(ServiceAdmin, DjangoUserAdmin):
    form = UserChangeAdminForm
    add_form = UserAddAdminForm
    inlines = [UserRoleInline]
    list_display = ("email", "name", "provider", "role_list", "is_active", "is_staff", "last_login")
    # Only providers of the users shown: other providers' names stay hidden.
    list_filter = ("is_active", "is_staff", "roles__role", ("provider", admin.RelatedOnlyFieldListFilter))
    search_fields = ("email", "name", "phone")
    ordering = ("name", "email")
    filter_horizontal = ()
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Person", {"fields": ("name", "phone", "address", "designation", "language")}),
        ("Access", {"fields": ("provider", "roles", "is_active", "is_staff")}),
        ("Dates", {"fields": ("last_login", "created_at", "updated_at")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": (
                    "email",
                    "name",
                    "phone",
                    "address",
                    "designation",
                    "provider",
                    "roles",
                    "usable_password",
                    "password1",
                    "password2",
                ),
            },
        ),
    )
    editable_fields = services.USER_EDITABLE_FIELDS

    def get_queryset(self, request: HttpRequest) -> Any:
        return user_list_for(user=request.user)

    def get_form(self, request: HttpRequest, obj: User | None = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)
        form.default_provider = request.user.provider
        return form

    def get_readonly_fields(self, request: HttpRequest, obj: User | None = None) -> tuple[str, ...]:
        fixed = ("is_staff", "last_login", "created_at", "updated_at")  # is_staff follows the Admin role
        if obj is not None:
            return (*fixed, "email", "provider")
        # A provider's administrator creates users of their own provider only.
        return ("provider",) if request.user.provider_id is not None else ()

    @admin.display(description="Roles")
    def role_list(self, obj: User) -> str:
        return ", ".join(obj.role_names)

    def create(self, request: HttpRequest, values: dict[str, Any]) -> User:
        return services.user_create(
            email=values["email"],
            name=values["name"],
            phone=values.get("phone", ""),
            address=values.get("address", ""),
            designation=values.get("designation", ""),
            provider=values.get("provider", request.user.provider),
            roles=values["roles"],
            password=values.get("password1") if values.get("set_usable_password") else None,
            created_by=request.user,
        )

    def update(self, request: HttpRequest, obj: User, changes: dict[str, Any]) -> None:
        if changes:
            services.user_update(user=obj, updated_by=request.user, **changes)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        if change and "roles" in form.changed_data:
            services.user_roles_set(
                user=form.instance, roles=form.cleaned_data["roles"], changed_by=request.user
            )


@admin.register(UserRole)
class UserRoleAdmin(ReadOnlyAdmin):
    """Who holds which role, since when and given by whom; roles are set on the user's page."""

    provider_field = "user__provider"
    list_display = ("user__name", "user__email", "role", "assigned_at", "assigned_by")
    list_filter = ("role",)
    list_select_related = ("user", "assigned_by")
    search_fields = ("user__name", "user__email")
    date_hierarchy = "assigned_at"


@admin.register(RoleSelectionTicket)
class RoleSelectionTicketAdmin(ReadOnlyAdmin):
    """Sign-ins of users with several roles, waiting for (or traded for) a chosen role. Only the
    ticket's hash is stored, so nothing here lets anyone use one."""

    provider_field = "user__provider"
    view_permission = "accounts.view_user"
    list_display = ("user__name", "user__email", "created_at", "expires_at", "used_at")
    list_filter = (("used_at", admin.EmptyFieldListFilter),)
    list_select_related = ("user",)
    search_fields = ("user__name", "user__email")
    date_hierarchy = "created_at"
    exclude = ("digest",)


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    """Every e-mail recorded: to whom, about what, and how sending it went. Sent by the workers only."""

    list_display = ("created_at", "kind", "recipient", "language", "status", "attempts", "about", "sent_at")
    list_filter = ("status", "kind", "language")
    list_select_related = ()  # the provider, joined for a platform user (ProviderScopedAdmin)
    search_fields = ("recipient", "about_id")
    date_hierarchy = "created_at"

    @admin.display(description="About")
    def about(self, obj: Message) -> str:
        return f"{obj.about_type} {obj.about_id}"


@admin.register(NotificationSettings)
class NotificationSettingsAdmin(ServiceAdmin, ProviderScopedAdmin):
    """A provider's e-mail settings: how many days before a bill's due date its customer is reminded."""

    list_display = ("provider", "due_reminder_days", "updated_at")
    list_select_related = ("provider",)
    search_fields = ("provider__code", "provider__name")
    editable_fields = ("due_reminder_days",)

    def get_readonly_fields(
        self, request: HttpRequest, obj: NotificationSettings | None = None
    ) -> tuple[str, ...]:
        # A provider's administrator sets their own provider's; the provider is fixed once chosen.
        return ("provider",) if obj is not None or request.user.provider_id is not None else ()

    def create(self, request: HttpRequest, values: dict[str, Any]) -> NotificationSettings:
        return services.notification_settings_set(
            provider=values.get("provider") or request.user.provider,
            due_reminder_days=values["due_reminder_days"],
        )

    def update(self, request: HttpRequest, obj: NotificationSettings, changes: dict[str, Any]) -> None:
        if changes:
            services.notification_settings_set(provider=obj.provider, **changes)
