"""An income declared through the API makes the next bill income-subsidised: the subsidy applies while
the declared income is at or below its ceiling, and not above it or without a declaration."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from accounts.roles import Role
from providers.importing import price_schedule_import
from providers.models import ConnectionType
from tests.factories import FlatTariffFactory, UserFactory, billable_connection

pytestmark = pytest.mark.django_db

# 32.50 per kWh for every type, and an income support of 25% of the energy charge for households
# declaring at most 50,000 a month.
INCOME_SUPPORT = {
    "connection_types": [{"code": 1, "description": "Residential - 5 Kilo Watt", "sanctioned_load_kw": 5}],
    "subsidy_providers": [{"provider_id": "BISP", "name": "Benazir Income Support Programme"}],
    "subsidies": [
        {"code": "BISP-Income", "provider_id": "BISP", "connection_type_code": 1, "start_date": "2023-01-01",
         "end_date": None, "income_ceiling": 50000, "percent": 25}
    ],
}  # fmt: skip


@pytest.fixture
def supported_provider(provider, time_machine):
    time_machine.move_to(datetime(2024, 2, 5, 10, tzinfo=UTC), tick=False)
    FlatTariffFactory(provider=provider, rate=Decimal("32.50"))
    price_schedule_import(provider=provider, data=INCOME_SUPPORT)
    return provider


@pytest.fixture
def clerk(as_role, supported_provider):
    return as_role(
        UserFactory(provider=supported_provider, roles=[Role.INVOICE_CREATOR]), Role.INVOICE_CREATOR
    )


def household(provider):
    """Billable for January 2024: 300 kWh, 9750.00 of energy."""
    return billable_connection(
        provider, connection_type=ConnectionType.objects.get(provider=provider, code="1")
    )


def bill_for_january(clerk, connection) -> dict:
    response = clerk.post("/api/invoices", {"connectionId": connection.pk, "month": "2024-01"}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


@pytest.mark.parametrize(
    ("income", "subsidy", "current_charges"),
    [
        ("45000", "2437.50", "7312.50"),  # 25% of 9750.00 off
        ("50000", "2437.50", "7312.50"),  # at the ceiling: still supported
        ("50000.01", "0.00", "9750.00"),
        (None, "0.00", "9750.00"),  # nothing declared
    ],
)
def test_an_income_declared_through_the_api_decides_the_subsidy_on_the_bill(
    clerk, supported_provider, income, subsidy, current_charges
):
    connection = household(supported_provider)
    if income is not None:
        declared = clerk.post(
            f"/api/connections/{connection.pk}/income", {"monthlyIncome": income}, format="json"
        )
        assert declared.status_code == 200

    bill = bill_for_january(clerk, connection)

    assert (bill["subsidyTotal"], bill["totalAmount"]) == (subsidy, current_charges)
    subsidies = [line for line in bill["lines"] if line["kind"] == "subsidy"]
    assert [line["code"] for line in subsidies] == (["BISP-Income"] if subsidy != "0.00" else [])
    assert bill["trace"]["subsidyTests"][0]["applies"] is (subsidy != "0.00")
