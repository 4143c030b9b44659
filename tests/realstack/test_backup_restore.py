"""Backup and restore on the real PostgreSQL (`manage.py backup`, `manage.py restore`): a backup of a
provider's billed, paid and adjusted books restored into a fresh database holds every bill, payment
and adjustment as they were, with the audit trail intact and AI queries working as the reader role;
a database that holds anything is refused unless forced, a backup cut short changes nothing; a broken
trail in a backup is named."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from io import StringIO
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from psycopg import sql

from accounts.roles import Role
from auditing.ai.execute import run
from auditing.services import audit_verify
from invoicing import selectors, services
from invoicing.models import Invoice, PaymentMethod
from tests.factories import FlatTariffFactory, UserFactory, billable_connection

pytestmark = [pytest.mark.realstack, pytest.mark.django_db(transaction=True)]

JANUARY, FEBRUARY = date(2024, 1, 1), date(2024, 2, 1)
# What a restore must bring back exactly, each in a stable order.
BOOKS = {
    "invoices": "SELECT number, current_charges, arrears, payable_before_due, amount_paid, adjustment_total, "
    "balance, status FROM invoicing_invoice ORDER BY number",
    "payments": "SELECT receipt_number, invoice_id, amount, method_id, received_at FROM invoicing_payment ORDER BY id",
    "adjustments": "SELECT number, invoice_id, direction, amount, reason, balance_after "
    "FROM invoicing_adjustment ORDER BY id",
    "audit rows": "SELECT id, provider_id, action, object_type, object_id, hash FROM auditing_auditlog ORDER BY id",
}

READER_PRIVILEGES = """
SELECT
  (SELECT count(*) FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
   WHERE n.nspname IN ('pg_catalog', 'information_schema') AND c.relkind IN ('r', 'v')
     AND has_table_privilege(%s, c.oid, 'SELECT')),
  (SELECT %s IN (SELECT a.grantee::regrole::text FROM pg_database AS d, aclexplode(d.datacl) AS a
   WHERE d.datname = current_database()))
"""


@pytest.fixture
def books(provider):
    """A flat 32.50 per kWh provider: three connections billed for January by a billing run (9,750.00
    each), one billed for February by hand, two payments and a credit adjustment."""
    FlatTariffFactory(provider=provider, rate=Decimal("32.50"))
    officer = UserFactory(provider=provider, roles=[Role.SUPER_CREATOR], designation="Revenue Officer")
    connections = [billable_connection(provider, months=2) for _ in range(3)]
    for each in connections:  # no e-mailed bills: rendering their PDFs would only slow the test
        each.customer.notify_bills = False
        each.customer.save()
    billing_run, _ = services.billing_run_start(provider=provider, period=JANUARY, started_by=officer)
    for chunk_id in selectors.pending_chunks(billing_run):
        services.billing_run_chunk_bill(chunk_id=chunk_id)
    february = services.invoice_issue(connection=connections[0], period=FEBRUARY, created_by=officer)
    cash, _ = PaymentMethod.objects.get_or_create(
        code="bank-counter", defaults={"name": "Paid at Bank Counter"}
    )
    first, second = Invoice.objects.filter(period=JANUARY).order_by("number")[:2]
    services.payment_post(invoice=first, amount=Decimal("9750.00"), method=cash, received_by=officer)
    services.payment_post(invoice=second, amount=Decimal("1000.00"), method=cash, received_by=officer)
    services.adjustment_create(
        invoice=february,
        amount=Decimal("250.00"),
        direction="credit",
        reason="Meter misread",
        officer=officer,
    )
    return provider


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """A new, empty database beside the test's own, dropped afterwards."""
    name = f"{connection.settings_dict['NAME']}_restored"
    with connected("postgres") as server:
        server.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield name
    with connected("postgres") as server:
        server.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def connected(database: str) -> psycopg.Connection:
    db = connection.settings_dict
    return psycopg.connect(
        dbname=database,
        user=db["USER"],
        password=db["PASSWORD"],
        host=db["HOST"],
        port=db["PORT"],
        autocommit=True,
    )


@contextmanager
def django_on(database: str) -> Iterator[None]:
    """Django's default database is `database` for the block, as for a deployment whose DATABASE_URL
    names it: the commands, the audit check and the AI reader all connect there."""
    saved = connection.settings_dict["NAME"]
    connection.close()
    connection.settings_dict["NAME"] = database
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["NAME"] = saved


