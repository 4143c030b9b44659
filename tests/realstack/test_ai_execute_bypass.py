"""Bypass tests on PostgreSQL: hostile SQL straight into the executor, with no validator and no
rewriter in front of it. The executor alone must hold: every query either fails or answers with the
auditor's provider's rows only, and afterwards every table, the reader role, the catalogs and the
database's sessions and locks are as they were.

What each layer of the executor stops (auditing/ai/execute.py):
- the reader role (views only): base tables, password hashes, sessions, tokens, catalogs of
  secrets (pg_authid, pg_shadow), server files and programs (pg_read_file, lo_import, COPY),
  sequences, other roles (SET ROLE), other backends except its own role's;
- the session binding (ai_scope): other providers' rows through the views, whatever the query
  sets (`set_config('ai.provider_id', ...)` changes nothing; the binding cannot be redone);
- the cursor + extended protocol: a second statement, and any statement that is not a query
  (DML, DDL, COPY, DO, LOCK, SET, PREPARE, transaction control), data-modifying WITH, SELECT INTO;
- the read-only transaction, always rolled back, and the closed connection: FOR UPDATE/SHARE,
  writes through functions; what a read-only transaction still allows (lo_from_bytea,
  pg_advisory_lock, pg_notify) is undone by the rollback or the closing;
- statement timeout (not changeable from inside the statement), temp_file_limit, FETCH of
  limit + 1 rows: sleeps, endless recursion, huge results.
- the reader's missing privileges on the system catalogs (migration auditing 0004): catalog and
  statistics relations (pg_class, pg_stat_user_tables, pg_roles, pg_settings, pg_stat_activity,
  pg_database, information_schema), and the built-ins that read statistics or sizes, signal other
  backends, take advisory locks, touch large objects, sequences, files or settings, notify or sleep.
"""

# ruff: noqa: S608 -- the queries under test are SQL built from literal ids.
import importlib
import select

import psycopg
import pytest
from django.apps import apps
from django.db import connection

from auditing.ai import execute
from auditing.ai.execute import QueryFailed, run
from auditing.ai.schema import TABLES
from tests.auditing.ai_tenants import alpha_and_bravo, assert_only_provider, database_state
from tests.realstack.conftest import wait_until

pytestmark = [pytest.mark.realstack, pytest.mark.django_db(transaction=True)]

READER = "billing_ai_reader"
SCOPED_ALPHA = "(SELECT t.id, t.number, t.provider_id FROM ai_views.invoices AS t WHERE t.provider_id = {alpha}) AS invoices"

CATALOG_RELATIONS = (
    "pg_stat_user_tables", "pg_catalog.pg_stat_user_tables", '"pg_stat_user_tables"', "pg_stat_all_tables",
    "pg_statio_user_tables", "pg_stat_database", "pg_class", "pg_roles", "pg_user", "pg_settings",
    "pg_stat_activity", "pg_database", "pg_locks", "pg_namespace", "pg_proc", "pg_stats", "pg_sequences",
    "information_schema.tables", "information_schema.columns",
)  # fmt: skip

