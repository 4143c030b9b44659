from decimal import Decimal

from django.conf import settings
from django.db import models

from accounts.models import Language
from providers.models import ConnectionType, Provider


class CustomerKind(models.TextChoices):
    RESIDENTIAL = "Residential"
    COMMERCIAL = "Commercial"
    INDUSTRIAL = "Industrial"
    PUBLIC = "Public"


class Customer(models.Model):
    """A provider's customer account. Its contact details are its own and printed on its bills; a
    login (a user with the Customer role) is optional, made when the customer is invited."""

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="customers")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="customer"
    )
    number = models.CharField(max_length=40, help_text="As the provider writes it, e.g. LHR-RES-0001.")
    name = models.CharField(max_length=150)
    national_id = models.CharField(max_length=20, blank=True, help_text="CNIC, e.g. 35202-1234567-1.")
    email = models.EmailField(blank=True, help_text="Where bills and notices are sent; empty: none are.")
    phone = models.CharField(max_length=30, blank=True)
    address = models.CharField(max_length=300, blank=True)
    kind = models.CharField(max_length=20, choices=CustomerKind.choices, default=CustomerKind.RESIDENTIAL)
    organisation = models.CharField(max_length=200, blank=True)
    preferred_language = models.CharField(max_length=2, choices=Language.choices, default=Language.ENGLISH)
    # The customer's notification choices; an invitation or a password reset is sent regardless.
    notify_bills = models.BooleanField(default=True, help_text="E-mail each bill when it is issued.")
    notify_reminders = models.BooleanField(
        default=True, help_text="E-mail before the due date and when overdue."
    )
    notify_payments = models.BooleanField(default=True, help_text="E-mail a receipt for each payment.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider_id", "number"]
        constraints = [models.UniqueConstraint(fields=["provider", "number"], name="customer_number_unique")]

    def __str__(self) -> str:
        return self.number


class ConnectionStatus(models.TextChoices):
    PENDING = "Pending"  # created, not yet connected: no first reading
    ACTIVE = "Active"
    DISCONNECTED = "Disconnected"
    CLOSED = "Closed"  # final reading taken and final bill issued; never billed again


class ServiceConnection(models.Model):
    """A metered supply point of a customer; bills are per connection and month."""

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="connections")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="connections")
    number = models.CharField(max_length=40, help_text="As the provider writes it, e.g. DISCO-RES-1101.")
    connection_type = models.ForeignKey(ConnectionType, on_delete=models.PROTECT, related_name="connections")
    meter_number = models.CharField(max_length=40, blank=True)
    meter_type = models.CharField(max_length=60, blank=True)
    division = models.CharField(max_length=100, blank=True)
    subdivision = models.CharField(max_length=100, blank=True)
    installation_date = models.DateField(null=True, blank=True)
    status = models.CharField(
        max_length=20, choices=ConnectionStatus.choices, default=ConnectionStatus.ACTIVE
    )
    # Declared by the customer, per month, for income-based subsidies; empty: not declared.
    declared_monthly_income = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    income_declared_on = models.DateField(null=True, blank=True)
    income_recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["provider_id", "number"]
        permissions = [
            ("use_calculator", "Can estimate a month's bill for hypothetical usage"),
            ("declare_income", "Can record a customer's declared monthly income"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["provider", "number"], name="connection_number_unique"),
            models.CheckConstraint(
                condition=models.Q(declared_monthly_income__gte=0)
                | models.Q(declared_monthly_income__isnull=True),
                name="connection_income_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.number


class NumberSeries(models.TextChoices):
    CUSTOMER = "customer"
    CONNECTION = "connection"


class NumberCounter(models.Model):
    """The last number given in one provider's series of customer or connection numbers. Its row is
    locked while a number is taken and the row inserted, in one transaction: a rollback gives the
    number back, so generated numbers have no gaps."""

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="+")
    series = models.CharField(max_length=12, choices=NumberSeries.choices)
    last = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "series"], name="number_counter_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.provider_id} {self.series}: {self.last}"


class ReadingSource(models.TextChoices):
    API = "api", "Entered through the API"
    UPLOAD = "upload", "Bulk upload"
    IMPORT = "import", "Imported"
    SELF = "self", "Read by the customer (a self-read)"


class MeterReading(models.Model):
    """Cumulative registers of a connection's meter at one moment, in kWh."""

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="+")
    connection = models.ForeignKey(ServiceConnection, on_delete=models.PROTECT, related_name="readings")
    taken_at = models.DateTimeField()
    import_peak = models.DecimalField(max_digits=14, decimal_places=4)
    import_off_peak = models.DecimalField(max_digits=14, decimal_places=4)
    export_peak = models.DecimalField(max_digits=14, decimal_places=4, default=Decimal("0"))
    export_off_peak = models.DecimalField(max_digits=14, decimal_places=4, default=Decimal("0"))
    # A new meter starts its registers again: this reading may be lower than the one before it.
    meter_replaced = models.BooleanField(default=False)
    source = models.CharField(max_length=10, choices=ReadingSource.choices, default=ReadingSource.API)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["connection_id", "taken_at"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "taken_at"], name="reading_once_per_moment"),
            models.CheckConstraint(
                condition=models.Q(
                    import_peak__gte=0, import_off_peak__gte=0, export_peak__gte=0, export_off_peak__gte=0
                ),
                name="reading_registers_not_negative",
            ),
        ]

    REGISTERS = ("import_peak", "import_off_peak", "export_peak", "export_off_peak")

    def __str__(self) -> str:
        return f"{self.connection_id} at {self.taken_at}"
