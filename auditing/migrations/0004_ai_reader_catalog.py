"""PostgreSQL: the AI reader role loses what every role gets by default in this database, and gains
its provider's own row. Nothing on SQLite.

1. View ai_views.provider: the bound provider's name and settings (no e-mail or phone), one row,
   readable by the reader like the other views of migration 0002.

2. The system catalogs and the side-effecting built-ins, which PostgreSQL grants to PUBLIC. A role
   cannot be denied less than PUBLIC holds, so in this database (catalog privileges are per
   database, even for the shared catalogs such as pg_database) PUBLIC loses:
   - SELECT on every relation of pg_catalog and information_schema: pg_class (reltuples), the
     statistics views (pg_stat_user_tables counts every provider's rows), pg_roles, pg_settings,
     pg_stat_activity, pg_database, pg_locks, ...;
   - EXECUTE on the built-ins that read statistics, sizes or other sessions, signal or wait for
     other backends, take advisory locks, touch large objects, sequences, files, settings, WAL or
     replication, notify, sleep, or run SQL given as text (`FUNCTIONS` below, by name pattern, in
     every schema, dblink included when installed).
   PostgreSQL needs none of these privileges to plan and run a query (it reads its catalogs
   internally, without privilege checks), so the reader's queries over ai_views still run; the
   functions the views and ai_scope call run as their owner.
   What PUBLIC held is granted back to the database's owner (the app's role) and to pg_monitor
   (monitoring), so only roles of neither kind lose it: the reader, and any other role a DBA must
   then grant explicitly. The executor refuses to run while the reader can still read pg_class
   (`execute.CATALOG_PROBE`).
   Catalog objects belong to the bootstrap superuser: only a superuser may change their privileges.
   Migrating as another user changes nothing here and says so; AI queries then stay off until a
   superuser migrates (manage.py migrate auditing 0003, then manage.py migrate).
   Unapplying grants PUBLIC back exactly what initdb gave it (pg_init_privs).
"""

import logging

from django.conf import settings
from django.db import migrations
from psycopg import sql

logger = logging.getLogger(__name__)

SCHEMAS = ("pg_catalog", "information_schema")
PROVIDER_COLUMNS = (
    "id", "code", "name", "city", "is_active", "currency", "due_days", "late_surcharge_percent", "created_at",
)  # fmt: skip
# Function names (regular expressions) PUBLIC may no longer execute; type input/output functions
# (`_in`, `_out`, `_recv`, `_send`) are left alone.
FUNCTIONS = (
    r"^pg_stat_", r"^pg_(cancel|terminate)_backend$", r"^pg_reload_conf$", r"^pg_rotate_logfile",
    r"^pg_log_backend", r"^pg_(try_)?advisory_", r"^lo_", r"^lo(read|write)$", r"^pg_notify$",
    r"^pg_notification_queue_usage$", r"^pg_listening_channels$", r"^set_config$", r"^current_setting$",
    r"^pg_show_all_", r"^pg_settings_", r"^dblink", r"^pg_sleep", r"^(nextval|setval|currval|lastval)$",
    r"^pg_sequence_", r"^txid_", r"^pg_current_", r"^pg_last_", r"^pg_xact_", r"^pg_snapshot_",
    r"^pg_read_", r"^pg_ls_", r"^pg_file", r"^pg_.*_size$", r"^pg_get_userbyid$", r"blocking_pids$",
    r"^pg_lock_status$", r"^pg_isolation_test", r"^pg_control_", r"^pg_.*wal", r"^pg_logical_",
    r"^pg_replication_", r"^pg_get_replication", r"_to_xml", r"^brin_(de)?summarize", r"^gin_clean_pending_list$",
    r"^pg_backup", r"^pg_promote$", r"^pg_create_", r"^pg_drop_", r"^pg_copy_", r"^pg_switch_",
    r"^pg_tablespace_databases$", r"^pg_get_multixact_members$", r"^pg_prepared_xact$", r"^pg_get_backend_memory",
    r"^pg_get_shmem", r"^inet_server_", r"^pg_export_snapshot$", r"^pg_import_system_collations$",
    r"^pg_relation_file", r"^pg_filenode_relation$",
)  # fmt: skip
FUNCTION_PATTERN = "(" + "|".join(FUNCTIONS) + ")"
TYPE_SUPPORT = r"_(in|out|recv|send)$"
GRANTEES = "pg_monitor"