# Each fails: refused by the database, whichever layer comes first.
REFUSED = [
    # several statements, transaction escapes
    "SELECT 1; DELETE FROM invoicing_invoice",
    "COMMIT; DELETE FROM public.invoicing_invoice",
    "ROLLBACK; BEGIN READ WRITE; DELETE FROM public.invoicing_invoice; COMMIT",
    "END; SELECT password FROM public.accounts_user",
    "SELECT set_config('ai.provider_id', '{bravo}', false); SELECT * FROM ai_views.invoices",
    "SELECT 1 -- ;\n; DELETE FROM public.invoicing_invoice",
    "SELECT 1 /* ; */ ; DROP TABLE public.invoicing_invoice",
    "SET TRANSACTION READ WRITE",
    "SET ROLE postgres",
    "DISCARD TEMP",
    # writes and DDL
    "DELETE FROM invoicing_invoice",
    "DELETE FROM ai_views.invoices",
    "UPDATE public.invoicing_invoice SET balance = 0",
    "INSERT INTO public.invoicing_paymentmethod (code, name, is_active, position) VALUES ('evil', 'Evil', true, 9)",
    "TRUNCATE public.invoicing_invoice CASCADE",
    "DROP SCHEMA ai_views CASCADE",
    "CREATE TABLE ai_views.stolen AS SELECT * FROM ai_views.invoices",
    "ALTER ROLE billing_ai_reader SUPERUSER",
    "GRANT SELECT ON public.accounts_user TO billing_ai_reader",
    "WITH gone AS (DELETE FROM ai_views.invoices RETURNING *) SELECT * FROM gone",
    "WITH gone AS (DELETE FROM public.invoicing_invoice RETURNING id) SELECT count(*) FROM gone",
    "WITH changed AS (UPDATE public.invoicing_invoice SET balance = 0 RETURNING id) SELECT 1",
    "SELECT * INTO public.stolen FROM ai_views.invoices",
    "SELECT * FROM ai_views.invoices FOR UPDATE",
    "SELECT * FROM ai_views.invoices FOR SHARE NOWAIT",
    "LOCK TABLE public.invoicing_invoice IN ACCESS EXCLUSIVE MODE",
    "COPY public.invoicing_invoice TO PROGRAM 'cat > /tmp/ai-stolen'",
    "COPY (SELECT * FROM ai_views.invoices) TO '/tmp/ai-stolen'",
    "DO $$ BEGIN DELETE FROM public.invoicing_invoice; END $$",
    "PREPARE wipe AS DELETE FROM public.invoicing_invoice",
    "CREATE EXTENSION dblink",
    # base tables, secrets, catalogs
    "SELECT * FROM invoicing_invoice",
    "SELECT * FROM public.invoicing_invoice",
    "SELECT * FROM accounts_user",
    "SELECT password FROM public.accounts_user",
    'SELECT "password" FROM "public"."accounts_user"',
    'SELECT password FROM public.U&"\\0061ccounts_user"',
    "SELECT session_data FROM public.django_session",
    "SELECT token FROM public.token_blacklist_outstandingtoken",
    "SELECT i.* FROM ai_views.invoices AS i JOIN public.invoicing_invoice AS x ON x.id = i.id",
    "SELECT rolname, rolpassword FROM pg_catalog.pg_authid",
    "SELECT usename, passwd FROM pg_catalog.pg_shadow",
    "SELECT * FROM pg_temp.ai_provider",
    "SELECT current_setting('data_directory')",
    "SELECT nextval('public.invoicing_invoice_id_seq')",
    "SELECT setval('public.invoicing_invoice_id_seq', 1)",
    # SQL in strings, other databases
    "SELECT query_to_xml('SELECT password FROM public.accounts_user', true, true, '')",
    "SELECT query_to_xml('DELETE FROM public.invoicing_invoice RETURNING id', true, true, '')",
    "SELECT * FROM dblink('dbname=postgres', 'SELECT 1') AS t(x int)",
    "SELECT dblink_exec('dbname=postgres', 'DROP DATABASE postgres')",
    # files, large objects, server functions, other backends
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT pg_read_binary_file('/etc/passwd')",
    "SELECT pg_ls_dir('.')",
    "SELECT lo_import('/etc/passwd')",
    "SELECT lo_export(lo_from_bytea(0, 'x'), '/tmp/ai-stolen')",
    "SELECT pg_reload_conf()",
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE datname = current_database() AND usename IS DISTINCT FROM current_user",
    "SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
    "WHERE datname = current_database() AND usename IS DISTINCT FROM current_user",
    "SELECT pg_terminate_backend(pg_backend_pid())",
    # the binding and settings
    "SELECT ai_scope.bind({bravo})",
    "SELECT * FROM ai_views.invoices WHERE ai_scope.bind({bravo}) IS NULL",
    "SELECT set_config('role', 'postgres', true)",
    "SELECT set_config('session_authorization', 'postgres', false)",
    "SELECT set_config('transaction_read_only', 'off', true), * FROM ai_views.invoices",
    # expensive
    "SELECT pg_sleep(10)",
    "SELECT set_config('statement_timeout', '0', true), pg_sleep(10)",
    "SELECT * FROM ai_views.invoices, pg_sleep(10)",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
    "SELECT count(*) FROM generate_series(1, 10000000000)",
    "SELECT repeat('x', 2000000000)",
    # catalogs and statistics: every provider's row counts, roles, settings, sessions, databases
    *(f"SELECT * FROM {relation}" for relation in CATALOG_RELATIONS),
    'WITH "PG_STAT_USER_TABLES" AS (SELECT 1) SELECT * FROM pg_stat_user_tables',
    'WITH "Pg_Roles" AS (SELECT 1) SELECT * FROM pg_roles',
    "SELECT reltuples FROM pg_class WHERE relname = 'invoicing_invoice'",
    "SELECT i.* FROM ai_views.invoices AS i, pg_stat_user_tables AS s WHERE s.relname = 'invoicing_invoice'",
    # the functions behind them, and sizes
    "SELECT pg_stat_get_live_tuples('public.invoicing_invoice'::regclass)",
    "SELECT pg_stat_get_db_tuples_inserted(1)",
    "SELECT pg_relation_size('public.invoicing_invoice')",
    "SELECT pg_total_relation_size('public.invoicing_invoice')",
    "SELECT pg_database_size(current_database())",
    "SELECT pg_get_userbyid(10)",
    "SELECT current_setting('server_version')",
    "SELECT * FROM pg_show_all_settings()",
    "SELECT pg_current_wal_lsn()",
    # side effects a read-only transaction still allows
    "SELECT pg_advisory_lock(1)",
    "SELECT pg_try_advisory_lock(1)",
    "SELECT pg_advisory_xact_lock_shared(1)",
    "SELECT lo_from_bytea(0, 'stolen')",
    "SELECT lo_create(0)",
    "SELECT pg_notify('billing', 'stolen')",
    "SELECT set_config('ai.provider_id', '{bravo}', true) AS hijack, t.* FROM ai_views.invoices AS t",
    "SELECT set_config('work_mem', '4GB', true)",
    "SELECT txid_current()",
    "SELECT pg_current_xact_id()",
    "SELECT nextval('ai_views.invoices')",
    "SELECT pg_sleep_for('10 seconds')",
    "SELECT pg_read_file('postgresql.conf')",
    "SELECT query_to_xml('SELECT * FROM ai_views.invoices', true, true, '')",
    "SELECT pg_cancel_backend(pg_backend_pid())",
    "SELECT pg_blocking_pids(pg_backend_pid())",
]

