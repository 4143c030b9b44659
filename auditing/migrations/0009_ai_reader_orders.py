"""PostgreSQL: the AI reader's views of disconnection orders and retroactive price orders, made as
migration 0008 makes its views (security barrier, the allow-list's columns, the bound provider's rows,
readable by the reader role alone). Nothing on SQLite."""

import importlib

from django.db import migrations
from psycopg import sql

PROVIDER = "t.provider_id = (SELECT ai_scope.provider())"
# (view, real table, columns, condition over the table aliased t)
VIEWS = (
    ("disconnection_orders", "invoicing_disconnectionorder", ("id", "provider_id", "connection_id", "customer_id", "number", "issued_on", "overdue_balance", "reason", "step_id", "issued_by_id", "status", "event_id", "closed_by_id", "closed_at", "withdrawn_reason"), PROVIDER),
    ("price_orders", "providers_priceorder", ("id", "provider_id", "reference", "description", "valid_from", "connection_type_id", "status", "entered_by_id", "entered_at", "confirmed_by_id", "confirmed_at"), PROVIDER),
)  # fmt: skip

collections = importlib.import_module("auditing.migrations.0008_ai_reader_collections")


def forwards(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    raw = connection.connection
    with connection.cursor() as cursor:
        for view in VIEWS:
            collections._view(cursor, raw, *view)


def backwards(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    raw = connection.connection
    with connection.cursor() as cursor:
        for view, *_ in VIEWS:
            cursor.execute(sql.SQL("DROP VIEW {}").format(sql.Identifier("ai_views", view)).as_string(raw))


class Migration(migrations.Migration):
    dependencies = [
        ("auditing", "0008_ai_reader_collections"),
        ("invoicing", "0017_price_order_runs"),
        ("providers", "0007_price_orders"),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
