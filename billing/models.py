from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Language
from providers.models import ConnectionType, Provider


class CustomerKind(models.TextChoices):
    RESIDENTIAL = "Residential", _("Residential")
    COMMERCIAL = "Commercial", _("Commercial")
    INDUSTRIAL = "Industrial", _("Industrial")
    PUBLIC = "Public", _("Public")


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
        # A customer by number alone (the bill retrieval, a platform user's search, the e-mails about a
        # customer): the unique index above leads with the provider, which such a lookup does not give.
        indexes = [models.Index(fields=["number"], name="customer_number")]

    def __str__(self) -> str:
        return self.number


class ConnectionStatus(models.TextChoices):
    PENDING = "Pending", _("Pending")  # created, not yet connected: no first reading
    ACTIVE = "Active", _("Active")
    DISCONNECTED = "Disconnected", _("Disconnected")
    CLOSED = "Closed", _("Closed")  # final reading taken and final bill issued; never billed again


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
        # A connection by number alone, as the bill retrieval looks it up beside the customer's.
        indexes = [models.Index(fields=["number"], name="connection_number")]

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
    API = "api", _("Entered through the API")
    UPLOAD = "upload", _("Bulk upload")
    IMPORT = "import", _("Imported")
    SELF = "self", _("Read by the customer (a self-read)")
    EXCHANGE = "exchange", _("A new meter's first reading, at a meter exchange")


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