# Each runs, and answers with ALPHA's rows only (or none, or no provider data at all).
CONTAINED = [
    "SELECT * FROM ai_views.invoices",
    "SELECT * FROM ai_views.invoices WHERE provider_id = {bravo}",
    "SELECT * FROM ai_views.invoices WHERE provider_id <> {alpha} OR true",
    "SELECT * FROM ai_views.invoices /* ; DELETE FROM public.invoicing_invoice */",
    # what the rewriter writes (the literal filter), with hostile parts around it
    "SELECT * FROM " + SCOPED_ALPHA + " UNION ALL "
    "SELECT t.id, t.number, t.provider_id FROM ai_views.invoices AS t WHERE t.provider_id = {bravo}",
    # an error that would tell whether a hidden row exists: the view's filter comes first
    "SELECT * FROM ai_views.invoices WHERE 1 / (CASE WHEN number LIKE 'BRAVO%' THEN 0 ELSE 1 END) = 1",
    "SELECT * FROM ai_views.invoice_lines",
    "SELECT * FROM ai_views.payment_allocations",
    "SELECT ai_scope.provider()",
    "SELECT current_user, session_user",
    "SELECT g FROM generate_series(1, 1000) AS g",
    # a WITH name that is, by PostgreSQL's rules, the one the query reads
    'WITH Pg_Roles AS (SELECT 1 AS x) SELECT * FROM "pg_roles"',
    "SELECT d::date AS day FROM generate_series(DATE '2024-01-01', DATE '2024-01-31', INTERVAL '1 day') AS d",
    "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY balance) AS median FROM ai_views.invoices",
    "SELECT name, currency, due_days, late_surcharge_percent FROM ai_views.provider",
]


