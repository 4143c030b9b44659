"""On PostgreSQL, the database itself refuses UPDATE and DELETE of audit rows: a trigger raises
before any row changes. TRUNCATE, a table owner's operation, is left to the database's privileges
(the test runner empties tables with it)."""

from django.db import migrations

REFUSE = """
CREATE OR REPLACE FUNCTION auditing_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit rows are append-only: % refused on %', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
DROP TRIGGER IF EXISTS auditing_auditlog_append_only ON auditing_auditlog;
CREATE TRIGGER auditing_auditlog_append_only BEFORE UPDATE OR DELETE ON auditing_auditlog
    FOR EACH ROW EXECUTE FUNCTION auditing_refuse_change();
"""
ALLOW = """
DROP TRIGGER IF EXISTS auditing_auditlog_append_only ON auditing_auditlog;
DROP FUNCTION IF EXISTS auditing_refuse_change();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REFUSE, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ALLOW, params=None)


class Migration(migrations.Migration):
    dependencies = [("auditing", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
