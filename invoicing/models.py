"""Invoices, their lines, payments, adjustments, the numbering counters and the monthly billing run.

An invoice is a frozen document: its amounts, lines and number are written once, when it is issued,
and never change. What moves afterwards is its ledger: `amount_paid`, `adjustment_total` and
`credited`, and with them `balance`, which the database itself keeps equal to current charges +
adjustments - payments - credited and never negative. A correction is a credit note against the bill
(and, for a re-rate, a new bill that names the one it replaces); a credit beyond what the bill still
owes becomes its customer's credit balance (`CustomerCredit`, its entries `CreditEntry`), applied to
their next bill or refunded (`CreditRefund`).
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Round
from django.db.models.lookups import Exact
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from billing.models import ConnectionEvent, Customer, ServiceConnection
from providers.models import PriceOrder, Provider, TariffRow

MONEY = {"max_digits": 14, "decimal_places": 2}


def cents(name: str) -> Round:
    """A money column in whole cents, for checks that add amounts up.

    SQLite keeps decimals as REAL and adds them in floating point, where 0.10 + 0.20 is not 0.30; the
    nearest whole number to one column times 100 is exact there for any amount a column can hold
    (up to 14 digits), and on PostgreSQL it is the same number, so a sum of these compares exactly."""
    return Round(F(name) * 100)


KWH = {"max_digits": 14, "decimal_places": 4}


class InvoiceStatus(models.TextChoices):
    PENDING = "Pending", _("Pending")
    PARTIALLY_PAID = "Partially_Paid", _("Partially Paid")
    PAID = "Paid", _("Paid")
    OVERDUE = "Overdue", _("Overdue")
    CANCELLED = "Cancelled", _("Cancelled")


OPEN_STATUSES = (InvoiceStatus.PENDING, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.OVERDUE)


class InvoiceSource(models.TextChoices):
    RUN = "run", "Monthly billing run"
    READINGS = "readings", "Issued from the month's meter readings"
    KWH = "kwh", "Issued for kWh entered by a clerk"


class Invoice(models.Model):
    # Indexed by the composite indexes below (provider first), as `connection` and `created_by` are.
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="invoices", db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invoices")
    connection = models.ForeignKey(
        ServiceConnection, on_delete=models.PROTECT, related_name="invoices", db_index=False
    )
    # CODE-YYYY-000123: gapless per provider and year of issue.
    number = models.CharField(max_length=30, unique=True)
    # The billing month, as its first day.
    period = models.DateField()
    issue_date = models.DateField()
    due_date = models.DateField()
    source = models.CharField(max_length=10, choices=InvoiceSource.choices)
    # Not indexed (nor `pricing`): nothing looks invoices up by them, and every index slows a billing run.
    billing_run = models.ForeignKey(
        "BillingRun", on_delete=models.PROTECT, null=True, blank=True, related_name="invoices", db_index=False
    )
    # The period billed, [period_start, period_end): it starts where the connection's previous bill
    # ended (no gap, no overlap) and ends at the month's last reading, or for an estimate at 00:00 on
    # the 1st of the next month. Empty for a bill of kWh a clerk typed in.
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    # Billed on an estimate (no reading in the month): the next actual reading trues it up.
    estimated = models.BooleanField(default=False)
    # The registers at `period_end` (kWh), where the next bill starts: the closing reading's, or for an
    # estimate the estimated ones. Empty when the period has no ends.
    end_import_peak = models.DecimalField(**KWH, null=True, blank=True)
    end_import_off_peak = models.DecimalField(**KWH, null=True, blank=True)
    end_export_peak = models.DecimalField(**KWH, null=True, blank=True)
    end_export_off_peak = models.DecimalField(**KWH, null=True, blank=True)
    # Usage billed: exact days between the period's readings, net kWh per time-of-use bucket.
    billing_days = models.DecimalField(max_digits=12, decimal_places=6)
    peak_units = models.DecimalField(**KWH)
    off_peak_units = models.DecimalField(**KWH)
    kwh_consumed = models.DecimalField(**KWH, help_text="Net kWh billed, all buckets.")
    # The energy tariff row the bill was rated with (the first energy line's): the seed's pricing reference.
    pricing = models.ForeignKey(
        TariffRow, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    # Issued amounts, each a sum of rounded lines; never changed after issue.
    energy_charge = models.DecimalField(**MONEY)
    tax_total = models.DecimalField(**MONEY)
    fixed_total = models.DecimalField(**MONEY)
    subsidy_total = models.DecimalField(**MONEY)
    # One-off charges carried from the connection's pending charges (a reconnection fee): not taxed.
    fee_total = models.DecimalField(**MONEY, default=0)
    # A true-up (the first actual bill after estimates): the estimates' energy + taxes - subsidies,
    # taken back. A credit brought from the previous bill, subtracted; one carried on to the next bill
    # when this one came to less than zero (it is then zero). See billing.rating.settle.
    estimated_billed = models.DecimalField(**MONEY, default=0)
    credit_brought = models.DecimalField(**MONEY, default=0)
    credit_carried = models.DecimalField(**MONEY, default=0)
    current_charges = models.DecimalField(
        **MONEY,
        help_text="Energy + taxes + fixed - subsidies - estimates taken back - credit brought + credit carried "
        "+ fees; never below zero.",
    )
    # Open balance of the connection's earlier invoices when this one was issued (printed, not owed twice).
    arrears = models.DecimalField(**MONEY)
    payable_before_due = models.DecimalField(
        **MONEY, help_text="Current charges + arrears - the customer's credit balance applied at issue."
    )
    # What the overdue job adds once, as an adjustment, if the bill is unpaid after its due date.
    late_surcharge = models.DecimalField(**MONEY)
    payable_after_due = models.DecimalField(**MONEY)
    # The ledger: payments settled against this invoice, net adjustments (debits - credits), credits
    # (credit notes against it and the customer's credit balance applied to it), what is owed.
    amount_paid = models.DecimalField(**MONEY, default=0)
    adjustment_total = models.DecimalField(**MONEY, default=0)
    credited = models.DecimalField(**MONEY, default=0)
    # The part of `credited` that was the customer's credit balance, applied when the bill was issued.
    credit_applied = models.DecimalField(**MONEY, default=0)
    balance = models.DecimalField(**MONEY)
    status = models.CharField(max_length=20, choices=InvoiceStatus.choices, default=InvoiceStatus.PENDING)
    # The day the balance reached zero (by payment, a credit adjustment or a credit note).
    paid_on = models.DateField(null=True, blank=True)
    # A re-rate's new bill: the bill it replaces (cancelled by a credit note in the same transaction).
    replaces = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="replaced_by"
    )
    # Engine trace (days, units, averages, slabs, rates, tax base, subsidy tests): "why is this bill what it is".
    trace = models.JSONField(default=dict)
    # The customer's, connection's and provider's details as printed on the bill.
    customer_snapshot = models.JSONField(default=dict)
    provider_snapshot = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-period", "-id"]
        permissions = [
            ("collect_payment", "Can record a payment on this invoice"),
            ("view_books", "Can read the books: the journal and the tax report"),
        ]
        constraints = [
            # A cancelled bill leaves its month free to be billed again.
            models.UniqueConstraint(
                fields=["connection", "period"],
                condition=~Q(status="Cancelled"),
                name="invoice_once_per_connection_month",
            ),
            # Cancelled bills too: a cancellation is a credit note for what was still open.
            models.CheckConstraint(
                condition=Q(
                    Exact(
                        cents("balance"),
                        cents("current_charges")
                        + cents("adjustment_total")
                        - cents("amount_paid")
                        - cents("credited"),
                    )
                ),
                name="invoice_balance_is_ledger",
            ),
            models.CheckConstraint(condition=Q(balance__gte=0), name="invoice_balance_not_negative"),
            models.CheckConstraint(condition=Q(amount_paid__gte=0), name="invoice_paid_not_negative"),
            models.CheckConstraint(
                condition=Q(credit_applied__gte=0, credited__gte=F("credit_applied")),
                name="invoice_credited_not_negative",
            ),
            models.CheckConstraint(condition=Q(current_charges__gte=0), name="invoice_charges_not_negative"),
            models.CheckConstraint(
                condition=Q(estimated_billed__gte=0, credit_brought__gte=0, credit_carried__gte=0),
                name="invoice_true_up_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(due_date__gte=F("issue_date")), name="invoice_due_after_issue"
            ),
            models.CheckConstraint(
                condition=Q(period_start__isnull=True, period_end__isnull=True)
                | Q(period_end__gt=F("period_start")),
                name="invoice_period_ends_in_order",
            ),
        ]
        indexes = [
            models.Index(fields=["provider", "status", "due_date"], name="invoice_provider_status_due"),
            models.Index(fields=["provider", "period"], name="invoice_provider_period"),
            # A connection's bills up to a month (arrears, a payment's oldest-first settling): the
            # partial unique index above serves no query that does not repeat its condition.
            models.Index(fields=["connection", "period"], name="invoice_connection_period"),
            # A bill's previous ten (the same connection and customer, earlier months) are the ten
            # entries before it here: walked backwards, only those rows are read, so a connection with
            # ten years of bills costs what one with a year does (bill_retrieval.py --months). On the
            # index above, the planner takes a connection's bills to be rarely its customer's, and reads
            # all the earlier ones to sort them.
            models.Index(
                fields=["connection", "customer", "period", "id"], name="invoice_connection_history"
            ),
            # What a connection's customer still owes (arrears on the next bill, a payment's oldest-first
            # settling, the amount payable): only the open bills are read, however many were paid before.
            models.Index(
                fields=["connection", "customer", "period"],
                condition=Q(status__in=OPEN_STATUSES),
                name="invoice_open_by_connection",
            ),
            models.Index(fields=["created_by", "provider"], name="invoice_created_by"),
        ]

    END_REGISTERS = ("end_import_peak", "end_import_off_peak", "end_export_peak", "end_export_off_peak")
    # The documents frozen at issue: most of a row's bytes, left out where a path does not show them.
    DOCUMENTS = ("trace", "customer_snapshot", "provider_snapshot")

    def __str__(self) -> str:
        return self.number

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class InvoiceLine(models.Model):
    """One line of an invoice as the engine produced it: energy per bucket, each tax, fee and subsidy."""

    # Indexed by the (invoice, position) unique constraint.
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines", db_index=False)
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=10)  # energy, tax, fixed, fee, subsidy (subsidies are subtracted)
    label = models.CharField(max_length=120)
    code = models.CharField(max_length=60, blank=True)
    amount = models.DecimalField(**MONEY)
    # The row the line came from: a tariff, tax, fixed charge or subsidy row, or a pending charge (fee).
    row_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["invoice_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "position"], name="invoice_line_position_unique"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="invoice_line_amount_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.label}: {self.amount}"


class DocumentSeries(models.TextChoices):
    INVOICE = "invoice"
    RECEIPT = "receipt"
    ADJUSTMENT = "adjustment"
    DISCONNECTION = "disconnect"  # disconnection orders for non-payment
    REVERSAL = "reversal"  # payment reversal receipts
    CREDIT_NOTE = "credit_note"
    REFUND = "refund"  # refunds of a customer's credit balance


class DocumentCounter(models.Model):
    """The last number given in one series, per provider and year. Its row is locked while a number
    is taken and the document inserted, in one transaction: a rollback gives the number back."""

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="+")
    series = models.CharField(max_length=12, choices=DocumentSeries.choices)
    year = models.PositiveSmallIntegerField()
    last = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "series", "year"], name="document_counter_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.provider_id} {self.series} {self.year}: {self.last}"


class PaymentMethod(models.Model):
    """How a customer paid (bank counter, IBFT, card, ...): the same list for every provider."""

    code = models.SlugField(max_length=30, unique=True)
    name = models.CharField(max_length=100)
    is_active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class Payment(models.Model):
    """Money received against a bill. It settles the connection's oldest open invoices first
    (`allocations`); `invoice` is the bill the customer presented."""

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="+")
    connection = models.ForeignKey(ServiceConnection, on_delete=models.PROTECT, related_name="payments")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payments")
    receipt_number = models.CharField(max_length=30, unique=True)
    amount = models.DecimalField(**MONEY)
    method = models.ForeignKey(PaymentMethod, on_delete=models.PROTECT, related_name="+")
    reference = models.CharField(max_length=100, blank=True, help_text="Bank or wallet transaction id.")
    # What was owed on the presented bill and the bills before it, before and after this payment.
    payable_before = models.DecimalField(**MONEY)
    payable_after = models.DecimalField(**MONEY)
    received_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # When the money was received: the moment it is posted, or earlier for money taken at a bank
    # counter and entered from its statement later (`payment_post(received_at=...)`).
    received_at = models.DateTimeField(default=timezone.now, editable=False)
    # A retried request with the same key returns this payment; `request_hash` tells a different body.
    idempotency_key = models.CharField(max_length=100, blank=True)
    request_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.UniqueConstraint(
                fields=["received_by", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="payment_idempotency_key_unique",
            ),
            # A bank's transaction is money received once: its reference is posted once per provider,
            # whether by a payment file or by hand (services.payment_post answers DuplicateReference).
            models.UniqueConstraint(
                fields=["provider", "reference"],
                condition=~Q(reference=""),
                name="payment_reference_once_per_provider",
            ),
        ]

    def __str__(self) -> str:
        return self.receipt_number

    @property
    def is_reversed(self) -> bool:
        return hasattr(self, "reversal")


class PaymentAllocation(models.Model):
    """The part of a payment that settled one invoice."""

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="allocations")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="allocations")
    amount = models.DecimalField(**MONEY)

    class Meta:
        ordering = ["payment_id", "invoice__period"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="allocation_amount_positive"),
            models.UniqueConstraint(fields=["payment", "invoice"], name="allocation_once_per_invoice"),
        ]

    def __str__(self) -> str:
        return f"{self.payment_id} -> {self.invoice_id}: {self.amount}"


class ReversalKind(models.TextChoices):
    BOUNCED = "bounced", _("Bounced (the cheque or transfer came back unpaid)")
    CHARGED_BACK = "charged_back", _("Charged back (the card issuer or bank took it back)")
    POSTED_IN_ERROR = "posted_in_error", _("Posted in error")


class PaymentReversal(models.Model):
    """A payment taken back (a bounced cheque, a charge-back, a payment posted in error): its
    allocations are undone, the bills it settled reopen, and this is the reversal's receipt. A payment
    is reversed at most once (`payment` is unique); its allocation rows stay as the history of what it
    settled, and count for nothing once it is reversed."""

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="+")
    payment = models.OneToOneField(Payment, on_delete=models.PROTECT, related_name="reversal")
    # CODE-RV-YYYY-000001: gapless per provider and year of the reversal.
    number = models.CharField(max_length=30, unique=True)
    kind = models.CharField(max_length=20, choices=ReversalKind.choices)
    reason = models.CharField(max_length=500)
    # The payment's amount, taken back from the bills it settled.
    amount = models.DecimalField(**MONEY)
    # Late surcharges added because a reopened bill was past its due date and had none yet.
    surcharge_total = models.DecimalField(**MONEY, default=0)
    # What the customer owed on the connection's open bills before and after the reversal.
    payable_before = models.DecimalField(**MONEY)
    payable_after = models.DecimalField(**MONEY)
    # The bills as the reversal left them, as its receipt prints them: billId, invoiceNumber, period,
    # amount (taken back), surcharge, balance and status, money as decimal strings.
    reopened = models.JSONField(default=list)
    reversed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reversed_at = models.DateTimeField(default=timezone.now, editable=False)
    # A retried request with the same key returns this reversal; `request_hash` tells a different body.
    idempotency_key = models.CharField(max_length=100, blank=True)
    request_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-reversed_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="reversal_amount_positive"),
            models.CheckConstraint(
                condition=Q(surcharge_total__gte=0), name="reversal_surcharge_not_negative"
            ),
            models.CheckConstraint(condition=Q(kind__in=ReversalKind.values), name="reversal_kind_known"),
            models.UniqueConstraint(
                fields=["reversed_by", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="reversal_idempotency_key_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.number


class AdjustmentDirection(models.TextChoices):
    CREDIT = "credit", _("Credit (lowers the balance)")
    DEBIT = "debit", _("Debit (raises the balance)")


class AdjustmentKind(models.TextChoices):
    OFFICER = "officer", "Authorised by an officer"
    LATE_SURCHARGE = "late_surcharge", "Late payment surcharge"


class Adjustment(models.Model):
    """A correction of an issued invoice's balance: the only way an issued bill's amount moves."""

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="+")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="adjustments")
    number = models.CharField(max_length=30, unique=True)
    kind = models.CharField(max_length=20, choices=AdjustmentKind.choices, default=AdjustmentKind.OFFICER)
    direction = models.CharField(max_length=10, choices=AdjustmentDirection.choices)
    amount = models.DecimalField(**MONEY, help_text="Always positive; the direction gives the sign.")
    reason = models.CharField(max_length=500)
    # The officer as their account named them when they authorised it (empty for the overdue job).
    officer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    officer_name = models.CharField(max_length=150, blank=True)
    officer_designation = models.CharField(max_length=100, blank=True)
    # The invoice's issued amount and its balance before and after.
    original_amount = models.DecimalField(**MONEY)
    balance_before = models.DecimalField(**MONEY)
    balance_after = models.DecimalField(**MONEY)
    created_at = models.DateTimeField(auto_now_add=True)
    # A retried request with the same key returns this adjustment; `request_hash` tells a different body.
    idempotency_key = models.CharField(max_length=100, blank=True)
    request_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="adjustment_amount_positive"),
            models.UniqueConstraint(
                fields=["officer", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="adjustment_idempotency_key_unique",
            ),
            models.CheckConstraint(condition=Q(balance_after__gte=0), name="adjustment_balance_not_negative"),
            models.UniqueConstraint(
                fields=["invoice"], condition=Q(kind="late_surcharge"), name="late_surcharge_once"
            ),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def signed_amount(self) -> Decimal:
        return self.amount if self.direction == AdjustmentDirection.DEBIT else -self.amount


class BillingRunStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    COMPLETED = "completed", _("Completed")


class BillingRun(models.Model):
    """One provider's monthly billing of its active connections, split into chunks that workers share.

    At most one unfinished run per provider and month: starting again resumes it. A later run for a
    month already billed issues only what is missing (a connection is never billed twice a month).

    A run of a retroactive price order (`price_order`) re-issues the bills the order affects instead,
    connection by connection; its `period` is the month of the order's first day.
    """

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="billing_runs")
    period = models.DateField(help_text="The billing month, as its first day.")
    issue_date = models.DateField()
    status = models.CharField(
        max_length=10, choices=BillingRunStatus.choices, default=BillingRunStatus.RUNNING
    )
    chunk_size = models.PositiveIntegerField()
    # Connections to bill, and what became of those done so far.
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    issued = models.PositiveIntegerField(default=0)
    already_billed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    billed_amount = models.DecimalField(**MONEY, default=0)
    # A price order's run: what the credit notes of the bills it replaced took back (billed_amount: the
    # new bills' current charges).
    credited_amount = models.DecimalField(**MONEY, default=0)
    price_order = models.OneToOneField(
        PriceOrder, on_delete=models.PROTECT, null=True, blank=True, related_name="billing_run"
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    started_at = models.DateTimeField(auto_now_add=True)
    # When its pending chunks were last handed to the broker; none yet when that failed. The reconciler
    # sends them again only once the run has been still (nothing sent, no chunk done) for a while.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "period"],
                condition=Q(status="running", price_order__isnull=True),
                name="billing_run_one_unfinished",
            ),
        ]

    def __str__(self) -> str:
        return f"Billing run {self.pk} ({self.period:%B %Y})" if self.period else f"Billing run {self.pk}"

    @property
    def percent(self) -> int:
        """How far the run has got, in whole percent (a run with nothing to bill is complete)."""
        return 100 if not self.total else min(100, self.done * 100 // self.total)

    @property
    def outcome(self) -> str:
        """The status, saying what a completed run left unbilled: "Completed" alone would read as a
        month billed when every connection was skipped (a month with no readings yet)."""
        status = self.get_status_display()
        if self.status != BillingRunStatus.COMPLETED or not (self.skipped or self.failed):
            return status
        left = []
        if self.skipped:
            left.append(
                ngettext("%(count)d connection skipped", "%(count)d connections skipped", self.skipped)
                % {"count": self.skipped}
            )
        if self.failed:
            left.append(
                ngettext("%(count)d connection failed", "%(count)d connections failed", self.failed)
                % {"count": self.failed}
            )
        billed = (
            gettext("%(count)d billed") % {"count": self.issued} if self.issued else gettext("nothing billed")
        )
        return gettext("%(status)s: %(billed)s, %(left)s") % {
            "status": status,
            "billed": billed,
            "left": ", ".join(left),
        }


class BillingRunChunk(models.Model):
    """A slice of a run's connections, by id (`first_id` to `last_id`), billed in one transaction."""

    run = models.ForeignKey(BillingRun, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    first_id = models.BigIntegerField()
    last_id = models.BigIntegerField()
    size = models.PositiveIntegerField()
    done = models.BooleanField(default=False)
    finished_at = models.DateTimeField(null=True, blank=True)
    seconds = models.FloatField(null=True, blank=True)  # timing only, never money
    billed_by = models.CharField(max_length=200, blank=True)  # the worker node that billed it

    class Meta:
        ordering = ["run_id", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="billing_chunk_unique")]

    def __str__(self) -> str:
        return f"{self.run_id}#{self.index}"