SIDE_EFFECTING = [
    "pg_cancel_backend", "pg_terminate_backend", "pg_advisory_lock", "pg_advisory_xact_lock",
    "pg_try_advisory_lock", "pg_advisory_unlock_all", "lo_from_bytea", "lo_create", "lo_import", "lo_export",
    "loread", "lowrite", "set_config", "current_setting", "pg_notify", "pg_sleep", "pg_sleep_for",
    "pg_sleep_until", "txid_current", "pg_current_xact_id", "nextval", "setval", "currval", "lastval",
    "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_get_live_tuples", "pg_stat_get_activity",
    "pg_relation_size", "pg_total_relation_size", "pg_database_size", "pg_get_userbyid", "pg_reload_conf",
    "query_to_xml", "pg_current_wal_lsn", "pg_show_all_settings", "pg_lock_status", "pg_blocking_pids",
]  # fmt: skip


def query_id(sql: str) -> str:
    """A readable test id: the query's first 60 characters on one line."""
    return " ".join(sql.split())[:60]


@pytest.fixture(autouse=True)
def _one_second_budget(settings):
    settings.AI_QUERY_TIMEOUT_SECONDS = 1


@pytest.fixture
def tenants():
    return alpha_and_bravo()


def _one(query: str, params: list | None = None):
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchone()[0]


def cluster_state() -> dict[str, object]:
    """Every table's rows, and what a query could have changed beyond them, read as a superuser."""
    return {
        "tables": database_state(),
        "large objects": _one("SELECT count(*) FROM pg_largeobject_metadata"),
        "relations": _one(
            "SELECT string_agg(n.nspname || '.' || c.relname, ',' ORDER BY n.nspname, c.relname) "
            "FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE c.relpersistence <> 't'"
        ),
        "functions": _one("SELECT count(*) FROM pg_proc"),
        "reader": _one(
            "SELECT concat_ws(' ', r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb, r.rolcanlogin, "
            "r.rolbypassrls, r.rolconnlimit, (SELECT count(*) FROM pg_auth_members AS m WHERE m.member = r.oid), "
            "(SELECT array_to_string(s.setconfig, ',') FROM pg_db_role_setting AS s "
            " WHERE s.setrole = r.oid AND s.setdatabase = 0)) FROM pg_roles AS r WHERE r.rolname = %s",
            [READER],
        ),
        "catalog privileges": _one(
            "SELECT md5(string_agg(c.oid::regclass::text || coalesce(c.relacl::text, ''), ',' ORDER BY c.oid)) "
            "FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace "
            "WHERE n.nspname IN ('pg_catalog', 'information_schema')"
        ),
        "reader grants": _one(
            "SELECT count(*) FROM information_schema.role_table_grants WHERE grantee = %s", [READER]
        ),
    }


def reader_sessions() -> int:
    return _one(
        "SELECT count(*) FROM pg_stat_activity WHERE usename = %s AND datname = current_database()", [READER]
    )


def advisory_locks() -> int:
    return _one(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )


def assert_nothing_changed(before: dict[str, object]) -> None:
    assert _one("SELECT 1") == 1  # Django's own connection is alive
    wait_until(lambda: reader_sessions() == 0, seconds=10, message="a reader session stayed open")
    assert advisory_locks() == 0
    assert cluster_state() == before


