"""The OWN rule read from the rows' own columns (accounts.permissions.OWNERSHIP) answers exactly what the
object permissions the services used to grant answered, for every role and every kind of invoice and
payment: the caller's own, a colleague's, one a billing run the caller started made, another provider's.

The oracle: the grants are written here as the services wrote them until ownership became structural
(the three invoice permissions to whoever issued a bill by hand, `view_payment` to whoever received a
payment; a billing run granted nothing), following which service made each row, not its columns. The
previous answer is guardian's over those grants; the new one is asked with no grant in the database.
"""

from datetime import date
from decimal import Decimal

import pytest
from guardian.core import ObjectPermissionChecker
from guardian.models import UserObjectPermission
from guardian.shortcuts import assign_perm, get_objects_for_user

from accounts.permissions import OWN, reach_of, role_allows, scope_to_reach
from accounts.roles import Role
from invoicing.models import Invoice, Payment, PaymentMethod
from invoicing.selectors import pending_chunks
from invoicing.services import billing_run_chunk_bill, billing_run_start, invoice_issue, payment_post
from providers.tenancy import scope_to_provider
from tests.factories import FlatTariffFactory, UserFactory, billable_connection

pytestmark = pytest.mark.django_db
JANUARY = date(2024, 1, 1)
INVOICE_GRANTS = ("invoicing.view_invoice", "invoicing.change_invoice", "invoicing.collect_payment")
PAYMENT_GRANT = "invoicing.view_payment"
PERMS = {Invoice: INVOICE_GRANTS, Payment: (PAYMENT_GRANT,)}
ACCOUNT_FIELD = {Invoice: "customer__user", Payment: "invoice__customer__user"}


@pytest.fixture
def world(provider, other_provider):
    """`me` (holding every role), a colleague and a stranger of another provider, and the rows each made,
    with the grants the services wrote for them."""
    for each in (provider, other_provider):
        FlatTariffFactory(provider=each, rate=Decimal("32.50"))
    me = UserFactory(provider=provider, roles=list(Role))
    colleague = UserFactory(provider=provider, roles=[Role.INVOICE_CREATOR])
    stranger = UserFactory(provider=other_provider, roles=[Role.INVOICE_CREATOR])
    cash = PaymentMethod.objects.get_or_create(code="bank-counter", defaults={"name": "Bank counter"})[0]
    granted: list[tuple] = []

    def issued_by_hand(connection, by):
        invoice = invoice_issue(connection=connection, period=JANUARY, created_by=by)
        granted.extend((perm, by, invoice) for perm in INVOICE_GRANTS)
        return invoice

    def paid(invoice, by):
        payment, _ = payment_post(invoice=invoice, amount=Decimal("100.00"), method=cash, received_by=by)
        granted.append((PAYMENT_GRANT, by, payment))
        return payment

    invoices = {
        "own": issued_by_hand(billable_connection(provider), me),
        "colleague's": issued_by_hand(billable_connection(provider), colleague),
        "other provider's": issued_by_hand(billable_connection(other_provider), stranger),
    }
    billable_connection(provider)  # billed by the run `me` starts: a run grants nothing
    run, _ = billing_run_start(provider=provider, period=JANUARY, started_by=me)
    for chunk_id in pending_chunks(run):
        billing_run_chunk_bill(chunk_id=chunk_id)
    invoices["run-made"] = Invoice.objects.get(billing_run=run)
    assert invoices["run-made"].created_by == me  # the run's bills name who started it
    payments = {
        "own": paid(invoices["own"], me),
        "colleague's": paid(invoices["colleague's"], colleague),
        "on my bill, a colleague's": paid(invoices["own"], colleague),
        "other provider's": paid(invoices["other provider's"], stranger),
        "on a run-made bill": paid(invoices["run-made"], me),
    }
    return me, {Invoice: invoices, Payment: payments}, granted


def previous_allows(role: Role, perm: str, user, obj) -> bool:
    """accounts.permissions.role_allows as it was: OWN answered by guardian alone."""
    if reach_of(role, perm) is OWN:
        return user.is_active and ObjectPermissionChecker(user).has_perm(perm.split(".", 1)[1], obj)
    return role_allows(role, perm, user=user, obj=obj)


def previous_list(model, role: Role, perm: str, user) -> set[int]:
    """accounts.permissions.scope_to_reach as it was: OWN lists from guardian's query."""
    user.active_role = role
    if reach_of(role, perm) is OWN:
        scoped = scope_to_provider(model.objects.all(), user)
        rows = get_objects_for_user(user, perm, klass=scoped, with_superuser=False, accept_global_perms=False)
    else:
        rows = scope_to_reach(model.objects.all(), user=user, perm=perm, account_field=ACCOUNT_FIELD[model])
    return set(rows.values_list("pk", flat=True))


def answers(me, rows, ask_one, ask_list) -> dict:
    return {
        (role, perm, model.__name__, kind): ask_one(role, perm, me, row)
        for role in Role
        for model, perms in PERMS.items()
        for perm in perms
        for kind, row in rows[model].items()
    } | {
        (role, perm, model.__name__, "list"): ask_list(model, role, perm, me)
        for role in Role
        for model, perms in PERMS.items()
        for perm in perms
    }


def structural_list(model, role: Role, perm: str, user) -> set[int]:
    user.active_role = role
    rows = scope_to_reach(model.objects.all(), user=user, perm=perm, account_field=ACCOUNT_FIELD[model])
    return set(rows.values_list("pk", flat=True))


def structural_allows(role: Role, perm: str, user, obj) -> bool:
    return role_allows(role, perm, user=user, obj=obj)


def test_ownership_by_columns_answers_what_the_granted_object_permissions_answered(world):
    me, rows, granted = world
    assert not UserObjectPermission.objects.exists()  # the services grant nothing now
    for perm, user, obj in granted:
        assign_perm(perm, user, obj)
    me = type(me).objects.get(pk=me.pk)  # no permission cache carried over
    previous = answers(me, rows, previous_allows, previous_list)
    UserObjectPermission.objects.all().delete()
    me = type(me).objects.get(pk=me.pk)

    structural = answers(me, rows, structural_allows, structural_list)

    assert structural == previous
    # The oracle is not vacuous: the invoice creator reaches their own rows and nothing else.
    assert previous[(Role.INVOICE_CREATOR, "invoicing.collect_payment", "Invoice", "list")] == {
        rows[Invoice]["own"].pk
    }
    assert previous[(Role.INVOICE_CREATOR, PAYMENT_GRANT, "Payment", "list")] == {
        rows[Payment]["own"].pk,
        rows[Payment]["on a run-made bill"].pk,
    }


def test_an_object_permission_granted_explicitly_still_reaches_the_row(world):
    me, rows, _ = world
    theirs = rows[Invoice]["colleague's"]
    assign_perm("invoicing.change_invoice", me, theirs)
    me.active_role = Role.INVOICE_CREATOR

    listed = scope_to_reach(Invoice.objects.all(), user=me, perm="invoicing.change_invoice", account_field="")

    assert role_allows(Role.INVOICE_CREATOR, "invoicing.change_invoice", user=me, obj=theirs)
    assert set(listed) == {rows[Invoice]["own"], theirs}
    assert not role_allows(Role.INVOICE_CREATOR, "invoicing.collect_payment", user=me, obj=theirs)
