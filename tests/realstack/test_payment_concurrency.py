"""Payments racing on PostgreSQL: many cashiers (threads, each on its own database connection) posting
against one bill, or against two bills of one connection, at the same moment.

The connection's row lock serialises them: the total paid never exceeds what was payable, refusals
are Overpayment or InvoicePaid (never a deadlock or a database error), and the ledger holds.
"""

import threading
from collections import Counter
from collections.abc import Callable
from datetime import date
from decimal import Decimal

import factory
import pytest
from django.db import connection, connections, transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.roles import Role
from billing.models import ServiceConnection
from invoicing.models import Invoice, InvoiceStatus, Payment, PaymentAllocation, PaymentMethod
from invoicing.services import invoice_issue, payment_post
from tests.factories import FlatTariffFactory, UserFactory, billable_connection
from tests.realstack.conftest import wait_until
from tests.realstack.threads import run_together, start_together

# Committed rows, so that every thread's connection sees them.
pytestmark = [pytest.mark.realstack, pytest.mark.django_db(transaction=True)]

JANUARY, FEBRUARY = date(2024, 1, 1), date(2024, 2, 1)
REFUSALS = {"Overpayment", "InvoicePaid"}


def hold_connection_row(service_connection: ServiceConnection) -> Callable[[], None]:
    """Lock the connection's row from another database connection, as a payment in progress does;
    returns the function that commits and lets the waiting payments in."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        with transaction.atomic():
            ServiceConnection.objects.select_for_update().get(pk=service_connection.pk)
            locked.set()
            release.wait(timeout=60)
        connections.close_all()

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert locked.wait(timeout=10), "could not lock the connection's row"

    def let_go() -> None:
        release.set()
        holder.join(timeout=10)

    return let_go


def waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def pay(invoice_id: int, amount: str, cashier, *, key: str | None = None) -> Callable[[], object]:
    """A payment posted from a thread: it loads its own copies of the invoice and method."""
    return lambda: payment_post(
        invoice=Invoice.objects.get(pk=invoice_id),
        amount=Decimal(amount),
        method=PaymentMethod.objects.get(code="bank-counter"),
        received_by=cashier,
        idempotency_key=key,
    )


def payments_and_refusals(outcomes: list[object]) -> tuple[list[Payment], list[Exception]]:
    payments = [outcome[0] for outcome in outcomes if isinstance(outcome, tuple)]
    refusals = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    return payments, refusals


def refusal_names(refusals: list[Exception]) -> set[str]:
    return {type(refusal).__name__ for refusal in refusals}


class PaymentMethodFactory(factory.django.DjangoModelFactory):
    """A seeded payment method: the flush after a transactional test removes the migration's rows."""

    class Meta:
        model = PaymentMethod
        django_get_or_create = ("code",)

    code = "bank-counter"
    name = "Paid at Bank Counter"


@pytest.fixture
def flat_provider(provider):
    """A flat 32.50 per kWh, nothing else: 300 kWh a month is a bill of 9750.00."""
    FlatTariffFactory(provider=provider, rate=Decimal("32.50"))
    return provider


@pytest.fixture
def creator(flat_provider):
    return UserFactory(provider=flat_provider, roles=[Role.INVOICE_CREATOR])


@pytest.fixture
def cashier(flat_provider):
    PaymentMethodFactory()
    return UserFactory(provider=flat_provider, roles=[Role.INVOICE_CREATOR])


@pytest.fixture
def bill(flat_provider, creator):
    """January 2024 of a connection using 300 kWh: 9750.00 payable."""
    return invoice_issue(connection=billable_connection(flat_provider), period=JANUARY, created_by=creator)


