"""PostgreSQL: the role AI queries run as, and the only things it may read. Nothing on SQLite.

- Role `settings.AI_QUERY_DB_USER` (default billing_ai_reader): LOGIN, NOSUPERUSER, NOCREATEDB,
  NOCREATEROLE, NOINHERIT, NOREPLICATION, NOBYPASSRLS, 20 connections at most, member of no role,
  with its password from `settings.AI_QUERY_DB_PASSWORD` when that is set (sent hashed). Role
  defaults, for any session of it: search_path ai_views, read-only transactions, statement, lock
  and idle timeouts; when the migrating user is a superuser also track_activities off (other
  auditors' running queries stay out of its pg_stat_activity) and a temp file limit.
  Roles are cluster-wide: the role is created once and checked (and corrected) by every later
  database's migration; creating or changing it needs a superuser or CREATEROLE. Without those the
  migration stops and says what a DBA must run.
- Schema ai_scope: `bind(provider)` writes the provider of the session into a temporary table
  owned by the migrating (app) role, once per session; `provider()` reads it back, and fails when
  the session was not bound. Both run as the app role (SECURITY DEFINER, fixed search_path); the
  reader may call them but cannot read, change or drop the table, and cannot bind twice.
- Schema ai_views: one security-barrier view per logical table of auditing/ai/schema.py, with
  exactly its allowed columns, keeping only the bound provider's rows (invoice lines and payment
  allocations through their invoice and payment; payment methods are shared reference data).
  The reader gets USAGE on the two schemas, SELECT on the views, EXECUTE on the two functions and
  CONNECT on this database; nothing on the app's schema public.

The view definitions are frozen here, as migrations are: a change of the allow-list in
auditing/ai/schema.py needs a migration recreating the view (a test compares the two). A later
migration that alters a column a view reads must drop and recreate that view.
"""

import logging

from django.conf import settings
from django.db import migrations
from psycopg import sql

logger = logging.getLogger(__name__)

DEFAULT_ROLE = "billing_ai_reader"
CONNECTION_LIMIT = 20
ROLE_SETTINGS = {
    "search_path": "ai_views",
    "default_transaction_read_only": "on",
    "statement_timeout": "5s",
    "lock_timeout": "1s",
    "idle_in_transaction_session_timeout": "10s",
}
ROLE_SETTINGS_PG14 = {"idle_session_timeout": "60s"}
# Only a superuser may set these for a role.
ROLE_SETTINGS_SUPERUSER = {"track_activities": "off", "temp_file_limit": "256MB"}