# What PUBLIC holds now: an ACL of NULL means the object's default (acldefault).
RELATIONS_OF_PUBLIC = """
SELECT c.oid::regclass::text FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
CROSS JOIN LATERAL pg_catalog.aclexplode(coalesce(c.relacl, pg_catalog.acldefault('r', c.relowner))) AS a
WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
  AND a.grantee = 0 AND a.privilege_type = 'SELECT'
ORDER BY 1
"""
FUNCTIONS_OF_PUBLIC = """
SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc AS p
JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace
CROSS JOIN LATERAL pg_catalog.aclexplode(coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))) AS a
WHERE n.nspname NOT IN ('ai_scope', 'ai_views') AND p.prokind IN ('f', 'a', 'w')
  AND p.proname ~ %s AND p.proname !~ %s AND a.grantee = 0 AND a.privilege_type = 'EXECUTE'
ORDER BY 1
"""
# What initdb gave PUBLIC (for unapplying).
INITIAL_RELATIONS = """
SELECT c.oid::regclass::text FROM pg_catalog.pg_init_privs AS i
JOIN pg_catalog.pg_class AS c ON c.oid = i.objoid AND i.classoid = 'pg_catalog.pg_class'::regclass
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
CROSS JOIN LATERAL pg_catalog.aclexplode(i.initprivs) AS a
WHERE i.objsubid = 0 AND n.nspname = ANY(%s) AND a.grantee = 0 AND a.privilege_type = 'SELECT'
"""
INITIAL_FUNCTIONS = """
SELECT p.oid::regprocedure::text FROM pg_catalog.pg_init_privs AS i
JOIN pg_catalog.pg_proc AS p ON p.oid = i.objoid AND i.classoid = 'pg_catalog.pg_proc'::regclass
CROSS JOIN LATERAL pg_catalog.aclexplode(i.initprivs) AS a
WHERE p.proname ~ %s AND p.proname !~ %s AND a.grantee = 0 AND a.privilege_type = 'EXECUTE'
"""


def _reader() -> str:
    return getattr(settings, "AI_QUERY_DB_USER", "billing_ai_reader")


def _provider_view(cursor, raw) -> None:
    name = sql.Identifier("ai_views", "provider")
    select = sql.SQL(
        "SELECT {} FROM providers_provider AS t WHERE t.id = (SELECT ai_scope.provider())"
    ).format(sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in PROVIDER_COLUMNS))
    for statement in (
        sql.SQL("CREATE OR REPLACE VIEW {} WITH (security_barrier) AS {}").format(name, select),
        sql.SQL("REVOKE ALL ON {} FROM PUBLIC").format(name),
        sql.SQL("GRANT SELECT ON {} TO {}").format(name, sql.Identifier(_reader())),
    ):
        cursor.execute(statement.as_string(raw))


def _owner_and_monitor(cursor) -> sql.Composable:
    """The database's owner (unless a superuser, who needs no grant) and pg_monitor."""
    cursor.execute(
        "SELECT r.rolname, r.rolsuper FROM pg_catalog.pg_database AS d "
        "JOIN pg_catalog.pg_roles AS r ON r.oid = d.datdba WHERE d.datname = current_database()"
    )
    owner, owner_is_superuser = cursor.fetchone()
    names = [GRANTEES] if owner_is_superuser else [owner, GRANTEES]
    return sql.SQL(", ").join(sql.Identifier(name) for name in names)


def _is_superuser(cursor) -> bool:
    cursor.execute("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user")
    return cursor.fetchone()[0]


def _catalog_closed(cursor, raw) -> None:
    if not _is_superuser(cursor):
        logger.warning(
            "Not a superuser: the AI query role %s can still read PostgreSQL's catalogs and statistics "
            "(every provider's row counts) and call side-effecting built-ins, so AI queries will refuse "
            "to run. A superuser must run: manage.py migrate auditing 0003, then manage.py migrate.",
            _reader(),
        )
        return
    grantees = _owner_and_monitor(cursor)
    cursor.execute(RELATIONS_OF_PUBLIC, [list(SCHEMAS)])
    relations = [name for (name,) in cursor.fetchall()]
    cursor.execute(FUNCTIONS_OF_PUBLIC, [FUNCTION_PATTERN, TYPE_SUPPORT])
    functions = [name for (name,) in cursor.fetchall()]
    # Granted back first, so the owner never loses a privilege it had through PUBLIC.
    for relation in relations:
        cursor.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.SQL(relation), grantees).as_string(raw))
        cursor.execute(sql.SQL("REVOKE SELECT ON {} FROM PUBLIC").format(sql.SQL(relation)).as_string(raw))
    for function in functions:
        cursor.execute(
            sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(sql.SQL(function), grantees).as_string(raw)
        )
        cursor.execute(
            sql.SQL("REVOKE EXECUTE ON FUNCTION {} FROM PUBLIC").format(sql.SQL(function)).as_string(raw)
        )


def forwards(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    raw = connection.connection
    with connection.cursor() as cursor:
        _provider_view(cursor, raw)
        _catalog_closed(cursor, raw)


def backwards(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    raw = connection.connection
    with connection.cursor() as cursor:
        cursor.execute("DROP VIEW IF EXISTS ai_views.provider")
        if not _is_superuser(cursor):
            return
        cursor.execute(INITIAL_RELATIONS, [list(SCHEMAS)])
        for (relation,) in cursor.fetchall():
            cursor.execute(sql.SQL("GRANT SELECT ON {} TO PUBLIC").format(sql.SQL(relation)).as_string(raw))
        cursor.execute(INITIAL_FUNCTIONS, [FUNCTION_PATTERN, TYPE_SUPPORT])
        for (function,) in cursor.fetchall():
            cursor.execute(
                sql.SQL("GRANT EXECUTE ON FUNCTION {} TO PUBLIC").format(sql.SQL(function)).as_string(raw)
            )


class Migration(migrations.Migration):
    dependencies = [("auditing", "0003_ai_query")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