@pytest.mark.parametrize("sql", REFUSED, ids=query_id)
def test_a_hostile_query_fails_and_changes_nothing(tenants, sql):
    alpha, bravo = tenants
    before = cluster_state()

    with pytest.raises(QueryFailed):
        run(sql.format(alpha=alpha.provider.pk, bravo=bravo.provider.pk), provider_id=alpha.provider.pk)

    assert_nothing_changed(before)


@pytest.mark.parametrize("sql", CONTAINED, ids=query_id)
def test_a_hostile_query_that_runs_sees_only_the_auditors_provider_and_changes_nothing(tenants, sql):
    alpha, bravo = tenants
    before = cluster_state()

    result = run(sql.format(alpha=alpha.provider.pk, bravo=bravo.provider.pk), provider_id=alpha.provider.pk)

    assert_only_provider(result, alpha.provider.pk)
    assert_nothing_changed(before)


def test_the_refused_and_contained_lists_hold_at_least_forty_queries():
    assert len(REFUSED) + len(CONTAINED) >= 40


PROVIDER_TABLES = [table for table in TABLES if table.provider_filter is not None]
SHARED_TABLES = [table for table in TABLES if table.provider_filter is None]


@pytest.mark.parametrize("table", PROVIDER_TABLES, ids=lambda table: table.name)
def test_every_providers_view_shows_the_bound_providers_rows_only(tenants, table):
    alpha, bravo = tenants

    mine = run(f"SELECT * FROM ai_views.{table.name}", provider_id=alpha.provider.pk, limit=1000)
    theirs = run(f"SELECT * FROM ai_views.{table.name}", provider_id=bravo.provider.pk, limit=1000)

    assert_only_provider(mine, alpha.provider.pk)
    assert mine.columns == list(table.columns)  # the views follow the allow-list of auditing/ai/schema.py
    assert {row[0] for row in mine.rows}.isdisjoint(row[0] for row in theirs.rows)


@pytest.mark.parametrize("table", SHARED_TABLES, ids=lambda table: table.name)
def test_a_shared_reference_view_is_the_same_for_every_provider(tenants, table):
    alpha, bravo = tenants

    mine = run(f"SELECT * FROM ai_views.{table.name}", provider_id=alpha.provider.pk, limit=1000)
    theirs = run(f"SELECT * FROM ai_views.{table.name}", provider_id=bravo.provider.pk, limit=1000)

    assert mine.columns == list(table.columns)
    assert mine.rows == theirs.rows != []


def test_the_views_hide_the_other_provider_even_when_the_query_names_it(tenants):
    alpha, bravo = tenants

    hijacked = run(
        f"SELECT t.number FROM ai_views.invoices AS t WHERE t.provider_id IN ({alpha.provider.pk}, {bravo.provider.pk})",
        provider_id=alpha.provider.pk,
    )

    assert [row[0] for row in hijacked.rows] == [alpha.invoice.number]


def test_a_long_query_is_stopped_with_a_message_a_person_understands(tenants):
    alpha, _ = tenants

    # The series in the select list streams its rows (no tuplestore, no temporary file): only the
    # statement timeout can stop it, however fast the machine fills the temp file limit.
    with pytest.raises(QueryFailed) as refused:
        run(
            "SELECT count(*) FROM (SELECT generate_series(1, 10000000000) AS n) AS s",
            provider_id=alpha.provider.pk,
        )

    assert refused.value.detail == "The query took longer than 1 second; narrow it down."


