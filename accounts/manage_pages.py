"""The administrators' pages: users and their roles, providers, and the price schedule.

They mirror the admin API (accounts/api.py, providers/api.py): the same selectors scope every lookup
to the caller's provider (a platform administrator, who has none, sees every provider) and the same
services make every change. A provider never comes from the client, except a platform
administrator's choice, and that is looked up among the providers they may see.
"""

from dataclasses import fields, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods

from accounts import services as account_services
from accounts.models import User
from accounts.permissions import role_allows
from accounts.roles import Role
from accounts.selectors import user_get_for, user_list_for
from accounts.web import page, paginate, refusals_into
from providers import services as provider_services
from providers.models import FixedCharge, Provider, SlabMode, Subsidy, SubsidyBasis, TariffRow, TaxRule
from providers.selectors import (
    connection_types_of,
    provider_get_for,
    provider_list_for,
    schedule_last_day,
    schedule_rows,
)

USERS_PER_PAGE = 50

# What each role lets a person do, beside its checkbox.
ROLE_DESCRIPTIONS = {
    Role.CUSTOMER: "Sees their own bills, payments and usage in the customer portal.",
    Role.INVOICE_CREATOR: "Opens customer accounts and connections, records readings, issues invoices and takes "
    "payments on the invoices they created.",
    Role.SUPER_CREATOR: "Every invoice of the provider, payments, billing runs and officer adjustments; "
    "customers' and connections' details.",
    Role.AUDITOR: "Reads the audit trail, invoice and pricing history; asks questions in plain words.",
    Role.ADMIN: "Users and their roles, the provider's settings and prices, and all staff work.",
}

DESIGNATION_HELP = "Officers (Super creator, Admin) need one to authorise adjustments; receipts print it."

# A service names the API's fields; these are the forms' names for them.
USER_FIELDS = {"providerId": "provider", "phoneNumber": "phone", "isActive": "is_active"}
# On the roles form a role a platform user may not hold is refused next to the roles.
ROLE_FIELDS = {"providerId": "roles"}
PROVIDER_FIELDS = {
    "phoneNumber": "phone",
    "dueDays": "due_days",
    "lateSurchargePercent": "late_surcharge_percent",
    "reconnectionFee": "reconnection_fee",
    "isActive": "is_active",
    "kwhPrice": "kwh_price",
}
PRICE_FIELDS = {"validFrom": "valid_from", "rows": "rate", "connectionType": "row"}


def _may(request: HttpRequest, perm: str) -> bool:
    return role_allows(request.user.active_role, perm, user=request.user)


def _refused_status(*shown: forms.Form | None) -> int:
    """400 when a submitted form is shown again with what was refused, 200 otherwise."""
    return 400 if any(form is not None and form.errors for form in shown) else 200


# --- users -----------------------------------------------------------------------------------------


class RolesMixin(forms.Form):
    roles = forms.MultipleChoiceField(
        choices=Role.choices,
        required=False,  # none ticked means Customer on creation; on a change the service refuses it
        widget=forms.CheckboxSelectMultiple,
    )

    def role_options(self) -> list[dict[str, Any]]:
        """Each role's checkbox with what the role lets its holder do."""
        return [{"box": box, "description": ROLE_DESCRIPTIONS[box.data["value"]]} for box in self["roles"]]


class PersonForm(forms.Form):
    """What an administrator may say of a person (the fields `user_update` changes)."""

    name = forms.CharField(max_length=150)
    phone = forms.CharField(label=_("Phone number"), max_length=30, required=False)
    address = forms.CharField(max_length=300, required=False)
    designation = forms.CharField(max_length=100, required=False, help_text=DESIGNATION_HELP)


