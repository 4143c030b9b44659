"""Which role may do what: the one place that says so.

A permission is a Django permission name (`app.codename`). `POLICY` maps each role to the
permissions it grants and how far each reaches:

- `PROVIDER`: every row of the caller's provider. Selectors narrow the rows to that provider, so a
  row of another provider is never found (404).
- `OWN`: only the user's own rows: those `OWNERSHIP` says are theirs by the rows' own columns (the
  invoices they issued by hand, the payments they received), and any row they hold a django-guardian
  object permission on (a grant made explicitly, e.g. in Django admin). Ownership is read from the row
  itself: no permission table is queried for it, neither for one row (in Python) nor for a list (a
  condition of the list's own query).
- `PLATFORM`: only a platform user (one with no provider), e.g. creating a provider.
- `SELF`: only rows of the user's own customer account (a customer's bills and payments, their
  connections and contact details).

Officers: "officer" is not a role of its own. An officer is whoever acts in a role holding
`invoicing.add_adjustment` (Super_Creator and Admin): they authorise bill adjustments, their name
and designation taken from their account, and reverse payments (`invoicing.add_paymentreversal`). Payments are posted by Super_Creator and Admin on any
bill of their provider, and by an Invoice_Creator on the bills they created.

API requests act in exactly one role, the one their token carries. Django admin (a session with no
selected role) acts with every role the user holds. Views name permissions, never roles.
"""

from dataclasses import dataclass
from enum import Enum
from typing import Any

from django.contrib.auth.backends import BaseBackend
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db.models import BigIntegerField, Q, QuerySet
from django.db.models.functions import Cast
from django.utils.translation import gettext_lazy
from guardian.core import ObjectPermissionChecker
from guardian.models import UserObjectPermission
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.roles import Role
from providers.tenancy import scope_to_provider


class Reach(Enum):
    PROVIDER = "provider"
    OWN = "own"
    PLATFORM = "platform"
    SELF = "self"


PROVIDER, OWN, PLATFORM, SELF = Reach.PROVIDER, Reach.OWN, Reach.PLATFORM, Reach.SELF

# With the regulator's retroactive price orders: entered (add) and confirmed (change) by an administrator.
SCHEDULE_MODELS = (
    "connectiontype",
    "authority",
    "tariffrow",
    "taxrule",
    "fixedcharge",
    "subsidy",
    "priceorder",
)
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
    "billing.view_connectionevent": PROVIDER,  # a connection's lifecycle history
    "billing.view_connectiontypechange": PROVIDER,  # and its changes of type
    "billing.view_meterexchange": PROVIDER,
}
READINGS_ADD = {"billing.add_meterreading": PROVIDER}
# Opening accounts at the counter: a clerk (Invoice_Creator), a super creator and an administrator add
# customers and connections, connect a new connection with its first reading (add_meterreading), and
# record a customer's declared monthly income (who recorded it is kept with it). Changing a customer's
# or a connection's details afterwards is for the super creator and the administrator: what a clerk
# typed wrongly is corrected by a second person. The auditor only reads; a customer changes their own
# contact details in the portal, never through these.
ACCOUNTS_OPEN = {
    "billing.add_customer": PROVIDER,
    "billing.add_serviceconnection": PROVIDER,
    "billing.declare_income": PROVIDER,
}
ACCOUNTS_CHANGE = {
    "billing.change_customer": PROVIDER,
    "billing.change_serviceconnection": PROVIDER,
}
# Recording a meter exchange (the old meter's final reading and the new meter's first): whoever may
# add readings.
METER_EXCHANGE_ADD = {"billing.add_meterexchange": PROVIDER}
# A connection's life, step by step. The counter's routine steps, taken at the customer's request
# (connect with the first reading, disconnect on request, reconnect, a move-out and move-in with its
# final bill), are the clerks' (Invoice_Creator) as well as the officers'. The steps that decide
# against a customer or change how they are priced are the officers' (Super_Creator, Admin) alone:
# a disconnection order for non-payment, closing a connection for good, a change of connection type.
# Auditors read the history (view_connectionevent) and take no step; customers take none.
LIFECYCLE_ROUTINE = {
    "billing.connect_connection": PROVIDER,
    "billing.disconnect_connection": PROVIDER,
    "billing.reconnect_connection": PROVIDER,
    "billing.move_connection": PROVIDER,
}
LIFECYCLE_OFFICER = {
    "billing.order_disconnection": PROVIDER,
    "billing.close_connection": PROVIDER,
    "billing.change_connection_type": PROVIDER,
}
# What a month would cost, for hypothetical usage, on the caller's provider's prices in force today.
CALCULATOR = {"billing.use_calculator": PROVIDER}

