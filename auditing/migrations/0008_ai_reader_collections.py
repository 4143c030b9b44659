"""PostgreSQL: the AI reader's views of corrections and collections, and the columns bills and
customers gained. Nothing on SQLite.

One security-barrier view per new logical table of auditing/ai/schema.py, in schema ai_views, with
exactly its allowed columns and only the bound provider's rows, readable by the reader role alone
(as migration 0002 made the first ones): payment reversals, credit notes and their lines, customers'
credit balances and their movements, refunds, pending charges, dunning levels, cases and steps,
payment plans and their instalments, payment file formats, files and rows, connection events. The
lines of a credit note and the rows of a payment file keep their provider through their note and
file; the bills of a dunning step or a payment plan through the bill.

The views of invoices and customers gain the columns appended to their allow-lists (a view can gain
columns only at its end): a bill's credits, fees, estimate flag and the bill it replaces, and a
customer's own name. Nothing the app's tables hold beyond the allow-list is shown: no idempotency keys
or request hashes, no file digests, no customer contact details.

The definitions are frozen here, as migrations are; a test compares the views with the allow-list.
"""

import importlib

from django.conf import settings
from django.db import migrations
from psycopg import sql

PROVIDER = "t.provider_id = (SELECT ai_scope.provider())"
THROUGH_INVOICE = (
    "t.invoice_id IN (SELECT i.id FROM invoicing_invoice AS i WHERE i.provider_id = (SELECT ai_scope.provider()))"
)
# (view, real table, columns, condition over the table aliased t)
VIEWS = (
    ("invoices", "invoicing_invoice", ("id", "number", "provider_id", "customer_id", "connection_id", "period", "issue_date", "due_date", "source", "billing_run_id", "billing_days", "peak_units", "off_peak_units", "kwh_consumed", "energy_charge", "tax_total", "fixed_total", "subsidy_total", "current_charges", "arrears", "payable_before_due", "late_surcharge", "payable_after_due", "amount_paid", "adjustment_total", "balance", "status", "paid_on", "created_by_id", "created_at", "fee_total", "credited", "credit_applied", "estimated", "replaces_id"), PROVIDER),
    ("customers", "billing_customer", ("id", "provider_id", "user_id", "number", "kind", "organisation", "created_at", "name"), PROVIDER),
    ("payment_reversals", "invoicing_paymentreversal", ("id", "provider_id", "payment_id", "number", "kind", "reason", "amount", "surcharge_total", "payable_before", "payable_after", "reversed_by_id", "reversed_at"), PROVIDER),
    ("credit_notes", "invoicing_creditnote", ("id", "provider_id", "invoice_id", "customer_id", "number", "issue_date", "amount", "applied", "to_balance", "reason", "issued_by_id", "issued_by_name", "balance_before", "balance_after", "created_at"), PROVIDER),
    ("credit_note_lines", "invoicing_creditnoteline", ("id", "credit_note_id", "position", "label", "amount"), "t.credit_note_id IN (SELECT c.id FROM invoicing_creditnote AS c WHERE c.provider_id = (SELECT ai_scope.provider()))"),
    ("customer_credits", "invoicing_customercredit", ("id", "provider_id", "customer_id", "balance", "updated_at"), PROVIDER),
    ("credit_entries", "invoicing_creditentry", ("id", "provider_id", "customer_id", "kind", "amount", "balance_after", "credit_note_id", "payment_id", "invoice_id", "refund_id", "created_at"), PROVIDER),
    ("credit_refunds", "invoicing_creditrefund", ("id", "provider_id", "customer_id", "number", "amount", "method_id", "reference", "reason", "officer_id", "officer_name", "officer_designation", "balance_before", "balance_after", "created_at"), PROVIDER),
    ("pending_charges", "invoicing_pendingcharge", ("id", "provider_id", "connection_id", "customer_id", "kind", "label", "amount", "event_id", "invoice_id", "created_by_id", "created_at"), PROVIDER),
    ("dunning_levels", "invoicing_dunninglevel", ("id", "provider_id", "days_after_due", "action", "is_active", "created_by_id", "created_at", "updated_at"), PROVIDER),
    ("dunning_cases", "invoicing_dunningcase", ("id", "provider_id", "connection_id", "customer_id", "opened_on", "level_id", "last_step_on", "closed_on"), PROVIDER),
    ("dunning_steps", "invoicing_dunningstep", ("id", "provider_id", "case_id", "connection_id", "customer_id", "level_id", "action", "taken_on", "days_overdue", "balance", "notice_id", "order_number", "note", "created_at"), PROVIDER),
    ("dunning_step_invoices", "invoicing_dunningstep_invoices", ("id", "dunningstep_id", "invoice_id"), THROUGH_INVOICE),
    ("payment_plans", "invoicing_paymentplan", ("id", "provider_id", "connection_id", "customer_id", "arrears", "status", "reason", "created_by_id", "created_at", "ended_on"), PROVIDER),
    ("payment_plan_invoices", "invoicing_paymentplan_invoices", ("id", "paymentplan_id", "invoice_id"), THROUGH_INVOICE),
    ("payment_instalments", "invoicing_paymentinstalment", ("id", "provider_id", "plan_id", "position", "due_date", "amount"), PROVIDER),
    ("payment_file_formats", "invoicing_paymentfileformat", ("id", "provider_id", "name", "default_method_id", "is_active"), PROVIDER),
    ("payment_files", "invoicing_paymentfile", ("id", "provider_id", "file_format_id", "name", "uploaded_by_id", "uploaded_role", "uploaded_at", "status", "total", "done", "posted", "duplicates", "refused", "posted_amount", "finished_at"), PROVIDER),
    ("payment_file_rows", "invoicing_paymentfilerow", ("id", "file_id", "line", "bill_number", "connection_number", "amount", "paid_on", "method_id", "reference", "outcome", "reason", "payment_id"), "t.file_id IN (SELECT f.id FROM invoicing_paymentfile AS f WHERE f.provider_id = (SELECT ai_scope.provider()))"),
    ("connection_events", "billing_connectionevent", ("id", "provider_id", "connection_id", "customer_id", "kind", "effective_at", "reason", "reading_id", "ground", "order_number", "overdue_balance", "recorded_by_id", "recorded_at"), PROVIDER),
)  # fmt: skip
# The views of migration 0002 that this one widens: unapplying makes them again as 0002 did.
WIDENED = ("invoices", "customers")


