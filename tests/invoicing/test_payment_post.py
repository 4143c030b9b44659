"""payment_post: money received against a bill settles the connection's oldest open bills first,
never more than they owe, once per Idempotency-Key, with a gapless receipt number."""

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from guardian.shortcuts import get_perms

from accounts.permissions import role_allows
from accounts.roles import Role
from billing.signals import rows_bulk_created
from invoicing.models import InvoiceStatus, Payment, PaymentAllocation, PaymentMethod
from invoicing.selectors import amount_payable
from invoicing.services import (
    IdempotencyMismatch,
    InvoiceCancelled,
    InvoicePaid,
    MethodInactive,
    Overpayment,
    PaymentRefused,
    invoice_issue,
    invoice_update,
    payment_post,
)
from tests.factories import UserFactory
from tests.invoicing.ledger import assert_ledger_holds

pytestmark = pytest.mark.django_db
D = Decimal
JANUARY, FEBRUARY = date(2024, 1, 1), date(2024, 2, 1)


@pytest.fixture
def january(connection, creator):
    """9750.00, due 10 February 2024."""
    return invoice_issue(connection=connection, period=JANUARY, created_by=creator)


@pytest.fixture
def february(connection, creator, january):
    """9750.00 of its own, January's 9750.00 carried as arrears."""
    return invoice_issue(connection=connection, period=FEBRUARY, created_by=creator)


def receipt(provider, n: int) -> str:
    return f"{provider.code}-PAY-{timezone.localdate().year}-{n:06d}"


def nothing_paid(*invoices) -> None:
    assert not Payment.objects.exists()
    assert not PaymentAllocation.objects.exists()
    for invoice in invoices:
        invoice.refresh_from_db()
        assert (invoice.amount_paid, invoice.balance) == (D("0.00"), invoice.current_charges)


def test_payment_post_partial_then_the_rest_settles_the_invoice(connection, january, creator, cash):
    first, first_is_new = payment_post(invoice=january, amount=D("4000.00"), method=cash, received_by=creator)

    january.refresh_from_db()
    assert first_is_new
    assert (january.status, january.amount_paid, january.balance, january.paid_on) == (
        InvoiceStatus.PARTIALLY_PAID,
        D("4000.00"),
        D("5750.00"),
        None,
    )
    assert (first.amount, first.payable_before, first.payable_after) == (
        D("4000.00"),
        D("9750.00"),
        D("5750.00"),
    )

    rest, _ = payment_post(invoice=january, amount=D("5750.00"), method=cash, received_by=creator)

    january.refresh_from_db()
    assert (january.status, january.amount_paid, january.balance, january.paid_on) == (
        InvoiceStatus.PAID,
        D("9750.00"),
        D("0.00"),
        timezone.localdate(),
    )
    assert (rest.payable_before, rest.payable_after) == (D("5750.00"), D("0.00"))
    assert (rest.invoice, rest.connection, rest.provider, rest.method, rest.received_by) == (
        january,
        connection,
        connection.provider,
        cash,
        creator,
    )
    assert_ledger_holds(connection)


def test_payment_post_rejects_amount_above_payable(connection, january, creator, cash):
    with pytest.raises(Overpayment, match=r"take at most 9750\.00") as refused:
        payment_post(invoice=january, amount=D("9750.01"), method=cash, received_by=creator)

    assert (refused.value.code, refused.value.field, refused.value.extra) == (
        "overpayment",
        "amount",
        {"payable": "9750.00"},
    )
    nothing_paid(january)
    assert_ledger_holds(connection)


def test_payment_post_rejects_more_than_the_presented_bill_and_the_earlier_ones_owe(
    connection, january, february, creator, cash
):
    with pytest.raises(Overpayment, match="earlier bills") as refused:
        payment_post(invoice=february, amount=D("19500.01"), method=cash, received_by=creator)

    assert refused.value.extra == {"payable": "19500.00"}
    nothing_paid(january, february)
    assert_ledger_holds(connection)


def test_payment_post_refuses_a_paid_invoice(connection, january, creator, cash):
    payment_post(invoice=january, amount=D("9750.00"), method=cash, received_by=creator)

    with pytest.raises(InvoicePaid, match="fully paid"):
        payment_post(invoice=january, amount=D("1.00"), method=cash, received_by=creator)

    assert Payment.objects.count() == 1
    assert_ledger_holds(connection)


def test_payment_post_refuses_a_cancelled_invoice(connection, january, creator, cash):
    invoice_update(invoice=january, updated_by=creator, cancel=True)

    with pytest.raises(InvoiceCancelled, match="cancelled"):
        payment_post(invoice=january, amount=D("1.00"), method=cash, received_by=creator)

    assert not Payment.objects.exists()
    assert_ledger_holds(connection)


def test_payment_post_refuses_a_method_no_longer_accepted(connection, january, creator):
    PaymentMethod.objects.filter(code="ibft").update(is_active=False)
    retired = PaymentMethod.objects.get(code="ibft")

    with pytest.raises(MethodInactive, match="no longer accepted") as refused:
        payment_post(invoice=january, amount=D("100.00"), method=retired, received_by=creator)

    assert refused.value.field == "method"
    nothing_paid(january)
    assert_ledger_holds(connection)