def assert_ledger_holds(service_connection_id: int) -> None:
    """Payments = allocations = what the invoices record as paid; each balance = charges - paid."""
    paid = Payment.objects.filter(connection_id=service_connection_id).aggregate(total=Sum("amount"))["total"]
    allocated = PaymentAllocation.objects.filter(payment__connection_id=service_connection_id).aggregate(
        total=Sum("amount")
    )["total"]
    invoices = list(Invoice.objects.filter(connection_id=service_connection_id))
    assert allocated == paid
    assert sum(invoice.amount_paid for invoice in invoices) == paid
    assert [invoice.balance for invoice in invoices] == [
        invoice.current_charges + invoice.adjustment_total - invoice.amount_paid for invoice in invoices
    ]


def test_fifty_concurrent_payments_never_exceed_the_payable_amount(bill, cashier):
    assert bill.balance == Decimal("9750.00")

    outcomes = run_together([pay(bill.pk, "487.50", cashier) for _ in range(50)])  # 1/20 of the bill each

    payments, refusals = payments_and_refusals(outcomes)
    assert len(payments) == 20
    assert Counter(type(refusal).__name__ for refusal in refusals) == Counter({"InvoicePaid": 30})
    bill.refresh_from_db()
    assert bill.amount_paid == Decimal("9750.00")
    assert bill.balance == bill.current_charges - bill.amount_paid == Decimal("0.00")
    assert bill.status == InvoiceStatus.PAID
    assert Payment.objects.filter(invoice=bill).aggregate(total=Sum("amount"))["total"] == Decimal("9750.00")
    assert_ledger_holds(bill.connection_id)


def test_concurrent_payments_are_numbered_without_gaps(bill, cashier):
    outcomes = run_together([pay(bill.pk, "487.50", cashier) for _ in range(50)])

    payments, _ = payments_and_refusals(outcomes)
    year = timezone.localdate().year  # receipts are numbered by the year they are taken in
    code = bill.provider.code
    assert sorted(payment.receipt_number for payment in payments) == [
        f"{code}-PAY-{year}-{n:06d}" for n in range(1, 21)
    ]


def test_concurrent_payments_of_mixed_amounts_pay_exactly_the_bill_and_refuse_the_rest(bill, cashier):
    # 40 x 250.00 alone could pay 10000.00, so the 9750.00 is always paid in full, whatever the order;
    # the 3000.00 ones are taken only while the balance still covers them.
    calls = [pay(bill.pk, "3000.00", cashier) for _ in range(10)] + [
        pay(bill.pk, "250.00", cashier) for _ in range(40)
    ]

    outcomes = run_together(calls)

    payments, refusals = payments_and_refusals(outcomes)
    assert len(payments) + len(refusals) == 50
    assert sum(payment.amount for payment in payments) == Decimal("9750.00")
    assert refusal_names(refusals) <= REFUSALS
    assert all(payment.payable_after == payment.payable_before - payment.amount for payment in payments)
    bill.refresh_from_db()
    assert (bill.amount_paid, bill.balance, bill.status) == (
        Decimal("9750.00"),
        Decimal("0.00"),
        InvoiceStatus.PAID,
    )
    assert_ledger_holds(bill.connection_id)


def test_concurrent_payments_larger_than_the_balance_are_refused_as_overpayment(bill, cashier):
    # A first 6000.00 leaves 3750.00: every later 6000.00 is too much, none of them is ever taken.
    outcomes = run_together([pay(bill.pk, "6000.00", cashier) for _ in range(20)])

    payments, refusals = payments_and_refusals(outcomes)
    assert [payment.amount for payment in payments] == [Decimal("6000.00")]
    assert Counter(type(refusal).__name__ for refusal in refusals) == Counter({"Overpayment": 19})
    assert {refusal.extra["payable"] for refusal in refusals} == {"3750.00"}
    bill.refresh_from_db()
    assert (bill.amount_paid, bill.balance, bill.status) == (
        Decimal("6000.00"),
        Decimal("3750.00"),
        InvoiceStatus.PARTIALLY_PAID,
    )


