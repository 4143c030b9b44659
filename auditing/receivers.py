"""Feeds the audit trail from signals: the only way anything reaches it (no domain app imports us).

- Model signals of every audited model record single writes, whoever made them (a service, Django
  admin, a shell): `pre_save` keeps the row as it was, `post_save` records what changed.
- The bulk signals record what `bulk_create`, COPY and `QuerySet.update()` wrote.
- Sign-in events and the accounts app's role events.
Receivers run in the writer's transaction: if the audit row cannot be written, the change rolls back.
"""

from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models import Model
from django.db.models.signals import post_delete, post_save, pre_save

from accounts.signals import password_set, role_removed, role_selected, role_switched
from auditing.services import (
    Entry,
    as_json,
    audit_append,
    audit_created_later,
    entry_for,
    label_of,
    values_of,
)
from billing.signals import audit_batch_closed, rows_bulk_created, rows_bulk_updated

# Not here: accounts.Message. Each e-mail's row is itself the record of what was sent to whom, written by
# the system (never by a person), and a billing run writes one per bill: the trail records what people
# change (a customer's address and choices, a login made by an invitation, a password set).
AUDITED = (
    "accounts.User",
    "accounts.UserRole",
    "accounts.NotificationSettings",
    "providers.Provider",
    "providers.ConnectionType",
    "providers.Authority",
    "providers.TariffRow",
    "providers.TaxRule",
    "providers.FixedCharge",
    "providers.Subsidy",
    "providers.PriceOrder",
    "billing.Customer",
    "billing.ServiceConnection",
    "billing.MeterReading",
    "billing.ConnectionEvent",
    "billing.MeterExchange",
    "billing.ConnectionTypeChange",
    "invoicing.Invoice",
    "invoicing.Payment",
    "invoicing.PaymentAllocation",
    "invoicing.PaymentReversal",
    "invoicing.Adjustment",
    "invoicing.CreditNote",
    "invoicing.CreditNoteLine",
    "invoicing.CustomerCredit",
    "invoicing.CreditEntry",
    "invoicing.CreditRefund",
    "invoicing.PaymentMethod",
    "invoicing.BillingRun",
    "invoicing.PendingCharge",
    "invoicing.DunningLevel",
    "invoicing.DunningCase",
    "invoicing.DunningStep",
    "invoicing.DisconnectionOrder",
    "invoicing.PaymentPlan",
    "invoicing.PaymentInstalment",
    "invoicing.PaymentFileFormat",
    "invoicing.PaymentFile",
)


def audited_models() -> list[type[Model]]:
    return [apps.get_model(label) for label in AUDITED]


def _before(sender: type[Model], instance: Model, raw: bool = False, **_: Any) -> None:
    if raw or instance.pk is None or instance._state.adding:
        instance._audit_before = None
        return
    stored = sender._default_manager.filter(pk=instance.pk).first()
    instance._audit_before = values_of(stored) if stored is not None else None


def _after_save(sender: type[Model], instance: Model, created: bool, raw: bool = False, **_: Any) -> None:
    if raw:
        return
    new = values_of(instance)
    if created:
        audit_append([entry_for("create", instance, new=new)])
        return
    old = getattr(instance, "_audit_before", None) or {}
    changed = {name for name, value in new.items() if old.get(name) != value}
    changed.discard("updated_at")
    if changed:
        audit_append(
            [
                entry_for(
                    "update",
                    instance,
                    old={name: old.get(name) for name in sorted(changed)},
                    new={name: new[name] for name in sorted(changed)},
                )
            ]
        )


def _after_delete(sender: type[Model], instance: Model, **_: Any) -> None:
    audit_append([entry_for("delete", instance, old=values_of(instance))])


def _bulk_created(
    sender: type[Model], rows: list[Model], late: str = "", **_: Any
) -> Callable[[], None] | None:
    if sender._meta.label not in AUDITED:
        return None
    if late:
        return audit_created_later(rows, late)
    audit_append([entry_for("create", row, new=values_of(row)) for row in rows])
    return None


def _bulk_updated(
    sender: type[Model], rows: list[Model], fields: tuple[str, ...], before: dict, **_: Any
) -> None:
    if sender._meta.label in AUDITED:
        audit_append(
            [
                entry_for("update", row, old=as_json(before.get(row.pk, {})), new=values_of(row, fields))
                for row in rows
            ]
        )


def _batch_closed(sender: Any, entries: list[Entry], **_: Any) -> None:
    audit_append(entries)


def _event(action: str, user: Any, *, actor_id: int | None, role: str = "", **details: Any) -> None:
    """An event about `user`, acted by `actor_id` (or, if None, the request's actor)."""
    audit_append(
        [
            Entry(
                action=action,
                provider_id=getattr(user, "provider_id", None),
                object_type="accounts.user",
                object_id=str(user.pk),
                object_repr=label_of(user),
                new_values=details or None,
                actor_id=actor_id,
                actor_role=role,
            )
        ]
    )


def _logged_in(sender: Any, user: Any, **_: Any) -> None:
    roles = user.role_names
    _event("login", user, actor_id=user.pk, role=roles[0] if len(roles) == 1 else "")


def _logged_out(sender: Any, user: Any = None, **_: Any) -> None:
    if user is not None:
        _event("logout", user, actor_id=user.pk)


def _login_failed(sender: Any, credentials: dict, **_: Any) -> None:
    # Django masks the password; the address tried is what an investigation needs.
    audit_append(
        [
            Entry(
                action="login_failed",
                provider_id=None,
                new_values={"email": str(credentials.get("email", ""))[:200]},
            )
        ]
    )


def _role_selected(sender: Any, user: Any, role: str, **_: Any) -> None:
    _event("role_selected", user, actor_id=user.pk, role=role, selectedRole=role)


def _role_switched(sender: Any, user: Any, from_role: str, to_role: str, **_: Any) -> None:
    _event("role_switched", user, actor_id=user.pk, role=to_role, fromRole=from_role, toRole=to_role)


def _password_set(sender: Any, user: Any, **_: Any) -> None:
    # The password is never recorded (not even hashed): only that it was set, through an e-mailed link.
    _event("password_set", user, actor_id=user.pk)


def _role_removed(sender: Any, user: Any, role: str, removed_by: Any = None, **_: Any) -> None:
    _event("role_removed", user, actor_id=getattr(removed_by, "pk", None), removedRole=role)


def connect() -> None:
    for model in audited_models():
        uid = f"auditing.{model._meta.label_lower}"
        pre_save.connect(_before, sender=model, dispatch_uid=f"{uid}.pre_save")
        post_save.connect(_after_save, sender=model, dispatch_uid=f"{uid}.post_save")
        post_delete.connect(_after_delete, sender=model, dispatch_uid=f"{uid}.post_delete")
    rows_bulk_created.connect(_bulk_created, dispatch_uid="auditing.bulk_created")
    rows_bulk_updated.connect(_bulk_updated, dispatch_uid="auditing.bulk_updated")
    audit_batch_closed.connect(_batch_closed, dispatch_uid="auditing.batch_closed")
    user_logged_in.connect(_logged_in, dispatch_uid="auditing.login")
    user_logged_out.connect(_logged_out, dispatch_uid="auditing.logout")
    user_login_failed.connect(_login_failed, dispatch_uid="auditing.login_failed")
    role_selected.connect(_role_selected, dispatch_uid="auditing.role_selected")
    role_switched.connect(_role_switched, dispatch_uid="auditing.role_switched")
    role_removed.connect(_role_removed, dispatch_uid="auditing.role_removed")
    password_set.connect(_password_set, dispatch_uid="auditing.password_set")
