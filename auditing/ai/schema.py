"""What auditors' questions may read: logical tables over the real ones, column by column.

The language model is shown only these names and columns (no data); the validator accepts only
them; the rewriter turns each into a subquery of its real table filtered on the auditor's provider;
on PostgreSQL the executing role can read only views of the same shape. Password hashes, tokens,
sessions, idempotency keys and request hashes are in none of them.

`provider_filter` is the SQL condition (over the table, aliased `t`) that keeps one provider's rows,
with `{provider}` where the provider id goes (a literal read from the database) and `{invoices}` /
`{payments}` where the source of those logical tables goes (the real table, or on PostgreSQL the
restricted role's view).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    name: str  # as auditors and the model write it
    source: str  # the real table
    columns: tuple[str, ...]
    provider_filter: str | None  # None: reference data shared by every provider
    description: str


def _provider_column(column: str = "provider_id") -> str:
    return f"t.{column} = {{provider}}"


TABLES: tuple[Table, ...] = (
    Table(
        "invoices",
        "invoicing_invoice",
        (
            "id", "number", "provider_id", "customer_id", "connection_id", "period", "issue_date", "due_date",
            "source", "billing_run_id", "billing_days", "peak_units", "off_peak_units", "kwh_consumed",
            "energy_charge", "tax_total", "fixed_total", "subsidy_total", "current_charges", "arrears",
            "payable_before_due", "late_surcharge", "payable_after_due", "amount_paid", "adjustment_total",
            "balance", "status", "paid_on", "created_by_id", "created_at",
        ),
        _provider_column(),
        "One bill per connection and month (period = first day of the month). status: Pending, "
        "Partially_Paid, Paid, Overdue, Cancelled. Money in the provider's currency.",
    ),
    Table(
        "invoice_lines",
        "invoicing_invoiceline",
        ("id", "invoice_id", "position", "kind", "label", "code", "amount"),
        "t.invoice_id IN (SELECT id FROM {invoices} WHERE provider_id = {provider})",
        "The lines of a bill: kind energy, tax, fixed or subsidy (subsidies are subtracted).",
    ),
    Table(
        "payments",
        "invoicing_payment",
        (
            "id", "provider_id", "connection_id", "invoice_id", "receipt_number", "amount", "method_id",
            "reference", "payable_before", "payable_after", "received_by_id", "received_at",
        ),
        _provider_column(),
        "Money received against a bill (invoice_id); received_by_id is the staff user.",
    ),
    Table(
        "payment_allocations",
        "invoicing_paymentallocation",
        ("id", "payment_id", "invoice_id", "amount"),
        "t.payment_id IN (SELECT id FROM {payments} WHERE provider_id = {provider})",
        "How much of a payment settled each invoice (oldest first).",
    ),
    Table(
        "payment_methods",
        "invoicing_paymentmethod",
        ("id", "code", "name", "is_active"),
        None,
        "Bank counter, IBFT, card, JazzCash, EasyPaisa.",
    ),
    Table(
        "adjustments",
        "invoicing_adjustment",
        (
            "id", "provider_id", "invoice_id", "number", "kind", "direction", "amount", "reason", "officer_id",
            "officer_name", "officer_designation", "original_amount", "balance_before", "balance_after",
            "created_at",
        ),
        _provider_column(),
        "Corrections of a bill: direction credit (lowers) or debit (raises); kind officer or late_surcharge.",
    ),
    Table(
        "billing_runs",
        "invoicing_billingrun",
        (
            "id", "provider_id", "period", "issue_date", "status", "total", "done", "issued", "already_billed",
            "skipped", "failed", "billed_amount", "started_by_id", "started_at", "finished_at",
        ),
        _provider_column(),
        "Monthly billing runs and their counts.",
    ),
    Table(
        "customers",
        "billing_customer",
        ("id", "provider_id", "user_id", "number", "kind", "organisation", "created_at"),
        _provider_column(),
        "A provider's customers; number as printed (e.g. LHR-RES-0001); their name is users.name.",
    ),
    Table(
        "connections",
        "billing_serviceconnection",
        (
            "id", "provider_id", "customer_id", "number", "connection_type_id", "meter_number", "meter_type",
            "division", "subdivision", "installation_date", "status", "created_at",
        ),
        _provider_column(),
        "Metered supply points of customers; status Active or Disconnected.",
    ),
    Table(
        "meter_readings",
        "billing_meterreading",
        (
            "id", "provider_id", "connection_id", "taken_at", "import_peak", "import_off_peak", "export_peak",
            "export_off_peak", "meter_replaced", "source",
        ),
        _provider_column(),
        "Cumulative meter registers in kWh at a moment.",
    ),
    Table(
        "connection_types",
        "providers_connectiontype",
        ("id", "provider_id", "code", "description", "sanctioned_load_kw"),
        _provider_column(),
        "Classes of connection tariffs vary by.",
    ),
    Table(
        "tariffs",
        "providers_tariffrow",
        (
            "id", "provider_id", "connection_type_id", "code", "bucket", "mode", "slab", "band_low", "band_high",
            "rate", "min_units", "min_amount", "valid_from", "valid_to", "created_by_id", "created_at",
        ),
        _provider_column(),
        "Price per kWh by connection type, time-of-use bucket and slab, in force [valid_from, valid_to).",
    ),
    Table(
        "tax_rules",
        "providers_taxrule",
        ("id", "provider_id", "connection_type_id", "name", "rate", "valid_from", "valid_to"),
        _provider_column(),
        "Taxes on energy charges; rate is a fraction (0.17 = 17%).",
    ),
    Table(
        "users",
        "accounts_user",
        ("id", "provider_id", "name", "designation", "is_active", "created_at"),
        _provider_column(),
        "People of the provider: staff (creators, officers) and customers. Only names, never logins.",
    ),
    Table(
        "provider",
        "providers_provider",
        ("id", "code", "name", "city", "is_active", "currency", "due_days", "late_surcharge_percent", "created_at"),
        _provider_column("id"),
        "The auditor's own provider (one row): its name, currency, days from issue to due date and the "
        "late surcharge in percent of the current charges.",
    ),
    Table(
        "audit_log",
        "auditing_auditlog",
        (
            "id", "provider_id", "actor_id", "actor_role", "action", "object_type", "object_id", "object_repr",
            "old_values", "new_values", "request_id", "created_at",
        ),
        _provider_column(),
        "Who did what: action create, update, delete or an event (login, role_switch, ai_query, ...).",
    ),
)  # fmt: skip

BY_NAME = {table.name: table for table in TABLES}


def schema_text() -> str:
    """The schema as the language model is shown it: names, columns and what they mean; no data."""
    return "\n".join(f"{table.name}({', '.join(table.columns)}) -- {table.description}" for table in TABLES)
