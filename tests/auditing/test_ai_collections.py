"""AI queries over corrections and collections: credit notes, credit balances, refunds, reversals,
dunning, payment plans, pending charges, bank payment files and connection events.

The validator accepts them and the rewriter reads each through its provider's rows (the lines of a
credit note and the rows of a payment file through their note and file); their secrets (idempotency
keys, request hashes, a file's digest, a customer's contact details) stay refused; and run the whole
way, on the database the suite runs on (SQLite, then PostgreSQL through the reader's views in the
second pass), an auditor sees their own provider's rows and never another's.
"""

# ruff: noqa: S608 -- the queries under test are SQL built from table names.
import importlib
import re
from decimal import Decimal

import pytest
import sqlglot
from django.db import connection
from sqlglot import exp

from auditing.ai import execute, offline, schema
from auditing.ai.execute import QueryResult
from auditing.ai.scope import check_and_scope
from auditing.ai.validate import DIALECTS, QueryRefused, check
from billing.models import Customer
from tests.auditing.ai_collections import COLLECTION_TABLES, books, ids_of

VIEWS = {name: f"ai_views.{name}" for name in schema.BY_NAME}
THROUGH_PARENT = {
    "credit_note_lines": "invoicing_creditnote",
    "payment_file_rows": "invoicing_paymentfile",
    "dunning_step_invoices": "invoicing_invoice",
    "payment_plan_invoices": "invoicing_invoice",
}
DIALECT = "postgres" if connection.vendor == "postgresql" else "sqlite"


# --- checked and scoped ---------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("name", COLLECTION_TABLES)
def test_a_query_over_a_collections_table_is_read_through_its_providers_rows(name, dialect):
    scoped = check_and_scope(f"SELECT * FROM {name}", provider_id=41, dialect=dialect)

    table = schema.BY_NAME[name]
    (inner,) = [
        select
        for select in sqlglot.parse_one(scoped, read=dialect).find_all(exp.Select)
        if select.args["from_"].this.name == table.source
    ]
    assert [column.name for column in inner.expressions] == list(table.columns)
    assert re.findall(r"= (\d+)\b", scoped) == ["41"]
    if name in THROUGH_PARENT:
        (parent,) = inner.args["where"].find_all(exp.Select)
        assert parent.args["from_"].this.name == THROUGH_PARENT[name]
        assert parent.args["where"].this.sql() == "provider_id = 41"
    else:
        assert inner.args["where"].this.sql() == "t.provider_id = 41"


def test_the_lines_of_a_credit_note_read_the_reader_views_of_both():
    scoped = check_and_scope(
        "SELECT n.number, l.label, l.amount FROM credit_notes n JOIN credit_note_lines l ON l.credit_note_id = n.id",
        provider_id=7,
        dialect="postgres",
        sources=VIEWS,
    )

    assert "invoicing_" not in scoped
    assert (
        "FROM ai_views.credit_note_lines AS t WHERE t.credit_note_id IN (SELECT id FROM ai_views.credit_notes "
        in scoped
    )
    assert "FROM ai_views.credit_notes AS t WHERE t.provider_id = 7" in scoped


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("SELECT idempotency_key FROM credit_notes", "not one auditors may read in credit_notes"),
        ("SELECT n.request_hash FROM credit_notes n", "not one auditors may read in credit_notes"),
        ("SELECT idempotency_key FROM credit_refunds", "not one auditors may read in credit_refunds"),
        ("SELECT request_hash FROM payment_reversals", "not one auditors may read in payment_reversals"),
        ("SELECT reopened FROM payment_reversals", "not one auditors may read in payment_reversals"),
        ("SELECT sha256 FROM payment_files", "not one auditors may read in payment_files"),
        ("SELECT details FROM connection_events", "not one auditors may read in connection_events"),
        ("SELECT national_id FROM customers", "not one auditors may read in customers"),
        ("SELECT c.email, c.phone FROM customers c", "not one auditors may read in customers"),
        ("SELECT password FROM credit_notes JOIN users ON users.id = credit_notes.issued_by_id", "in any table"),
        ("SELECT idempotency_key FROM credit_notes n JOIN credit_refunds r ON r.customer_id = n.customer_id", "in any table"),
    ],
)  # fmt: skip
def test_the_secrets_of_the_new_tables_stay_refused(sql, words):
    for dialect in DIALECTS:
        with pytest.raises(QueryRefused, match=words):
            check(sql, dialect=dialect)


@pytest.mark.parametrize("name", COLLECTION_TABLES)
def test_a_star_never_reaches_a_secret_column(name):
    scoped = check_and_scope(f"SELECT * FROM {name}", provider_id=3, dialect="postgres")

    for secret in (
        "idempotency_key",
        "request_hash",
        "sha256",
        "reopened",
        "national_id",
        "email",
        "details",
    ):
        assert secret not in scoped


