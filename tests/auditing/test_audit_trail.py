"""The audit trail: fed by signals on every path, append-only, hash-chained, rolled back with the change."""

import hashlib
from datetime import date
from decimal import Decimal
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, transaction
from django.db import connection as db

from accounts.roles import Role
from accounts.services import user_create
from auditing.models import AppendOnly, AuditLog
from auditing.services import Entry, audit_append, audit_created_later, audit_verify, values_of
from invoicing import selectors, services
from invoicing.models import Invoice
from tests.factories import CustomerFactory, UserFactory, billable_connection

pytestmark = pytest.mark.django_db


def rows_of(object_type: str, object_id: int | str) -> list[AuditLog]:
    return list(AuditLog.objects.filter(object_type=object_type, object_id=str(object_id)).order_by("id"))


def test_an_invoice_issued_through_the_api_is_recorded_with_actor_role_and_request(
    as_role, creator, connection
):
    response = as_role(creator, Role.INVOICE_CREATOR).post(
        "/api/invoices", {"connectionId": connection.pk, "month": "2024-01"}, format="json"
    )

    (row,) = rows_of("invoicing.invoice", response.json()["invoiceId"])
    assert (row.action, row.actor, row.actor_role, row.provider_id) == (
        "create",
        creator,
        Role.INVOICE_CREATOR,
        connection.provider_id,
    )
    assert row.request_id == response["X-Request-ID"]
    assert row.new_values["current_charges"] == "9750.00"
    assert "trace" not in row.new_values


def test_a_change_records_only_what_changed_old_and_new(as_role, creator, connection):
    invoice = services.invoice_issue(connection=connection, period=date(2024, 1, 1), created_by=creator)

    as_role(creator, Role.INVOICE_CREATOR).put(
        f"/api/invoices/{invoice.pk}", {"dueDate": "2024-03-01"}, format="json"
    )

    update = rows_of("invoicing.invoice", invoice.pk)[-1]
    assert (update.action, update.old_values, update.new_values) == (
        "update",
        {"due_date": "2024-02-10"},
        {"due_date": "2024-03-01"},
    )


def test_a_payment_shows_in_the_invoices_history(as_role, creator, super_creator, connection, cash):
    invoice = services.invoice_issue(connection=connection, period=date(2024, 1, 1), created_by=creator)
    services.payment_post(invoice=invoice, amount=Decimal("9750.00"), method=cash, received_by=super_creator)
    auditor = UserFactory(provider=connection.provider, roles=[Role.AUDITOR])

    history = (
        as_role(auditor, Role.AUDITOR).get(f"/api/audit/invoices/{invoice.pk}/history").json()["results"]
    )

    assert [(row["objectType"], row["action"]) for row in history] == [
        ("invoicing.invoice", "create"),
        ("invoicing.payment", "create"),
        ("invoicing.invoice", "update"),
        # On the provider's trail with its payment (it has no provider of its own), so in the history.
        ("invoicing.paymentallocation", "create"),
    ]
    assert history[2]["newValue"]["status"] == "Paid"


def test_bulk_paths_are_recorded_a_row_each(flat_provider, creator):
    connections = [billable_connection(flat_provider) for _ in range(3)]
    run, _ = services.billing_run_start(provider=flat_provider, period=date(2024, 1, 1))
    for chunk_id in selectors.pending_chunks(run):
        services.billing_run_chunk_bill(chunk_id=chunk_id)

    services.invoices_mark_overdue(provider=flat_provider, today=date(2024, 3, 1))

    invoices = Invoice.objects.filter(connection__in=connections)
    for invoice in invoices:
        assert [row.action for row in rows_of("invoicing.invoice", invoice.pk)] == ["create", "update"]
        assert rows_of("invoicing.invoice", invoice.pk)[1].new_values["status"] == "Overdue"
    assert AuditLog.objects.filter(object_type="invoicing.adjustment", action="create").count() == 3


def test_a_failed_audit_write_rolls_the_change_back(connection, creator):
    broken = mock.patch("auditing.services._append", side_effect=RuntimeError("audit store down"))
    with broken, pytest.raises(RuntimeError):
        services.invoice_issue(connection=connection, period=date(2024, 1, 1), created_by=creator)

    assert Invoice.objects.count() == 0


