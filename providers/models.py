from decimal import Decimal

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
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"