def reader_privileges() -> tuple[int, bool]:
    """How many system catalog relations the AI reader may read here, and whether it was granted
    CONNECT on this database itself (not only through PUBLIC)."""
    with connection.cursor() as cursor:
        cursor.execute(READER_PRIVILEGES, [settings.AI_QUERY_DB_USER] * 2)
        return cursor.fetchone()


def read_books() -> dict[str, list[tuple]]:
    with connection.cursor() as cursor:
        found = {}
        for name, query in BOOKS.items():
            cursor.execute(query)
            found[name] = cursor.fetchall()
        return found


def backed_up(path: Path) -> str:
    out = StringIO()
    call_command("backup", str(path), stdout=out)
    return out.getvalue()


def restored(path: Path, *options: str) -> str:
    out = StringIO()
    call_command("restore", str(path), *options, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_a_backup_restored_into_a_fresh_database_holds_every_bill_and_payment_and_an_intact_trail(
    books, tmp_path, fresh_database
):
    original, original_privileges = read_books(), reader_privileges()
    backup = tmp_path / "billing.dump"

    said = backed_up(backup)
    with django_on(fresh_database):
        restore_said = restored(backup)
        copy, privileges = read_books(), reader_privileges()
        breaks = audit_verify()
        answer = run("SELECT number, balance FROM invoices ORDER BY number", provider_id=books.pk)

    summary = (
        "1 provider(s); 4 invoice(s) billing 39,000.00 (28,000.00 open); 2 payment(s) of 10,750.00; "
        "1 adjustment(s)"
    )
    assert summary in said
    assert f"{backup} (" in said and backup.stat().st_mode & 0o077 == 0  # the owner's alone
    assert summary in restore_said and "Every audit chain is intact." in restore_said
    assert [len(rows) for rows in original.values()][:3] == [4, 2, 1]
    assert copy == original
    assert breaks == []
    # The reader role's grants came back (what a dump carries and what the restore grants again):
    # the AI reader reads no catalog, and sees the provider's bills through its views.
    assert privileges == original_privileges == (0, True)
    assert answer.rows == [[number, str(balance)] for number, *_, balance, _ in original["invoices"]]


def test_a_database_that_holds_anything_is_refused_unless_forced_and_forcing_replaces_it(
    books, tmp_path, fresh_database
):
    backup = tmp_path / "billing.dump"
    backed_up(backup)
    original = read_books()
    with connected(fresh_database) as fresh:
        fresh.execute("CREATE TABLE stray (note text)")

    own = connection.settings_dict["NAME"]
    with pytest.raises(
        CommandError, match=rf"database {own} on .* is not empty \(\d+ table\(s\), .*pass --force"
    ):
        restored(backup)  # into the test's own database, which holds the books
    cut_short = tmp_path / "cut-short.dump"
    cut_short.write_bytes(backup.read_bytes()[:-100])  # its last table's rows cut
    with django_on(fresh_database):
        with pytest.raises(
            CommandError, match=r"could not read all of .*cut-short.dump; nothing was changed"
        ):
            restored(cut_short, "--force")
        assert connection.introspection.table_names() == ["stray"]  # not even dropped
        with pytest.raises(
            CommandError,
            match=r"is not empty \(1 table\(s\), view\(s\) or sequence\(s\), such as public\.stray\)",
        ):
            restored(backup)
        restored(backup, "--force")
        copy = read_books()
        stray_left = connection.introspection.table_names().count("stray")

    assert copy == original
    assert stray_left == 0


def test_a_backup_of_a_broken_audit_trail_restores_but_names_the_broken_chain(
    books, tmp_path, fresh_database
):
    with connection.cursor() as cursor:
        # A superuser's way round the append-only trigger, as a tamperer's would be.
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(
            "UPDATE auditing_auditlog SET object_repr = 'changed' WHERE id = "
            "(SELECT min(id) FROM auditing_auditlog WHERE provider_id = %s)",
            [books.pk],
        )
        cursor.execute("SET session_replication_role = origin")
    backup = tmp_path / "billing.dump"
    backed_up(backup)

    with (
        django_on(fresh_database),
        pytest.raises(CommandError, match=r"Restored, but 1 audit chain\(s\) are broken"),
    ):
        restored(backup)


def test_backup_without_pg_dump_says_to_install_the_client_tools(db, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(CommandError, match="pg_dump not found on PATH: install PostgreSQL's client tools"):
        backed_up(tmp_path / "billing.dump")
    assert list(tmp_path.iterdir()) == []
