from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import factory
from django.conf import settings

from accounts.models import User, UserRole
from accounts.roles import Role
from billing.models import Customer, MeterReading, ServiceConnection
from invoicing.models import PaymentFileFormat, PaymentMethod
from providers.models import ConnectionType, Provider, TariffRow

PASSWORD = "correct-horse-battery-9"


class ProviderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Provider

    code = factory.Sequence(lambda n: f"P{n:03d}")
    name = factory.Sequence(lambda n: f"Provider {n}")
    city = "Lahore"
    email = factory.Sequence(lambda n: f"billing{n}@provider.example")
    currency = "PKR"
    due_days = 10
    late_surcharge_percent = Decimal("10.00")


class UserFactory(factory.django.DjangoModelFactory):
    """A user of a provider holding `roles` (Customer by default), password `PASSWORD`."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Sequence(lambda n: f"User {n}")
    provider = factory.SubFactory(ProviderFactory)
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def roles(self, create: bool, extracted: list[str] | None, **kwargs: object) -> None:
        for role in extracted or [Role.CUSTOMER]:
            UserRole.objects.create(user=self, role=role)
        if Role.ADMIN in (extracted or []):
            User.objects.filter(pk=self.pk).update(is_staff=True)
            self.is_staff = True


class ConnectionTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ConnectionType

    provider = factory.SubFactory(ProviderFactory)
    code = factory.Sequence(lambda n: str(n + 1))
    description = factory.Sequence(lambda n: f"Residential {n}")
    sanctioned_load_kw = Decimal("5")


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    provider = factory.SubFactory(ProviderFactory)
    user = factory.LazyAttribute(lambda o: UserFactory(provider=o.provider, roles=[Role.CUSTOMER]))
    number = factory.Sequence(lambda n: f"CUST-{n:04d}")
    # The customer's own contact details; a customer with a login starts with its user's.
    name = factory.LazyAttribute(lambda o: o.user.name if o.user else f"Customer {o.number}")
    email = factory.LazyAttribute(lambda o: o.user.email if o.user else "")
    phone = factory.LazyAttribute(lambda o: o.user.phone if o.user else "")
    address = factory.LazyAttribute(lambda o: o.user.address if o.user else "")


class ConnectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ServiceConnection

    customer = factory.SubFactory(CustomerFactory)
    provider = factory.SelfAttribute("customer.provider")
    number = factory.Sequence(lambda n: f"CONN-{n:04d}")
    connection_type = factory.LazyAttribute(lambda o: ConnectionTypeFactory(provider=o.provider))


class FlatTariffFactory(factory.django.DjangoModelFactory):
    """One flat price per kWh for every type and hour, in force since 2020 (set up, not a price change)."""

    class Meta:
        model = TariffRow

    provider = factory.SubFactory(ProviderFactory)
    rate = Decimal("32.50")
    valid_from = date(2020, 1, 1)
    code = "FLAT"


class ReadingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MeterReading

    connection = factory.SubFactory(ConnectionFactory)
    provider = factory.SelfAttribute("connection.provider")
    import_peak = Decimal("0")
    import_off_peak = Decimal("0")


class PaymentFileFormatFactory(factory.django.DjangoModelFactory):
    """A bank's file: bill, connection, amount, date (YYYY-MM-DD), method, reference; bank counter by default."""

    class Meta:
        model = PaymentFileFormat

    provider = factory.SubFactory(ProviderFactory)
    name = factory.Sequence(lambda n: f"Bank {n}")
    bill_number_column = "Bill No"
    connection_number_column = "Consumer No"
    amount_column = "Amount"
    date_column = "Paid On"
    method_column = "Channel"
    reference_column = "Txn Ref"
    default_method = factory.LazyFunction(lambda: PaymentMethod.objects.get(code="bank-counter"))


def billable_connection(
    provider: Provider, *, months: int = 1, peak: int = 100, off_peak: int = 200, **fields
):
    """A connection of `provider` with readings closing each month from December 2023 on: it can be
    billed for January 2024 and the `months - 1` months after, each month using `peak` + `off_peak` kWh."""
    connection = ConnectionFactory(customer=CustomerFactory(provider=provider), provider=provider, **fields)
    zone = ZoneInfo(settings.TIME_ZONE)
    for step in range(months + 1):
        year, month = (2023, 12) if step == 0 else (2024 + (step - 1) // 12, (step - 1) % 12 + 1)
        ReadingFactory(
            connection=connection,
            taken_at=datetime(year, month, 28, 9, 0, tzinfo=zone),
            import_peak=Decimal(peak * step),
            import_off_peak=Decimal(off_peak * step),
        )
    return connection