class ProblemKind(models.TextChoices):
    SKIPPED = "skipped", _("Skipped")
    FAILED = "failed", _("Failed")


class BillingRunProblem(models.Model):
    """A connection a run did not bill, and why."""

    run = models.ForeignKey(BillingRun, on_delete=models.CASCADE, related_name="problems")
    connection = models.ForeignKey(ServiceConnection, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=10, choices=ProblemKind.choices)
    reason = models.CharField(max_length=500)

    class Meta:
        ordering = ["run_id", "connection_id"]
        constraints = [models.UniqueConstraint(fields=["run", "connection"], name="billing_problem_unique")]

    def __str__(self) -> str:
        return f"{self.connection_id}: {self.reason}"


class ChargeKind(models.TextChoices):
    RECONNECTION_FEE = "reconnection_fee", "Reconnection fee"


class PendingCharge(models.Model):
    """A one-off charge a connection's customer owes, waiting for their next bill: that bill carries
    it as its own line (kind "fee") and is recorded here, so it is billed exactly once. A cancelled
    bill gives its charges back to the next one."""

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="+")
    connection = models.ForeignKey(
        ServiceConnection, on_delete=models.PROTECT, related_name="pending_charges", db_index=False
    )
    # Who owes it: the connection's customer when it arose (a bill carries only its own customer's).
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=20, choices=ChargeKind.choices)
    label = models.CharField(max_length=120, help_text="As printed on the bill's line.")
    amount = models.DecimalField(**MONEY)
    # The lifecycle step it arose from (a reconnection).
    event = models.ForeignKey(
        ConnectionEvent, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # The bill that carried it; empty: not billed yet.
    invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, null=True, blank=True, related_name="charges", db_index=False
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["connection_id", "created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="pending_charge_amount_positive"),
        ]
        indexes = [
            # What a bill or a run's chunk looks for: the connections' charges not billed yet.
            models.Index(
                fields=["connection"], condition=Q(invoice__isnull=True), name="pending_charge_unbilled"
            ),
            models.Index(fields=["invoice"], name="pending_charge_invoice"),
        ]

    def __str__(self) -> str:
        return f"{self.label}: {self.amount}"


# --- collections: dunning levels, the debts they chase, and payment plans ----------------------------


class DunningAction(models.TextChoices):
    REMINDER = "reminder", _("Reminder")
    FINAL_NOTICE = "final_notice", _("Final notice")
    DISCONNECTION = "disconnection", _("Disconnection order")


class DunningLevel(models.Model):
    """One step of a provider's collection ladder: so many days after the due date, this action.
    A debt climbs the provider's active levels in the order of their days (invoicing/services/dunning.py)."""

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="dunning_levels")
    # Days after the due date of the oldest bill still unpaid in the debt.
    days_after_due = models.PositiveSmallIntegerField()
    action = models.CharField(max_length=20, choices=DunningAction.choices)
    # A level switched off is skipped by debts still below it; the steps it was taken for keep it.
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider_id", "days_after_due"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "days_after_due"], name="dunning_level_days_unique"),
            models.CheckConstraint(
                condition=Q(days_after_due__gte=1, days_after_due__lte=365), name="dunning_level_days_range"
            ),
            models.CheckConstraint(
                condition=Q(action__in=DunningAction.values), name="dunning_level_action_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} at {self.days_after_due} days"


class DunningCase(models.Model):
    """One debt of a connection's customer, chased by the dunning job: opened the day the job first finds
    bills of theirs unpaid after their due date, closed the day it finds none. A level is taken at most
    once per case: a later debt (after the case closed) is a new case and starts at the first level."""

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="+")
    connection = models.ForeignKey(
        ServiceConnection, on_delete=models.PROTECT, related_name="dunning_cases", db_index=False
    )
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    opened_on = models.DateField()
    # The highest level taken, and when the last step was taken; empty before the first step.
    level = models.ForeignKey(DunningLevel, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    last_step_on = models.DateField(null=True, blank=True)
    # The day the job found nothing overdue any more (paid, or credited); empty while open.
    closed_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["connection_id", "-opened_on", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection"], condition=Q(closed_on__isnull=True), name="dunning_case_one_open"
            ),
        ]
        indexes = [models.Index(fields=["connection", "opened_on"], name="dunning_case_connection")]

    def __str__(self) -> str:
        return f"Debt of connection {self.connection_id} since {self.opened_on}"