def _reader() -> sql.Identifier:
    return sql.Identifier(getattr(settings, "AI_QUERY_DB_USER", "billing_ai_reader"))


def _view(cursor, raw, view: str, table: str, columns: tuple[str, ...], condition: str) -> None:
    select = sql.SQL("SELECT {} FROM {} AS t WHERE {}").format(
        sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(column)) for column in columns),
        sql.Identifier(table),
        sql.SQL(condition),
    )
    name = sql.Identifier("ai_views", view)
    for statement in (
        sql.SQL("CREATE OR REPLACE VIEW {} WITH (security_barrier) AS {}").format(name, select),
        sql.SQL("REVOKE ALL ON {} FROM PUBLIC").format(name),
        sql.SQL("GRANT SELECT ON {} TO {}").format(name, _reader()),
    ):
        cursor.execute(statement.as_string(raw))


def forwards(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    raw = connection.connection
    with connection.cursor() as cursor:
        for view in VIEWS:
            _view(cursor, raw, *view)


def backwards(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    raw = connection.connection
    first = importlib.import_module("auditing.migrations.0002_ai_reader")
    with connection.cursor() as cursor:
        for view, *_ in VIEWS:
            cursor.execute(sql.SQL("DROP VIEW {}").format(sql.Identifier("ai_views", view)).as_string(raw))
        for view, table, columns, condition in first.VIEWS:
            if view in WIDENED:
                _view(cursor, raw, view, table, columns, condition)


class Migration(migrations.Migration):
    dependencies = [
        ("auditing", "0007_audit_log_partitions"),
        ("billing", "0008_customer_and_connection_number_indexes"),
        ("invoicing", "0015_bank_payment_files"),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
