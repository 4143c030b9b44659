from decimal import Decimal

import pytest

from accounts.roles import Role
from invoicing.models import PaymentMethod
from tests.factories import FlatTariffFactory, UserFactory, billable_connection


@pytest.fixture
def flat_provider(provider):
    """A provider charging a flat 32.50 per kWh (no taxes, fees or subsidies): a bill is kWh x 32.50."""
    FlatTariffFactory(provider=provider, rate=Decimal("32.50"))
    return provider


@pytest.fixture
def connection(flat_provider):
    """Billable for January to March 2024, 300 kWh a month: 9750.00 a month."""
    return billable_connection(flat_provider, months=3)


@pytest.fixture
def creator(flat_provider):
    return UserFactory(provider=flat_provider, roles=[Role.INVOICE_CREATOR])


@pytest.fixture
def super_creator(flat_provider):
    return UserFactory(
        provider=flat_provider, roles=[Role.SUPER_CREATOR], designation="Senior Billing Officer"
    )


@pytest.fixture
def cash(db):
    return PaymentMethod.objects.get_or_create(
        code="bank-counter", defaults={"name": "Paid at Bank Counter"}
    )[0]
