"""Invoice numbers on PostgreSQL under concurrency: gapless per provider and year, whatever the
number of clerks issuing at once, and a rolled-back issue gives its number back."""

import threading
from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection, transaction

from accounts.roles import Role
from billing.models import ServiceConnection
from invoicing.models import DocumentCounter, DocumentSeries, Invoice
from invoicing.services import invoice_issue
from tests.factories import FlatTariffFactory, UserFactory, billable_connection
from tests.realstack.conftest import wait_until
from tests.realstack.threads import run_together

pytestmark = [pytest.mark.realstack, pytest.mark.django_db(transaction=True)]

JANUARY = date(2024, 1, 1)


class IssueAbandoned(Exception):
    """Raised inside the issuing transaction after the number was taken, to roll it back."""


def waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@pytest.fixture
def flat_provider(provider):
    FlatTariffFactory(provider=provider, rate=Decimal("32.50"))
    return provider


@pytest.fixture
def creator(flat_provider):
    return UserFactory(provider=flat_provider, roles=[Role.INVOICE_CREATOR])


def issue(connection_id: int, creator) -> Callable[[], Invoice]:
    """An issue from a thread: it loads its own copy of the connection."""
    return lambda: invoice_issue(
        connection=ServiceConnection.objects.get(pk=connection_id), period=JANUARY, created_by=creator
    )


def issue_then_abandon(connection_id: int, creator) -> Callable[[], Invoice]:
    """An issue whose transaction fails once the invoice is numbered and inserted."""

    def call() -> Invoice:
        with transaction.atomic():
            invoice = issue(connection_id, creator)()
            raise IssueAbandoned(invoice.number)

    return call


def numbers(code: str, count: int) -> list[str]:
    return [f"{code}-2024-{n:06d}" for n in range(1, count + 1)]


def test_thirty_concurrent_issues_for_one_provider_take_numbers_one_to_thirty(flat_provider, creator):
    connection_ids = [billable_connection(flat_provider).pk for _ in range(30)]

    outcomes = run_together([issue(pk, creator) for pk in connection_ids])

    assert [type(outcome).__name__ for outcome in outcomes] == ["Invoice"] * 30
    assert sorted(invoice.number for invoice in outcomes) == numbers(flat_provider.code, 30)
    assert sorted(Invoice.objects.values_list("number", flat=True)) == numbers(flat_provider.code, 30)
    assert sorted(invoice.connection_id for invoice in outcomes) == connection_ids
    assert (
        DocumentCounter.objects.get(provider=flat_provider, series=DocumentSeries.INVOICE, year=2024).last
        == 30
    )


def test_concurrent_issues_of_which_some_roll_back_leave_no_gap(flat_provider, creator):
    connection_ids = [billable_connection(flat_provider).pk for _ in range(30)]
    # Ten of them fail after their number was taken; the other twenty share 1..20.
    calls = [issue_then_abandon(pk, creator) for pk in connection_ids[:10]] + [
        issue(pk, creator) for pk in connection_ids[10:]
    ]

    outcomes = run_together(calls)

    assert [type(outcome).__name__ for outcome in outcomes].count("IssueAbandoned") == 10
    issued = [outcome for outcome in outcomes if isinstance(outcome, Invoice)]
    assert sorted(invoice.number for invoice in issued) == numbers(flat_provider.code, 20)
    assert sorted(Invoice.objects.values_list("number", flat=True)) == numbers(flat_provider.code, 20)
    assert (
        DocumentCounter.objects.get(provider=flat_provider, series=DocumentSeries.INVOICE, year=2024).last
        == 20
    )


def test_a_rolled_back_issue_gives_its_number_to_the_next_one(flat_provider, creator):
    first, second = billable_connection(flat_provider), billable_connection(flat_provider)

    with pytest.raises(IssueAbandoned, match=f"^{flat_provider.code}-2024-000001$"):
        issue_then_abandon(first.pk, creator)()
    invoice = issue(second.pk, creator)()

    assert invoice.number == f"{flat_provider.code}-2024-000001"
    assert list(Invoice.objects.values_list("connection_id", "number")) == [(second.pk, invoice.number)]


def test_an_issue_waiting_for_a_number_gets_the_one_a_failing_issue_gives_back(flat_provider, creator):
    earlier, failing, waiting = (billable_connection(flat_provider) for _ in range(3))
    issue(earlier.pk, creator)()  # number 1; the counter row exists from here on
    numbered, fail = threading.Event(), threading.Event()

    def issue_then_fail_when_told() -> Invoice:
        with transaction.atomic():
            invoice = issue(failing.pk, creator)()
            numbered.set()
            fail.wait(timeout=30)
            raise IssueAbandoned(invoice.number)

    def issue_once_the_other_is_numbered() -> Invoice:
        numbered.wait(timeout=30)
        return issue(waiting.pk, creator)()

    def fail_the_first_once_the_second_waits() -> None:
        numbered.wait(timeout=30)
        wait_until(lambda: waiting_on_locks() == 1, message="the second issue did not wait for the counter")
        fail.set()

    abandoned, invoice, _ = run_together(
        [issue_then_fail_when_told, issue_once_the_other_is_numbered, fail_the_first_once_the_second_waits]
    )

    assert str(abandoned) == f"{flat_provider.code}-2024-000002"
    assert invoice.number == f"{flat_provider.code}-2024-000002"
    assert sorted(Invoice.objects.values_list("connection_id", "number")) == [
        (earlier.pk, f"{flat_provider.code}-2024-000001"),
        (waiting.pk, f"{flat_provider.code}-2024-000002"),
    ]