# Invoices, payments (and their reversals), adjustments and billing runs of the provider, read-only.
INVOICING_VIEW = {
    "invoicing.view_invoice": PROVIDER,
    "invoicing.view_payment": PROVIDER,
    "invoicing.view_adjustment": PROVIDER,
    "invoicing.view_paymentreversal": PROVIDER,
    "invoicing.view_billingrun": PROVIDER,
    "invoicing.view_paymentmethod": PROVIDER,
    # Collections: the provider's dunning levels, each connection's debts, steps and payment plans.
    "invoicing.view_dunninglevel": PROVIDER,
    "invoicing.view_dunningstep": PROVIDER,
    "invoicing.view_paymentplan": PROVIDER,
    "invoicing.view_creditnote": PROVIDER,
    "invoicing.view_customercredit": PROVIDER,
    "invoicing.view_creditrefund": PROVIDER,
    "invoicing.view_disconnectionorder": PROVIDER,
}
# The books (the journal and the tax report): finance reads them as the super creator, the auditor or
# the administrator.
BOOKS_VIEW = {"invoicing.view_books": PROVIDER}
# Issuing and changing any invoice of the provider, posting payments, authorising adjustments and
# reversing payments (the officers' permissions) and starting billing runs.
INVOICING_MANAGE = {
    "invoicing.add_invoice": PROVIDER,
    "invoicing.change_invoice": PROVIDER,
    "invoicing.collect_payment": PROVIDER,
    "invoicing.add_payment": PROVIDER,
    "invoicing.add_adjustment": PROVIDER,
    "invoicing.add_paymentreversal": PROVIDER,
    "invoicing.add_billingrun": PROVIDER,
    # Spreading a connection's arrears over instalments: an officer's decision.
    "invoicing.add_paymentplan": PROVIDER,
    # An officer's credit note on any bill (a clerk credits a bill only by cancelling or re-rating
    # their own: change_invoice), and refunds of a customer's credit balance.
    "invoicing.add_creditnote": PROVIDER,
    "invoicing.add_creditrefund": PROVIDER,
}

# Disconnection orders the dunning job issued wait for the field staff (clerks and officers alike), who
# cut the supply on site with the meter's reading; the auditor reads the list.
FIELD_ORDERS = {
    "invoicing.view_disconnectionorder": PROVIDER,
    "invoicing.carry_out_disconnectionorder": PROVIDER,
}

# Bank payment files: whoever may post payments uploads them; each row is posted in the uploader's role,
# on the bills that role may take payments on (a clerk's: the bills they issued). The files are read
# provider-wide by officers and auditors, a clerk reads their own. The file layouts (which column holds
# what) are the administrators' to set.
PAYMENT_FILES_MANAGE = {
    "invoicing.add_paymentfile": PROVIDER,
    "invoicing.view_paymentfile": PROVIDER,
    "invoicing.view_paymentfileformat": PROVIDER,
}