class DunningStep(models.Model):
    """A level taken for a debt: dated, with the overdue balance and bills it was taken for, the notice
    recorded for the customer, and for a disconnection order its number. Written once, never changed."""

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="+")
    case = models.ForeignKey(DunningCase, on_delete=models.PROTECT, related_name="steps")
    connection = models.ForeignKey(
        ServiceConnection, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    level = models.ForeignKey(DunningLevel, on_delete=models.PROTECT, related_name="steps")
    action = models.CharField(max_length=20, choices=DunningAction.choices)  # the level's, when taken
    taken_on = models.DateField()
    days_overdue = models.PositiveIntegerField()  # since the oldest unpaid bill's due date
    # The overdue balance chased (money), and the bills it was owed on.
    balance = models.DecimalField(**MONEY)
    invoices = models.ManyToManyField(Invoice, related_name="dunning_steps")
    # The e-mail recorded for the customer; empty for a customer without an address (or who opted out
    # of reminders: final notices and disconnection notices go whatever the choice).
    notice = models.ForeignKey(
        "accounts.Message", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # A disconnection order's number (CODE-DO-YYYY-000001); empty when the connection was not connected.
    order_number = models.CharField(max_length=30, blank=True)
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["case_id", "taken_on", "id"]
        constraints = [
            models.UniqueConstraint(fields=["case", "level"], name="dunning_step_level_once"),
            models.CheckConstraint(condition=Q(balance__gt=0), name="dunning_step_balance_positive"),
        ]
        indexes = [models.Index(fields=["connection", "taken_on"], name="dunning_step_connection")]

    def __str__(self) -> str:
        return f"{self.get_action_display()} on {self.taken_on}"


class DisconnectionOrderStatus(models.TextChoices):
    OPEN = "open", _("Open")  # waiting for field staff to cut the supply
    CARRIED_OUT = "carried_out", _("Carried out")
    WITHDRAWN = (
        "withdrawn",
        _("Withdrawn"),
    )  # paid, covered by a plan, or no longer connected before the visit


class DisconnectionOrder(models.Model):
    """A numbered order to cut a connection's supply for non-payment (CODE-DO-YYYY-000001).

    The dunning job's order waits in the field staff's list until they carry it out on site, through the
    connection's disconnect step; it is withdrawn when the debt is paid or covered by a kept plan before
    then. An officer's order on site is carried out as it is issued."""

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="+")
    connection = models.ForeignKey(
        ServiceConnection, on_delete=models.PROTECT, related_name="disconnection_orders", db_index=False
    )
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    number = models.CharField(max_length=30)
    issued_on = models.DateField()
    # The overdue balance it was issued for (money); the visit checks what is overdue again.
    overdue_balance = models.DecimalField(**MONEY)
    reason = models.CharField(max_length=300)
    # The dunning step that issued it; empty for an officer's order.
    step = models.OneToOneField(
        DunningStep, on_delete=models.PROTECT, null=True, blank=True, related_name="order"
    )
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    status = models.CharField(
        max_length=12, choices=DisconnectionOrderStatus.choices, default=DisconnectionOrderStatus.OPEN
    )
    # Carried out: the connection's disconnection, and who took it; withdrawn: why.
    event = models.OneToOneField(
        ConnectionEvent, on_delete=models.PROTECT, null=True, blank=True, related_name="disconnection_order"
    )
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    withdrawn_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["issued_on", "id"]
        permissions = [("carry_out_disconnectionorder", "Can carry out a disconnection order on site")]
        constraints = [
            models.UniqueConstraint(fields=["provider", "number"], name="disconnection_order_number_unique"),
            models.UniqueConstraint(
                fields=["connection"], condition=Q(status="open"), name="disconnection_order_one_open"
            ),
            models.CheckConstraint(
                condition=Q(overdue_balance__gt=0), name="disconnection_order_balance_positive"
            ),
            models.CheckConstraint(
                condition=Q(status="open", closed_at__isnull=True)
                | Q(status="carried_out", event__isnull=False, closed_at__isnull=False)
                | Q(status="withdrawn", closed_at__isnull=False) & ~Q(withdrawn_reason=""),
                name="disconnection_order_closed_consistently",
            ),
        ]
        indexes = [
            models.Index(fields=["connection", "issued_on"], name="disconnection_order_connection"),
            models.Index(
                fields=["provider", "issued_on"], condition=Q(status="open"), name="disconnection_order_open"
            ),
        ]

    def __str__(self) -> str:
        return self.number


class PaymentPlanStatus(models.TextChoices):
    KEPT = "kept", _("Kept")  # every instalment due so far is covered: dunning pauses
    BROKEN = "broken", _("Broken")  # an instalment was missed: dunning resumes
    COMPLETED = "completed", _("Completed")  # its arrears are paid


class PaymentPlan(models.Model):
    """A connection's arrears spread over instalments by an officer. Payments settle bills oldest first,
    as always; the plan counts what its bills no longer owe toward its instalments, in order."""

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="+")
    connection = models.ForeignKey(
        ServiceConnection, on_delete=models.PROTECT, related_name="payment_plans", db_index=False
    )
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    # The bills unpaid after their due date when the plan was made, and what they owed then (money).
    invoices = models.ManyToManyField(Invoice, related_name="payment_plans")
    arrears = models.DecimalField(**MONEY)
    status = models.CharField(
        max_length=10, choices=PaymentPlanStatus.choices, default=PaymentPlanStatus.KEPT
    )
    reason = models.CharField(max_length=300)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # The day it was found broken or completed.
    ended_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["connection_id", "-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection"], condition=Q(status="kept"), name="payment_plan_one_kept"
            ),
            models.CheckConstraint(condition=Q(arrears__gt=0), name="payment_plan_arrears_positive"),
            models.CheckConstraint(
                condition=Q(status__in=PaymentPlanStatus.values), name="payment_plan_status_known"
            ),
        ]
        indexes = [models.Index(fields=["connection", "status"], name="payment_plan_connection")]

    def __str__(self) -> str:
        return f"Plan of {self.arrears} for connection {self.connection_id}"