def test_passwords_never_reach_the_trail(provider):
    user = user_create(
        email="new@example.com",
        name="New",
        provider=provider,
        roles=[Role.CUSTOMER],
        password="s3cret-pass-99",
    )

    (row,) = rows_of("accounts.user", user.pk)
    assert "password" not in row.new_values
    assert "s3cret" not in str(row.new_values)


def test_sign_in_and_role_events_are_recorded(api, provider):
    UserFactory(provider=provider, email="multi@example.com", roles=[Role.AUDITOR, Role.INVOICE_CREATOR])

    api.post("/api/auth/login", {"email": "multi@example.com", "password": "wrong"}, format="json")
    api.post(
        "/api/auth/login",
        {"email": "multi@example.com", "password": "correct-horse-battery-9"},
        format="json",
    )

    actions = list(AuditLog.objects.order_by("id").values_list("action", flat=True))
    assert "login_failed" in actions
    assert "login" in actions


def test_audit_rows_refuse_changes_and_deletes(connection, creator):
    services.invoice_issue(connection=connection, period=date(2024, 1, 1), created_by=creator)
    row = AuditLog.objects.first()

    with pytest.raises(AppendOnly):
        row.save()
    with pytest.raises(AppendOnly):
        row.delete()
    with pytest.raises(AppendOnly):
        AuditLog.objects.all().update(action="nothing")
    with pytest.raises(AppendOnly):
        AuditLog.objects.all().delete()


def test_the_chain_verifies_and_names_the_first_tampered_row(connection, creator):
    for month in (1, 2, 3):
        services.invoice_issue(connection=connection, period=date(2024, month, 1), created_by=creator)
    assert audit_verify() == []
    victim = AuditLog.objects.filter(provider_id=connection.provider_id).order_by("id")[1]

    with db.cursor() as cursor:  # what a database superuser might do, around the trigger
        if db.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "UPDATE auditing_auditlog SET object_repr = 'nothing to see' WHERE id = %s", [victim.pk]
        )
        if db.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = origin")

    (found,) = audit_verify()
    assert (found.row_id, found.problem) == (victim.pk, "this row was changed after it was written")
    with pytest.raises(CommandError):
        call_command("audit_verify")


def test_auditors_read_their_providers_trail_only(as_role, connection, creator, other_provider):
    invoice = services.invoice_issue(connection=connection, period=date(2024, 1, 1), created_by=creator)
    mine = as_role(UserFactory(provider=connection.provider, roles=[Role.AUDITOR]), Role.AUDITOR)
    stranger = as_role(UserFactory(provider=other_provider, roles=[Role.AUDITOR]), Role.AUDITOR)

    found = mine.get(f"/api/audit/logs/search?invoiceNumber={invoice.number}").json()["results"]
    listed = mine.get("/api/audit/invoices/search?number=2024").json()["results"]

    assert [row["objectRepr"] for row in found] == [invoice.number]
    assert [row["invoiceNumber"] for row in listed] == [invoice.number]
    theirs = stranger.get("/api/audit/logs?pageSize=200").json()["results"]
    assert not [row for row in theirs if row["objectType"] == "invoicing.invoice"]
    assert stranger.get(f"/api/audit/invoices/{invoice.pk}/history").status_code == 404
    assert as_role(creator, Role.INVOICE_CREATOR).get("/api/audit/logs").status_code == 403