# E-mails: the staff see what was sent to whom and how it went; those who look after customers invite
# them to the portal (a login, and a link to set its password).
MESSAGES_VIEW = {"accounts.view_message": PROVIDER}
INVITE = {"accounts.invite_customer": PROVIDER}
# A customer's self-service: their own contact details, language and notification choices, their
# connections (billed or not) and readings of their meters. Named apart from the staff's permissions on
# the same rows, so no staff view, checking those, can ever admit a customer.
SELF_SERVICE = {
    "billing.change_own_customer": SELF,
    "billing.view_own_serviceconnection": SELF,
    "billing.add_own_meterreading": SELF,
}

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
        **ACCOUNTS_OPEN,
        **ACCOUNTS_CHANGE,
        **LIFECYCLE_ROUTINE,
        **FIELD_ORDERS,
        **LIFECYCLE_OFFICER,
        **METER_EXCHANGE_ADD,
        **CALCULATOR,
        **INVOICING_VIEW,
        **INVOICING_MANAGE,
        **BOOKS_VIEW,
        **PAYMENT_FILES_MANAGE,
        "invoicing.add_paymentfileformat": PROVIDER,
        "invoicing.change_paymentfileformat": PROVIDER,
        "auditing.view_auditlog": PROVIDER,
        "auditing.view_aiquery": PROVIDER,
        **MESSAGES_VIEW,
        **INVITE,
        # When customers are reminded of a bill due soon.
        "accounts.view_notificationsettings": PROVIDER,
        "accounts.add_notificationsettings": PROVIDER,
        "accounts.change_notificationsettings": PROVIDER,
        # The provider's dunning levels: when overdue customers are reminded, warned and disconnected.
        "invoicing.add_dunninglevel": PROVIDER,
        "invoicing.change_dunninglevel": PROVIDER,
        # The payment methods are one list for every provider.
        "invoicing.add_paymentmethod": PLATFORM,
        "invoicing.change_paymentmethod": PLATFORM,
    },
    Role.SUPER_CREATOR: {
        "providers.view_provider": PROVIDER,
        **SCHEDULE_VIEW,
        **BILLING_VIEW,
        **READINGS_ADD,
        **ACCOUNTS_OPEN,
        **ACCOUNTS_CHANGE,
        **LIFECYCLE_ROUTINE,
        **FIELD_ORDERS,
        **LIFECYCLE_OFFICER,
        **METER_EXCHANGE_ADD,
        **CALCULATOR,
        **INVOICING_VIEW,
        **INVOICING_MANAGE,
        **BOOKS_VIEW,
        **PAYMENT_FILES_MANAGE,
        **MESSAGES_VIEW,
        **INVITE,
    },
    Role.INVOICE_CREATOR: {
        "providers.view_provider": PROVIDER,
        **SCHEDULE_VIEW,
        **BILLING_VIEW,
        **READINGS_ADD,
        **ACCOUNTS_OPEN,
        **LIFECYCLE_ROUTINE,
        **FIELD_ORDERS,
        **METER_EXCHANGE_ADD,
        **CALCULATOR,
        "invoicing.add_invoice": PROVIDER,
        "invoicing.view_invoice": OWN,
        "invoicing.change_invoice": OWN,
        "invoicing.collect_payment": OWN,  # on the invoices they created
        "invoicing.view_payment": OWN,
        "invoicing.view_creditnote": OWN,  # those they issued, cancelling or re-rating their bills
        "invoicing.view_paymentmethod": PROVIDER,
        "invoicing.add_paymentfile": PROVIDER,  # its rows post only where collect_payment reaches
        "invoicing.view_paymentfile": OWN,
        "invoicing.view_paymentfileformat": PROVIDER,
        **MESSAGES_VIEW,
        **INVITE,
    },
    Role.AUDITOR: {
        "providers.view_provider": PROVIDER,
        **SCHEDULE_VIEW,
        **BILLING_VIEW,
        **CALCULATOR,
        **INVOICING_VIEW,
        **BOOKS_VIEW,
        "invoicing.view_paymentfile": PROVIDER,
        "auditing.view_auditlog": PROVIDER,
        "auditing.view_aiquery": PROVIDER,
        # Plain-language questions answered as read-only SQL over this provider's rows.
        "auditing.add_aiquery": PROVIDER,
        **MESSAGES_VIEW,
    },
    Role.CUSTOMER: {
        **CALCULATOR,
        "invoicing.view_invoice": SELF,
        "invoicing.view_payment": SELF,
        "invoicing.view_adjustment": SELF,
        "invoicing.view_creditnote": SELF,
        "invoicing.view_customercredit": SELF,
        "invoicing.view_creditrefund": SELF,
        **SELF_SERVICE,
    },
}


