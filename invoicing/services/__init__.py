"""Invoices, payments, adjustments, overdue marking and the monthly billing run: every write is here,
one module per subject. Callers import from `invoicing.services`; the lock order is stated once, in
`locks.py`.
"""

from invoicing.services.adjustments import adjustment_create
from invoicing.services.errors import (
    AdjustmentRefused,
    DuplicateReference,
    IdempotencyMismatch,
    InvoiceCancelled,
    InvoiceExists,
    InvoiceLocked,
    InvoicePaid,
    InvoiceRefused,
    MethodInactive,
    Overpayment,
    PaymentFileRefused,
    PaymentFileTooLarge,
    PaymentRefused,
)
from invoicing.services.issue import (
    MAX_AMOUNT,
    bill_preview,
    customer_snapshot,
    default_issue_date,
    invoice_issue,
    invoice_update,
    manual_usage,
    provider_snapshot,
)
from invoicing.services.lifecycle import (
    connection_close,
    connection_move,
    connection_reconnect,
    connection_type_change,
    disconnection_order_issue,
    overdue_balance,
)
from invoicing.services.notices import invoices_notify, invoices_remind_due_soon, payment_notify
from invoicing.services.numbering import SERIES_FORMAT
from invoicing.services.overdue import invoices_mark_overdue
from invoicing.services.payment_files import (
    payment_file_chunk_post,
    payment_file_chunks,
    payment_file_dispatched,
    payment_file_format_create,
    payment_file_format_update,
    payment_file_upload,
)
from invoicing.services.payments import payment_post
from invoicing.services.run import (
    DEFAULT_CHUNK_SIZE,
    billing_run_chunk_bill,
    billing_run_dispatched,
    billing_run_start,
    billing_run_start_once,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MAX_AMOUNT",
    "SERIES_FORMAT",
    "AdjustmentRefused",
    "DuplicateReference",
    "IdempotencyMismatch",
    "InvoiceCancelled",
    "InvoiceExists",
    "InvoiceLocked",
    "InvoicePaid",
    "InvoiceRefused",
    "MethodInactive",
    "Overpayment",
    "PaymentFileRefused",
    "PaymentFileTooLarge",
    "PaymentRefused",
    "adjustment_create",
    "bill_preview",
    "billing_run_chunk_bill",
    "billing_run_dispatched",
    "billing_run_start",
    "billing_run_start_once",
    "connection_close",
    "connection_move",
    "connection_reconnect",
    "connection_type_change",
    "customer_snapshot",
    "default_issue_date",
    "disconnection_order_issue",
    "invoice_issue",
    "invoice_update",
    "invoices_mark_overdue",
    "invoices_notify",
    "invoices_remind_due_soon",
    "manual_usage",
    "overdue_balance",
    "payment_file_chunk_post",
    "payment_file_chunks",
    "payment_file_dispatched",
    "payment_file_format_create",
    "payment_file_format_update",
    "payment_file_upload",
    "payment_notify",
    "payment_post",
    "provider_snapshot",
]
