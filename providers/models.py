from datetime import date
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models.functions import Upper


class Provider(models.Model):
    """An electricity distribution company: the tenant. Every provider-owned row points here."""

    code = models.CharField(
        max_length=12,
        unique=True,
        validators=[
            RegexValidator(r"^[A-Z][A-Z0-9]{1,11}$", "2 to 12 capital letters or digits, e.g. DISCO.")
        ],
        help_text="Printed in invoice numbers: CODE-YYYY-000123.",
    )
    name = models.CharField(max_length=200)
    city = models.CharField(max_length=100)
    email = models.EmailField()
    phone = models.CharField(max_length=30, blank=True)
    is_active = models.BooleanField(default=True)
    # ISO 4217 code; every amount of this provider is in this currency.
    currency = models.CharField(
        max_length=3, default="PKR", validators=[RegexValidator(r"^[A-Z]{3}$", "An ISO 4217 code, e.g. PKR.")]
    )
    # Days from issue to due date.
    due_days = models.PositiveSmallIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(90)]
    )
    # Percent of the current charges added once when a bill passes its due date unpaid.
    late_surcharge_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("10.00"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
    )
    # Charged on the next bill of a connection reconnected after a disconnection; 0: none.
    reconnection_fee = models.DecimalField(
        max_digits=14, decimal_places=2, default=Decimal("0.00"), validators=[MinValueValidator(Decimal("0"))]
    )
    # A month without a reading: billed on an estimate (DESIGN.md "Estimated reads"), trued up by the
    # next actual reading; off: not billed until a reading comes.
    estimate_missing_readings = models.BooleanField(
        default=True, help_text="Bill a month without a meter reading on an estimate, trued up later."
    )
    # A payment above what is owed: refused (the default), or its excess kept as the customer's credit
    # balance, applied to their next bill or refunded.
    allow_overpayment = models.BooleanField(
        default=False, help_text="Keep the excess of a payment above what is owed as the customer's credit."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(code=Upper("code")), name="provider_code_upper"),
            models.CheckConstraint(
                condition=models.Q(late_surcharge_percent__gte=0, late_surcharge_percent__lte=100),
                name="provider_late_surcharge_percent_range",
            ),
            models.CheckConstraint(condition=models.Q(due_days__gte=1), name="provider_due_days_positive"),
            models.CheckConstraint(
                condition=models.Q(reconnection_fee__gte=0), name="provider_reconnection_fee_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class ConnectionType(models.Model):
    """A provider's class of connection (residential 5 kW, industry 100 kW, ...): what tariffs vary by."""

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="connection_types")
    code = models.CharField(max_length=20, help_text="As the provider writes it, e.g. 1 or R-5KW.")
    description = models.CharField(max_length=200)
    # Contracted maximum load, kW.
    sanctioned_load_kw = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)

    class Meta:
        ordering = ["provider_id", "code"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "code"], name="connection_type_code_unique"),
            models.CheckConstraint(
                condition=models.Q(sanctioned_load_kw__gte=0) | models.Q(sanctioned_load_kw__isnull=True),
                name="connection_type_load_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.description}"


class Authority(models.Model):
    """A body a charge is collected for or a subsidy is paid by (FBR, Government of Punjab, PTV)."""

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="authorities")
    code = models.CharField(max_length=20)
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["provider_id", "code"]
        verbose_name_plural = "authorities"
        constraints = [models.UniqueConstraint(fields=["provider", "code"], name="authority_code_unique")]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class DatedRowQuerySet(models.QuerySet):
    def in_force_on(self, day: date) -> "DatedRowQuerySet":
        return self.filter(models.Q(valid_to__isnull=True) | models.Q(valid_to__gt=day), valid_from__lte=day)

    def in_force_between(self, first: date, last: date) -> "DatedRowQuerySet":
        """Rows in force on at least one day from `first` to `last`."""
        return self.filter(
            models.Q(valid_to__isnull=True) | models.Q(valid_to__gt=first),
            models.Q(valid_to__isnull=True) | models.Q(valid_to__gt=models.F("valid_from")),
            valid_from__lte=last,
        )