class PaymentInstalment(models.Model):
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="+")
    plan = models.ForeignKey(PaymentPlan, on_delete=models.PROTECT, related_name="instalments")
    position = models.PositiveSmallIntegerField()  # 1, 2, ... in due-date order
    due_date = models.DateField()
    amount = models.DecimalField(**MONEY)

    class Meta:
        ordering = ["plan_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "position"], name="instalment_position_unique"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="instalment_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"Instalment {self.position}: {self.amount} due {self.due_date}"


# --- corrections: credit notes, the customer's credit balance, refunds ------------------------------


class CreditNote(models.Model):
    """A credit against one issued bill: the only way an issued bill's charges are taken back.

    What the bill still owed is credited on it (`applied`, added to the bill's `credited`); the rest
    (`to_balance`: the bill was paid in part or in full) becomes the customer's credit balance."""

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="+", db_index=False)
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    # CODE-CN-YYYY-000001: gapless per provider and year of issue.
    number = models.CharField(max_length=30, unique=True)
    issue_date = models.DateField()
    amount = models.DecimalField(**MONEY, help_text="What is credited, in all; the sum of its lines.")
    applied = models.DecimalField(**MONEY, help_text="The part taken off the bill's balance.")
    to_balance = models.DecimalField(**MONEY, help_text="The part that became the customer's credit balance.")
    reason = models.CharField(max_length=500)
    # The officer or clerk who issued it, as their account named them then.
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    issued_by_name = models.CharField(max_length=150)
    # The bill's balance before and after.
    balance_before = models.DecimalField(**MONEY)
    balance_after = models.DecimalField(**MONEY)
    created_at = models.DateTimeField(auto_now_add=True)
    # A retried request with the same key returns this credit note; `request_hash` tells a different body.
    idempotency_key = models.CharField(max_length=100, blank=True)
    request_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="credit_note_amount_positive"),
            models.CheckConstraint(
                condition=Q(applied__gte=0, to_balance__gte=0, balance_after__gte=0)
                & Q(Exact(cents("amount"), cents("applied") + cents("to_balance"))),
                name="credit_note_split",
            ),
            models.UniqueConstraint(
                fields=["issued_by", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="credit_note_idempotency_key_unique",
            ),
        ]
        indexes = [models.Index(fields=["provider", "issue_date"], name="credit_note_provider_issued")]

    def __str__(self) -> str:
        return self.number