@pytest.mark.parametrize(
    ("sql", "detail"),
    [
        ("SELECT password FROM public.accounts_user", "This query reads something auditors may not read."),
        ("SELECT 1; SELECT 2", "Only one statement can run at a time."),
        ("DELETE FROM ai_views.invoices", "Only a query can run here (SELECT, WITH or VALUES), not DELETE."),
        ("SELECT nothing FROM ai_views.invoices", 'The query could not run: column "nothing" does not exist'),
    ],
)
def test_refusals_say_why(tenants, sql, detail):
    alpha, _ = tenants

    with pytest.raises(QueryFailed) as refused:
        run(sql, provider_id=alpha.provider.pk)

    assert refused.value.detail == detail


def test_other_sessions_are_not_visible_to_the_reader(tenants):
    alpha, _ = tenants

    with pytest.raises(QueryFailed) as refused:
        run("SELECT usename, state, query FROM pg_stat_activity", provider_id=alpha.provider.pk)

    assert refused.value.detail == "This query reads something auditors may not read."


@pytest.mark.parametrize("signal", ["pg_cancel_backend", "pg_terminate_backend"])
def test_the_reader_cannot_stop_another_auditors_session(tenants, signal):
    alpha, _ = tenants
    with reader_connection() as other_auditor:
        pid = other_auditor.info.backend_pid

        with pytest.raises(QueryFailed, match="may not read"):
            run(f"SELECT {signal}({pid})", provider_id=alpha.provider.pk)

        assert other_auditor.execute("SELECT 1").fetchone() == (1,)


def test_the_reader_can_read_no_catalog_relation_and_call_no_side_effecting_built_in(tenants):
    readable = _one(
        "SELECT string_agg(c.oid::regclass::text, ', ') FROM pg_class AS c "
        "JOIN pg_namespace AS n ON n.oid = c.relnamespace "
        "WHERE n.nspname IN ('pg_catalog', 'information_schema') AND c.relkind IN ('r', 'v', 'm') "
        "AND has_table_privilege(%s, c.oid, 'SELECT')",
        [READER],
    )
    callable_ = _one(
        "SELECT string_agg(p.oid::regprocedure::text, ', ') FROM pg_proc AS p "
        "WHERE p.proname = ANY(%s) AND has_function_privilege(%s, p.oid, 'EXECUTE')",
        [SIDE_EFFECTING, READER],
    )

    assert readable is None
    assert callable_ is None
    # Monitoring keeps what every role had.
    assert _one("SELECT has_table_privilege('pg_monitor', 'pg_catalog.pg_stat_user_tables', 'SELECT')")


def test_the_executor_refuses_to_run_while_the_reader_can_read_the_catalogs(tenants):
    alpha, _ = tenants
    with connection.cursor() as cursor:
        cursor.execute(f"GRANT SELECT ON pg_catalog.pg_class TO {READER}")
    try:
        with pytest.raises(QueryFailed) as refused:
            run("SELECT count(*) FROM ai_views.invoices", provider_id=alpha.provider.pk)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"REVOKE SELECT ON pg_catalog.pg_class FROM {READER}")

    assert refused.value.detail == execute.NOT_SET_UP


def test_a_notification_sent_by_a_query_is_never_delivered(tenants):
    alpha, _ = tenants
    params = connection.get_connection_params()
    params.pop("cursor_factory")
    listener = psycopg.connect(**params, autocommit=True)
    try:
        listener.execute("LISTEN billing")
        with pytest.raises(QueryFailed, match="may not read"):
            run("SELECT pg_notify('billing', 'stolen')", provider_id=alpha.provider.pk)
        ready, _, _ = select.select([listener.fileno()], [], [], 0.5)
        delivered = list(listener.notifies(timeout=0.1, stop_after=1)) if ready else []
    finally:
        listener.close()

    assert delivered == []


def reader_connection() -> psycopg.Connection:
    """A session of the reader role opened by hand, without the executor's binding."""
    return psycopg.connect(**execute._reader_params(), autocommit=True)


def test_a_reader_session_that_was_not_bound_reads_nothing(tenants):
    with reader_connection() as reader, pytest.raises(psycopg.errors.RaiseException, match="not bound"):
        reader.execute("SELECT * FROM ai_views.invoices")