@pytest.mark.parametrize("amount", [D("0.00"), D("-5.00")])
def test_payment_post_refuses_an_amount_that_is_not_positive(connection, january, creator, cash, amount):
    with pytest.raises(PaymentRefused, match="more than zero") as refused:
        payment_post(invoice=january, amount=amount, method=cash, received_by=creator)

    assert refused.value.field == "amount"
    nothing_paid(january)
    assert_ledger_holds(connection)


def test_payment_post_dates_money_received_earlier_by_when_it_was_received(
    connection, january, creator, cash
):
    """Taken at a bank counter on 5 February 2024 and entered from the bank's statement later."""
    at_the_counter = datetime(2024, 2, 5, 11, 30, tzinfo=timezone.get_current_timezone())

    payment, _ = payment_post(
        invoice=january, amount=D("9750.00"), method=cash, received_by=creator, received_at=at_the_counter
    )

    january.refresh_from_db()
    assert payment.received_at == at_the_counter
    assert payment.receipt_number == f"{connection.provider.code}-PAY-2024-000001"
    assert (january.status, january.paid_on) == (InvoiceStatus.PAID, date(2024, 2, 5))


def test_payment_post_refuses_money_received_in_the_future(connection, january, creator, cash):
    with pytest.raises(PaymentRefused, match="future"):
        payment_post(
            invoice=january,
            amount=D("9750.00"),
            method=cash,
            received_by=creator,
            received_at=timezone.now() + timedelta(minutes=5),
        )

    nothing_paid(january)


def test_payment_post_on_a_later_bill_settles_the_oldest_open_bill_first(
    connection, january, february, creator, cash
):
    payment, _ = payment_post(invoice=february, amount=D("12000.00"), method=cash, received_by=creator)

    january.refresh_from_db()
    february.refresh_from_db()
    assert list(payment.allocations.values_list("invoice__number", "amount")) == [
        (january.number, D("9750.00")),
        (february.number, D("2250.00")),
    ]
    assert (january.status, january.balance, january.paid_on) == (
        InvoiceStatus.PAID,
        D("0.00"),
        timezone.localdate(),
    )
    assert (february.status, february.amount_paid, february.balance) == (
        InvoiceStatus.PARTIALLY_PAID,
        D("2250.00"),
        D("7500.00"),
    )
    assert (payment.invoice, payment.payable_before, payment.payable_after) == (
        february,
        D("19500.00"),
        D("7500.00"),
    )
    assert_ledger_holds(connection)


def test_payment_post_on_an_earlier_bill_leaves_later_bills_open(
    connection, january, february, creator, cash
):
    payment, _ = payment_post(invoice=january, amount=D("9750.00"), method=cash, received_by=creator)

    february.refresh_from_db()
    assert list(payment.allocations.values_list("invoice__number", "amount")) == [
        (january.number, D("9750.00"))
    ]
    assert (february.status, february.balance) == (InvoiceStatus.PENDING, D("9750.00"))
    assert_ledger_holds(connection)


def test_payment_post_on_a_zero_bill_carrying_arrears_settles_the_earlier_bill(
    connection, january, creator, cash
):
    empty_house = invoice_issue(connection=connection, period=FEBRUARY, created_by=creator, kwh=D("0"))
    assert (empty_house.status, empty_house.payable_before_due, amount_payable(empty_house)) == (
        InvoiceStatus.PAID,
        D("9750.00"),
        D("9750.00"),
    )

    payment, _ = payment_post(invoice=empty_house, amount=D("9750.00"), method=cash, received_by=creator)

    january.refresh_from_db()
    assert list(payment.allocations.values_list("invoice", "amount")) == [(january.pk, D("9750.00"))]
    assert (january.status, january.balance) == (InvoiceStatus.PAID, D("0.00"))
    assert_ledger_holds(connection)


def test_payment_post_numbers_receipts_consecutively_and_refusals_take_none(
    connection, january, creator, cash
):
    provider = connection.provider
    first, _ = payment_post(invoice=january, amount=D("100.00"), method=cash, received_by=creator)
    with pytest.raises(Overpayment):
        payment_post(invoice=january, amount=D("9650.01"), method=cash, received_by=creator)
    second, _ = payment_post(invoice=january, amount=D("200.00"), method=cash, received_by=creator)
    third, _ = payment_post(invoice=january, amount=D("300.00"), method=cash, received_by=creator)

    assert [first.receipt_number, second.receipt_number, third.receipt_number] == [
        receipt(provider, 1),
        receipt(provider, 2),
        receipt(provider, 3),
    ]
    assert_ledger_holds(connection)