class CreditNoteLine(models.Model):
    """What a credit note credits: the bill's current charges, its adjustments, or a part of it named
    by the reason. Signed: net officer credits on the bill are taken off what its charges credit."""

    credit_note = models.ForeignKey(
        CreditNote, on_delete=models.CASCADE, related_name="lines", db_index=False
    )
    position = models.PositiveSmallIntegerField()
    label = models.CharField(max_length=200)
    amount = models.DecimalField(**MONEY)

    class Meta:
        ordering = ["credit_note_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["credit_note", "position"], name="credit_note_line_position"),
        ]

    def __str__(self) -> str:
        return f"{self.label}: {self.amount}"


class CustomerCredit(models.Model):
    """A customer's credit balance with their provider: what credit notes and overpayments left over,
    less what was applied to their bills or refunded. The row every change of it locks."""

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="+", db_index=False)
    customer = models.OneToOneField(Customer, on_delete=models.PROTECT, related_name="credit")
    balance = models.DecimalField(**MONEY, default=0, help_text="Never negative; the sum of its entries.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider_id", "customer_id"]
        constraints = [
            models.CheckConstraint(condition=Q(balance__gte=0), name="customer_credit_not_negative"),
        ]
        indexes = [
            # A billing run's chunk looks up the credit of its customers who have some.
            models.Index(fields=["provider"], condition=Q(balance__gt=0), name="customer_credit_open"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.balance}"


class CreditEntryKind(models.TextChoices):
    CREDIT_NOTE = "credit_note", "From a credit note"
    OVERPAYMENT = "overpayment", "From an overpayment"
    APPLIED = "applied", "Applied to a bill"
    REFUND = "refund", "Refunded"
    REVERSAL = "reversal", "Taken back with a reversed overpayment"


class CreditEntry(models.Model):
    """One movement of a customer's credit balance: in (a credit note's excess, an overpayment's) or
    out (applied to a bill, refunded), with the balance after it."""

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="+", db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="credit_entries")
    kind = models.CharField(max_length=12, choices=CreditEntryKind.choices)
    amount = models.DecimalField(**MONEY, help_text="Signed: positive into the balance, negative out of it.")
    balance_after = models.DecimalField(**MONEY)
    # Where it came from or went: one of these, by kind.
    credit_note = models.ForeignKey(
        CreditNote, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    invoice = models.ForeignKey(
        Invoice,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="credit_entries",
        db_index=False,
    )
    refund = models.ForeignKey(
        "CreditRefund", on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["customer_id", "created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(balance_after__gte=0), name="credit_entry_balance_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(kind="credit_note", amount__gt=0, credit_note__isnull=False)
                | Q(kind="overpayment", amount__gt=0, payment__isnull=False)
                | Q(kind="applied", amount__lt=0, invoice__isnull=False)
                | Q(kind="refund", amount__lt=0, refund__isnull=False)
                | Q(kind="reversal", amount__lt=0, payment__isnull=False),
                name="credit_entry_kind_source",
            ),
        ]
        indexes = [models.Index(fields=["invoice"], name="credit_entry_invoice")]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.kind}: {self.amount}"