class UserCreateForm(RolesMixin, PersonForm):
    email = forms.EmailField(max_length=254)
    password = forms.CharField(
        max_length=256,
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=_("Optional. Without one the user cannot sign in until an administrator sets one."),
    )
    provider = forms.ModelChoiceField(
        queryset=Provider.objects.none(),
        required=False,
        empty_label=_("None: a platform administrator"),
        help_text=_("The provider this person works for. Only administrators may have none."),
    )

    field_order = ["name", "email", "phone", "address", "designation", "password", "provider", "roles"]

    def __init__(self, *args: Any, caller: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["roles"].help_text = "Tick every role this person works in. None ticked: Customer."
        self.caller = caller
        if caller.provider_id is not None:
            # A provider's administrator creates users of their own provider: nothing to choose.
            del self.fields["provider"]
        else:
            self.fields["provider"].queryset = provider_list_for(user=caller)

    def provider_for_new_user(self) -> Provider | None:
        """As the API: the caller's own provider, or the one a platform administrator chose."""
        if self.caller.provider_id is not None:
            return self.caller.provider
        return self.cleaned_data["provider"]


class UserDetailsForm(PersonForm):
    is_active = forms.BooleanField(
        label=_("Active"),
        required=False,
        help_text=_("Untick to stop this person signing in; they are signed out at their next request."),
    )


class UserRolesForm(RolesMixin):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["roles"].help_text = "Tick every role this person works in; they keep at least one."


PLATFORM_USERS = "platform"  # the provider filter's value for users with no provider


class UserFilterForm(forms.Form):
    q = forms.CharField(
        label=_("Name or email"),
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"type": "search"}),
    )
    role = forms.ChoiceField(label=_("Role"), required=False, choices=[("", "Any role"), *Role.choices])
    provider = forms.ChoiceField(label=_("Provider"), required=False)

    def __init__(self, *args: Any, caller: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if caller.provider_id is not None:
            del self.fields["provider"]  # a provider's administrator sees their own provider's users only
        else:
            self.fields["provider"].choices = [
                ("", "Any provider"),
                (PLATFORM_USERS, "None (platform administrators)"),
                *((str(p.pk), f"{p.name} ({p.code})") for p in provider_list_for(user=caller)),
            ]

    def apply(self, users: Any) -> Any:
        if not self.is_valid():
            return users
        if query := self.cleaned_data["q"].strip():
            users = users.filter(Q(name__icontains=query) | Q(email__icontains=query))
        if role := self.cleaned_data["role"]:
            users = users.filter(roles__role=role)
        provider = self.cleaned_data.get("provider")
        if provider == PLATFORM_USERS:
            users = users.filter(provider__isnull=True)
        elif provider:
            users = users.filter(provider_id=int(provider))  # within the caller's scope already
        return users


def _role_labels(user: User) -> list[str]:
    return [str(Role(role).label) for role in user.role_names]


@require_GET
@page("accounts.view_user")
def user_list(request: HttpRequest) -> HttpResponse:
    filters = UserFilterForm(request.GET, caller=request.user)
    users = filters.apply(user_list_for(user=request.user))
    listed = paginate(request, users, USERS_PER_PAGE)
    return render(
        request,
        "accounts/manage/user_list.html",
        {
            "filters": filters,
            "listed": listed,
            "rows": [{"user": user, "roles": _role_labels(user)} for user in listed],
            "show_provider": request.user.provider_id is None,
            "may_add": _may(request, "accounts.add_user"),
        },
    )


@require_http_methods(["GET", "POST"])
@page("accounts.add_user")
def user_new(request: HttpRequest) -> HttpResponse:
    form = UserCreateForm(request.POST or None, caller=request.user)
    if request.method == "POST" and form.is_valid():
        values = form.cleaned_data
        with refusals_into(form, fields=USER_FIELDS):
            user = account_services.user_create(
                email=values["email"],
                name=values["name"],
                password=values["password"] or None,
                phone=values["phone"],
                address=values["address"],
                designation=values["designation"],
                roles=values["roles"],
                provider=form.provider_for_new_user(),
                created_by=request.user,
            )
            added = _("%(name)s is added as %(roles)s.") % {
                "name": user.name,
                "roles": ", ".join(_role_labels(user)),
            }
            if not user.has_usable_password():
                added += " " + gettext("They cannot sign in until an administrator sets a password.")
            messages.success(request, added)
            return redirect("user-detail", user_id=user.pk)
    return render(request, "accounts/manage/user_new.html", {"form": form}, status=_refused_status(form))


@require_http_methods(["GET", "POST"])
@page("accounts.view_user")
def user_detail(request: HttpRequest, user_id: int) -> HttpResponse:
    person = user_get_for(user=request.user, user_id=user_id)
    may_change = _may(request, "accounts.change_user")
    details = UserDetailsForm(
        initial={field: getattr(person, field) for field in UserDetailsForm.base_fields}
    )
    roles = UserRolesForm(initial={"roles": person.role_names})
    if request.method == "POST":
        if not may_change:
            raise PermissionDenied
        if request.POST.get("part") == "roles":
            roles = UserRolesForm(request.POST, initial=roles.initial)
            if roles.is_valid():
                with refusals_into(roles, fields=ROLE_FIELDS):
                    account_services.user_roles_set(
                        user=person, roles=roles.cleaned_data["roles"], changed_by=request.user
                    )
                    messages.success(request, _("The roles of %(name)s are saved.") % {"name": person.name})
                    return redirect("user-detail", user_id=person.pk)
        else:
            details = UserDetailsForm(request.POST, initial=details.initial)
            if details.is_valid():
                with refusals_into(details, fields=USER_FIELDS):
                    changes = {field: details.cleaned_data[field] for field in details.changed_data}
                    if changes:
                        account_services.user_update(user=person, updated_by=request.user, **changes)
                    messages.success(request, _("The details of %(name)s are saved.") % {"name": person.name})
                    return redirect("user-detail", user_id=person.pk)
    return render(
        request,
        "accounts/manage/user_detail.html",
        {
            "person": person,
            "person_roles": _role_labels(person),
            "details": details,
            "roles_form": roles,
            "may_change": may_change,
        },
        status=_refused_status(details, roles),
    )


# --- providers -------------------------------------------------------------------------------------


class ProviderSettingsForm(forms.Form):
    """What `provider_update` may change; the code is printed in every invoice number and stays."""

    name = forms.CharField(max_length=200)
    city = forms.CharField(max_length=100)
    email = forms.EmailField(label=_("Billing email"))
    phone = forms.CharField(label=_("Phone number"), max_length=30, required=False)
    currency = forms.RegexField(
        regex=r"^[A-Za-z]{3}$",
        max_length=3,
        initial="PKR",
        help_text=_("Three letters (ISO 4217), e.g. PKR. Every amount of this provider is in it."),
        error_messages={"invalid": _("Use the three-letter currency code, e.g. PKR.")},
    )
    due_days = forms.IntegerField(
        label=_("Days to pay"),
        min_value=1,
        max_value=90,
        initial=10,
        help_text=_("Days from a bill's issue to its due date (1 to 90)."),
    )
    late_surcharge_percent = forms.DecimalField(
        label=_("Late surcharge (%)"),
        max_digits=5,
        decimal_places=2,
        min_value=Decimal("0"),
        max_value=Decimal("100"),
        initial=Decimal("10.00"),
        help_text=_("Percent of the current charges added once when a bill passes its due date unpaid."),
    )
    reconnection_fee = forms.DecimalField(
        label=_("Reconnection fee"),
        max_digits=14,
        decimal_places=2,
        min_value=Decimal("0"),
        initial=Decimal("0.00"),
        required=False,
        help_text=_(
            "Charged on the next bill of a connection reconnected after a disconnection; empty or 0 for none."
        ),
    )
    is_active = forms.BooleanField(
        label=_("Active"), required=False, initial=True, help_text=_("Inactive providers are not billed.")
    )
    estimate_missing_readings = forms.BooleanField(
        label=_("Estimate a month without a reading"),
        required=False,
        initial=True,
        help_text=_("Bill it on the connection's past usage; the next actual reading trues the estimate up."),
    )

    def clean_currency(self) -> str:
        return self.cleaned_data["currency"].upper()

    def clean_reconnection_fee(self) -> Decimal:
        return self.cleaned_data["reconnection_fee"] or Decimal("0.00")


class ProviderCreateForm(ProviderSettingsForm):
    code = forms.RegexField(
        regex=r"^[A-Za-z][A-Za-z0-9]{1,11}$",
        max_length=12,
        help_text="2 to 12 letters or digits, starting with a letter; printed in invoice numbers. "
        "It cannot be changed later.",
        error_messages={"invalid": _("Use 2 to 12 letters or digits, starting with a letter, e.g. DISCO.")},
    )
    kwh_price = forms.DecimalField(
        label=_("First price per kWh"),
        max_digits=14,
        decimal_places=4,
        min_value=Decimal("0"),
        required=False,
        help_text=_(
            "Optional: one flat price for every connection from today. Leave empty to set prices later."
        ),
        error_messages={"min_value": "A price cannot be negative."},
    )

    field_order = ["code", "name"]


@require_http_methods(["GET", "POST"])
@page("providers.change_provider")
def provider_list(request: HttpRequest) -> HttpResponse:
    may_add = _may(request, "providers.add_provider")
    form = ProviderCreateForm(request.POST or None) if may_add else None
    if request.method == "POST":
        if form is None:
            raise PermissionDenied
        if form.is_valid():
            values = form.cleaned_data
            with refusals_into(form, fields=PROVIDER_FIELDS):
                provider = provider_services.provider_onboard(
                    **{
                        field: values[field]
                        for field in ProviderCreateForm.base_fields
                        if field != "kwh_price"
                    },
                    kwh_price=values["kwh_price"],
                    created_by=request.user,
                )
                messages.success(request, _("%(provider)s is set up.") % {"provider": provider})
                return redirect("provider-detail", provider_id=provider.pk)
    return render(
        request,
        "accounts/manage/provider_list.html",
        {"providers": provider_list_for(user=request.user), "form": form},
        status=_refused_status(form),
    )


@require_http_methods(["GET", "POST"])
@page("providers.change_provider")
def provider_detail(request: HttpRequest, provider_id: int) -> HttpResponse:
    provider = provider_get_for(user=request.user, provider_id=provider_id)
    initial = {field: getattr(provider, field) for field in ProviderSettingsForm.base_fields}
    form = ProviderSettingsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        with refusals_into(form, fields=PROVIDER_FIELDS):
            changes = {field: form.cleaned_data[field] for field in form.changed_data}
            if changes:
                provider_services.provider_update(provider=provider, **changes)
            messages.success(request, _("The settings of %(name)s are saved.") % {"name": provider.name})
            return redirect("provider-detail", provider_id=provider.pk)
    return render(
        request,
        "accounts/manage/provider_detail.html",
        {
            "provider": provider,
            "form": form,
            "users_url": f"{reverse('manage-users')}?provider={provider.pk}",
        },
        status=_refused_status(form),
    )


# --- prices ----------------------------------------------------------------------------------------


def _exact(value: Decimal) -> str:
    """0.0900 -> 0.09: a rate or band as it was set."""
    return f"{value.normalize():f}"


class TariffRowChoice(forms.ModelChoiceField):
    def label_from_instance(self, row: TariffRow) -> str:
        kind = f"type {row.connection_type.code}" if row.connection_type_id else "all types"
        band = f"{_exact(row.band_low)} to {'open' if row.band_high is None else _exact(row.band_high)}"
        name = f"{row.code}: " if row.code else ""
        return f"{name}{kind}, {row.get_bucket_display().lower()}, slab {row.slab} ({band}) at {_exact(row.rate)}"


class PriceChangeForm(forms.Form):
    """One rate of the schedule, its new price and the day it starts.

    A change replaces every rate of the connection type from that day (`tariff_change`), so the other
    rates of the type are carried over unchanged: those in force that day, or, when none are, those
    the chosen rate belongs to.
    """

    row = TariffRowChoice(
        label=_("Rate to change"),
        queryset=TariffRow.objects.none(),
        help_text=_("The other rates of its connection type are kept as they are."),
    )
    rate = forms.DecimalField(
        label=_("New price per kWh"),
        max_digits=14,
        decimal_places=4,
        min_value=Decimal("0"),
        error_messages={"min_value": "A price cannot be negative."},
    )
    valid_from = forms.DateField(
        label=_("Effective from"),
        initial=timezone.localdate,
        widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}),
        help_text=_(
            "Today or later, at most three years ahead: bills already issued keep the price they used."
        ),
    )

    def __init__(self, *args: Any, provider: Provider, shown: Any, **kwargs: Any) -> None:
        """`shown`: the rows offered; any row of the provider is accepted (the page may show another day)."""
        super().__init__(*args, **kwargs)
        self.provider = provider
        self.siblings: list[TariffRow] = []  # the rates of the chosen one's type, set by clean()
        choice = self.fields["row"]
        choice.queryset = schedule_rows(TariffRow, provider=provider)
        choice.choices = [
            ("", "Choose a rate"),
            *((row.pk, choice.label_from_instance(row)) for row in shown),
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        row, valid_from = cleaned.get("row"), cleaned.get("valid_from")
        if row is None or valid_from is None:
            return cleaned
        in_force = list(self._of_type(row).in_force_on(valid_from))
        if in_force and row not in in_force:
            # Carrying over another period's rates would undo the change already made for that day.
            self.add_error(
                "valid_from",
                gettext(
                    "From %(date)s this connection type has other rates (set from %(since)s). Show the "
                    "schedule on %(date)s and choose the rate there."
                )
                % {"date": valid_from, "since": in_force[0].valid_from},
            )
        else:
            self.siblings = in_force or list(self._of_type(row).in_force_on(row.valid_from))
        return cleaned

    def _of_type(self, row: TariffRow) -> Any:
        return schedule_rows(TariffRow, provider=self.provider).filter(connection_type=row.connection_type)

    def tariff_specs(self) -> list[provider_services.TariffSpec]:
        """The rates of the type from the new day: the chosen one at its new price, the others as they are."""
        chosen, rate = self.cleaned_data["row"], self.cleaned_data["rate"]
        names = [field.name for field in fields(provider_services.TariffSpec)]
        specs = []
        for row in self.siblings:
            spec = provider_services.TariffSpec(**{name: getattr(row, name) for name in names})
            specs.append(replace(spec, rate=rate) if row.pk == chosen.pk else spec)
        return specs


class ScheduleDayForm(forms.Form):
    on = forms.DateField(
        label=_("Schedule in force on"),
        required=False,
        widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}),
        error_messages={"invalid": _("Use a date like 2024-07-31.")},
    )

    def day(self) -> date:
        return (self.is_valid() and self.cleaned_data["on"]) or timezone.localdate()