class MeterExchange(models.Model):
    """A meter replaced: the old meter's final registers and the new meter's first, at one moment.

    The new meter's first registers are also the connection's reading at that moment (`first_reading`,
    flagged `meter_replaced`), so every later reading is checked against the new meter and a period may
    start or end there. A bill across the exchange counts, per register, old final - previous reading
    + current reading - new first (DESIGN.md "Meter exchange"). Recorded once, never changed.
    """

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="+")
    connection = models.ForeignKey(
        ServiceConnection, on_delete=models.PROTECT, related_name="meter_exchanges"
    )
    first_reading = models.OneToOneField(MeterReading, on_delete=models.PROTECT, related_name="exchange")
    exchanged_at = models.DateTimeField(help_text="The moment the old meter was read last and the new first.")
    old_meter_number = models.CharField(max_length=40, blank=True)
    old_meter_type = models.CharField(max_length=60, blank=True)
    new_meter_number = models.CharField(max_length=40)
    new_meter_type = models.CharField(max_length=60, blank=True)
    # The old meter's registers when it was taken out, kWh.
    final_import_peak = models.DecimalField(max_digits=14, decimal_places=4)
    final_import_off_peak = models.DecimalField(max_digits=14, decimal_places=4)
    final_export_peak = models.DecimalField(max_digits=14, decimal_places=4, default=Decimal("0"))
    final_export_off_peak = models.DecimalField(max_digits=14, decimal_places=4, default=Decimal("0"))
    # The new meter's registers when it was put in, kWh (as its first reading has them).
    first_import_peak = models.DecimalField(max_digits=14, decimal_places=4)
    first_import_off_peak = models.DecimalField(max_digits=14, decimal_places=4)
    first_export_peak = models.DecimalField(max_digits=14, decimal_places=4, default=Decimal("0"))
    first_export_off_peak = models.DecimalField(max_digits=14, decimal_places=4, default=Decimal("0"))
    reason = models.CharField(max_length=300, help_text="Why: faulty, burnt, upgraded to a net meter, ...")
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    FINAL_REGISTERS = (
        "final_import_peak",
        "final_import_off_peak",
        "final_export_peak",
        "final_export_off_peak",
    )
    FIRST_REGISTERS = (
        "first_import_peak",
        "first_import_off_peak",
        "first_export_peak",
        "first_export_off_peak",
    )

    class Meta:
        ordering = ["connection_id", "exchanged_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "exchanged_at"], name="meter_exchange_once_per_moment"
            ),
            models.CheckConstraint(
                condition=models.Q(
                    final_import_peak__gte=0,
                    final_import_off_peak__gte=0,
                    final_export_peak__gte=0,
                    final_export_off_peak__gte=0,
                    first_import_peak__gte=0,
                    first_import_off_peak__gte=0,
                    first_export_peak__gte=0,
                    first_export_off_peak__gte=0,
                ),
                name="meter_exchange_registers_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.connection_id}: {self.old_meter_number or '?'} -> {self.new_meter_number} at {self.exchanged_at}"


class ConnectionTypeChange(models.Model):
    """A connection's type changed from a day on (a shop opened in a house, a load upgraded).

    Recorded by the lifecycle service, which also switches `connection.connection_type`. A bill whose
    period holds `effective_from` is split at 00:00 that day and each part rated on its own type's rows
    (see `billing.rating.rate_parts`)."""

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="+")
    connection = models.ForeignKey(ServiceConnection, on_delete=models.PROTECT, related_name="type_changes")
    from_type = models.ForeignKey(ConnectionType, on_delete=models.PROTECT, related_name="+")
    to_type = models.ForeignKey(ConnectionType, on_delete=models.PROTECT, related_name="+")
    effective_from = models.DateField(help_text="The first day billed on the new type.")
    reason = models.CharField(max_length=300)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["connection_id", "effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "effective_from"], name="type_change_once_a_day"),
            models.CheckConstraint(
                condition=~models.Q(from_type=models.F("to_type")), name="type_change_changes_the_type"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.connection_id}: {self.from_type_id} -> {self.to_type_id} from {self.effective_from}"


class EventKind(models.TextChoices):
    CONNECTED = "connected", _("Connected")
    DISCONNECTED = "disconnected", _("Disconnected")
    RECONNECTED = "reconnected", _("Reconnected")
    CLOSED = "closed", _("Closed")
    TYPE_CHANGED = "type_changed", _("Connection type changed")
    MOVED_OUT = "moved_out", _("Customer moved out")
    MOVED_IN = "moved_in", _("Customer moved in")


class DisconnectionGround(models.TextChoices):
    ON_REQUEST = "on_request", _("At the customer's request")
    NON_PAYMENT = "non_payment", _("For non-payment (a disconnection order)")


class ConnectionEvent(models.Model):
    """A dated step of a connection's life, with its reason and who recorded it: written by the
    lifecycle services (billing/lifecycle.py, invoicing/services/lifecycle.py) and never changed."""

    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="+")
    connection = models.ForeignKey(ServiceConnection, on_delete=models.PROTECT, related_name="events")
    # The customer account the step concerns: on a move, the outgoing one (moved out) and the incoming
    # one (moved in); otherwise the connection's customer at the time.
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=20, choices=EventKind.choices)
    # When it took effect (a change of type: the start of the day it applies from).
    effective_at = models.DateTimeField()
    reason = models.CharField(max_length=300)
    # The reading taken at the step: the first (connect), the final (close, move), or one given with
    # a disconnection or reconnection.
    reading = models.ForeignKey(
        MeterReading, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # A disconnection's ground; for non-payment, the disconnection order's number and the overdue
    # balance (money) that justified it when it was issued.
    ground = models.CharField(max_length=20, choices=DisconnectionGround.choices, blank=True)
    order_number = models.CharField(max_length=30, blank=True)
    overdue_balance = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    # What else the step decided, as shown on the connection's history: the final bill's number, the
    # other customer of a move, the types of a change, the reconnection fee charged.
    details = models.JSONField(default=dict, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["connection_id", "effective_at", "id"]
        indexes = [models.Index(fields=["connection", "effective_at"], name="event_connection_time")]
        permissions = [
            ("connect_connection", "Can connect a pending connection with its first reading"),
            ("disconnect_connection", "Can disconnect a connection at its customer's request"),
            ("order_disconnection", "Can order a connection disconnected for non-payment"),
            ("reconnect_connection", "Can reconnect a disconnected connection"),
            ("close_connection", "Can close a connection with its final reading and final bill"),
            ("move_connection", "Can record a customer moving out and another moving in"),
            ("change_connection_type", "Can change a connection's type from a date"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind="disconnected", ground__in=DisconnectionGround.values)
                | (~models.Q(kind="disconnected") & models.Q(ground="")),
                name="event_disconnection_has_ground",
            ),
            models.CheckConstraint(
                condition=~models.Q(ground="non_payment")
                | (~models.Q(order_number="") & models.Q(overdue_balance__gt=0)),
                name="event_disconnection_order_owed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.connection_id} {self.kind} at {self.effective_at}"