@dataclass(frozen=True)
class Ownership:
    """Whose a row is, by its own columns: the user its `owner` field names, unless `made_by` is set
    (a row a job made is nobody's own, whoever started the job)."""

    owner: str
    made_by: str | None = None

    def owns(self, user: Any, obj: Any) -> bool:
        return getattr(obj, f"{self.owner}_id") == user.pk and (
            self.made_by is None or getattr(obj, f"{self.made_by}_id") is None
        )

    def condition(self, user: Any) -> Q:
        """The same rule as a condition of a query."""
        mine = Q(**{f"{self.owner}_id": user.pk})
        return mine & Q(**{f"{self.made_by}__isnull": True}) if self.made_by else mine


# The `OWN` rows of each model: an invoice is its creator's when they issued it themselves (one by one,
# or a final bill), not when a billing run they started billed it; a payment is the collector's who
# received it. (These are the rows the services once granted object permissions on, one by one:
# tests/accounts/test_ownership.py holds the rule to those grants.)
OWNERSHIP = {
    "invoicing.invoice": Ownership(owner="created_by", made_by="billing_run"),
    "invoicing.payment": Ownership(owner="received_by"),
    "invoicing.creditnote": Ownership(owner="issued_by"),
    "invoicing.paymentfile": Ownership(owner="uploaded_by"),
}


def reach_of(role: str | None, perm: str) -> Reach | None:
    return POLICY.get(Role(role), {}).get(perm) if role else None


def role_allows(role: str | None, perm: str, *, user: Any, obj: Any = None) -> bool:
    """Does acting in `role` let `user` use `perm`: on `obj`, or on some rows when no `obj` is given?"""
    if not role or not (user and user.is_active):
        return False
    reach = reach_of(role, perm)
    if reach is PROVIDER:
        return True
    if reach is PLATFORM:
        return user.provider_id is None
    if reach is OWN:
        return (
            obj is None
            or owns(user, obj)
            or ObjectPermissionChecker(user).has_perm(perm.split(".", 1)[1], obj)
        )
    if reach is SELF:
        return obj is None or _account_holder_id(obj) == user.pk
    return False


def owns(user: Any, obj: Any) -> bool:
    """Is `obj` the user's own by its columns (`OWNERSHIP`)? Asks no database."""
    ownership = OWNERSHIP.get(obj._meta.label_lower)
    return ownership is not None and ownership.owns(user, obj)


def _own_rows(queryset: QuerySet, *, user: Any, perm: str) -> QuerySet:
    """The rows of `queryset` the user owns, or holds `perm` on by an explicit object permission: one
    condition of the query itself (the grants a subquery of it)."""
    meta = queryset.model._meta
    ownership = OWNERSHIP.get(meta.label_lower)
    granted = (
        UserObjectPermission.objects.filter(
            user_id=user.pk,
            permission__codename=perm.split(".", 1)[1],
            content_type__app_label=meta.app_label,
            content_type__model=meta.model_name,
        )
        .annotate(object_id=Cast("object_pk", BigIntegerField()))
        .values("object_id")
    )
    explicit = Q(pk__in=granted)
    return queryset.filter(ownership.condition(user) | explicit if ownership else explicit)


def _account_holder_id(obj: Any) -> int | None:
    """The user behind the customer account a row belongs to: the account itself, a connection or a
    bill of it, or a payment or reading on one of those."""
    row = getattr(obj, "invoice", None) or obj  # a payment or an adjustment: the bill's customer
    if row._meta.label_lower == "billing.customer":
        return row.user_id
    if hasattr(row, "customer_id"):  # a bill, a connection
        return row.customer.user_id
    return row.connection.customer.user_id  # a reading