class DatedRow(models.Model):
    """A row of the price schedule, in force on days in [valid_from, valid_to).

    Rows are never edited once they could have been used: a change closes them (sets `valid_to`,
    `closed_by`, `closed_at`) and opens new ones, so every past bill can be explained and recomputed.
    """

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="+")
    # Empty: applies to every connection type that has no row of its own.
    connection_type = models.ForeignKey(
        ConnectionType, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True, help_text="First day no longer in force; empty: open.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)

    objects = DatedRowQuerySet.as_manager()

    class Meta:
        abstract = True

    def in_force_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)

    @property
    def superseded(self) -> bool:
        """Replaced by a correction the day it started: [valid_from, valid_from) is in force on no day.
        Bills issued between `created_at` and `closed_at` were rated with it and keep it."""
        return self.valid_to is not None and self.valid_to == self.valid_from


def _dated_constraints(prefix: str) -> list[models.BaseConstraint]:
    return [
        models.CheckConstraint(
            condition=models.Q(valid_to__isnull=True) | models.Q(valid_to__gt=models.F("valid_from")),
            name=f"{prefix}_valid_from_before_valid_to",
        )
    ]


class Bucket(models.TextChoices):
    PEAK = "peak", "Peak hours"
    OFF_PEAK = "off_peak", "Off-peak hours"
    ALL = "all", "All hours"


class SlabMode(models.TextChoices):
    AVERAGE = "average", "One rate for all units, chosen by average kWh per hour"
    GRADUATED = "graduated", "Graduated: each block of monthly kWh at its own rate"


class TariffRow(DatedRow):
    """One energy rate: for a connection type (or all), a time-of-use bucket and a slab band."""

    code = models.CharField(max_length=40, blank=True)
    description = models.CharField(max_length=200, blank=True)
    bucket = models.CharField(max_length=10, choices=Bucket.choices, default=Bucket.ALL)
    mode = models.CharField(max_length=10, choices=SlabMode.choices, default=SlabMode.AVERAGE)
    slab = models.PositiveSmallIntegerField(default=1)
    # Band [band_low, band_high): average kWh per hour (AVERAGE) or monthly kWh (GRADUATED); empty high: open.
    band_low = models.DecimalField(max_digits=14, decimal_places=4, default=Decimal("0"))
    band_high = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    # Price per kWh in the provider's currency.
    rate = models.DecimalField(max_digits=14, decimal_places=4)
    # Minimum billed units and amount per 30 days, scaled by billing days / 30.
    min_units = models.DecimalField(max_digits=14, decimal_places=4, default=Decimal("0"))
    min_amount = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    # A row a retroactive price order opened, or closed: the order explains the bills re-issued on it.
    price_order = models.ForeignKey(
        "PriceOrder", on_delete=models.PROTECT, null=True, blank=True, related_name="opened_rows"
    )
    closed_by_order = models.ForeignKey(
        "PriceOrder", on_delete=models.PROTECT, null=True, blank=True, related_name="closed_rows"
    )

    class Meta:
        ordering = ["provider_id", "connection_type_id", "bucket", "band_low", "valid_from"]
        indexes = [models.Index(fields=["provider", "valid_from", "valid_to"])]
        constraints = [
            # A tariff row may also end the day it starts, once closed: a same-day correction
            # superseded it (providers.services.tariff_change).
            models.CheckConstraint(
                condition=models.Q(valid_to__isnull=True)
                | models.Q(valid_to__gt=models.F("valid_from"))
                | models.Q(valid_to=models.F("valid_from"), closed_at__isnull=False),
                name="tariff_ends_after_start_or_superseded",
            ),
            models.CheckConstraint(
                condition=models.Q(rate__gte=0, min_units__gte=0, min_amount__gte=0, band_low__gte=0),
                name="tariff_amounts_not_negative",
            ),
            models.CheckConstraint(
                condition=models.Q(band_high__isnull=True) | models.Q(band_high__gt=models.F("band_low")),
                name="tariff_band_high_above_low",
            ),
        ]

    def __str__(self) -> str:
        return (
            self.code or f"{self.get_bucket_display()} {self.band_low}-{self.band_high or '∞'} @ {self.rate}"
        )


class TaxRule(DatedRow):
    """A tax on the energy charge: rate x (sum of energy charges), rounded once per rule."""

    name = models.CharField(max_length=100)
    authority = models.ForeignKey(Authority, on_delete=models.PROTECT, related_name="+")
    # A fraction: 0.17 is 17%.
    rate = models.DecimalField(max_digits=7, decimal_places=4)

    class Meta:
        ordering = ["provider_id", "connection_type_id", "name", "valid_from"]
        constraints = [
            *_dated_constraints("tax"),
            models.CheckConstraint(condition=models.Q(rate__gte=0, rate__lte=1), name="tax_rate_fraction"),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.rate}"