def test_a_binding_the_reader_makes_itself_is_not_a_binding(tenants):
    _, bravo = tenants
    with reader_connection() as reader:
        reader.execute("BEGIN READ WRITE")
        reader.execute("CREATE TEMPORARY TABLE ai_provider (provider_id bigint NOT NULL)")
        reader.execute("INSERT INTO pg_temp.ai_provider VALUES (%s)", [bravo.provider.pk])

        with pytest.raises(psycopg.errors.RaiseException, match="not bound"):
            reader.execute("SELECT * FROM ai_views.invoices")


def test_the_reader_role_can_read_the_views_and_nothing_else(tenants):
    privileges = {
        table: _one("SELECT has_table_privilege(%s, %s, 'SELECT')", [READER, f"public.{table}"])
        for table in connection.introspection.table_names()
    }
    views = {
        table.name: _one("SELECT has_table_privilege(%s, %s, 'SELECT')", [READER, f"ai_views.{table.name}"])
        for table in TABLES
    }
    attributes = _one(
        "SELECT concat_ws(' ', rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, "
        "rolbypassrls) FROM pg_roles WHERE rolname = %s",
        [READER],
    )

    assert not any(privileges.values()), [table for table, allowed in privileges.items() if allowed]
    assert all(views.values())
    assert attributes == "f f f f t f f"  # only LOGIN
    assert _one("SELECT has_schema_privilege(%s, 'public', 'CREATE')", [READER]) is False
    assert _one("SELECT has_schema_privilege(%s, 'ai_views', 'CREATE')", [READER]) is False
    assert _one("SELECT has_database_privilege(%s, current_database(), 'CONNECT')", [READER]) is True


def test_the_executor_refuses_to_run_as_a_role_with_more_than_a_readers_powers(tenants, settings):
    alpha, _ = tenants
    settings.AI_QUERY_DB_USER = connection.settings_dict["USER"]  # the app's own role: a superuser here

    with pytest.raises(QueryFailed, match="cannot reach the database"):
        run("SELECT * FROM public.accounts_user", provider_id=alpha.provider.pk)


reader_migration = importlib.import_module("auditing.migrations.0002_ai_reader")
catalog_migration = importlib.import_module("auditing.migrations.0004_ai_reader_catalog")
collections_migration = importlib.import_module("auditing.migrations.0008_ai_reader_collections")
orders_migration = importlib.import_module("auditing.migrations.0009_ai_reader_orders")


def test_the_reader_migrations_run_again_without_changing_anything(tenants, monkeypatch):
    before = cluster_state()
    # A view a later migration widened is that one's to make again: a view never loses columns.
    monkeypatch.setattr(
        reader_migration,
        "VIEWS",
        tuple(view for view in reader_migration.VIEWS if view[0] not in collections_migration.WIDENED),
    )

    with connection.schema_editor() as editor:
        reader_migration.forwards(apps, editor)
        catalog_migration.forwards(apps, editor)
        collections_migration.forwards(apps, editor)
        orders_migration.forwards(apps, editor)

    assert cluster_state() == before


def test_the_migration_never_turns_the_apps_own_role_into_the_reader(settings):
    settings.AI_QUERY_DB_USER = connection.settings_dict["USER"]

    with pytest.raises(RuntimeError, match="must be a role of its own"), connection.schema_editor() as editor:
        reader_migration.forwards(apps, editor)


def test_the_catalog_migration_as_a_non_superuser_changes_no_privilege_and_says_what_to_do(
    tenants, monkeypatch, caplog
):
    before = cluster_state()
    monkeypatch.setattr(catalog_migration, "_is_superuser", lambda cursor: False)

    with connection.schema_editor() as editor:
        catalog_migration.forwards(apps, editor)

    assert cluster_state() == before
    assert "A superuser must run: manage.py migrate auditing 0003, then manage.py migrate." in caplog.text
