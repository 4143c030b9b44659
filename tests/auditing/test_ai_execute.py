"""The AI query executor on the database the suite runs on (SQLite, then PostgreSQL in the second
pass): it answers a scoped query with JSON-friendly rows and a truncation flag, and every query
that would write, attach, read a secret or run two statements fails with nothing changed.

Rows are committed (transaction=True): the executor reads on a connection of its own.
"""

# ruff: noqa: S608 -- the queries under test are SQL built from table names and literal ids.
import json
import sqlite3
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from auditing.ai.execute import QueryFailed, _json_value, _sqlite_connect, run, sources
from tests.auditing.ai_tenants import alpha_and_bravo, assert_only_provider, database_state

pytestmark = pytest.mark.django_db(transaction=True)

sqlite_only = pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLite executor")


@pytest.fixture(autouse=True)
def _one_second_budget(settings):
    settings.AI_QUERY_TIMEOUT_SECONDS = 1


@pytest.fixture
def tenants():
    return alpha_and_bravo()


def test_a_scoped_select_returns_the_providers_rows_as_json_values(tenants):
    alpha, _ = tenants
    result = run(
        f"SELECT t.number, t.period, t.created_at, t.payable_before_due FROM {sources()['invoices']} AS t "
        f"WHERE t.provider_id = {alpha.provider.pk}",
        provider_id=alpha.provider.pk,
    )

    assert result.columns == ["number", "period", "created_at", "payable_before_due"]
    assert [row[:2] for row in result.rows] == [[alpha.invoice.number, "2024-01-01"]]
    assert Decimal(str(result.rows[0][3])) == Decimal("9750.00")
    assert json.loads(json.dumps(result.rows)) == result.rows
    assert result.truncated is False
    assert result.milliseconds >= 0
    assert_only_provider(result, alpha.provider.pk)


def test_an_answer_longer_than_the_limit_is_cut_and_flagged(tenants):
    alpha, _ = tenants
    users = f"SELECT t.name FROM {sources()['users']} AS t WHERE t.provider_id = {alpha.provider.pk} ORDER BY t.name"

    cut = run(users, provider_id=alpha.provider.pk, limit=2)
    whole = run(users, provider_id=alpha.provider.pk, limit=3)

    assert (cut.rows, cut.truncated) == ([["Alpha auditor"], ["Alpha creator"]], True)
    assert (whole.rows, whole.truncated) == (
        [["Alpha auditor"], ["Alpha creator"], ["Alpha customer"]],
        False,
    )


def test_rows_of_a_with_query_and_of_a_subquery_can_be_counted(tenants):
    alpha, _ = tenants
    invoices = f"SELECT t.id FROM {sources()['invoices']} AS t WHERE t.provider_id = {alpha.provider.pk}"

    counted = run(
        f"WITH mine AS ({invoices}) SELECT (SELECT count(*) FROM mine, mine AS again), "
        f"(SELECT count(*) FROM ({invoices}) AS invoices)",
        provider_id=alpha.provider.pk,
    )

    assert counted.rows == [[1, 1]]


REFUSED = [
    "DELETE FROM invoicing_invoice",
    "INSERT INTO invoicing_paymentmethod (code, name, is_active, position) VALUES ('evil', 'Evil', TRUE, 9)",
    "UPDATE invoicing_invoice SET balance = 0",
    "DROP TABLE invoicing_invoice",
    "CREATE TABLE stolen AS SELECT * FROM invoicing_invoice",
    "CREATE TEMP TABLE stolen AS SELECT 1 AS x",
    "ATTACH DATABASE '{tmp}/stolen.db' AS stolen",
    "PRAGMA writable_schema = 1",
    "PRAGMA query_only = OFF",
    "VACUUM",
    "SELECT password FROM accounts_user",
    "SELECT * FROM accounts_user",
    "SELECT email FROM accounts_user",
    "SELECT name FROM accounts_user UNION SELECT password FROM accounts_user",
    "SELECT t.number FROM invoicing_invoice AS t JOIN accounts_user AS u ON u.password <> ''",
    "SELECT idempotency_key, request_hash FROM invoicing_payment",
    "SELECT * FROM sqlite_master",
    "SELECT sql FROM sqlite_schema WHERE name = 'accounts_user'",
    "SELECT * FROM pragma_table_info('accounts_user')",
    "SELECT * FROM django_session",
    "SELECT count(*) FROM django_session",
    "SELECT count(*) FROM sqlite_master",
    "SELECT * FROM token_blacklist_outstandingtoken",
    "SELECT 1; DELETE FROM invoicing_invoice",
    "SELECT 1; -- the rest\nDELETE FROM invoicing_invoice",
    "SELECT 1; ATTACH DATABASE '{tmp}/stolen.db' AS stolen",
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n",
    "SELECT load_extension('{tmp}/evil')",
    "SELECT randomblob(1000000000)",
    "SELECT sqlite_version()",
]