def test_twenty_concurrent_retries_with_one_idempotency_key_make_one_payment(bill, cashier):
    # The connection is held while all twenty arrive, so every retry misses the first one's commit
    # and meets its idempotency key in the unique index instead.
    let_go = hold_connection_row(bill.connection)
    outcomes_when_done = start_together(
        [pay(bill.pk, "487.50", cashier, key="retry-7f3a") for _ in range(20)]
    )
    wait_until(lambda: waiting_on_locks() == 20, message="the retries did not all wait on the connection")
    let_go()

    outcomes = outcomes_when_done()

    payments, refusals = payments_and_refusals(outcomes)
    assert refusals == []
    assert len({payment.pk for payment in payments}) == 1
    assert sorted(created for _, created in outcomes) == [False] * 19 + [True]
    assert Payment.objects.filter(invoice=bill).count() == 1
    bill.refresh_from_db()
    assert (bill.amount_paid, bill.balance) == (Decimal("487.50"), Decimal("9262.50"))


def test_twenty_racing_retries_with_one_idempotency_key_return_one_payment(bill, cashier):
    outcomes = run_together([pay(bill.pk, "487.50", cashier, key="retry-5c21") for _ in range(20)])

    payments, refusals = payments_and_refusals(outcomes)
    assert refusals == []
    assert len({payment.pk for payment in payments}) == 1
    assert Payment.objects.filter(invoice=bill).count() == 1


def test_concurrent_retries_of_a_full_payment_with_one_idempotency_key_return_the_first_payment(
    bill, cashier
):
    let_go = hold_connection_row(bill.connection)
    outcomes_when_done = start_together(
        [pay(bill.pk, "9750.00", cashier, key="retry-full-91b0") for _ in range(20)]
    )
    wait_until(lambda: waiting_on_locks() == 20, message="the retries did not all wait on the connection")
    let_go()

    outcomes = outcomes_when_done()

    payments, refusals = payments_and_refusals(outcomes)
    assert refusal_names(refusals) == set()
    assert len({payment.pk for payment in payments}) == 1
    assert Payment.objects.filter(invoice=bill).count() == 1


def test_concurrent_payments_on_two_bills_of_one_connection_settle_oldest_first_without_deadlock(
    flat_provider, creator, cashier
):
    service_connection = billable_connection(flat_provider, months=2)
    january = invoice_issue(connection=service_connection, period=JANUARY, created_by=creator)
    february = invoice_issue(connection=service_connection, period=FEBRUARY, created_by=creator)
    assert (january.balance, february.balance, february.arrears) == (
        Decimal("9750.00"),
        Decimal("9750.00"),
        Decimal("9750.00"),
    )
    # 19500.00 owed in all, 26 x 750.00; the 30 on February's bill could pay it all on their own.
    calls = [pay(january.pk, "750.00", cashier) for _ in range(20)] + [
        pay(february.pk, "750.00", cashier) for _ in range(30)
    ]

    outcomes = run_together(calls)

    payments, refusals = payments_and_refusals(outcomes)
    assert len(payments) == 26
    assert sum(payment.amount for payment in payments) == Decimal("19500.00")
    assert refusal_names(refusals) <= REFUSALS
    assert len(refusals) == 24
    january.refresh_from_db()
    february.refresh_from_db()
    assert (january.amount_paid, january.balance, january.status) == (
        Decimal("9750.00"),
        Decimal("0.00"),
        InvoiceStatus.PAID,
    )
    assert (february.amount_paid, february.balance, february.status) == (
        Decimal("9750.00"),
        Decimal("0.00"),
        InvoiceStatus.PAID,
    )
    assert_ledger_holds(service_connection.pk)
    # Oldest first: no payment put money on February while January was still owed.
    february_first = PaymentAllocation.objects.filter(invoice=february).order_by("payment_id").first()
    assert not PaymentAllocation.objects.filter(
        invoice=january, payment_id__gt=february_first.payment_id
    ).exists()