PROVIDER = "t.provider_id = (SELECT ai_scope.provider())"
# (view, real table, columns, condition over the table aliased t); None: shared reference data.
VIEWS = (
    (
        "invoices",
        "invoicing_invoice",
        (
            "id",
            "number",
            "provider_id",
            "customer_id",
            "connection_id",
            "period",
            "issue_date",
            "due_date",
            "source",
            "billing_run_id",
            "billing_days",
            "peak_units",
            "off_peak_units",
            "kwh_consumed",
            "energy_charge",
            "tax_total",
            "fixed_total",
            "subsidy_total",
            "current_charges",
            "arrears",
            "payable_before_due",
            "late_surcharge",
            "payable_after_due",
            "amount_paid",
            "adjustment_total",
            "balance",
            "status",
            "paid_on",
            "created_by_id",
            "created_at",
        ),
        PROVIDER,
    ),
    (
        "invoice_lines",
        "invoicing_invoiceline",
        ("id", "invoice_id", "position", "kind", "label", "code", "amount"),
        "t.invoice_id IN (SELECT i.id FROM invoicing_invoice AS i WHERE i.provider_id = (SELECT ai_scope.provider()))",
    ),
    (
        "payments",
        "invoicing_payment",
        (
            "id",
            "provider_id",
            "connection_id",
            "invoice_id",
            "receipt_number",
            "amount",
            "method_id",
            "reference",
            "payable_before",
            "payable_after",
            "received_by_id",
            "received_at",
        ),
        PROVIDER,
    ),
    (
        "payment_allocations",
        "invoicing_paymentallocation",
        ("id", "payment_id", "invoice_id", "amount"),
        "t.payment_id IN (SELECT p.id FROM invoicing_payment AS p WHERE p.provider_id = (SELECT ai_scope.provider()))",
    ),
    ("payment_methods", "invoicing_paymentmethod", ("id", "code", "name", "is_active"), None),
    (
        "adjustments",
        "invoicing_adjustment",
        (
            "id",
            "provider_id",
            "invoice_id",
            "number",
            "kind",
            "direction",
            "amount",
            "reason",
            "officer_id",
            "officer_name",
            "officer_designation",
            "original_amount",
            "balance_before",
            "balance_after",
            "created_at",
        ),
        PROVIDER,
    ),
    (
        "billing_runs",
        "invoicing_billingrun",
        (
            "id",
            "provider_id",
            "period",
            "issue_date",
            "status",
            "total",
            "done",
            "issued",
            "already_billed",
            "skipped",
            "failed",
            "billed_amount",
            "started_by_id",
            "started_at",
            "finished_at",
        ),
        PROVIDER,
    ),
    (
        "customers",
        "billing_customer",
        ("id", "provider_id", "user_id", "number", "kind", "organisation", "created_at"),
        PROVIDER,
    ),
    (
        "connections",
        "billing_serviceconnection",
        (
            "id",
            "provider_id",
            "customer_id",
            "number",
            "connection_type_id",
            "meter_number",
            "meter_type",
            "division",
            "subdivision",
            "installation_date",
            "status",
            "created_at",
        ),
        PROVIDER,
    ),
    (
        "meter_readings",
        "billing_meterreading",
        (
            "id",
            "provider_id",
            "connection_id",
            "taken_at",
            "import_peak",
            "import_off_peak",
            "export_peak",
            "export_off_peak",
            "meter_replaced",
            "source",
        ),
        PROVIDER,
    ),
    (
        "connection_types",
        "providers_connectiontype",
        ("id", "provider_id", "code", "description", "sanctioned_load_kw"),
        PROVIDER,
    ),
    (
        "tariffs",
        "providers_tariffrow",
        (
            "id",
            "provider_id",
            "connection_type_id",
            "code",
            "bucket",
            "mode",
            "slab",
            "band_low",
            "band_high",
            "rate",
            "min_units",
            "min_amount",
            "valid_from",
            "valid_to",
            "created_by_id",
            "created_at",
        ),
        PROVIDER,
    ),
    (
        "tax_rules",
        "providers_taxrule",
        ("id", "provider_id", "connection_type_id", "name", "rate", "valid_from", "valid_to"),
        PROVIDER,
    ),
    (
        "users",
        "accounts_user",
        ("id", "provider_id", "name", "designation", "is_active", "created_at"),
        PROVIDER,
    ),
    (
        "audit_log",
        "auditing_auditlog",
        (
            "id",
            "provider_id",
            "actor_id",
            "actor_role",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "old_values",
            "new_values",
            "request_id",
            "created_at",
        ),
        PROVIDER,
    ),
)

# The temporary table's owner is the functions' owner (current_user inside SECURITY DEFINER): a
# temporary table of the same name made by anyone else is not a binding.
FUNCTIONS = """
CREATE OR REPLACE FUNCTION ai_scope.bind(provider bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF provider IS NULL THEN
        RAISE EXCEPTION 'an AI query session needs a provider';
    END IF;
    IF to_regclass('pg_temp.ai_provider') IS NOT NULL THEN
        RAISE EXCEPTION 'this session is already bound to a provider';
    END IF;
    CREATE TEMPORARY TABLE ai_provider (provider_id bigint NOT NULL);
    INSERT INTO pg_temp.ai_provider (provider_id) VALUES (provider);
END
$$;

CREATE OR REPLACE FUNCTION ai_scope.provider() RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    binding regclass := to_regclass('pg_temp.ai_provider');
    bound bigint;
BEGIN
    IF binding IS NULL OR (SELECT c.relowner FROM pg_catalog.pg_class AS c WHERE c.oid = binding)
            IS DISTINCT FROM (SELECT r.oid FROM pg_catalog.pg_roles AS r WHERE r.rolname = current_user) THEN
        RAISE EXCEPTION 'this session is not bound to a provider';
    END IF;
    SELECT a.provider_id INTO STRICT bound FROM pg_temp.ai_provider AS a;
    RETURN bound;
END
$$;

REVOKE ALL ON FUNCTION ai_scope.bind(bigint), ai_scope.provider() FROM PUBLIC;
"""


