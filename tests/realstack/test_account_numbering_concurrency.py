"""Customer and connection numbers on PostgreSQL under concurrency: clerks opening accounts at once
each get the next number of the provider's series, none twice and none skipped; one number given by
several at once is taken by one of them, the others refused with a 409."""

import pytest

from billing.models import Customer, NumberCounter, NumberSeries
from billing.services import NumberTaken, connection_create, customer_create
from tests.factories import ConnectionTypeFactory, CustomerFactory
from tests.realstack.threads import run_together

pytestmark = [pytest.mark.realstack, pytest.mark.django_db(transaction=True)]


def test_twenty_customers_opened_at_once_take_numbers_one_to_twenty(provider):
    outcomes = run_together(
        [lambda n=n: customer_create(provider=provider, name=f"Walk-in {n}") for n in range(20)]
    )

    expected = [f"{provider.code}-C-{n:06d}" for n in range(1, 21)]
    assert sorted(customer.number for customer in outcomes) == expected
    assert NumberCounter.objects.get(provider=provider, series=NumberSeries.CUSTOMER).last == 20


def test_twenty_connections_added_at_once_take_numbers_one_to_twenty(provider):
    customer = CustomerFactory(provider=provider, user=None)
    residential = ConnectionTypeFactory(provider=provider)

    outcomes = run_together([lambda: connection_create(customer=customer, connection_type=residential)] * 20)

    assert sorted(connection.number for connection in outcomes) == [
        f"{provider.code}-SC-{n:06d}" for n in range(1, 21)
    ]


def test_one_number_given_by_ten_clerks_at_once_is_taken_once(provider):
    outcomes = run_together(
        [
            lambda n=n: customer_create(provider=provider, name=f"Clerk {n}'s", number="LHR-RES-0001")
            for n in range(10)
        ]
    )

    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["Customer"] + ["NumberTaken"] * 9
    assert all(outcome.status == 409 for outcome in outcomes if isinstance(outcome, NumberTaken))
    assert Customer.objects.filter(number="LHR-RES-0001").count() == 1
