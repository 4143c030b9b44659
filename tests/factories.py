from decimal import Decimal

import factory

from accounts.models import User, UserRole
from accounts.roles import Role
from billing.models import Customer, ServiceConnection
from providers.models import ConnectionType, Provider

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


class ConnectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ServiceConnection

    customer = factory.SubFactory(CustomerFactory)
    provider = factory.SelfAttribute("customer.provider")
    number = factory.Sequence(lambda n: f"CONN-{n:04d}")
    connection_type = factory.LazyAttribute(lambda o: ConnectionTypeFactory(provider=o.provider))
