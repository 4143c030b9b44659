"""Which role may do what: the one place that says so.

A permission is a Django permission name (`app.codename`). `POLICY` maps each role to the
permissions it grants and how far each reaches:

- `PROVIDER`: every row of the caller's provider. Selectors narrow the rows to that provider, so a
  row of another provider is never found (404).
- `OWN`: only rows the user holds a django-guardian object permission on (granted when they created
  the row, e.g. an invoice creator's own invoices).
- `PLATFORM`: only a platform user (one with no provider), e.g. creating a provider.

API requests act in exactly one role, the one their token carries. Django admin (a session with no
selected role) acts with every role the user holds. Views name permissions, never roles.
"""

from enum import Enum
from typing import Any

from django.contrib.auth.backends import BaseBackend
from guardian.core import ObjectPermissionChecker
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.roles import Role


class Reach(Enum):
    PROVIDER = "provider"
    OWN = "own"
    PLATFORM = "platform"


PROVIDER, OWN, PLATFORM = Reach.PROVIDER, Reach.OWN, Reach.PLATFORM

SCHEDULE_MODELS = ("connectiontype", "authority", "tariffrow", "taxrule", "fixedcharge", "subsidy")
# Reading the price schedule and its history (the rows in force on any day, who changed what).
SCHEDULE_VIEW = {f"providers.view_{model}": PROVIDER for model in SCHEDULE_MODELS}
# Changing it: adding rows, price changes (change_tariffrow) and closing rows, always through services.
SCHEDULE_EDIT = {
    f"providers.{action}_{model}": PROVIDER for action in ("add", "change") for model in SCHEDULE_MODELS
}

# Connections and their readings; previewing a bill of a connection reads it (view_serviceconnection).
BILLING_VIEW = {
    "billing.view_customer": PROVIDER,
    "billing.view_serviceconnection": PROVIDER,
    "billing.view_meterreading": PROVIDER,
}
READINGS_ADD = {"billing.add_meterreading": PROVIDER}
# What a month would cost, for hypothetical usage, on the caller's provider's prices in force today.
CALCULATOR = {"billing.use_calculator": PROVIDER}

POLICY: dict[Role, dict[str, Reach]] = {
    Role.ADMIN: {
        "accounts.view_user": PROVIDER,
        "accounts.add_user": PROVIDER,
        "accounts.change_user": PROVIDER,
        "accounts.view_userrole": PROVIDER,
        "providers.view_provider": PROVIDER,
        "providers.change_provider": PROVIDER,
        "providers.add_provider": PLATFORM,
        **SCHEDULE_VIEW,
        **SCHEDULE_EDIT,
        **BILLING_VIEW,
        **READINGS_ADD,
        **CALCULATOR,
    },
    Role.SUPER_CREATOR: {
        "providers.view_provider": PROVIDER,
        **SCHEDULE_VIEW,
        **BILLING_VIEW,
        **READINGS_ADD,
        **CALCULATOR,
    },
    Role.INVOICE_CREATOR: {
        "providers.view_provider": PROVIDER,
        **SCHEDULE_VIEW,
        **BILLING_VIEW,
        **READINGS_ADD,
        **CALCULATOR,
    },
    Role.AUDITOR: {"providers.view_provider": PROVIDER, **SCHEDULE_VIEW, **BILLING_VIEW, **CALCULATOR},
    Role.CUSTOMER: {**CALCULATOR},
}


def role_allows(role: str | None, perm: str, *, user: Any, obj: Any = None) -> bool:
    """Does acting in `role` let `user` use `perm`: on `obj`, or on some rows when no `obj` is given?"""
    if not role or not (user and user.is_active):
        return False
    reach = POLICY.get(Role(role), {}).get(perm)
    if reach is PROVIDER:
        return True
    if reach is PLATFORM:
        return user.provider_id is None
    if reach is OWN:
        return obj is None or ObjectPermissionChecker(user).has_perm(perm.split(".", 1)[1], obj)
    return False


def acting_roles(user: Any) -> list[str]:
    """The role of this request, or every held role where none was selected (Django admin)."""
    active = getattr(user, "active_role", None)
    if active:
        return [active]
    # Cached on the user object for its request, as Django's ModelBackend caches permissions.
    if not hasattr(user, "_held_roles_cache"):
        user._held_roles_cache = user.role_names
    return user._held_roles_cache


class RolePermissionBackend(BaseBackend):
    """Answers `user.has_perm()` from `POLICY`, for Django admin and templates."""

    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        if not (user_obj.is_authenticated and user_obj.is_active):
            return False
        return any(role_allows(role, perm, user=user_obj, obj=obj) for role in acting_roles(user_obj))

    def has_module_perms(self, user_obj: Any, app_label: str) -> bool:
        if not (user_obj.is_authenticated and user_obj.is_active):
            return False
        return any(
            perm.startswith(f"{app_label}.") and role_allows(role, perm, user=user_obj)
            for role in acting_roles(user_obj)
            for perm in POLICY.get(Role(role), {})
        )


class Allowed(BasePermission):
    """DRF permission for one policy permission, in the role the request's token selected.

    `permission_classes = [Allowed.to("accounts.add_user")]`
    """

    perm = ""
    message = "Your current role may not do this. Switch to a role that may, or ask an administrator."

    @classmethod
    def to(cls, perm: str) -> type["Allowed"]:
        return type(f"Allowed[{perm}]", (cls,), {"perm": perm})

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated) and role_allows(
            getattr(user, "active_role", None), self.perm, user=user
        )

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        return role_allows(getattr(request.user, "active_role", None), self.perm, user=request.user, obj=obj)
