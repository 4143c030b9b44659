"""What auditors' questions may read: logical tables over the real ones, column by column.

The language model is shown only these names and columns (no data); the validator accepts only
them; the rewriter turns each into a subquery of its real table filtered on the auditor's provider;
on PostgreSQL the executing role can read only views of the same shape. Password hashes, tokens,
sessions, idempotency keys and request hashes are in none of them.

`provider_filter` is the SQL condition (over the table, aliased `t`) that keeps one provider's rows,
with `{provider}` where the provider id goes (a literal read from the database) and, for a table that
has no provider of its own (the lines of a credit note, the rows of a payment file), the logical table
it belongs to in braces (`{credit_notes}`) where that table's source goes (the real table, or on
PostgreSQL the restricted role's view).

Columns are in the order of the reader's views (auditing/migrations): a column added to a table is
appended, since a view can gain columns only at its end.
"""

import string
from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    name: str  # as auditors and the model write it
    source: str  # the real table
    columns: tuple[str, ...]
    provider_filter: str | None  # None: reference data shared by every provider
    description: str

    @property
    def parents(self) -> tuple[str, ...]:
        """The logical tables the provider filter reads, by the names it gives them in braces."""
        if self.provider_filter is None:
            return ()
        fields = (field for _, field, _, _ in string.Formatter().parse(self.provider_filter) if field)
        return tuple(dict.fromkeys(field for field in fields if field != "provider"))


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
            "balance", "status", "paid_on", "created_by_id", "created_at", "fee_total", "credited",
            "credit_applied", "estimated", "replaces_id",
        ),
        _provider_column(),
        "One bill per connection and month (period = first day of the month). status: Pending, "
        "Partially_Paid, Paid, Overdue, Cancelled. Money in the provider's currency. balance = "
        "current_charges + adjustment_total - amount_paid - credited; credited: credit notes against it "
        "plus the customer's credit balance applied at issue (credit_applied); fee_total: one-off fees "
        "carried (reconnection); estimated: billed on an estimate; replaces_id: the bill a re-rate replaced.",
    ),
    Table(
        "invoice_lines",
        "invoicing_invoiceline",
        ("id", "invoice_id", "position", "kind", "label", "code", "amount"),
        "t.invoice_id IN (SELECT id FROM {invoices} WHERE provider_id = {provider})",
        "The lines of a bill: kind energy, tax, fixed, fee or subsidy (subsidies are subtracted).",
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
        "payment_reversals",
        "invoicing_paymentreversal",
        (
            "id", "provider_id", "payment_id", "number", "kind", "reason", "amount", "surcharge_total",
            "payable_before", "payable_after", "reversed_by_id", "reversed_at",
        ),
        _provider_column(),
        "Payments taken back (a payment is reversed at most once): kind bounced, charged_back or "
        "posted_in_error; the bills it settled reopen by amount; surcharge_total: late surcharges added "
        "to reopened bills past their due date; payable_before/after: what the connection owed.",
    ),
    Table(
        "credit_notes",
        "invoicing_creditnote",
        (
            "id", "provider_id", "invoice_id", "customer_id", "number", "issue_date", "amount", "applied",
            "to_balance", "reason", "issued_by_id", "issued_by_name", "balance_before", "balance_after",
            "created_at",
        ),
        _provider_column(),
        "Credits against one issued bill (number CODE-CN-YYYY-000001): amount = applied (taken off the "
        "bill's balance) + to_balance (became the customer's credit balance); balance_before/after: the "
        "bill's. A cancellation or re-rate issues one too.",
    ),
    Table(
        "credit_note_lines",
        "invoicing_creditnoteline",
        ("id", "credit_note_id", "position", "label", "amount"),
        "t.credit_note_id IN (SELECT id FROM {credit_notes} WHERE provider_id = {provider})",
        "What a credit note credits, line by line (signed; the lines sum to the note's amount).",
    ),
    Table(
        "customer_credits",
        "invoicing_customercredit",
        ("id", "provider_id", "customer_id", "balance", "updated_at"),
        _provider_column(),
        "Each customer's credit balance now (one row per customer who ever had one; never negative): "
        "applied to their next bill or refunded.",
    ),
    Table(
        "credit_entries",
        "invoicing_creditentry",
        (
            "id", "provider_id", "customer_id", "kind", "amount", "balance_after", "credit_note_id",
            "payment_id", "invoice_id", "refund_id", "created_at",
        ),
        _provider_column(),
        "Movements of customers' credit balances, signed: kind credit_note or overpayment (in, positive), "
        "applied (to invoice_id), refund (refund_id) or reversal (a reversed overpayment) (out, negative).",
    ),
    Table(
        "credit_refunds",
        "invoicing_creditrefund",
        (
            "id", "provider_id", "customer_id", "number", "amount", "method_id", "reference", "reason",
            "officer_id", "officer_name", "officer_designation", "balance_before", "balance_after",
            "created_at",
        ),
        _provider_column(),
        "Money paid back to customers out of their credit balance by an officer (number "
        "CODE-RF-YYYY-000001); balance_before/after: the customer's credit balance.",
    ),
    Table(
        "pending_charges",
        "invoicing_pendingcharge",
        (
            "id", "provider_id", "connection_id", "customer_id", "kind", "label", "amount", "event_id",
            "invoice_id", "created_by_id", "created_at",
        ),
        _provider_column(),
        "One-off charges (kind reconnection_fee) waiting for the connection's next bill; invoice_id: the "
        "bill that carried it, empty while not billed yet; event_id: the connection event it arose from.",
    ),
    Table(
        "dunning_levels",
        "invoicing_dunninglevel",
        ("id", "provider_id", "days_after_due", "action", "is_active", "created_by_id", "created_at", "updated_at"),
        _provider_column(),
        "The provider's collection ladder: days after the due date of the oldest unpaid bill, then action "
        "reminder, final_notice or disconnection.",
    ),
    Table(
        "dunning_cases",
        "invoicing_dunningcase",
        ("id", "provider_id", "connection_id", "customer_id", "opened_on", "level_id", "last_step_on", "closed_on"),
        _provider_column(),
        "Debts chased by dunning, one per connection at a time: open while closed_on is empty; level_id: "
        "the highest dunning level taken so far (empty before the first step).",
    ),
    Table(
        "dunning_steps",
        "invoicing_dunningstep",
        (
            "id", "provider_id", "case_id", "connection_id", "customer_id", "level_id", "action", "taken_on",
            "days_overdue", "balance", "notice_id", "order_number", "note", "created_at",
        ),
        _provider_column(),
        "Each dunning level taken for a debt: action reminder, final_notice or disconnection, the overdue "
        "balance chased, days overdue; notice_id empty: no e-mail was recorded; order_number: a "
        "disconnection order's number (CODE-DO-YYYY-000001).",
    ),
    Table(
        "disconnection_orders",
        "invoicing_disconnectionorder",
        (
            "id", "provider_id", "connection_id", "customer_id", "number", "issued_on", "overdue_balance",
            "reason", "step_id", "issued_by_id", "status", "event_id", "closed_by_id", "closed_at",
            "withdrawn_reason",
        ),
        _provider_column(),
        "Orders to cut a connection's supply for non-payment (CODE-DO-YYYY-000001): status open (waiting "
        "for field staff), carried_out (event_id: the disconnection) or withdrawn (paid or covered by a "
        "payment plan before the visit; withdrawn_reason says why); step_id: the dunning step that issued "
        "it, empty for an officer's order on site.",
    ),
    Table(
        "price_orders",
        "providers_priceorder",
        (
            "id", "provider_id", "reference", "description", "valid_from", "connection_type_id", "status",
            "entered_by_id", "entered_at", "confirmed_by_id", "confirmed_at",
        ),
        _provider_column(),
        "A regulator's retroactive price orders: new tariff rates from valid_from (a past day) for one "
        "connection type (empty: all types); status draft, or confirmed (the affected bills were credited "
        "and re-billed by a billing run of their own).",
    ),
    Table(
        "dunning_step_invoices",
        "invoicing_dunningstep_invoices",
        ("id", "dunningstep_id", "invoice_id"),
        "t.invoice_id IN (SELECT id FROM {invoices} WHERE provider_id = {provider})",
        "The overdue bills each dunning step was taken for (dunningstep_id -> dunning_steps.id).",
    ),
    Table(
        "payment_plans",
        "invoicing_paymentplan",
        (
            "id", "provider_id", "connection_id", "customer_id", "arrears", "status", "reason", "created_by_id",
            "created_at", "ended_on",
        ),
        _provider_column(),
        "Arrears spread over instalments by an officer: status kept (dunning pauses), broken (an "
        "instalment was missed) or completed; ended_on: the day it broke or completed.",
    ),
    Table(
        "payment_plan_invoices",
        "invoicing_paymentplan_invoices",
        ("id", "paymentplan_id", "invoice_id"),
        "t.invoice_id IN (SELECT id FROM {invoices} WHERE provider_id = {provider})",
        "The overdue bills a payment plan covers (paymentplan_id -> payment_plans.id).",
    ),
    Table(
        "payment_instalments",
        "invoicing_paymentinstalment",
        ("id", "provider_id", "plan_id", "position", "due_date", "amount"),
        _provider_column(),
        "The instalments of a payment plan (plan_id), in due-date order.",
    ),
    Table(
        "payment_file_formats",
        "invoicing_paymentfileformat",
        ("id", "provider_id", "name", "default_method_id", "is_active"),
        _provider_column(),
        "The banks and collection agents whose payment files the provider loads.",
    ),
    Table(
        "payment_files",
        "invoicing_paymentfile",
        (
            "id", "provider_id", "file_format_id", "name", "uploaded_by_id", "uploaded_role", "uploaded_at",
            "status", "total", "done", "posted", "duplicates", "refused", "posted_amount", "finished_at",
        ),
        _provider_column(),
        "Bank payment files loaded: status processing or completed; counts of their rows posted, "
        "duplicate and refused; posted_amount: the money posted.",
    ),
    Table(
        "payment_file_rows",
        "invoicing_paymentfilerow",
        (
            "id", "file_id", "line", "bill_number", "connection_number", "amount", "paid_on", "method_id",
            "reference", "outcome", "reason", "payment_id",
        ),
        "t.file_id IN (SELECT id FROM {payment_files} WHERE provider_id = {provider})",
        "Each row of a payment file as read: outcome pending, posted, duplicate or refused (reason says "
        "why); payment_id: the payment it posted, or for a duplicate the earlier one.",
    ),
    Table(
        "customers",
        "billing_customer",
        ("id", "provider_id", "user_id", "number", "kind", "organisation", "created_at", "name"),
        _provider_column(),
        "A provider's customers; number as printed (e.g. LHR-RES-0001) and name as on their bills; "
        "user_id is their login, if they have one.",
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
        "connection_events",
        "billing_connectionevent",
        (
            "id", "provider_id", "connection_id", "customer_id", "kind", "effective_at", "reason", "reading_id",
            "ground", "order_number", "overdue_balance", "recorded_by_id", "recorded_at",
        ),
        _provider_column(),
        "Steps of a connection's life: kind connected, disconnected, reconnected, closed, type_changed, "
        "moved_out or moved_in; a disconnection's ground on_request or non_payment (then order_number "
        "and the overdue balance that justified it).",
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
