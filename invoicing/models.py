"""Invoices, their lines, payments, adjustments, the numbering counters and the monthly billing run.

An invoice is a frozen document: its amounts are written once, when it is issued, and never change
(a re-rate is allowed only while nothing was paid or adjusted). What moves afterwards is its
ledger: `amount_paid` and `adjustment_total`, and with them `balance`, which the database itself
keeps equal to current charges + adjustments - payments and never negative.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Round
from django.db.models.lookups import Exact
from django.utils import timezone

from billing.models import ConnectionEvent, Customer, ServiceConnection
from providers.models import Provider, TariffRow

MONEY = {"max_digits": 14, "decimal_places": 2}


def cents(name: str) -> Round:
    """A money column in whole cents, for checks that add amounts up.

    SQLite keeps decimals as REAL and adds them in floating point, where 0.10 + 0.20 is not 0.30; the
    nearest whole number to one column times 100 is exact there for any amount a column can hold
    (up to 14 digits), and on PostgreSQL it is the same number, so a sum of these compares exactly."""
    return Round(F(name) * 100)


KWH = {"max_digits": 14, "decimal_places": 4}


class InvoiceStatus(models.TextChoices):
    PENDING = "Pending"
    PARTIALLY_PAID = "Partially_Paid"
    PAID = "Paid"
    OVERDUE = "Overdue"
    CANCELLED = "Cancelled"


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
    payable_before_due = models.DecimalField(**MONEY, help_text="Current charges + arrears.")
    # What the overdue job adds once, as an adjustment, if the bill is unpaid after its due date.
    late_surcharge = models.DecimalField(**MONEY)
    payable_after_due = models.DecimalField(**MONEY)
    # The ledger: payments settled against this invoice, net adjustments (debits - credits), what is owed.
    amount_paid = models.DecimalField(**MONEY, default=0)
    adjustment_total = models.DecimalField(**MONEY, default=0)
    balance = models.DecimalField(**MONEY)
    status = models.CharField(max_length=20, choices=InvoiceStatus.choices, default=InvoiceStatus.PENDING)
    # The day the balance reached zero (by payment, or by a credit adjustment).
    paid_on = models.DateField(null=True, blank=True)
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
        permissions = [("collect_payment", "Can record a payment on this invoice")]
        constraints = [
            # A cancelled bill leaves its month free to be billed again.
            models.UniqueConstraint(
                fields=["connection", "period"],
                condition=~Q(status="Cancelled"),
                name="invoice_once_per_connection_month",
            ),
            models.CheckConstraint(
                condition=Q(
                    Exact(
                        cents("balance"),
                        cents("current_charges") + cents("adjustment_total") - cents("amount_paid"),
                    )
                )
                | Q(status="Cancelled"),
                name="invoice_balance_is_ledger",
            ),
            models.CheckConstraint(condition=Q(balance__gte=0), name="invoice_balance_not_negative"),
            models.CheckConstraint(condition=Q(amount_paid__gte=0), name="invoice_paid_not_negative"),
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


class AdjustmentDirection(models.TextChoices):
    CREDIT = "credit", "Credit (lowers the balance)"
    DEBIT = "debit", "Debit (raises the balance)"


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
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"


class BillingRun(models.Model):
    """One provider's monthly billing of its active connections, split into chunks that workers share.

    At most one unfinished run per provider and month: starting again resumes it. A later run for a
    month already billed issues only what is missing (a connection is never billed twice a month).
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
                condition=Q(status="running"),
                name="billing_run_one_unfinished",
            ),
        ]

    def __str__(self) -> str:
        return f"Billing run {self.pk} ({self.period:%B %Y})" if self.period else f"Billing run {self.pk}"

    @property
    def percent(self) -> int:
        """How far the run has got, in whole percent (a run with nothing to bill is complete)."""
        return 100 if not self.total else min(100, self.done * 100 // self.total)


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
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"


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
    PROCESSING = "processing", "Processing"
    COMPLETED = "completed", "Completed"


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
    PENDING = "pending", "Not posted yet"
    POSTED = "posted", "Posted"
    DUPLICATE = "duplicate", "Duplicate"
    REFUSED = "refused", "Refused"


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