class CreditRefund(models.Model):
    """Money paid back to a customer out of their credit balance, by an officer: its receipt."""

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="+", db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="credit_refunds")
    # CODE-RF-YYYY-000001: gapless per provider and year.
    number = models.CharField(max_length=30, unique=True)
    amount = models.DecimalField(**MONEY)
    method = models.ForeignKey(PaymentMethod, on_delete=models.PROTECT, related_name="+")
    reference = models.CharField(max_length=100, blank=True, help_text="Bank transfer or cheque number.")
    reason = models.CharField(max_length=500)
    officer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    officer_name = models.CharField(max_length=150)
    officer_designation = models.CharField(max_length=100)
    # The customer's credit balance before and after.
    balance_before = models.DecimalField(**MONEY)
    balance_after = models.DecimalField(**MONEY)
    created_at = models.DateTimeField(auto_now_add=True)
    idempotency_key = models.CharField(max_length=100, blank=True)
    request_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="credit_refund_amount_positive"),
            models.CheckConstraint(
                condition=Q(balance_after__gte=0), name="credit_refund_balance_not_negative"
            ),
            models.UniqueConstraint(
                fields=["officer", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="credit_refund_idempotency_key_unique",
            ),
        ]
        indexes = [models.Index(fields=["provider", "created_at"], name="credit_refund_provider_made")]

    def __str__(self) -> str:
        return self.number