def test_payment_post_returns_the_first_payment_for_a_retry_with_the_same_idempotency_key(
    connection, january, creator, cash
):
    first, first_is_new = payment_post(
        invoice=january, amount=D("1000.00"), method=cash, received_by=creator, idempotency_key="till-7-0001"
    )
    again, again_is_new = payment_post(
        invoice=january, amount=D("1000.00"), method=cash, received_by=creator, idempotency_key="till-7-0001"
    )

    january.refresh_from_db()
    assert (first_is_new, again_is_new) == (True, False)
    assert (again.pk, again.receipt_number) == (first.pk, receipt(connection.provider, 1))
    assert (Payment.objects.count(), PaymentAllocation.objects.count()) == (1, 1)
    assert (january.amount_paid, january.balance) == (D("1000.00"), D("8750.00"))
    assert_ledger_holds(connection)


def test_payment_post_returns_the_first_payment_for_a_retry_after_the_bill_was_settled(
    connection, january, creator, cash
):
    first, _ = payment_post(
        invoice=january, amount=D("9750.00"), method=cash, received_by=creator, idempotency_key="till-7-0002"
    )

    again, again_is_new = payment_post(
        invoice=january, amount=D("9750.00"), method=cash, received_by=creator, idempotency_key="till-7-0002"
    )

    assert (again.pk, again_is_new) == (first.pk, False)
    assert Payment.objects.count() == 1
    assert_ledger_holds(connection)


@pytest.mark.parametrize(
    "change",
    [{"amount": D("1500.00")}, {"reference": "IBFT-99"}],
    ids=["different amount", "different reference"],
)
def test_payment_post_rejects_a_reused_idempotency_key_with_a_different_body(
    connection, january, creator, cash, change
):
    payment_post(
        invoice=january, amount=D("1000.00"), method=cash, received_by=creator, idempotency_key="till-7-0003"
    )

    with pytest.raises(IdempotencyMismatch, match="new key") as refused:
        payment_post(
            **{"amount": D("1000.00"), **change},
            invoice=january,
            method=cash,
            received_by=creator,
            idempotency_key="till-7-0003",
        )

    january.refresh_from_db()
    assert refused.value.code == "idempotency_key_reused"
    assert (Payment.objects.count(), january.amount_paid) == (1, D("1000.00"))
    assert_ledger_holds(connection)


def test_payment_post_treats_the_same_key_from_another_user_as_another_payment(
    connection, january, creator, super_creator, cash
):
    mine, _ = payment_post(
        invoice=january, amount=D("1000.00"), method=cash, received_by=creator, idempotency_key="shared-key"
    )
    theirs, theirs_is_new = payment_post(
        invoice=january,
        amount=D("1000.00"),
        method=cash,
        received_by=super_creator,
        idempotency_key="shared-key",
    )

    january.refresh_from_db()
    assert theirs_is_new
    assert [mine.receipt_number, theirs.receipt_number] == [
        receipt(connection.provider, 1),
        receipt(connection.provider, 2),
    ]
    assert (january.amount_paid, january.balance) == (D("2000.00"), D("7750.00"))
    assert_ledger_holds(connection)


@pytest.fixture
def failing_audit():
    """The audit trail cannot write the allocations' rows, until `mended()`: the payment must roll back."""

    def refuse(sender, **kwargs):
        raise RuntimeError("audit log unavailable")

    def mended() -> None:
        rows_bulk_created.disconnect(sender=PaymentAllocation, dispatch_uid="test-failing-audit")

    rows_bulk_created.connect(refuse, sender=PaymentAllocation, weak=False, dispatch_uid="test-failing-audit")
    yield mended
    mended()


def test_payment_post_leaves_nothing_half_written_when_it_fails_after_taking_a_number(
    connection, january, february, creator, cash, failing_audit
):
    with pytest.raises(RuntimeError, match="audit log unavailable"):
        payment_post(
            invoice=february, amount=D("12000.00"), method=cash, received_by=creator, idempotency_key="k-1"
        )

    nothing_paid(january, february)
    january.refresh_from_db()
    assert (january.status, january.paid_on) == (InvoiceStatus.PENDING, None)
    assert_ledger_holds(connection)


def test_payment_post_gives_the_receipt_number_back_and_the_key_free_after_a_failure(
    connection, january, creator, cash, failing_audit
):
    with pytest.raises(RuntimeError):
        payment_post(
            invoice=january, amount=D("100.00"), method=cash, received_by=creator, idempotency_key="k-2"
        )
    failing_audit()

    payment, is_new = payment_post(
        invoice=january, amount=D("100.00"), method=cash, received_by=creator, idempotency_key="k-2"
    )

    assert (payment.receipt_number, is_new) == (receipt(connection.provider, 1), True)
    assert Payment.objects.count() == 1
    assert_ledger_holds(connection)


def test_payment_post_lets_the_collector_see_their_receipt(connection, january, creator, cash):
    colleague = UserFactory(provider=connection.provider, roles=[Role.INVOICE_CREATOR])

    payment, _ = payment_post(invoice=january, amount=D("100.00"), method=cash, received_by=creator)

    assert role_allows(Role.INVOICE_CREATOR, "invoicing.view_payment", user=creator, obj=payment)
    assert not role_allows(Role.INVOICE_CREATOR, "invoicing.view_payment", user=colleague, obj=payment)
    assert get_perms(creator, payment) == []  # by its columns: no object permission written
    assert_ledger_holds(connection)