# --- run, for two providers ---------------------------------------------------------------------------


@pytest.fixture
def two_books(db, time_machine):
    """ALPHA's books and BRAVO's: the same kinds of rows, different credits."""
    return (
        books("ALPHA", time_machine, credit=Decimal("1000.00")),
        books("BRAVO", time_machine, credit=Decimal("4321.09")),
    )


def answer(sql: str, provider_id: int) -> QueryResult:
    scoped = check_and_scope(
        sql, provider_id=provider_id, dialect=DIALECT, sources=execute.sources(), limit=1000
    )
    return execute.run(scoped, provider_id=provider_id, limit=1000)


@pytest.mark.django_db(transaction=True)  # the executor reads committed rows
def test_every_collections_table_answers_with_the_auditors_provider_rows_only(two_books):
    alpha, bravo = two_books

    for name in COLLECTION_TABLES:
        mine = {row[0] for row in answer(f"SELECT id FROM {name}", alpha.pk).rows}
        theirs = {row[0] for row in answer(f"SELECT id FROM {name}", bravo.pk).rows}

        assert mine == ids_of(name, alpha.pk) != set(), name
        assert theirs == ids_of(name, bravo.pk) != set(), name


@pytest.mark.django_db(transaction=True)
def test_another_providers_credit_notes_never_appear_even_when_asked_for(two_books):
    alpha, bravo = two_books

    asked = answer(
        f"SELECT n.number, l.amount FROM credit_notes n JOIN credit_note_lines l ON l.credit_note_id = n.id "
        f"WHERE n.provider_id IN ({alpha.pk}, {bravo.pk})",
        alpha.pk,
    )
    lines = answer("SELECT credit_note_id, amount FROM credit_note_lines", alpha.pk)

    assert [number[:9] for number, _ in asked.rows] == ["ALPHA-CN-"]
    assert [Decimal(str(amount)) for _, amount in asked.rows] == [Decimal("1000.00")]
    assert [Decimal(str(amount)) for _, amount in lines.rows] == [Decimal("1000.00")]


@pytest.mark.django_db(transaction=True)
def test_the_offline_assistant_totals_this_years_credit_notes(two_books, time_machine):
    alpha, _ = two_books
    time_machine.move_to("2024-06-15 09:00 +05:00", tick=False)
    name, sql = offline.OfflineGenerator().answer("total credit notes this year", dialect=DIALECT)

    total = answer(sql, alpha.pk)

    assert name == "credit_notes"
    assert total.columns == ["credit_notes", "credited", "taken_off_bills", "to_credit_balances"]
    assert [[Decimal(str(value)) for value in row] for row in total.rows] == [[1, 1000, 0, 1000]]


@pytest.mark.django_db(transaction=True)
def test_the_offline_assistant_finds_the_customers_at_final_notice(two_books, time_machine):
    alpha, _ = two_books
    time_machine.move_to("2024-03-01 09:00 +05:00", tick=False)
    name, sql = offline.OfflineGenerator().answer("customers in dunning at final notice", dialect=DIALECT)

    dunned = answer(sql, alpha.pk)

    assert name == "dunning"
    assert dunned.rows
    assert {row[dunned.columns.index("dunning_level")] for row in dunned.rows} == {"final_notice"}
    numbers = {row[dunned.columns.index("customer_number")] for row in dunned.rows}
    assert numbers <= set(Customer.objects.filter(provider=alpha).values_list("number", flat=True))


# --- the reader's views, as the migrations freeze them -----------------------------------------------


def test_the_reader_views_the_migrations_make_are_the_allow_list():
    """Each later migration's view replaces an earlier one of the same name: the last is what the
    reader reads on PostgreSQL, and it must show exactly the allow-list's columns of the same table."""
    views: dict[str, tuple[str, tuple[str, ...]]] = {}
    for view, table, columns, _ in importlib.import_module("auditing.migrations.0002_ai_reader").VIEWS:
        views[view] = (table, tuple(columns))
    catalog = importlib.import_module("auditing.migrations.0004_ai_reader_catalog")
    views["provider"] = ("providers_provider", tuple(catalog.PROVIDER_COLUMNS))
    later = ("auditing.migrations.0008_ai_reader_collections", "auditing.migrations.0009_ai_reader_orders")
    for view, table, columns, _ in (row for name in later for row in importlib.import_module(name).VIEWS):
        widened = views.get(view)
        assert widened is None or columns[: len(widened[1])] == widened[1], f"{view} may only gain columns"
        views[view] = (table, tuple(columns))

    assert views == {table.name: (table.source, table.columns) for table in schema.TABLES}
