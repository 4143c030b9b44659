"""Invoices, payments, adjustments, overdue marking and the monthly billing run: every write is here,
one module per subject. Callers import from `invoicing.services`; the lock order is stated once, in
`locks.py`.
"""

from invoicing.services.adjustments import adjustment_create
from invoicing.services.credit_balance import credit_balance_of
from invoicing.services.credits import credit_note_issue, credit_refund
from invoicing.services.dunning import (
    PLAN_MAX_INSTALMENTS,
    dunning_advance,
    dunning_level_create,
    dunning_level_update,
    dunning_run,
    instalment_amounts,
    payment_plan_create,
)
from invoicing.services.errors import (
    AdjustmentRefused,
    CreditRefused,
    DunningLevelRefused,
    IdempotencyMismatch,
    InvoiceCancelled,
    InvoiceExists,
    InvoiceLocked,
    InvoicePaid,
    InvoiceRefused,
    MethodInactive,
    Overpayment,
    PaymentPlanExists,
    PaymentPlanRefused,
    PaymentRefused,
    PaymentReversed,
    ReversalRefused,
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
from invoicing.services.notices import (
    invoices_notify,
    invoices_remind_due_soon,
    payment_notify,
    reversal_notify,
)
from invoicing.services.numbering import SERIES_FORMAT
from invoicing.services.overdue import invoices_mark_overdue
from invoicing.services.payments import payment_post, payment_reverse
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
    "PLAN_MAX_INSTALMENTS",
    "SERIES_FORMAT",
    "AdjustmentRefused",
    "CreditRefused",
    "DunningLevelRefused",
    "IdempotencyMismatch",
    "InvoiceCancelled",
    "InvoiceExists",
    "InvoiceLocked",
    "InvoicePaid",
    "InvoiceRefused",
    "MethodInactive",
    "Overpayment",
    "PaymentPlanExists",
    "PaymentPlanRefused",
    "PaymentRefused",
    "PaymentReversed",
    "ReversalRefused",
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
    "credit_balance_of",
    "credit_note_issue",
    "credit_refund",
    "customer_snapshot",
    "default_issue_date",
    "disconnection_order_issue",
    "dunning_advance",
    "dunning_level_create",
    "dunning_level_update",
    "dunning_run",
    "instalment_amounts",
    "invoice_issue",
    "invoice_update",
    "invoices_mark_overdue",
    "invoices_notify",
    "invoices_remind_due_soon",
    "manual_usage",
    "overdue_balance",
    "payment_notify",
    "payment_plan_create",
    "payment_post",
    "payment_reverse",
    "provider_snapshot",
    "reversal_notify",
]