class PaymentFileFormat(models.Model):
    """How one bank's or collection agent's payment file is laid out, per provider: which header holds
    which field, how dates and amounts are written, and the method of a row that names none."""

    class Delimiter(models.TextChoices):
        COMMA = ",", "Comma (,)"
        SEMICOLON = ";", "Semicolon (;)"
        TAB = "\t", "Tab"
        PIPE = "|", "Pipe (|)"

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="payment_file_formats")
    name = models.CharField(max_length=100, help_text="The bank or collection agent, e.g. HBL collections.")
    # The header of each field's column, as the file writes it (matched ignoring case and spaces around).
    # A row names its bill by number, or its connection (then the connection's latest bill is paid).
    bill_number_column = models.CharField(max_length=60, blank=True)
    connection_number_column = models.CharField(max_length=60, blank=True)
    amount_column = models.CharField(max_length=60)
    date_column = models.CharField(max_length=60)
    method_column = models.CharField(
        max_length=60, blank=True, help_text="Empty: every row is the default method."
    )
    reference_column = models.CharField(max_length=60, help_text="The bank's own transaction id.")
    date_format = models.CharField(
        max_length=30,
        default="%Y-%m-%d",
        help_text="As Python's strptime writes it: %d/%m/%Y for 31/07/2024.",
    )
    # True: 1.234,56 (comma before the cents, dots between thousands); False: 1,234.56.
    decimal_comma = models.BooleanField(default=False)
    delimiter = models.CharField(max_length=1, choices=Delimiter.choices, default=Delimiter.COMMA)
    default_method = models.ForeignKey(
        PaymentMethod,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The method of a row whose method column is empty (or of every row, without one).",
    )
    is_active = models.BooleanField(default=True, help_text="Only active formats are offered for uploads.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "name"], name="payment_file_format_name_unique"),
            models.CheckConstraint(
                condition=~Q(bill_number_column="", connection_number_column=""),
                name="payment_file_format_names_a_bill",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def columns(self) -> dict[str, str]:
        """Each field's column, for the fields this format maps."""
        named = {
            "bill_number": self.bill_number_column,
            "connection_number": self.connection_number_column,
            "amount": self.amount_column,
            "date": self.date_column,
            "method": self.method_column,
            "reference": self.reference_column,
        }
        return {field: column for field, column in named.items() if column}


class PaymentFileStatus(models.TextChoices):
    PROCESSING = "processing", _("Processing")
    COMPLETED = "completed", _("Completed")


class PaymentFile(models.Model):
    """A bank's payment file as uploaded: its rows are stored first (`rows`), then posted in chunks of
    `chunk_size` lines by the workers, each row through the payment service."""

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="payment_files")
    file_format = models.ForeignKey(PaymentFileFormat, on_delete=models.PROTECT, related_name="files")
    name = models.CharField(max_length=255, help_text="The uploaded file's name.")
    # Of the bytes uploaded: the same file loaded again shows as such (its rows come back duplicates).
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # The role the uploader acted in: the rows are posted in it, on the bills it may take payments on.
    uploaded_role = models.CharField(max_length=20)
    uploaded_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(
        max_length=12, choices=PaymentFileStatus.choices, default=PaymentFileStatus.PROCESSING
    )
    chunk_size = models.PositiveIntegerField()
    # The rows' outcomes so far, counted from the rows after each chunk.
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    posted = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    refused = models.PositiveIntegerField(default=0)
    posted_amount = models.DecimalField(**MONEY, default=0)
    # When its chunks were last handed to the broker, and when a chunk last finished: the reconciler
    # sends the pending chunks of a file still since both (as a billing run's).
    dispatched_at = models.DateTimeField(null=True, blank=True)
    progressed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-uploaded_at", "-id"]
        indexes = [models.Index(fields=["provider", "uploaded_at"], name="payment_file_provider")]

    def __str__(self) -> str:
        return f"{self.name} ({self.uploaded_at:%Y-%m-%d %H:%M})" if self.uploaded_at else self.name

    @property
    def percent(self) -> int:
        return 100 if not self.total else min(100, self.done * 100 // self.total)


class RowOutcome(models.TextChoices):
    PENDING = "pending", _("Not posted yet")
    POSTED = "posted", _("Posted")
    DUPLICATE = "duplicate", _("Duplicate")
    REFUSED = "refused", _("Refused")


class PaymentFileRow(models.Model):
    """One row of a payment file, as read at upload, and what became of it."""

    file = models.ForeignKey(PaymentFile, on_delete=models.PROTECT, related_name="rows", db_index=False)
    line = models.PositiveIntegerField(help_text="The row's line in the file; the header is line 1.")
    bill_number = models.CharField(max_length=40, blank=True)
    connection_number = models.CharField(max_length=40, blank=True)
    # The row's amount and date as read; empty when the row could not be read (then it is refused).
    amount = models.DecimalField(**MONEY, null=True, blank=True)
    paid_on = models.DateField(null=True, blank=True)
    method = models.ForeignKey(
        PaymentMethod, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reference = models.CharField(max_length=100, blank=True)
    outcome = models.CharField(max_length=10, choices=RowOutcome.choices, default=RowOutcome.PENDING)
    reason = models.CharField(max_length=500, blank=True)
    # The payment it posted; for a duplicate, the earlier payment of its reference.
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["file_id", "line"]
        constraints = [
            models.UniqueConstraint(fields=["file", "line"], name="payment_file_row_line_unique"),
            models.CheckConstraint(
                condition=~Q(outcome="posted") | Q(payment__isnull=False),
                name="payment_file_row_posted_payment",
            ),
        ]
        indexes = [models.Index(fields=["file", "outcome"], name="payment_file_row_outcome")]

    def __str__(self) -> str:
        return f"{self.file_id}:{self.line}"