def _one(cursor, query, params=None):
    cursor.execute(query, params)
    return cursor.fetchone()


def _reader_role(cursor, role: str, raw) -> None:
    """Create the role if it is missing, or bring an existing one to the attributes and defaults it
    must have; change nothing that is already right (so concurrent migrations of test databases
    do not collide on the role's catalog row)."""
    is_superuser, can_create_roles, server_version = _one(
        cursor,
        "SELECT rolsuper, rolcreaterole, current_setting('server_version_num')::int "
        "FROM pg_roles WHERE rolname = current_user",
    )
    may_manage = is_superuser or can_create_roles
    ident = sql.Identifier(role)
    attributes = sql.SQL(
        "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS CONNECTION LIMIT {}"
    ).format(sql.Literal(CONNECTION_LIMIT))
    manual = (
        f"ask a DBA to run: CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT "
        f"NOREPLICATION NOBYPASSRLS CONNECTION LIMIT {CONNECTION_LIMIT}; (or migrate as a superuser) "
        "then migrate again"
    )

    existing = _one(
        cursor,
        "SELECT rolsuper OR rolcreatedb OR rolcreaterole OR rolinherit OR NOT rolcanlogin "
        "OR rolreplication OR rolbypassrls OR rolconnlimit <> %s, "
        "rolsuper OR rolname = current_user OR EXISTS (SELECT FROM pg_class WHERE relowner = r.oid) "
        "FROM pg_roles AS r WHERE rolname = %s",
        [CONNECTION_LIMIT, role],
    )
    if existing is not None and existing[1]:
        # Never strip a superuser or the app's own role: AI_QUERY_DB_USER must be a role of its own.
        raise RuntimeError(
            f"AI_QUERY_DB_USER names {role}, a superuser, the migrating role or an owner of tables: "
            "the AI query role must be a role of its own."
        )
    if existing is None:
        if not may_manage:
            raise RuntimeError(
                f"The AI query role {role} does not exist and this user cannot create it: {manual}."
            )
        # Another database's migration may create it at the same moment.
        cursor.execute(
            sql.SQL(
                "DO $$ BEGIN CREATE ROLE {} {}; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
            )
            .format(ident, attributes)
            .as_string(raw)
        )
    elif existing[0]:
        if not may_manage:
            raise RuntimeError(f"The AI query role {role} has attributes it must not have: {manual}.")
        cursor.execute(sql.SQL("ALTER ROLE {} {}").format(ident, attributes).as_string(raw))

    password = getattr(settings, "AI_QUERY_DB_PASSWORD", "")
    if password:
        # Hashed here (SCRAM or MD5, as the server's password_encryption says): the password
        # itself is never sent or logged.
        hashed = raw.pgconn.encrypt_password(password.encode(), role.encode()).decode()
        cursor.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(ident, sql.Literal(hashed)).as_string(raw))

    # Member of no role: SET ROLE (or set_config('role', ...)) would otherwise reach its privileges.
    cursor.execute(
        "SELECT g.rolname FROM pg_auth_members AS m JOIN pg_roles AS g ON g.oid = m.roleid "
        "JOIN pg_roles AS r ON r.oid = m.member WHERE r.rolname = %s",
        [role],
    )
    for (group,) in cursor.fetchall():
        cursor.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(group), ident).as_string(raw))

    wanted = dict(ROLE_SETTINGS)
    if server_version >= 140000:
        wanted.update(ROLE_SETTINGS_PG14)
    if is_superuser:
        wanted.update(ROLE_SETTINGS_SUPERUSER)
    else:
        logger.warning(
            "Not a superuser: the AI query role %s keeps track_activities on (its sessions see each "
            "other's running queries in pg_stat_activity) and no temp_file_limit.",
            role,
        )
    current = _one(
        cursor,
        "SELECT s.setconfig FROM pg_db_role_setting AS s JOIN pg_roles AS r ON r.oid = s.setrole "
        "WHERE r.rolname = %s AND s.setdatabase = 0",
        [role],
    )
    current = dict(item.split("=", 1) for item in (current[0] if current else None) or ())
    for name, value in wanted.items():
        if current.get(name) != value:
            if not may_manage:
                raise RuntimeError(
                    f"The AI query role {role} needs ALTER ROLE {role} SET {name} = {value}: {manual}."
                )
            cursor.execute(
                sql.SQL("ALTER ROLE {} SET {} = {}")
                .format(ident, sql.SQL(name), sql.Literal(value))
                .as_string(raw)
            )