@pytest.mark.parametrize("sql", REFUSED, ids=lambda sql: " ".join(sql.split())[:60])
def test_a_query_that_writes_attaches_reads_secrets_or_runs_twice_fails_and_changes_nothing(
    tenants, tmp_path, sql
):
    alpha, _ = tenants
    before = database_state()

    with pytest.raises(QueryFailed):
        run(sql.format(tmp=tmp_path), provider_id=alpha.provider.pk)

    assert database_state() == before
    assert list(tmp_path.iterdir()) == []


def test_a_nul_character_is_refused_before_the_database_sees_it(tenants):
    alpha, _ = tenants

    with pytest.raises(QueryFailed, match="NUL"):
        run("SELECT 'a\x00'; DELETE FROM invoicing_invoice", provider_id=alpha.provider.pk)


def test_values_are_json_friendly():
    assert _json_value(Decimal("9750.00")) == "9750.00"
    assert _json_value(date(2024, 1, 1)) == "2024-01-01"
    assert _json_value(datetime(2024, 1, 28, 9, tzinfo=UTC)) == "2024-01-28T09:00:00+00:00"
    assert _json_value(time(9, 30)) == "09:30:00"
    assert _json_value(float("nan")) == "nan"
    assert _json_value(b"\x01\xff") == "01ff"
    assert _json_value({"amount": Decimal("1.50"), "days": [date(2024, 2, 1)]}) == {
        "amount": "1.50",
        "days": ["2024-02-01"],
    }
    assert _json_value(timedelta(days=3)) == "3 days, 0:00:00"
    assert _json_value(True) is True


@sqlite_only
def test_sqlite_allows_the_allowed_columns_of_a_table_and_no_other(tenants):
    alpha, _ = tenants

    names = run("SELECT id, name FROM accounts_user ORDER BY name", provider_id=alpha.provider.pk)
    with pytest.raises(QueryFailed, match="may not read"):
        run("SELECT id, last_login FROM accounts_user", provider_id=alpha.provider.pk)

    assert "Bravo creator" in [row[1] for row in names.rows]  # SQLite scopes rows by the literal only


@sqlite_only
def test_a_long_sqlite_query_is_stopped_at_the_time_budget(tenants, settings):
    alpha, _ = tenants
    settings.AI_QUERY_TIMEOUT_SECONDS = 0.001

    with pytest.raises(QueryFailed, match=r"took longer than 0\.001 seconds"):
        run(
            # 6 users: 6^8 = 1.7 million rows to count, some 20 ms
            "SELECT count(*) FROM accounts_user AS a, accounts_user AS b, accounts_user AS c, "
            "accounts_user AS d, accounts_user AS e, accounts_user AS f, accounts_user AS g, accounts_user AS h",
            provider_id=alpha.provider.pk,
        )


@sqlite_only
def test_the_sqlite_connection_refuses_writes_even_without_its_authorizer(tenants):
    reader = _sqlite_connect()
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.execute("DELETE FROM invoicing_invoice")
    finally:
        reader.close()


@sqlite_only
def test_a_database_file_is_opened_read_only(tenants, tmp_path, monkeypatch):
    alpha, _ = tenants
    copy = sqlite3.connect(tmp_path / "billing.sqlite3")
    connection.ensure_connection()
    connection.connection.backup(copy)
    copy.close()
    monkeypatch.setitem(connection.settings_dict, "NAME", str(tmp_path / "billing.sqlite3"))

    reader = _sqlite_connect()
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.execute("DELETE FROM invoicing_invoice")
    finally:
        reader.close()
    result = run("SELECT number FROM invoicing_invoice ORDER BY number", provider_id=alpha.provider.pk)

    assert [row[0] for row in result.rows] == ["ALPHA-2024-000001", "BRAVO-2024-000001"]