BAND_UNITS = {SlabMode.AVERAGE: "kWh per hour (average)", SlabMode.GRADUATED: "kWh in the month"}


def _dated(row: Any, **shown: Any) -> dict[str, Any]:
    """A schedule row as the page lists it: its last day in force (`valid_to` is the first day after)."""
    return {"row": row, "last_day": row.valid_to and row.valid_to - timedelta(days=1), **shown}


@require_http_methods(["GET", "POST"])
@page("providers.change_tariffrow")
def provider_prices(request: HttpRequest, provider_id: int) -> HttpResponse:
    provider = provider_get_for(user=request.user, provider_id=provider_id)
    day_form = ScheduleDayForm(request.GET or None)
    day = day_form.day()
    tariffs = list(schedule_rows(TariffRow, provider=provider, on=day))
    last_day = schedule_last_day(provider=provider) if not tariffs else None
    form = PriceChangeForm(request.POST or None, provider=provider, shown=tariffs)
    if request.method == "POST" and form.is_valid():
        chosen = form.cleaned_data["row"]
        with refusals_into(form, fields=PRICE_FIELDS):
            opened = provider_services.tariff_change(
                provider=provider,
                connection_type=chosen.connection_type,
                valid_from=form.cleaned_data["valid_from"],
                rows=form.tariff_specs(),
                changed_by=request.user,
            )
            starts = opened[0].valid_from
            messages.success(
                request,
                f"The new price, {_exact(form.cleaned_data['rate'])} per kWh, is in force from {starts}.",
            )
            # The schedule as it is from the change on, where the new price shows.
            return redirect(f"{reverse('provider-prices', args=[provider.pk])}?on={starts.isoformat()}")
    taxes = schedule_rows(TaxRule, provider=provider, on=day)
    return render(
        request,
        "accounts/manage/provider_prices.html",
        {
            "provider": provider,
            "day": day,
            "is_today": day == timezone.localdate(),
            "last_day": last_day,  # every rate has ended: offer the schedule's last day
            "day_form": day_form,
            "connection_types": connection_types_of(provider=provider),
            "tariffs": [_dated(row, band_unit=BAND_UNITS.get(row.mode, "")) for row in tariffs],
            "taxes": [_dated(tax, percent=tax.rate * 100) for tax in taxes],
            "fixed_charges": [_dated(row) for row in schedule_rows(FixedCharge, provider=provider, on=day)],
            "subsidies": [
                _dated(row, by_usage=row.basis == SubsidyBasis.USAGE)
                for row in schedule_rows(Subsidy, provider=provider, on=day)
            ],
            "form": form,
        },
        status=_refused_status(form),
    )