@pytest.mark.skipif(db.vendor != "postgresql", reason="the trigger is PostgreSQL's")
def test_postgresql_itself_refuses_to_change_or_delete_audit_rows(connection, creator):
    services.invoice_issue(connection=connection, period=date(2024, 1, 1), created_by=creator)
    row = AuditLog.objects.first()

    for statement in (
        "UPDATE auditing_auditlog SET action = 'x' WHERE id = %s",
        "DELETE FROM auditing_auditlog WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), db.cursor() as cursor:
            cursor.execute(statement, [row.pk])

    assert AuditLog.objects.get(pk=row.pk).action == "create"


def test_a_sign_in_names_its_user_as_the_actor(api, provider):
    user = UserFactory(provider=provider, email="solo@example.com", roles=[Role.AUDITOR])

    api.post(
        "/api/auth/login", {"email": "solo@example.com", "password": "correct-horse-battery-9"}, format="json"
    )

    login = AuditLog.objects.get(action="login")
    assert (login.actor, login.actor_role, login.provider_id) == (user, Role.AUDITOR, provider.pk)


def test_personal_details_are_recorded_as_digests_only(provider):
    user = user_create(email="private@example.com", name="Private", provider=provider, roles=[Role.CUSTOMER])

    (row,) = rows_of("accounts.user", user.pk)
    assert row.new_values["email"].startswith("hmac:")
    assert "private@example.com" not in str(row.new_values)


def test_a_personal_digest_is_keyed_so_a_guessed_address_cannot_be_confirmed(provider, settings):
    settings.AUDIT_DIGEST_KEY = "first key"
    first = user_create(
        email="guess@example.com", name="Guess", phone="0300-1234567", provider=provider, roles=[]
    )
    settings.AUDIT_DIGEST_KEY = "second key"
    second = user_create(
        email="guess@example.org", name="Guess", phone="0300-1234567", provider=provider, roles=[]
    )

    (created,) = rows_of("accounts.user", first.pk)
    (again,) = rows_of("accounts.user", second.pk)
    plain = {
        prefix + hashlib.sha256(value.encode()).hexdigest()[:16]
        for value in ("guess@example.com", "0300-1234567")
        for prefix in ("", "sha256:")
    }
    assert {created.new_values["email"], created.new_values["phone"]}.isdisjoint(plain)
    assert created.new_values["phone"] != again.new_values["phone"]  # the same phone under another key
    assert audit_verify() == []


def test_a_person_is_labelled_by_name_never_by_email(api, provider):
    user = user_create(
        email="private@example.com",
        name="Private Person",
        provider=provider,
        roles=[Role.AUDITOR, Role.CUSTOMER],
    )
    user.set_password("correct-horse-battery-9")
    user.save()
    api.post(
        "/api/auth/login",
        {"email": "private@example.com", "password": "correct-horse-battery-9"},
        format="json",
    )

    rows = AuditLog.objects.all()
    assert {row.object_repr for row in rows if row.object_type == "accounts.user"} == {"Private Person"}
    assert {row.object_repr for row in rows if row.object_type == "accounts.userrole"} <= {
        "Private Person: Auditor",
        "Private Person: Customer",
    }
    assert not [
        row for row in rows if "private@example.com" in str([row.object_repr, row.old_values, row.new_values])
    ]


def test_old_plain_digests_and_new_keyed_ones_verify_in_one_chain(provider):
    audit_append(
        [
            Entry(
                "update",
                provider.pk,
                "accounts.user",
                "1",
                "Old row",
                new_values={"email": "sha256:0123456789abcdef"},
            )
        ]
    )
    user_create(email="new@example.com", name="New", provider=provider, roles=[Role.CUSTOMER])

    assert AuditLog.objects.filter(provider=provider, new_values__email__startswith="sha256:").count() == 1
    assert audit_verify() == []


def test_odd_audit_log_filters_are_a_400(as_role, provider):
    api = as_role(UserFactory(provider=provider, roles=[Role.AUDITOR]), Role.AUDITOR)

    assert api.get("/api/audit/logs?actor=99999999999999999999999").status_code == 400
    assert api.get("/api/audit/logs?since=yesterday").status_code == 400


@pytest.mark.parametrize("late", ["address", "number", "user_id"])  # sorted first, between, last
def test_a_record_whose_field_is_set_last_is_the_record_of_the_whole_row(provider, late):
    customer = CustomerFactory(provider=provider, email="amna@example.com", address="12 Mall Road")
    record = audit_created_later([customer], late)
    setattr(customer, late, "2 Canal Bank" if late == "address" else "C-900" if late == "number" else None)

    record()

    _saved, row = rows_of("billing.customer", customer.pk)  # the factory's save, then this record
    assert row.new_values == values_of(customer)  # the late field as it was set, the rest as before
    assert row.new_values["email"].startswith("hmac:")
    assert audit_verify() == []  # the hash is of the same text as encoding the whole row gives
