"""Many bills fast, for the bill retrieval's plans and benchmark on PostgreSQL: customers, their
connections and a year of invoices with one line each, written by `generate_series` in the server
(a million connections in minutes, where model instances would take hours).

Customer `i` of a load is `{prefix}-CUS-{i:07d}` with connection `{prefix}-CON-{i:07d}`; invoice
`{prefix}-{year}-{n}` bills a flat 32.50 a kWh. The rows satisfy the tables' constraints (balances
are the ledger's), not the rating engine: they are there to be looked up.
"""

from datetime import date

from django.db import connection

from billing.models import ConnectionStatus, CustomerKind
from invoicing.models import InvoiceSource, InvoiceStatus


def load_bills(
    *, provider_id: int, connection_type_id: int, prefix: str, customers: int, months: int, first_period: date
) -> None:
    """`customers` customers of the provider, each with one connection billed for `months` months
    from `first_period` on, the first of those months paid."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM billing_customer")
        (customer_base,) = cursor.fetchone()
        cursor.execute("SELECT coalesce(max(id), 0) FROM billing_serviceconnection")
        (connection_base,) = cursor.fetchone()
        cursor.execute(
            """
            INSERT INTO billing_customer (id, provider_id, number, name, email, phone, address, kind,
                organisation, national_id, preferred_language, notify_bills, notify_reminders,
                notify_payments, created_at, updated_at)
            SELECT %(customer_base)s + i, %(provider)s, format('%%s-CUS-%%s', %(prefix)s, lpad(i::text, 7, '0')),
                'Customer ' || i, '', '+92 300 0000000', 'House ' || i %% 500 || ', Lahore', %(kind)s,
                '', '', 'en', true, true, true, now(), now()
            FROM generate_series(1, %(customers)s) i
            """,
            {
                "customer_base": customer_base,
                "provider": provider_id,
                "prefix": prefix,
                "customers": customers,
                "kind": CustomerKind.RESIDENTIAL,
            },
        )
        cursor.execute(
            """
            INSERT INTO billing_serviceconnection (id, provider_id, customer_id, number, connection_type_id,
                meter_number, meter_type, division, subdivision, status, created_at)
            SELECT %(connection_base)s + i, %(provider)s, %(customer_base)s + i,
                format('%%s-CON-%%s', %(prefix)s, lpad(i::text, 7, '0')), %(type)s,
                'M' || i, 'Static TOU', 'Division ' || i %% 7, 'Subdivision ' || i %% 31, %(status)s, now()
            FROM generate_series(1, %(customers)s) i
            """,
            {
                "connection_base": connection_base,
                "customer_base": customer_base,
                "provider": provider_id,
                "prefix": prefix,
                "type": connection_type_id,
                "customers": customers,
                "status": ConnectionStatus.ACTIVE,
            },
        )
        cursor.execute("SELECT coalesce(max(id), 0) FROM invoicing_invoice")
        (invoice_base,) = cursor.fetchone()
        # Month-major ids, as monthly billing runs write them; kWh 100 to 399 by connection.
        cursor.execute(
            """
            INSERT INTO invoicing_invoice (id, provider_id, customer_id, connection_id, number, period,
                issue_date, due_date, source, estimated, billing_days, peak_units, off_peak_units,
                kwh_consumed, energy_charge, tax_total, fixed_total, subsidy_total, fee_total,
                estimated_billed, credit_brought, credit_carried, current_charges, arrears,
                payable_before_due, late_surcharge, payable_after_due, amount_paid, adjustment_total,
                balance, credited, credit_applied, status, paid_on, trace, customer_snapshot, provider_snapshot,
                created_at, updated_at)
            SELECT %(invoice_base)s + m * %(customers)s + i, %(provider)s, %(customer_base)s + i,
                %(connection_base)s + i, format('%%s-%%s-%%s', %(prefix)s, m, i), bill.period,
                bill.issued, bill.issued + 10, %(source)s, false, 30, 0, kwh, kwh,
                kwh * 32.50, 0, 0, 0, 0, 0, 0, 0, kwh * 32.50, 0, kwh * 32.50, kwh * 3.25, kwh * 35.75,
                CASE WHEN m = 0 THEN kwh * 32.50 ELSE 0 END, 0, CASE WHEN m = 0 THEN 0 ELSE kwh * 32.50 END, 0, 0,
                CASE WHEN m = 0 THEN %(paid)s ELSE %(pending)s END, CASE WHEN m = 0 THEN bill.issued + 5 END,
                '{}', jsonb_build_object('name', 'Customer ' || i), '{"name": "Provider"}', now(), now()
            FROM generate_series(0, %(months)s - 1) m, generate_series(1, %(customers)s) i,
                LATERAL (SELECT (%(first)s::date + make_interval(months => m))::date AS period) start,
                LATERAL (SELECT (start.period + interval '1 month' - interval '1 day')::date AS issued,
                    start.period AS period, (100 + i %% 300)::numeric(14, 4) AS kwh) bill
            """,
            {
                "invoice_base": invoice_base,
                "customer_base": customer_base,
                "connection_base": connection_base,
                "provider": provider_id,
                "prefix": prefix,
                "customers": customers,
                "months": months,
                "first": first_period,
                "source": InvoiceSource.RUN,
                "paid": InvoiceStatus.PAID,
                "pending": InvoiceStatus.PENDING,
            },
        )
        cursor.execute(
            """
            INSERT INTO invoicing_invoiceline (invoice_id, position, kind, label, code, amount)
            SELECT id, 1, 'energy', 'Energy (all hours, slab 1)', 'FLAT', current_charges
            FROM invoicing_invoice WHERE id > %s
            """,
            [invoice_base],
        )
        for table in ("billing_customer", "billing_serviceconnection", "invoicing_invoice"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence(%s, 'id'), (SELECT max(id) FROM {table}))",  # noqa: S608
                [table],
            )
        cursor.execute(
            "ANALYZE billing_customer, billing_serviceconnection, invoicing_invoice, invoicing_invoiceline"
        )