class FixedCharge(DatedRow):
    """A flat monthly charge collected for an authority (meter rent, TV fee): not taxed, not pro-rated."""

    name = models.CharField(max_length=100)
    authority = models.ForeignKey(Authority, on_delete=models.PROTECT, related_name="+")
    # Per bill, in the provider's currency.
    amount = models.DecimalField(max_digits=14, decimal_places=2)

    class Meta:
        ordering = ["provider_id", "connection_type_id", "name", "valid_from"]
        constraints = [
            *_dated_constraints("fixed_charge"),
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="fixed_charge_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.amount}"


class SubsidyBasis(models.TextChoices):
    USAGE = "usage", "Average import per hour within a band"
    INCOME = "income", "Declared monthly income at or below a ceiling"


class Subsidy(DatedRow):
    """A reduction paid by an authority: per unit of total import, or a percent of energy."""

    code = models.CharField(max_length=40)
    description = models.CharField(max_length=300, blank=True)
    payer = models.ForeignKey(Authority, on_delete=models.PROTECT, related_name="+")
    basis = models.CharField(max_length=10, choices=SubsidyBasis.choices, default=SubsidyBasis.USAGE)
    # USAGE: band [band_low, band_high) on total import kWh per hour; empty high: open.
    band_low = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    band_high = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    # INCOME: the customer's declared monthly income must be at or below this.
    income_ceiling = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    # Exactly one of: currency per imported kWh, or percent of the energy charge.
    rate_per_unit = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    percent = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)

    class Meta:
        ordering = ["provider_id", "connection_type_id", "code", "valid_from"]
        verbose_name_plural = "subsidies"
        constraints = [
            *_dated_constraints("subsidy"),
            models.CheckConstraint(
                condition=(
                    models.Q(rate_per_unit__isnull=False, rate_per_unit__gte=0, percent__isnull=True)
                    | models.Q(
                        percent__isnull=False, percent__gte=0, percent__lte=100, rate_per_unit__isnull=True
                    )
                ),
                name="subsidy_one_amount_rule",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(
                        basis="usage", band_low__isnull=False, band_low__gte=0, income_ceiling__isnull=True
                    )
                    | models.Q(basis="income", income_ceiling__isnull=False, income_ceiling__gte=0)
                ),
                name="subsidy_basis_fields",
            ),
            models.CheckConstraint(
                condition=models.Q(band_high__isnull=True) | models.Q(band_high__gt=models.F("band_low")),
                name="subsidy_band_high_above_low",
            ),
        ]

    def __str__(self) -> str:
        return self.code


class PriceOrderStatus(models.TextChoices):
    DRAFT = "draft", "Entered, not confirmed"
    CONFIRMED = "confirmed", "Confirmed: prices changed and bills re-issued"


class PriceOrder(models.Model):
    """A regulator's order changing energy rates from a day in the past (DESIGN.md "Corrections").

    Entered as a draft, which changes nothing and lists the issued bills it affects; confirmed, it
    closes the tariff rows in force on `valid_from`, opens its own rows, and re-issues the affected
    bills by credit note and new bill (a billing run of its own, invoicing/services/rebilling.py).
    """

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="price_orders")
    reference = models.CharField(
        max_length=100, help_text="The regulator's reference, e.g. NEPRA/TRF-100/2024."
    )
    description = models.CharField(max_length=500, blank=True)
    # The first day the order's rates apply: before today (an upcoming change is an ordinary one).
    valid_from = models.DateField()
    # Empty: the rates of every connection type that has none of its own.
    connection_type = models.ForeignKey(
        ConnectionType, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # The new tariff rows, as providers.services.TariffSpec fields (decimals as strings), opened on
    # confirmation.
    rows = models.JSONField()
    status = models.CharField(max_length=10, choices=PriceOrderStatus.choices, default=PriceOrderStatus.DRAFT)
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    entered_at = models.DateTimeField(auto_now_add=True)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-valid_from", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "reference"], name="price_order_reference_unique"),
            models.CheckConstraint(
                condition=models.Q(status="draft", confirmed_at__isnull=True)
                | models.Q(status="confirmed", confirmed_at__isnull=False),
                name="price_order_confirmed_when_confirmed",
            ),
        ]

    def __str__(self) -> str:
        return f"Price order {self.reference} from {self.valid_from}"