def _reach_in_scope(user: Any, perm: str) -> Reach | None:
    """How far `perm` reaches for the role this request acts in; None: no row at all. `PLATFORM` and
    `PROVIDER` both come back as `PROVIDER`: every row the provider scope leaves."""
    if not (user and user.is_authenticated and user.is_active):
        return None
    reach = reach_of(getattr(user, "active_role", None), perm)
    if reach is PROVIDER or (reach is PLATFORM and user.provider_id is None):
        return PROVIDER
    return reach if reach in (OWN, SELF) else None


def scope_to_reach(queryset: QuerySet, *, user: Any, perm: str, account_field: str) -> QuerySet:
    """The rows of `queryset` that `perm` reaches for the role this request acts in.

    `account_field` leads from a row to its customer's user (`customer__user`): the `SELF` reach.
    Rows outside the reach are not found (404), as rows of another provider are.
    """
    reach = _reach_in_scope(user, perm)
    if reach is None:
        return queryset.none()
    scoped = scope_to_provider(queryset, user)
    if reach is OWN:
        return _own_rows(scoped, user=user, perm=perm)
    if reach is SELF:
        return scoped.filter(**{account_field: user.pk})
    return scoped


def reach_condition(*, user: Any, perm: str, model: Any, alias: str, account: str) -> tuple[str, list] | None:
    """`scope_to_reach` as a SQL condition on the row `alias` of `model`, for reads written in SQL (a
    hot path that builds its answer in the database). `account` is the SQL of the row's customer's user
    id. None: nothing is reachable (a 404 without asking the database). The tests hold it to
    `scope_to_reach` for every role."""
    reach = _reach_in_scope(user, perm)
    if reach is None:
        return None
    terms, params = [], []
    if user.provider_id is not None:
        terms.append(f"{alias}.provider_id = %s")
        params.append(user.provider_id)
    if reach is OWN:
        # `_own_rows` in SQL: the row's own columns (`OWNERSHIP`), or an explicit grant to the user,
        # asked of this one row through guardian's (object, permission) index.
        mine, meta = [], model._meta
        ownership = OWNERSHIP.get(meta.label_lower)
        if ownership is not None:
            owner = f"{alias}.{meta.get_field(ownership.owner).column} = %s"
            made_by = ownership.made_by and f"{alias}.{meta.get_field(ownership.made_by).column} IS NULL"
            mine.append(f"({owner} AND {made_by})" if made_by else owner)
            params.append(user.pk)
        mine.append(
            f"""EXISTS (SELECT 1 FROM {UserObjectPermission._meta.db_table} g
                JOIN {Permission._meta.db_table} p ON p.id = g.permission_id
                WHERE g.object_pk = CAST({alias}.id AS varchar) AND g.user_id = %s
                    AND p.content_type_id = %s AND p.codename = %s)"""  # noqa: S608 (model tables; values as parameters)
        )
        params.extend([user.pk, ContentType.objects.get_for_model(model).pk, perm.split(".", 1)[1]])
        terms.append(f"({' OR '.join(mine)})")
    if reach is SELF:
        terms.append(f"{account} = %s")
        params.append(user.pk)
    return " AND ".join(terms) or "TRUE", params


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
    provider_wide = False
    message = gettext_lazy(
        "Your current role may not do this. Switch to a role that may, or ask an administrator."
    )

    @classmethod
    def to(cls, perm: str, *, provider_wide: bool = False) -> type["Allowed"]:
        """`provider_wide`: only roles whose reach is every row of the provider (a provider-wide list)."""
        return type(f"Allowed[{perm}]", (cls,), {"perm": perm, "provider_wide": provider_wide})

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        role = getattr(user, "active_role", None)
        if self.provider_wide and reach_of(role, self.perm) is not PROVIDER:
            return False
        return bool(user and user.is_authenticated) and role_allows(role, self.perm, user=user)

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        return role_allows(getattr(request.user, "active_role", None), self.perm, user=request.user, obj=obj)