def forwards(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    role = getattr(settings, "AI_QUERY_DB_USER", DEFAULT_ROLE)
    ident = sql.Identifier(role)
    raw = connection.connection  # the psycopg connection, to quote identifiers and literals
    with connection.cursor() as cursor:
        _reader_role(cursor, role, raw)
        (database,) = _one(cursor, "SELECT current_database()")
        statements = [
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), ident),
            # The app's schema: nothing, beyond what PUBLIC has (PostgreSQL 15+: USAGE only, which
            # shows names, not rows; tables are not granted to PUBLIC).
            sql.SQL("REVOKE ALL ON SCHEMA public FROM {}").format(ident),
            sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(ident),
            sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {}").format(ident),
            sql.SQL("CREATE SCHEMA IF NOT EXISTS ai_scope"),
            sql.SQL("CREATE SCHEMA IF NOT EXISTS ai_views"),
            sql.SQL("REVOKE ALL ON SCHEMA ai_scope, ai_views FROM PUBLIC"),
            sql.SQL(FUNCTIONS),
            sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA ai_views FROM {}").format(ident),
        ]
        for view, table, columns, condition in VIEWS:
            select = sql.SQL("SELECT {} FROM {} AS t").format(
                sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(column)) for column in columns),
                sql.Identifier(table),
            )
            if condition is not None:
                select = sql.SQL("{} WHERE {}").format(select, sql.SQL(condition))
            name = sql.Identifier("ai_views", view)
            statements += [
                sql.SQL("CREATE OR REPLACE VIEW {} WITH (security_barrier) AS {}").format(name, select),
                sql.SQL("REVOKE ALL ON {} FROM PUBLIC").format(name),
                sql.SQL("GRANT SELECT ON {} TO {}").format(name, ident),
            ]
        statements += [
            sql.SQL("GRANT USAGE ON SCHEMA ai_scope, ai_views TO {}").format(ident),
            sql.SQL("GRANT EXECUTE ON FUNCTION ai_scope.bind(bigint), ai_scope.provider() TO {}").format(
                ident
            ),
        ]
        for statement in statements:
            cursor.execute(statement.as_string(raw))


def backwards(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    role = getattr(settings, "AI_QUERY_DB_USER", DEFAULT_ROLE)
    raw = connection.connection
    with connection.cursor() as cursor:
        cursor.execute("DROP SCHEMA IF EXISTS ai_views CASCADE")
        cursor.execute("DROP SCHEMA IF EXISTS ai_scope CASCADE")
        (database,) = _one(cursor, "SELECT current_database()")
        if _one(cursor, "SELECT 1 FROM pg_roles WHERE rolname = %s", [role]):
            # The role itself stays: it is cluster-wide and other databases may use it.
            cursor.execute(
                sql.SQL("REVOKE CONNECT ON DATABASE {} FROM {}")
                .format(sql.Identifier(database), sql.Identifier(role))
                .as_string(raw)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("auditing", "0001_initial"),
        # Written at the same time; depending on it keeps one leaf (the order does not matter).
        ("auditing", "0002_append_only_trigger"),
        ("accounts", "0002_purge_schedule"),
        ("billing", "0002_calculator_permission"),
        ("invoicing", "0002_payment_methods_and_schedules"),
        ("providers", "0002_price_schedule"),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
