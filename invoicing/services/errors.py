"""The refusals of the invoicing services, each with its stable code (config/errors.py renders them)."""

from config.errors import Conflict, DomainError


class InvoiceRefused(DomainError):
    code = "invoice_refused"


class NoReadings(DomainError):
    code = "no_readings"


class InvoiceExists(Conflict):
    code = "invoice_exists"


class InvoiceLocked(Conflict):
    code = "invoice_locked"


class InvoicePaid(Conflict):
    code = "invoice_paid"


class InvoiceCancelled(Conflict):
    code = "invoice_cancelled"


class Overpayment(DomainError):
    code = "overpayment"


class PaymentRefused(DomainError):
    code = "payment_refused"


class IdempotencyMismatch(Conflict):
    code = "idempotency_key_reused"


class AdjustmentRefused(DomainError):
    code = "adjustment_refused"


class MethodInactive(DomainError):
    code = "payment_method_inactive"


class PaymentReversed(Conflict):
    code = "payment_reversed"


class ReversalRefused(DomainError):
    code = "reversal_refused"


class DunningLevelRefused(DomainError):
    code = "dunning_level_refused"


class PaymentPlanRefused(DomainError):
    code = "payment_plan_refused"


class PaymentPlanExists(Conflict):
    code = "payment_plan_exists"


class CreditRefused(DomainError):
    code = "credit_refused"


class DuplicateReference(Conflict):
    code = "reference_posted"


class PaymentFileRefused(DomainError):
    code = "payment_file_refused"


class PaymentFileTooLarge(DomainError):
    code = "payment_file_too_large"
    status = 413
